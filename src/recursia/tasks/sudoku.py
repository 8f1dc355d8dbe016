"""Sudoku: reading, validating, encoding, augmenting, canonicalising, solving and generating puzzles.

A grid is a numpy ``uint8`` array of shape ``(81,)`` in row-major order: 0 is a blank, 1..9 are digits.
Batches are ``(N, 81)``. Rows, columns and boxes are numbered from 1 in every message written for a
person, because that is how people count cells on paper.

Only numpy and the standard library are used here, so data preparation does not need torch.
"""

from __future__ import annotations

import itertools
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recursia.errors import ConfigError, DataError, PuzzleError
from recursia.tasks.records import CSV_COLUMNS, Records, csv_rows, merge, parse_ratings, read_text, select

__all__ = [
    "SEQ_LEN", "VOCAB_SIZE", "CSV_COLUMNS",
    "parse_grid", "format_grid",
    "clue_conflicts", "is_valid_solution", "check_answer", "is_valid_solution_batch", "consistent_batch",
    "SudokuRecords", "read_csv", "read_lines",
    "encode", "decode",
    "SudokuTransforms", "random_transforms", "apply_transforms", "augment",
    "identity_transforms", "undo_transforms", "perturb",
    "canonical_form", "symmetry_invariant", "find_equivalent",
    "SolveResult", "solve",
    "deduction_rounds", "generate",
]

SEQ_LEN = 81
VOCAB_SIZE = 11  # 0 = PAD, 1 = blank, 2..10 = digits 1..9

# ----------------------------------------------------------------------------------------------------------
# Unit tables, shared by the vectorised checks, the invariants and the deduction rounds.
# ----------------------------------------------------------------------------------------------------------

_CELLS = np.arange(81).reshape(9, 9)
_BOXES = _CELLS.reshape(3, 3, 3, 3).transpose(0, 2, 1, 3).reshape(9, 9)
UNITS = np.concatenate([_CELLS, _CELLS.T, _BOXES])  # (27, 9): rows, then columns, then boxes
_UNIT_NAMES = [f"{kind} {k + 1}" for kind in ("row", "column", "box") for k in range(9)]
_ROW_OF = np.arange(81) // 9
_COL_OF = np.arange(81) % 9
_BOX_OF = (_ROW_OF // 3) * 3 + _COL_OF // 3
_CELL_UNITS = np.stack([_ROW_OF, 9 + _COL_OF, 18 + _BOX_OF], axis=1)  # (81, 3) unit ids per cell

# Byte -> cell value; 255 marks a character that is not allowed.
_CHAR_VALUE = np.full(256, 255, dtype=np.uint8)
_CHAR_VALUE[ord(".")] = 0
_CHAR_VALUE[ord("0"):ord("9") + 1] = np.arange(10, dtype=np.uint8)
_PUZZLE_RE = re.compile(r"[.0-9]{81}")
_ALLOWED = "digits 1-9, and '.' or '0' for a blank"


# ----------------------------------------------------------------------------------------------------------
# Parsing and formatting
# ----------------------------------------------------------------------------------------------------------

def parse_grid(text: str) -> np.ndarray:
    """Read one puzzle string; whitespace anywhere is ignored so that pasted, wrapped puzzles still read.

    Raises `PuzzleError` naming the first bad character (1-based position in the string without whitespace)
    or the wrong cell count, so the user can fix the input without guessing.
    """
    cells = "".join(text.split())
    for pos, ch in enumerate(cells):
        if ch != "." and not ("0" <= ch <= "9"):
            raise PuzzleError(f"puzzle has an invalid character {ch!r} at position {pos + 1} (allowed: {_ALLOWED})")
    if len(cells) != 81:
        raise PuzzleError(f"puzzle has {len(cells)} cells, expected 81")
    return _CHAR_VALUE[np.frombuffer(cells.encode("ascii"), dtype=np.uint8)].copy()


def as_question(grid: np.ndarray) -> np.ndarray:
    """A puzzle given as an array of 81 values 0..9 -> the grid `parse_grid` returns; else PuzzleError."""
    return _as_grid(np.asarray(grid))


def _as_grid(grid: np.ndarray | str) -> np.ndarray:
    """Accept a string or any 81-value array, and check it, so that every public function fails the same way."""
    if isinstance(grid, str):
        return parse_grid(grid)
    arr = np.asarray(grid)
    if arr.size != 81:
        raise PuzzleError(f"puzzle has {arr.size} cells, expected 81")
    arr = arr.reshape(81)
    if arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() > 9:
        raise PuzzleError("puzzle values must be integers 0..9 (0 = blank)")
    return arr.astype(np.uint8)


def _as_batch(grids: np.ndarray, name: str = "grids") -> np.ndarray:
    """Check a (N, 81) batch once at the API boundary instead of deep inside vectorised code."""
    arr = np.asarray(grids)
    if arr.ndim != 2 or arr.shape[1] != 81:
        raise ValueError(f"{name} must have shape (N, 81), got {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers 0..9, got dtype {arr.dtype}")
    return arr.astype(np.uint8, copy=False)


def format_grid(grid: np.ndarray, pretty: bool = False) -> str:
    """81 characters with '.' blanks (the file format), or a boxed 9-line display for people."""
    g = _as_grid(grid)
    chars = [str(v) if v else "." for v in g.tolist()]
    if not pretty:
        return "".join(chars)
    lines = []
    for r in range(9):
        if r and r % 3 == 0:
            lines.append("------+-------+------")
        row = chars[r * 9:(r + 1) * 9]
        lines.append(" | ".join(" ".join(row[s * 3:(s + 1) * 3]) for s in range(3)))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------------

_TIMES = {2: "twice", 3: "three times"}


def _unit_duplicates(g: np.ndarray) -> list[str]:
    """Name every digit that occurs more than once in a unit; blanks are ignored."""
    problems = []
    for name, unit in zip(_UNIT_NAMES, UNITS):
        counts = np.bincount(g[unit], minlength=10)
        for digit in np.nonzero(counts[1:] > 1)[0] + 1:
            n = int(counts[digit])
            problems.append(f"digit {digit} appears {_TIMES.get(n, f'{n} times')} in {name}")
    return problems


def clue_conflicts(grid: np.ndarray | str) -> list[str]:
    """Duplicate given digits in a row, column or box: such a puzzle has no solution."""
    return _unit_duplicates(_as_grid(grid))


def is_valid_solution(grid: np.ndarray | str) -> bool:
    """True when the grid is complete and every row, column and box holds 1..9 exactly once."""
    return bool(is_valid_solution_batch(_as_grid(grid)[None])[0])


def check_answer(question: np.ndarray | str, answer: np.ndarray | str) -> list[str]:
    """Reasons why `answer` does not solve `question`; an empty list means it does."""
    q, a = _as_grid(question), _as_grid(answer)
    reasons = []
    blanks = int((a == 0).sum())
    if blanks:
        reasons.append(f"answer is incomplete: {blanks} blank cell{'s' if blanks != 1 else ''}")
    reasons.extend(_unit_duplicates(a))
    for cell in np.nonzero((q != 0) & (q != a))[0]:
        got = f"has {a[cell]}" if a[cell] else "leaves it blank"
        reasons.append(f"clue at row {cell // 9 + 1}, column {cell % 9 + 1} is {q[cell]} but the answer {got}")
    return reasons


def is_valid_solution_batch(grids: np.ndarray) -> np.ndarray:
    """(N,) bool: complete and valid. Nine cells whose digit bits OR to all nine digits are a permutation."""
    g = _as_batch(grids)
    bits = np.left_shift(np.uint16(1), g.astype(np.uint16))  # digit d -> bit d; blank -> bit 0
    unit_or = np.bitwise_or.reduce(bits[:, UNITS], axis=2)  # (N, 27)
    return (unit_or == 0b1111111110).all(axis=1) & (g != 0).all(axis=1)


def consistent_batch(questions: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """(N,) bool: each answer is a valid solution and keeps every clue of its question (model outputs)."""
    q, a = _as_batch(questions, "questions"), _as_batch(answers, "answers")
    if q.shape != a.shape:
        raise ValueError(f"questions {q.shape} and answers {a.shape} differ in shape")
    return is_valid_solution_batch(a) & ((q == 0) | (q == a)).all(axis=1)


def _has_conflict_batch(grids: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """(N,) bool: some unit repeats a given digit. Sorting each unit finds repeats without a one-hot tensor."""
    out = np.empty(len(grids), dtype=bool)
    for start in range(0, len(grids), chunk):
        units = np.sort(grids[start:start + chunk][:, UNITS], axis=2)
        dup = (units[:, :, 1:] == units[:, :, :-1]) & (units[:, :, 1:] > 0)
        out[start:start + chunk] = dup.any(axis=(1, 2))
    return out


# ----------------------------------------------------------------------------------------------------------
# Reading files
# ----------------------------------------------------------------------------------------------------------

SudokuRecords = Records  # the name this module has always exported


def _grids_from_strings(texts: list[str], what: str) -> tuple[np.ndarray, list[str | None]]:
    """Parse many puzzle strings; well-formed ones take a vectorised path, the rest get a precise reason."""
    grids = np.zeros((len(texts), 81), dtype=np.uint8)
    reasons: list[str | None] = [None] * len(texts)
    fast = np.array([_PUZZLE_RE.fullmatch(t) is not None for t in texts], dtype=bool)
    if fast.any():
        joined = "".join(t for t, f in zip(texts, fast) if f).encode("ascii")
        grids[fast] = _CHAR_VALUE[np.frombuffer(joined, dtype=np.uint8)].reshape(-1, 81)
    for i in np.nonzero(~fast)[0]:
        try:
            grids[i] = parse_grid(texts[i])
        except PuzzleError as exc:
            reasons[i] = f"{what}: {exc}" if what else str(exc)
    return grids, reasons


def _question_reasons(questions: np.ndarray, reasons: list[str | None]) -> None:
    """Add the clue-conflict reason to parsed questions that repeat a digit in a unit."""
    parsed = np.array([r is None for r in reasons], dtype=bool)
    for i in np.nonzero(parsed & _has_conflict_batch(questions))[0]:
        reasons[i] = "question has conflicting clues: " + "; ".join(_unit_duplicates(questions[i]))


def read_csv(path: str | Path, *, skip_invalid: bool = False) -> SudokuRecords:
    """Read a `source,question,answer,rating` file (Sudoku-Extreme format) and validate every row.

    Each row must have a well-formed question without conflicting clues and an answer that is a valid
    complete grid keeping every clue. Bad rows raise one `DataError` listing them, or with
    `skip_invalid=True` are left out and listed in `rejected`.
    """
    p, text = read_text(path, "sudoku")
    lines, cols, field_reasons = csv_rows(p, text, "puzzles")
    q, q_reasons = _grids_from_strings([c[1].strip() for c in cols], "question")
    a, a_reasons = _grids_from_strings([c[2].strip() for c in cols], "answer")
    _question_reasons(q, q_reasons)
    ratings, r_reasons = parse_ratings([c[3] for c in cols])
    ok_grids = np.array([qr is None and ar is None for qr, ar in zip(q_reasons, a_reasons)], dtype=bool)
    bad_answer = ok_grids & ~consistent_batch(q, a)
    ans_reasons: list[str | None] = [None] * len(cols)
    for i in np.nonzero(bad_answer)[0]:
        ans_reasons[i] = "; ".join(check_answer(q[i], a[i]))
    reasons = [fr or m for fr, m in zip(field_reasons, merge(q_reasons, a_reasons, r_reasons, ans_reasons))]
    return select(p, q, a, ratings, [c[0] for c in cols], lines, reasons, skip_invalid, "puzzle row")


def read_lines(path: str | Path, *, skip_invalid: bool = False, skippable: bool = True) -> SudokuRecords:
    """Read one puzzle per line (the classic collection format); `#` comments and blank lines are skipped.

    Only the first whitespace-separated field of a line is the puzzle, so files that append a rating or a
    note after it still read. Questions with conflicting clues are errors; `answers` is None. Without
    `skippable` (puzzles a person hands to `solve`) the error does not offer skipping bad rows.
    """
    p, text = read_text(path, "sudoku")
    data = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            data.append((number, entry.split()[0]))
    if not data:
        rows = [line.rstrip("\r") for line in text.splitlines() if line.strip()]
        if rows and all(set(r) <= set("# SGo") for r in rows):  # '#' walls read as comments here
            raise DataError(f"{p}: no Sudoku puzzles; its lines look like maze rows ('#' walls, ' ', 'S', 'G'), "
                            "so it is probably a maze file: solve it with a maze model")
        raise DataError(f"{p}: no puzzles (only comments or blank lines)")
    q, reasons = _grids_from_strings([t for _, t in data], "")
    _question_reasons(q, reasons)
    return select(p, q, None, np.full(len(data), np.nan), [p.name] * len(data), [n for n, _ in data],
                  reasons, skip_invalid, "puzzle row", skippable=skippable)


# ----------------------------------------------------------------------------------------------------------
# Token encoding
# ----------------------------------------------------------------------------------------------------------

def encode(questions: np.ndarray, answers: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Grids -> model tokens: blank -> 1, digit d -> d + 1, leaving token 0 free for padding."""
    inputs = np.asarray(questions, dtype=np.uint8) + np.uint8(1)
    labels = None if answers is None else np.asarray(answers, dtype=np.uint8) + np.uint8(1)
    return inputs, labels


def decode(tokens: np.ndarray) -> np.ndarray:
    """Model tokens -> grids; PAD and blank become 0 and out-of-range tokens are clipped to a digit."""
    return np.clip(np.asarray(tokens).astype(np.int64) - 1, 0, 9).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------
# Symmetry augmentation
# ----------------------------------------------------------------------------------------------------------

@dataclass
class SudokuTransforms:
    """A batch of symmetry transforms: digit relabelling, optional transpose, then a cell permutation."""

    digit_maps: np.ndarray  # (count, 10) uint8, column 0 is 0 so blanks stay blank
    transpose: np.ndarray  # (count,) bool
    mappings: np.ndarray  # (count, 81) int64: new cell i takes old cell mappings[i]

    def __len__(self) -> int:
        return len(self.transpose)


def _random_perms(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """Independent uniform permutations of range(n) along the last axis."""
    return np.argsort(rng.random((*shape, n)), axis=-1)


def _line_perms(rng: np.random.Generator, count: int) -> np.ndarray:
    """Rows (or columns) permuted as the group allows: whole bands, then rows within each band."""
    bands = _random_perms(rng, (count,), 3)  # (count, 3)
    inner = _random_perms(rng, (count, 3), 3)  # (count, 3, 3)
    return (bands[:, :, None] * 3 + inner).reshape(count, 9)


def random_transforms(rng: np.random.Generator, count: int) -> SudokuTransforms:
    """Draw `count` transforms uniformly from the Sudoku symmetry group (same law as the reference)."""
    digits = _random_perms(rng, (count,), 9) + 1
    digit_maps = np.concatenate([np.zeros((count, 1), dtype=np.int64), digits], axis=1).astype(np.uint8)
    transpose = rng.random(count) < 0.5
    row_perm, col_perm = _line_perms(rng, count), _line_perms(rng, count)
    mappings = (row_perm[:, :, None] * 9 + col_perm[:, None, :]).reshape(count, 81)
    return SudokuTransforms(digit_maps=digit_maps, transpose=transpose, mappings=mappings)


def apply_transforms(grids: np.ndarray, transforms: SudokuTransforms) -> np.ndarray:
    """Apply transform n to grid n: transpose if flagged, permute cells, relabel digits."""
    g = _as_batch(grids)
    if len(g) != len(transforms):
        raise ValueError(f"{len(g)} grids but {len(transforms)} transforms; they must match one to one")
    flipped = g.reshape(-1, 9, 9).transpose(0, 2, 1).reshape(-1, 81)
    g = np.where(transforms.transpose[:, None], flipped, g)
    g = np.take_along_axis(g, transforms.mappings, axis=1)
    return np.take_along_axis(transforms.digit_maps, g.astype(np.int64), axis=1).astype(np.uint8)


def augment(question: np.ndarray, answer: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random transform applied to a puzzle and its answer alike, so the pair stays consistent."""
    t = random_transforms(rng, 1)
    both = np.stack([_as_grid(question), _as_grid(answer)])
    t2 = SudokuTransforms(np.repeat(t.digit_maps, 2, 0), np.repeat(t.transpose, 2), np.repeat(t.mappings, 2, 0))
    out = apply_transforms(both, t2)
    return out[0], out[1]



def identity_transforms(count: int) -> SudokuTransforms:
    """`count` transforms that change nothing (the first copy of a perturbed puzzle is the puzzle itself)."""
    return SudokuTransforms(np.tile(np.arange(10, dtype=np.uint8), (count, 1)), np.zeros(count, dtype=bool),
                            np.tile(np.arange(81), (count, 1)))


def undo_transforms(values: np.ndarray, transforms: SudokuTransforms, digits: bool = True) -> np.ndarray:
    """Map (N, 81) arrays back through transform n (the inverse of `apply_transforms`): digits relabelled back
    (only when `digits`; per-cell values such as confidences keep theirs), cells un-permuted, un-transposed."""
    v = np.asarray(values)
    if v.ndim != 2 or v.shape != (len(transforms), 81):
        raise ValueError(f"values must have shape ({len(transforms)}, 81), one row per transform, got {v.shape}")
    if digits:
        inverse = np.argsort(transforms.digit_maps, axis=1).astype(np.uint8)  # inverse[map[d]] = d
        v = np.take_along_axis(inverse, v.astype(np.int64), axis=1)
    out = np.empty_like(v)
    np.put_along_axis(out, transforms.mappings, v, axis=1)  # apply: new[i] = old[mappings[i]]
    flipped = out.reshape(-1, 9, 9).transpose(0, 2, 1).reshape(-1, 81)
    return np.where(transforms.transpose[:, None], flipped, out)


def perturb(questions: np.ndarray, copies: int, seed: int = 0):
    """`copies` copies of each puzzle under random symmetries (puzzle-major; copy 0 is the puzzle itself), and
    `undo(values, rows=None, digits=True)`, mapping per-cell arrays of the copies (or of copies `rows`) back.
    Copy k of a puzzle depends only on (seed, the puzzle, k): not on the batch, and P copies are the first P of
    any larger number, so accuracy against copies is one nested curve."""
    q = _as_batch(questions, "questions")
    parts = [identity_transforms(1) if k == 0 else
             random_transforms(np.random.default_rng([seed, zlib.crc32(g.tobytes()), k]), 1)
             for g in q for k in range(copies)]
    t = SudokuTransforms(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                           ("digit_maps", "transpose", "mappings")))

    def undo(values: np.ndarray, rows=None, digits: bool = True) -> np.ndarray:
        sub = t if rows is None else SudokuTransforms(t.digit_maps[rows], t.transpose[rows], t.mappings[rows])
        return undo_transforms(values, sub, digits)

    return apply_transforms(np.repeat(q, copies, axis=0), t), undo


# ----------------------------------------------------------------------------------------------------------
# Canonical form (minlex) and equivalence
# ----------------------------------------------------------------------------------------------------------

_P3 = np.array(list(itertools.permutations(range(3))))  # (6, 3)


def _all_line_perms() -> np.ndarray:
    """All 1296 permutations of 9 lines that keep the 3-line blocks together: block order x inner orders."""
    out = [[outer[j] * 3 + inner[j][k] for j in range(3) for k in range(3)]
           for outer in _P3 for inner in itertools.product(_P3, repeat=3)]
    return np.array(out, dtype=np.int64)


_COL_PERMS = _all_line_perms()  # (1296, 9)
_POW10 = 10 ** np.arange(8, -1, -1, dtype=np.int64)
_OTHER_BANDS = np.array([[1, 2], [0, 2], [0, 1]])
_OTHER_ROWS_IN_BAND = np.array([[b * 3 + x for x in range(3) if x != r % 3] for b in range(3) for r in range(3)])


def _row_options(chosen: np.ndarray, k: int) -> np.ndarray:
    """(C, m) source rows allowed at output row k, given rows chosen so far: bands stay whole."""
    c = len(chosen)
    if k == 0:
        return np.tile(np.arange(9), (c, 1))
    if k % 3 == 1:
        return _OTHER_ROWS_IN_BAND[chosen[:, k - 1]]
    if k % 3 == 2:
        r1, r2 = chosen[:, k - 2], chosen[:, k - 1]
        return ((r1 // 3) * 3 + 3 - r1 % 3 - r2 % 3)[:, None]
    if k == 3:
        bands = _OTHER_BANDS[chosen[:, 0] // 3]  # (C, 2)
    else:  # k == 6: the one band not used yet
        bands = (3 - chosen[:, 0] // 3 - chosen[:, 3] // 3)[:, None]
    return (bands[:, :, None] * 3 + np.arange(3)).reshape(c, -1)


def _relabel_rows(raw: np.ndarray, maps: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Relabel digits by first appearance, continuing each candidate's labelling; updates maps/nxt in place."""
    idx = np.arange(len(raw))
    out = np.empty_like(raw)
    for j in range(9):
        d = raw[:, j]
        lab = maps[idx, d]
        new = (lab == 0) & (d != 0)
        if new.any():
            maps[idx[new], d[new]] = nxt[new]
            lab[new] = nxt[new]
            nxt += new
        out[:, j] = lab
    return out


def canonical_form(grid: np.ndarray | str) -> bytes:
    """Minlex form: two grids are equivalent under the Sudoku group exactly when these bytes are equal.

    It is the smallest 81-character string (ASCII '0'..'9', '0' = blank) over the 2 x 6^8 geometric transforms,
    digits being relabelled in order of first appearance. Rather than trying all 3.36M transforms, the search
    fixes transpose and the column permutation (2 x 1296), then builds the output row by row and after each row
    keeps only the candidates whose prefix is minimal; only ties survive, so the work stays small.
    """
    g = _as_grid(grid).reshape(9, 9).astype(np.int64)
    oriented = np.stack([g, g.T])
    n = len(_COL_PERMS)
    orient = np.repeat(np.arange(2), n)
    perm_id = np.tile(np.arange(n), 2)
    chosen = np.zeros((2 * n, 0), dtype=np.int64)
    maps = np.zeros((2 * n, 10), dtype=np.int64)
    nxt = np.ones(2 * n, dtype=np.int64)
    rows_out = []
    for k in range(9):
        opts = _row_options(chosen, k)
        parent = np.repeat(np.arange(len(chosen)), opts.shape[1])
        src = opts.ravel()
        raw = np.take_along_axis(oriented[orient[parent], src], _COL_PERMS[perm_id[parent]], axis=1)
        maps, nxt = maps[parent], nxt[parent]
        labels = _relabel_rows(raw, maps, nxt)
        key = labels @ _POW10
        keep = np.nonzero(key == key.min())[0]
        rows_out.append(labels[keep[0]])
        orient, perm_id = orient[parent[keep]], perm_id[parent[keep]]
        chosen = np.concatenate([chosen[parent[keep]], src[keep, None]], axis=1)
        maps, nxt = maps[keep], nxt[keep]
    return (np.concatenate(rows_out) + ord("0")).astype(np.uint8).tobytes()


def _perm_min_weights(base: int) -> np.ndarray:
    """(9, 36) weights: a flattened 3x3 matrix times these gives its code under each row x column permutation."""
    w = np.zeros((9, 36))
    for t, (p, q) in enumerate(itertools.product(_P3, _P3)):
        for pos in range(9):
            w[p[pos // 3] * 3 + q[pos % 3], t] = float(base) ** (8 - pos)
    return w


_W4, _W2, _W10 = _perm_min_weights(4), _perm_min_weights(2), _perm_min_weights(10)


def _perm_min_code(mats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Smallest code of each 3x3 matrix over its 36 row/column permutations: a cheap invariant of the block."""
    flat = mats.reshape(*mats.shape[:-2], 9).astype(np.float64)
    return (flat @ weights).min(axis=-1).astype(np.int64)


def _oriented_features(g: np.ndarray) -> np.ndarray:
    """(N, 16) features unchanged by band/stack/row/column permutations and relabelling (not by transpose)."""
    n = len(g)
    nz = (g > 0).astype(np.int64)
    row_stack = nz.reshape(n, 3, 3, 3, 3).sum(axis=4)  # (n, band, row-in-band, stack)
    band_codes = np.sort(_perm_min_code(row_stack, _W4), axis=1)
    col_band = nz.reshape(n, 3, 3, 3, 3).sum(axis=2)  # (n, band, stack, col-in-stack)
    stack_codes = np.sort(_perm_min_code(col_band.transpose(0, 2, 3, 1), _W4), axis=1)
    boxes = nz.reshape(n, 3, 3, 3, 3).sum(axis=(2, 4))  # (n, band, stack)
    box_code = _perm_min_code(boxes, _W10)[:, None]
    onehot = (g.reshape(n, 81, 1) == np.arange(1, 10)).astype(np.int64)  # (n, 81, digit)
    digit_boxes = onehot.reshape(n, 3, 3, 3, 3, 9).sum(axis=(2, 4)).transpose(0, 3, 1, 2)  # (n, digit, band, stack)
    digit_codes = np.sort(_perm_min_code(digit_boxes, _W2), axis=1)
    return np.concatenate([band_codes, stack_codes, box_code, digit_codes], axis=1)


def _lexmin_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise lexicographic minimum of two (N, K) integer arrays."""
    diff = a != b
    first = np.argmax(diff, axis=1)
    rows = np.arange(len(a))
    take_b = diff.any(axis=1) & (b[rows, first] < a[rows, first])
    return np.where(take_b[:, None], b, a)


def symmetry_invariant(grids: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """(N, 17) int64 rows that are equal for equivalent grids (unequal rows prove non-equivalence).

    Clue count, clue-count patterns of bands and stacks up to permutation, and each digit's box pattern, taken
    for the grid and its transpose and symmetrised by keeping the lexicographically smaller. Fast prefilter for
    `find_equivalent`, where the exact but slower `canonical_form` settles the rest.
    """
    g = _as_batch(grids)
    out = np.empty((len(g), 17), dtype=np.int64)
    for s in range(0, len(g), chunk):
        part = g[s:s + chunk].astype(np.int64)
        part_t = part.reshape(-1, 9, 9).transpose(0, 2, 1).reshape(-1, 81)
        feats = _lexmin_rows(_oriented_features(part), _oriented_features(part_t))
        out[s:s + chunk, 0] = (part > 0).sum(axis=1)
        out[s:s + chunk, 1:] = feats
    return out


def find_equivalent(candidates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Sorted indices of candidates equivalent (under the Sudoku group) to at least one reference.

    Invariants prune almost all pairs in a vectorised pass; `canonical_form` is computed only for candidates
    and references whose invariants coincide, which keeps this fast on ~100k candidates.
    """
    cand, refs = _as_batch(candidates, "candidates"), _as_batch(references, "references")
    cand_keys = [row.tobytes() for row in symmetry_invariant(cand)]
    ref_keys = [row.tobytes() for row in symmetry_invariant(refs)]
    shared = set(cand_keys) & set(ref_keys)
    ref_forms = {canonical_form(refs[i]) for i, k in enumerate(ref_keys) if k in shared}
    hits = [i for i, k in enumerate(cand_keys) if k in shared and canonical_form(cand[i]) in ref_forms]
    return np.asarray(hits, dtype=np.int64)


# ----------------------------------------------------------------------------------------------------------
# Exact solver
# ----------------------------------------------------------------------------------------------------------

_ALL = 0x1FF  # candidate bit d-1 set = digit d still possible
_PEERS = tuple(tuple(sorted({int(c) for u in _CELL_UNITS[i] for c in UNITS[u]} - {i})) for i in range(81))
_UNIT_LISTS = tuple(tuple(int(c) for c in u) for u in UNITS)
_POPCOUNT = tuple(bin(m).count("1") for m in range(512))
_BITS_OF = tuple(tuple(1 << d for d in range(9) if m >> d & 1) for m in range(512))
_DIGIT_OF_BIT = {1 << d: d + 1 for d in range(9)}


@dataclass
class SolveResult:
    """Solutions found (at most the requested limit) and how many trial assignments the search made."""

    solutions: list[np.ndarray]
    guesses: int

    @property
    def unique(self) -> bool:
        return len(self.solutions) == 1


def _propagate(cand: list[int], queue: list[int]) -> bool:
    """Naked singles (eliminate a placed digit from peers) and hidden singles, to a fixpoint; False on contradiction."""
    peers, units = _PEERS, _UNIT_LISTS
    while True:
        while queue:
            i = queue.pop()
            v = cand[i]
            for p in peers[i]:
                c = cand[p]
                if c & v:
                    c ^= v
                    if not c:
                        return False
                    cand[p] = c
                    if not c & (c - 1):
                        queue.append(p)
        for unit in units:
            once = twice = 0
            for i in unit:
                c = cand[i]
                twice |= once & c
                once |= c
            if once != _ALL:
                return False
            only = once & ~twice
            if only:
                for i in unit:
                    c = cand[i]
                    h = c & only
                    if h and h != c:
                        if h & (h - 1):
                            return False
                        cand[i] = h
                        queue.append(i)
        if not queue:
            return True


def _initial_candidates(g: np.ndarray) -> list[int] | None:
    """Candidate masks after propagating the clues, or None when the clues already contradict each other."""
    cand = [_ALL] * 81
    queue = []
    for i, v in enumerate(g.tolist()):
        if v:
            cand[i] = 1 << (v - 1)
            queue.append(i)
    return cand if _propagate(cand, queue) else None


def _search(cand: list[int], limit: int, found: list[list[int]], rng: np.random.Generator | None) -> int:
    """Depth-first search branching on a cell with fewest candidates; returns the number of guesses made."""
    best, best_n = -1, 10
    for i in range(81):
        c = cand[i]
        if c & (c - 1):
            n = _POPCOUNT[c]
            if n < best_n:
                best, best_n = i, n
                if n == 2:
                    break
    if best < 0:
        found.append(cand)
        return 0
    bits = _BITS_OF[cand[best]]
    if rng is not None:
        bits = tuple(bits[j] for j in rng.permutation(len(bits)))
    guesses = 0
    for bit in bits:
        guesses += 1
        trial = cand[:]
        trial[best] = bit
        if _propagate(trial, [best]):
            guesses += _search(trial, limit, found, rng)
        if len(found) >= limit:
            break
    return guesses


def _to_grid(cand: list[int]) -> np.ndarray:
    return np.array([_DIGIT_OF_BIT[c] for c in cand], dtype=np.uint8)


def solve(grid: np.ndarray | str, limit: int = 2, *, rng: np.random.Generator | None = None) -> SolveResult:
    """Exact solver: propagation of naked and hidden singles plus backtracking, stopping after `limit` solutions.

    `limit=2` is the uniqueness check (one solution found = unique). `guesses` counts trial assignments while
    branching (0 = solved by propagation alone). `rng` randomises the digit order, for drawing random grids.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    cand = _initial_candidates(_as_grid(grid))
    if cand is None:
        return SolveResult([], 0)
    found: list[list[int]] = []
    guesses = _search(cand, limit, found, rng)
    return SolveResult([_to_grid(c) for c in found], guesses)


# ----------------------------------------------------------------------------------------------------------
# Vectorised singles deduction and the generator
# ----------------------------------------------------------------------------------------------------------

_DIGIT_BIT = np.array([0] + [1 << d for d in range(9)], dtype=np.int16)  # value -> candidate bit
_SINGLE_DIGIT = np.zeros(512, dtype=np.uint8)  # candidate mask with one bit -> its digit, else 0
_SINGLE_DIGIT[[1 << d for d in range(9)]] = np.arange(1, 10)
_MASK_POPCOUNT = np.array(_POPCOUNT, dtype=np.int8)


def _singles_round(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One round of simultaneous naked- and hidden-single deductions on (N, 81) grids, with 9-bit masks.

    Returns the new grids and an (N,) bool 'stuck' flag: a contradiction, or no progress on an incomplete grid.
    Masks keep the working set at (N, 81) int16 instead of (N, 81, 9) booleans, which is several times faster.
    """
    placed = _DIGIT_BIT[g]
    unit_placed = np.bitwise_or.reduce(placed[:, UNITS], axis=2)  # (n, 27)
    blank = g == 0
    cand = np.where(blank, ~np.bitwise_or.reduce(unit_placed[:, _CELL_UNITS], axis=2) & _ALL, 0).astype(np.int16)
    unit_cand = cand[:, UNITS]  # (n, 27, 9)
    once = np.zeros(unit_placed.shape, dtype=np.int16)
    twice = np.zeros_like(once)
    for k in range(9):
        twice |= once & unit_cand[:, :, k]
        once |= unit_cand[:, :, k]
    only = once & ~twice  # digits with exactly one possible cell in the unit
    hidden = np.bitwise_or.reduce(cand[:, :, None] & only[:, _CELL_UNITS], axis=2)  # (n, 81)
    naked = np.where(_MASK_POPCOUNT[cand] == 1, cand, 0)
    assign = hidden | naked
    broken = ((once | unit_placed) != _ALL).any(axis=1) | (_MASK_POPCOUNT[assign] > 1).any(axis=1) \
        | (blank & (cand == 0)).any(axis=1)
    new = np.where(assign != 0, _SINGLE_DIGIT[assign], g).astype(g.dtype)
    stuck = broken | ((new == g).all(axis=1) & blank.any(axis=1))
    return new, stuck


def _singles_solve(questions: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Rounds needed by singles alone (-1 if they do not finish) and the grids they reach, chunked for memory."""
    rounds = np.zeros(len(questions), dtype=np.int64)
    grids = questions.copy()
    for s in range(0, len(questions), chunk):
        rounds[s:s + chunk], grids[s:s + chunk] = _singles_solve_chunk(questions[s:s + chunk])
    return rounds, grids


def _singles_solve_chunk(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grids = q.copy()
    rounds = np.zeros(len(q), dtype=np.int64)
    conflict = _has_conflict_batch(grids)
    rounds[conflict] = -1
    active = np.nonzero((grids == 0).any(axis=1) & ~conflict)[0]
    step = 0
    while len(active):
        step += 1
        new, stuck = _singles_round(grids[active])
        grids[active] = new
        rounds[active[stuck]] = -1
        done = ~stuck & ~(new == 0).any(axis=1)
        rounds[active[done]] = step
        active = active[~stuck & ~done]
    return rounds, grids


def deduction_rounds(questions: np.ndarray) -> np.ndarray:
    """(N,) rounds of simultaneous naked+hidden singles needed to complete each puzzle; -1 if singles get stuck.

    A puzzle that singles complete has exactly one solution, since every step is forced; the round count is a
    cheap difficulty measure (0 for an already complete grid).
    """
    return _singles_solve(_as_batch(questions, "questions"))[0]


def _random_full_grids(rng: np.random.Generator, count: int) -> np.ndarray:
    """Complete grids from randomised backtracking on an empty board (each one a different random draw)."""
    empty = np.zeros(81, dtype=np.uint8)
    return np.stack([solve(empty, limit=1, rng=rng).solutions[0] for _ in range(count)])


def _draw_grids(rng: np.random.Generator, pool: np.ndarray, count: int) -> np.ndarray:
    """Many distinct complete grids cheaply: random pool members under random symmetry transforms."""
    picks = pool[rng.integers(0, len(pool), size=count)]
    return apply_transforms(picks, random_transforms(rng, count))


def _blank_out(rng: np.random.Generator, grids: np.ndarray, blanks: int) -> np.ndarray:
    """Blank `blanks` uniformly chosen cells of each grid."""
    cells = np.argsort(rng.random(grids.shape), axis=1)[:, :blanks]
    q = grids.copy()
    np.put_along_axis(q, cells, 0, axis=1)
    return q


def _check_generate_args(count: int, blanks: int, method: str, min_rounds: int) -> None:
    if count < 0:
        raise ConfigError(f"generate: count must be >= 0, got {count}")
    if not 0 <= blanks <= 64:
        raise ConfigError(f"generate: blanks must be 0..64 (a unique puzzle needs at least 17 clues), got {blanks}")
    if method not in ("singles", "search"):
        raise ConfigError(f"generate: method must be 'singles' or 'search', got {method!r}")
    if min_rounds < 0:
        raise ConfigError(f"generate: min_rounds must be >= 0, got {min_rounds}")


def generate(count: int, *, seed: int, blanks: int, method: str = "singles", min_rounds: int = 1) -> SudokuRecords:
    """Puzzles with exactly one solution and exactly `blanks` blank cells, deterministic for a given seed.

    method="singles": blank random cells and keep a puzzle only if simultaneous naked+hidden singles finish it
    (which proves uniqueness) in at least `min_rounds` rounds; rating = rounds. Vectorised, so fast.
    method="search": blank cells one at a time in random order, keeping each blank only while `solve` still finds
    a unique solution; rating = guesses of the solver. Slow, but reaches puzzles that need search.
    `min_rounds` applies to "singles" only. No question repeats within one call.
    """
    _check_generate_args(count, blanks, method, min_rounds)
    rng = np.random.default_rng(seed)
    pool = _random_full_grids(rng, max(8, min(256, count // 64)))
    if method == "singles":
        q, a, ratings = _generate_singles(rng, pool, count, blanks, min_rounds)
    else:
        q, a, ratings = _generate_search(rng, pool, count, blanks)
    return SudokuRecords(questions=q, answers=a, ratings=ratings.astype(np.float64),
                         sources=[f"generated:{method}:seed={seed}"] * count,
                         line_numbers=np.full(count, -1, dtype=np.int64), rejected=[])


def _take_new(seen: set[bytes], questions: np.ndarray, want: int) -> list[int]:
    """Indices of questions not seen before (also within the batch), at most `want`."""
    picked = []
    for i, row in enumerate(questions):
        key = row.tobytes()
        if key not in seen:
            seen.add(key)
            picked.append(i)
            if len(picked) == want:
                break
    return picked


_GIVE_UP_AFTER = 100_000  # tries before judging whether the singles settings can deliver
_MAX_TRIES = 50_000_000  # projected tries beyond which we stop (about 20 minutes)


def _generate_singles(rng: np.random.Generator, pool: np.ndarray, count: int, blanks: int,
                      min_rounds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rejection sampling in batches; gives up with a clear message when the settings almost never succeed."""
    qs, ans, rts = [np.zeros((0, 81), np.uint8)], [np.zeros((0, 81), np.uint8)], [np.zeros(0, np.int64)]
    seen: set[bytes] = set()
    have, tried, batch = 0, 0, max(256, min(count, 8192))
    while have < count:
        grids = _draw_grids(rng, pool, batch)
        q = _blank_out(rng, grids, blanks)
        rounds, solved = _singles_solve(q)
        ok = np.nonzero((rounds >= max(min_rounds, 0)) & (rounds >= 0) & (solved == grids).all(axis=1))[0]
        picked = ok[_take_new(seen, q[ok], count - have)]
        qs.append(q[picked]); ans.append(grids[picked]); rts.append(rounds[picked])
        have += len(picked)
        tried += batch
        if have < count and tried >= _GIVE_UP_AFTER and (have == 0 or tried * count / have > _MAX_TRIES):
            raise ConfigError(f"generate: only {have} of {count} puzzles found in {tried} tries with blanks={blanks}, "
                              f"min_rounds={min_rounds}; lower blanks or min_rounds, or use method='search'")
    return np.concatenate(qs), np.concatenate(ans), np.concatenate(rts)


def _dig_holes(rng: np.random.Generator, grid: np.ndarray, blanks: int) -> np.ndarray | None:
    """Blank cells in random order while the solution stays unique; None if `blanks` cannot be reached."""
    q = grid.copy()
    removed = 0
    for cell in rng.permutation(81):
        if removed == blanks:
            break
        keep = q[cell]
        q[cell] = 0
        if solve(q, limit=2).unique:
            removed += 1
        else:
            q[cell] = keep
    return q if removed == blanks else None


def _generate_search(rng: np.random.Generator, pool: np.ndarray, count: int,
                     blanks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    qs, ans, rts = [], [], []
    seen: set[bytes] = set()
    failures = 0
    while len(qs) < count:
        grid = _draw_grids(rng, pool, 1)[0]
        q = _dig_holes(rng, grid, blanks)
        if q is None or q.tobytes() in seen:
            failures += 1
            if failures > 100 + 10 * count:
                raise ConfigError(f"generate: could not reach blanks={blanks} with a unique solution "
                                  f"({failures} grids tried); lower blanks")
            continue
        seen.add(q.tobytes())
        qs.append(q); ans.append(grid); rts.append(solve(q, limit=2).guesses)
    empty = np.zeros((0, 81), np.uint8)
    return (np.stack(qs) if qs else empty, np.stack(ans) if ans else empty, np.asarray(rts, dtype=np.int64))
