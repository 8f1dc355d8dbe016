"""Maze: reading, validating, labelling, checking, augmenting and generating 30x30 shortest-path puzzles.

A maze is a numpy ``uint8`` array of ``SEQ_LEN = 900`` token ids in row-major order (or its ``(30, 30)`` view):
0 is padding, then one token per character of ``CHARS``: ``#`` wall 1, space (open) 2, ``S`` start 3, ``G`` goal 4,
``o`` path 5. A question has no ``o``; its answer is the question with the cells of one shortest S-G path (S and G
excluded, they keep their letters) marked ``o``. Batches are ``(N, 900)``. Rows and columns are numbered from 1 in
every message written for a person.

Two kinds of search are used, each where it is cheap:

* Reachability and distances for many mazes at once use rows packed into 30-bit integers: one frontier step is
  a handful of shifts and ORs on an ``(N, 30)`` array, so a whole batch advances one BFS layer in microseconds.
* The official label is one particular shortest path, fixed by the order in which a FIFO breadth-first search
  visits neighbours (down, left, right, up). That order is inherently sequential, so `bfs_label` runs a tight
  pure-Python BFS per maze (well under a millisecond each).

Only numpy and the standard library are used here, so data preparation does not need torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recursia.errors import ConfigError, DataError, PuzzleError
from recursia.progress import bar as progress_bar
from recursia.tasks.grids import NUM_DIHEDRAL, dihedral, inverse_dihedral
from recursia.tasks.records import CSV_COLUMNS, Records, csv_rows, merge, parse_ratings, read_text, report, select

__all__ = [
    "SIZE", "SEQ_LEN", "VOCAB_SIZE", "CHARS", "CSV_COLUMNS",
    "PAD", "WALL", "OPEN", "START", "GOAL", "PATH",
    "parse_maze", "format_maze",
    "maze_problems", "check_path", "valid_shortest_path_batch",
    "bfs_path", "bfs_label", "bfs_label_batch", "shortest_path_length", "shortest_path_length_batch",
    "MazeRecords", "read_csv", "read_mazes",
    "encode", "decode", "augment_dihedral", "perturb", "generate",
]

SIZE = 30
SEQ_LEN = SIZE * SIZE
CHARS = "# SGo"  # token id = index + 1; 0 is padding
VOCAB_SIZE = len(CHARS) + 1
PAD, WALL, OPEN, START, GOAL, PATH = range(VOCAB_SIZE)

_CHAR_NAMES = "'#' wall, ' ' open, 'S' start, 'G' goal, 'o' path"
_DISPLAY = np.frombuffer(("." + CHARS).encode("ascii"), dtype=np.uint8)  # token -> byte; PAD shows as '.'
_CHAR_TOKEN = np.zeros(256, dtype=np.uint8)  # byte -> token; 0 marks a character outside the alphabet
_CHAR_TOKEN[np.frombuffer(CHARS.encode("ascii"), dtype=np.uint8)] = np.arange(1, VOCAB_SIZE, dtype=np.uint8)
_QUESTION_RE = re.compile(r"[# SG]{900}")
_ANSWER_RE = re.compile(r"[# SGo]{900}")


def _where(cell: int) -> str:
    return f"row {cell // SIZE + 1}, column {cell % SIZE + 1}"


def _first_at(mask: np.ndarray) -> str:
    return _where(int(np.argmax(mask)))


def _char(token: int) -> str:
    return chr(_DISPLAY[token])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# ----------------------------------------------------------------------------------------------------------
# Parsing and formatting
# ----------------------------------------------------------------------------------------------------------

def _split_rows(text: str) -> list[str]:
    """Lines of a maze text without line endings. Spaces are cells, so only line breaks are removed, plus
    trailing whitespace-only lines that cannot be a row (a row of 30 spaces is an all-open row and is kept)."""
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while len(lines) > 1 and not lines[-1].strip() and (len(lines) > SIZE or len(lines[-1]) != SIZE):
        lines.pop()
    return lines


def _marker_problems(starts: int, goals: int) -> list[str]:
    """The S/G count messages, shared by the parser, `maze_problems` and the readers so they read alike."""
    found = []
    if starts != 1:
        found.append(f"maze has {starts} start cell{'' if starts == 1 else 's'} (S), expected exactly 1")
    if goals != 1:
        found.append(f"maze has {goals} goal cell{'' if goals == 1 else 's'} (G), expected exactly 1")
    return found


def parse_maze(text: str, *, allow_path: bool = False) -> np.ndarray:
    """Read one maze: a 900-character line, or 30 lines of 30 characters (``\\n`` or ``\\r\\n``).

    Raises `PuzzleError` for the wrong size, a character outside the alphabet (with its row and column), not
    exactly one S and one G, or ``o`` path marks in a question (pass ``allow_path=True`` to read an answer).
    """
    lines = _split_rows(text)
    if len(lines) == 1:
        cells = lines[0]
        if len(cells) != SEQ_LEN:
            raise PuzzleError(f"maze has {len(cells)} cells, expected {SEQ_LEN}")
    else:
        if len(lines) != SIZE:
            raise PuzzleError(f"maze has {_plural(len(lines), 'row')}, expected {SIZE}")
        for r, line in enumerate(lines):
            if len(line) != SIZE:
                raise PuzzleError(f"row {r + 1} has {_plural(len(line), 'character')}, expected {SIZE}")
        cells = "".join(lines)
    for pos, ch in enumerate(cells):
        if ch not in CHARS:
            raise PuzzleError(f"maze has an invalid character {ch!r} at {_where(pos)} (allowed: {_CHAR_NAMES})")
    grid = _CHAR_TOKEN[np.frombuffer(cells.encode("ascii"), dtype=np.uint8)].copy()
    if not allow_path and (grid == PATH).any():
        first = int(np.argmax(grid == PATH))
        raise PuzzleError(f"question has {_plural(int((grid == PATH).sum()), 'path cell')} ('o'), first at "
                          f"{_where(first)}; only an answer may mark the path")
    found = _marker_problems(int((grid == START).sum()), int((grid == GOAL).sum()))
    if found:
        raise PuzzleError("; ".join(found))
    return grid


def _as_maze(grid: np.ndarray | str, what: str = "maze", *, allow_path: bool = True) -> np.ndarray:
    """Accept a string or any 900-value token array and check its size and values, so that every public
    function fails the same way. Marker counts are left to the callers: some report them, some raise."""
    if isinstance(grid, str):
        return parse_maze(grid, allow_path=allow_path)
    arr = np.asarray(grid)
    if arr.size != SEQ_LEN:
        raise PuzzleError(f"{what} has {arr.size} cells, expected {SEQ_LEN}")
    if arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= VOCAB_SIZE:
        raise PuzzleError(f"{what} values must be token ids 0..{VOCAB_SIZE - 1}")
    return arr.reshape(SEQ_LEN).astype(np.uint8)


def _as_batch(grids: np.ndarray, name: str) -> np.ndarray:
    """Check an (N, 900) or (N, 30, 30) batch once at the API boundary instead of deep inside vectorised code."""
    arr = np.asarray(grids)
    if arr.ndim == 3 and arr.shape[1:] == (SIZE, SIZE):
        arr = arr.reshape(len(arr), SEQ_LEN)
    if arr.ndim != 2 or arr.shape[1] != SEQ_LEN:
        raise ValueError(f"{name} must have shape (N, {SEQ_LEN}) or (N, {SIZE}, {SIZE}), got {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold token ids 0..{VOCAB_SIZE - 1}, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= VOCAB_SIZE):
        raise ValueError(f"{name} must hold token ids 0..{VOCAB_SIZE - 1}")
    return arr.astype(np.uint8, copy=False)


def _path_mask(path: np.ndarray | list[int] | None) -> np.ndarray:
    """A path given as a boolean mask or as flat cell indices (as `bfs_path` returns) -> (900,) bool."""
    mask = np.zeros(SEQ_LEN, dtype=bool)
    if path is None:
        return mask
    arr = np.asarray(path)
    if arr.dtype == bool:
        if arr.size != SEQ_LEN:
            raise PuzzleError(f"path mask has {arr.size} cells, expected {SEQ_LEN}")
        return arr.reshape(SEQ_LEN).copy()
    if arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= SEQ_LEN):
        raise PuzzleError(f"path cells must be flat indices 0..{SEQ_LEN - 1}")
    mask[arr.astype(np.int64).reshape(-1)] = True
    return mask


def format_maze(grid: np.ndarray | str, path: np.ndarray | list[int] | None = None, *,
                one_line: bool = False) -> str:
    """30 lines of 30 characters (or the 900-character file form with ``one_line=True``).

    `path` (a boolean mask or flat cell indices) is drawn as ``o`` on every cell except S and G, which keep
    their letters as in the official answers; padding tokens show as ``.``. Trailing spaces are cells, so
    lines are never right-stripped.
    """
    g = _as_maze(grid, allow_path=True).copy()
    g[_path_mask(path) & (g != START) & (g != GOAL)] = PATH
    text = _DISPLAY[g].tobytes().decode("ascii")
    if one_line:
        return text
    return "\n".join(text[r * SIZE:(r + 1) * SIZE] for r in range(SIZE))


# ----------------------------------------------------------------------------------------------------------
# Bit-packed rows: many mazes advance one BFS layer per vectorised step
# ----------------------------------------------------------------------------------------------------------

_ONE = np.uint32(1)
_BITS = (_ONE << np.arange(SIZE, dtype=np.uint32)).astype(np.uint32)  # column c -> bit c
_ROW_MASK = np.uint64((1 << SIZE) - 1)
_ROW_START = SIZE * np.arange(SIZE)  # bit offset of each row in the flat bit string of a maze
_ROW_SHIFT = (_ROW_START % 8).astype(np.uint64)
_ROW_BYTES = (_ROW_START[:, None] // 8 + np.arange(8)).reshape(-1)  # the 8 bytes holding each row
_PACKED_BYTES = _ROW_BYTES.max() + 1


def _pack(mask: np.ndarray) -> np.ndarray:
    """(N, 900) bool -> (N, 30) uint32, one 30-bit integer per row; column c is bit c.

    `np.packbits` over the whole flat maze is fast (rows of 30 bits straddle bytes, which a per-row packbits
    handles slowly), then each row is read as a 64-bit little-endian word at its byte offset and shifted."""
    n = len(mask)
    flat = np.zeros((n, _PACKED_BYTES), dtype=np.uint8)
    flat[:, :(SEQ_LEN + 7) // 8] = np.packbits(mask.reshape(n, SEQ_LEN), axis=1, bitorder="little")
    words = np.ascontiguousarray(flat[:, _ROW_BYTES]).view("<u8")
    return ((words >> _ROW_SHIFT) & _ROW_MASK).astype(np.uint32)


def _unpack(bits: np.ndarray) -> np.ndarray:
    """(N, 30) uint32 -> (N, 900) bool."""
    return ((bits[:, :, None] & _BITS) != 0).reshape(len(bits), SEQ_LEN)


def _grow(reach: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """One BFS layer: add the 4-neighbours of `reach` that are `allowed` (bit 30 from the left shift is masked)."""
    out = reach << _ONE
    out |= reach
    out |= reach >> _ONE
    out[:, 1:] |= reach[:, :-1]
    out[:, :-1] |= reach[:, 1:]
    out &= allowed
    return out


def _flood(start: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """All cells connected to `start` through `allowed` (bit-packed). Rows that stop growing leave the working
    set, so a batch costs about as much as its longest search, not its count times that."""
    reach = start & allowed
    active = np.arange(len(reach))
    cur, ok = reach.copy(), allowed
    while len(active):
        new = _grow(cur, ok)
        moving = (new != cur).any(axis=1)
        reach[active] = new
        active, cur, ok = active[moving], new[moving], ok[moving]
    return reach


def _steps_to(start: np.ndarray, target: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(N,) BFS steps from `start` to the first `target` cell through `allowed`; -1 where it cannot be reached."""
    steps = np.full(len(start), -1, dtype=np.int64)
    active = np.arange(len(start))
    cur, ok, tgt = start & allowed, allowed, target
    k = 0
    while len(active):
        hit = (cur & tgt).any(axis=1)
        steps[active[hit]] = k
        new = _grow(cur, ok)
        keep = ~hit & (new != cur).any(axis=1)
        active, cur, ok, tgt = active[keep], new[keep], ok[keep], tgt[keep]
        k += 1
    return steps


def _one_start_and_goal(q: np.ndarray) -> np.ndarray:
    """(N,) bool: exactly one S and one G, the precondition of every search."""
    return ((q == START).sum(axis=1) == 1) & ((q == GOAL).sum(axis=1) == 1)


def _open_bits(q: np.ndarray) -> np.ndarray:
    return _pack((q == OPEN) | (q == START) | (q == GOAL))


def shortest_path_length_batch(questions: np.ndarray) -> np.ndarray:
    """(N,) cells on a shortest S-G path, S and G included; -1 when G cannot be reached or S/G are not unique."""
    q = _as_batch(questions, "questions")
    ok = _one_start_and_goal(q)
    out = np.full(len(q), -1, dtype=np.int64)
    if ok.any():
        qo = q[ok]
        steps = _steps_to(_pack(qo == START), _pack(qo == GOAL), _open_bits(qo))
        out[ok] = np.where(steps >= 0, steps + 1, -1)
    return out


def shortest_path_length(question: np.ndarray | str) -> int:
    """Cells on a shortest S-G path, S and G included; -1 when G cannot be reached from S."""
    q = _question(question)
    return int(shortest_path_length_batch(q[None])[0])


# ----------------------------------------------------------------------------------------------------------
# The official labelling rule
# ----------------------------------------------------------------------------------------------------------

_STEP = {"D": (1, 0), "L": (0, -1), "R": (0, 1), "U": (-1, 0)}


def _neighbour_table(order: str) -> tuple[tuple[int, ...], ...]:
    """Neighbour cells of every cell in the given direction order, precomputed so the BFS loop only indexes."""
    table = []
    for cell in range(SEQ_LEN):
        r, c = divmod(cell, SIZE)
        moves = (_STEP[d] for d in order)
        table.append(tuple((r + dr) * SIZE + c + dc for dr, dc in moves
                           if 0 <= r + dr < SIZE and 0 <= c + dc < SIZE))
    return tuple(table)


_OFFICIAL_ORDER = _neighbour_table("DLRU")  # down, left, right, up: reproduces every official label


def _bfs_cells(open_cells: list[bool], start: int, goal: int,
               table: tuple[tuple[int, ...], ...]) -> list[int] | None:
    """FIFO breadth-first search; a cell's parent is the cell that first discovered it. Returns the S..G path
    traced back through parents, or None when G is unreachable. Iterating over a list while appending to it is
    the queue: no deque, no per-step allocation."""
    parent = [-1] * SEQ_LEN
    parent[start] = start
    queue = [start]
    for u in queue:
        for v in table[u]:
            if parent[v] < 0 and open_cells[v]:
                parent[v] = u
                if v == goal:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return path[::-1]
                queue.append(v)
    return None


def _token_problems(q: np.ndarray) -> list[str]:
    """Problems a question shows without any search: S/G counts, and path marks or padding inside it."""
    found = _marker_problems(int((q == START).sum()), int((q == GOAL).sum()))
    for token, what, note in ((PATH, "path cell", " ('o')"), (PAD, "padding cell", " (token 0)")):
        n = int((q == token).sum())
        if n:
            found.append(f"question has {_plural(n, what)}{note}, first at {_first_at(q == token)}")
    return found


def as_question(grid: np.ndarray) -> np.ndarray:
    """A maze given as an array of 900 token ids -> the grid `parse_maze` returns; else PuzzleError."""
    return _as_maze(np.asarray(grid), "maze", allow_path=False)


def _question(question: np.ndarray | str) -> np.ndarray:
    """A question fit for searching, else `PuzzleError`: path marks would otherwise silently act as walls."""
    q = _as_maze(question, "question", allow_path=False)
    found = _token_problems(q)
    if found:
        raise PuzzleError("; ".join(found))
    return q


def _path_for(q: np.ndarray, table: tuple[tuple[int, ...], ...]) -> list[int]:
    s, g = int(np.argmax(q == START)), int(np.argmax(q == GOAL))
    cells = _bfs_cells(((q == OPEN) | (q == START) | (q == GOAL)).tolist(), s, g, table)
    if cells is None:
        raise PuzzleError("G cannot be reached from S")
    return cells


def bfs_path(question: np.ndarray | str) -> np.ndarray:
    """Flat cell indices of the official shortest path, S first and G last (see `bfs_label`)."""
    return np.asarray(_path_for(_question(question), _OFFICIAL_ORDER), dtype=np.int64)


def bfs_label(question: np.ndarray | str) -> np.ndarray:
    """The official answer: breadth-first search from S visiting neighbours down, left, right, up, parents traced
    back from G, the cells in between marked ``o``.

    Many mazes have several shortest paths; the data set labels exactly this one, so a model trained on it
    learns this tie-breaking too. `check_path` and `valid_shortest_path_batch` accept any shortest path.
    """
    q = _question(question)
    answer = q.copy()
    answer[_path_for(q, _OFFICIAL_ORDER)[1:-1]] = PATH
    return answer


def bfs_label_batch(questions: np.ndarray) -> np.ndarray:
    """`bfs_label` for an (N, 900) batch; raises `PuzzleError` naming the first unsolvable maze by index."""
    q = _as_batch(questions, "questions")
    out = np.empty_like(q)
    for i, row in enumerate(q):
        try:
            out[i] = bfs_label(row)
        except PuzzleError as exc:
            raise PuzzleError(f"maze {i}: {exc}") from exc
    return out


# ----------------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------------

def maze_problems(question: np.ndarray | str) -> list[str]:
    """What is wrong with a question (an empty list means it can be solved): S/G counts, path marks or
    padding in it, or G unreachable from S."""
    q = _as_maze(question, "question", allow_path=True)
    found = _token_problems(q)
    if not found and shortest_path_length_batch(q[None])[0] < 0:
        found.append("G cannot be reached from S")
    return found


@dataclass
class _PathFacts:
    """Per-maze facts about a marked path, computed for a whole batch at once and shared by the checks."""

    differs: np.ndarray  # (N, 900) answer differs from the question on a cell it did not mark 'o'
    on_wall: np.ndarray  # (N, 900) 'o' on a wall
    on_marker: np.ndarray  # (N, 900) 'o' over S or G
    off_path: np.ndarray  # (N, 900) 'o' on an open cell not connected to S through the marks
    connected: np.ndarray  # (N,) G reachable from S through the marks
    cells: np.ndarray  # (N,) number of path cells including S and G: marks on open cells + 2


def _path_facts(q: np.ndarray, a: np.ndarray) -> _PathFacts:
    """The path is the set P of open cells the answer marks 'o'; connectivity is S to G through P."""
    marked = a == PATH
    path = marked & (q == OPEN)
    reach = _flood(_pack(q == START), _pack(path | (q == START) | (q == GOAL)))
    connected = (reach & _pack(q == GOAL)).any(axis=1)
    return _PathFacts(differs=~marked & (a != q), on_wall=marked & (q == WALL),
                      on_marker=marked & ((q == START) | (q == GOAL)), off_path=path & ~_unpack(reach),
                      connected=connected, cells=path.sum(axis=1) + 2)


def _path_reasons(q: np.ndarray, a: np.ndarray, shortest: int | None) -> list[str]:
    """Reasons an answer is not a connected S-G path (and, given `shortest`, not a shortest one) for a solvable
    question. Every reason names a count and the first cell, so a bad model output is easy to look at."""
    f = _path_facts(q[None], a[None])
    reasons = []
    differs = f.differs[0]
    if differs.any():
        cell = int(np.argmax(differs))
        reasons.append(f"answer differs from the question at {_plural(int(differs.sum()), 'cell')} that "
                       f"{'is' if differs.sum() == 1 else 'are'} not marked 'o', first at {_where(cell)} "
                       f"(question {_char(q[cell])!r}, answer {_char(a[cell])!r})")
    if f.on_wall[0].any():
        reasons.append(f"path goes through {_plural(int(f.on_wall[0].sum()), 'wall')}, "
                       f"first at {_first_at(f.on_wall[0])}")
    for cell in np.nonzero(f.on_marker[0])[0]:
        reasons.append(f"answer marks {_char(q[cell])} at {_where(int(cell))} as a path cell; "
                       "S and G keep their letters")
    if not f.connected[0]:
        reasons.append("path does not connect S to G")
    elif f.off_path[0].any():
        n = int(f.off_path[0].sum())
        reasons.append(f"{_plural(n, 'path cell')} {'is' if n == 1 else 'are'} not connected to the path from "
                       f"S to G, first at {_first_at(f.off_path[0])}")
    if shortest is not None and f.cells[0] != shortest:
        reasons.append(f"path has {f.cells[0]} cells but the shortest has {shortest}")
    return reasons


def check_path(question: np.ndarray | str, answer: np.ndarray | str) -> list[str]:
    """Reasons why `answer` is not a valid shortest path for `question`; an empty list means it is one.

    Valid means: the answer equals the question except on cells marked ``o``; those lie on open cells (not on
    walls, S or G); they connect S to G through 4-neighbour steps; and S, G and the marks together have exactly
    the shortest-path length, which makes the marks exactly one shortest path. Any shortest path counts, not
    only the official one. A question that is itself broken gives reasons prefixed ``question:``.
    """
    q = _as_maze(question, "question", allow_path=False)
    problems = maze_problems(q)
    if problems:
        return [f"question: {p}" for p in problems]
    a = _as_maze(answer, "answer", allow_path=True)
    return _path_reasons(q, a, shortest_path_length(q))


def valid_shortest_path_batch(questions: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """(N,) bool: the cells P predicted ``o`` are exactly one shortest S-G path of the question.

    P must lie on open cells of the question, S and G must be connected through P, and |P| + 2 must equal the
    shortest-path length; together these force P to be a shortest path (any one, not only the official label).
    Predictions on other cells are ignored: this metric asks whether the model found a shortest path, while
    copying walls back is measured by exact-match accuracy. Questions without a solution count as invalid.
    """
    q, p = _as_batch(questions, "questions"), _as_batch(predictions, "predictions")
    if q.shape != p.shape:
        raise ValueError(f"questions {q.shape} and predictions {p.shape} differ in shape")
    marked = p == PATH
    lengths = shortest_path_length_batch(q)
    out = (lengths > 0) & ~(marked & (q != OPEN)).any(axis=1) & (marked.sum(axis=1) + 2 == lengths)
    idx = np.nonzero(out)[0]  # only these need the flood fill
    if len(idx):
        qi = q[idx]
        through = marked[idx] | (qi == START) | (qi == GOAL)
        reach = _flood(_pack(qi == START), _pack(through))
        out[idx] = (reach & _pack(qi == GOAL)).any(axis=1)
    return out


# ----------------------------------------------------------------------------------------------------------
# Reading files
# ----------------------------------------------------------------------------------------------------------

MazeRecords = Records  # the name this module exports, like sudoku.SudokuRecords


def _mazes_from_strings(texts: list[str], what: str, allow_path: bool) -> tuple[np.ndarray, list[str | None]]:
    """Parse many maze strings; well-formed ones take a vectorised path, the rest get `parse_maze`'s reason."""
    grids = np.zeros((len(texts), SEQ_LEN), dtype=np.uint8)
    reasons: list[str | None] = [None] * len(texts)
    prefix = f"{what}: " if what else ""
    pattern = _ANSWER_RE if allow_path else _QUESTION_RE
    fast = np.array([pattern.fullmatch(t) is not None for t in texts], dtype=bool)
    if fast.any():
        joined = "".join(t for t, f in zip(texts, fast) if f).encode("ascii")
        grids[fast] = _CHAR_TOKEN[np.frombuffer(joined, dtype=np.uint8)].reshape(-1, SEQ_LEN)
        starts, goals = (grids == START).sum(axis=1), (grids == GOAL).sum(axis=1)
        for i in np.nonzero(fast & ((starts != 1) | (goals != 1)))[0]:
            reasons[i] = prefix + "; ".join(_marker_problems(int(starts[i]), int(goals[i])))
    for i in np.nonzero(~fast)[0]:
        try:
            grids[i] = parse_maze(texts[i], allow_path=allow_path)
        except PuzzleError as exc:
            reasons[i] = f"{prefix}{exc}"
    return grids, reasons


def _answer_reasons(q: np.ndarray, a: np.ndarray, parsed: np.ndarray) -> list[str | None]:
    """For rows whose question and answer both parsed: reasons the answer is not a connected S-G path.

    The shortest length is deliberately not required, so that files labelled with other (longer) paths still
    read; `valid_shortest_path_batch` is there for whoever needs that. The batch test finds the bad rows;
    only those pay for a detailed message."""
    reasons: list[str | None] = [None] * len(q)
    idx = np.nonzero(parsed)[0]
    if not len(idx):
        return reasons
    f = _path_facts(q[idx], a[idx])
    bad = (f.differs | f.on_wall | f.on_marker | f.off_path).any(axis=1) | ~f.connected
    for i in idx[bad]:
        reasons[i] = "; ".join(_path_reasons(q[i], a[i], None))
    return reasons


def read_csv(path: str | Path, *, skip_invalid: bool = False) -> MazeRecords:
    """Read a `source,question,answer,rating` file (the maze-30x30-hard format) and validate every row.

    Fields are not stripped: spaces are open cells, and a maze may begin or end with one. Each row needs a
    well-formed question (exactly one S and one G, no 'o') and an answer that equals it except for 'o' marks
    on open cells that connect S to G with no stray marks. The answer need not be the official path, nor even
    a shortest one. Bad rows raise one `DataError` listing them, or with `skip_invalid=True` are left out and
    listed in `rejected`.
    """
    p, text = read_text(path, "maze")
    lines, cols, field_reasons = csv_rows(p, text, "mazes")
    q, q_reasons = _mazes_from_strings([c[1] for c in cols], "question", allow_path=False)
    a, a_reasons = _mazes_from_strings([c[2] for c in cols], "answer", allow_path=True)
    ratings, r_reasons = parse_ratings([c[3] for c in cols])
    parsed = np.array([qr is None and ar is None for qr, ar in zip(q_reasons, a_reasons)], dtype=bool)
    path_reasons = _answer_reasons(q, a, parsed)
    reasons = [fr or m for fr, m in zip(field_reasons, merge(q_reasons, a_reasons, r_reasons, path_reasons))]
    return select(p, q, a, ratings, [c[0] for c in cols], lines, reasons, skip_invalid, "maze")


def _maze_blocks(text: str) -> list[tuple[int, str]]:
    """Split a text file into (first line number, maze text) blocks.

    A line longer than 30 characters is a maze on its own (the 900-character form); otherwise a maze is a run
    of up to 30 lines. Blank lines separate runs, except that a line of exactly 30 spaces inside an unfinished
    run is an all-open row. '#' starts a wall row here, never a comment. (A maze whose *first* row is all open
    cannot be told from a separator in the 30-line form; write it as one 900-character line.)
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        blank = not line.strip()
        if current is not None and len(current) < SIZE and (not blank or len(line) == SIZE):
            current.append(line)
            continue
        current = None
        if blank:
            continue
        if len(line) > SIZE:
            blocks.append((number, [line]))
        else:
            current = [line]
            blocks.append((number, current))
    return [(number, "\n".join(rows)) for number, rows in blocks]


def read_mazes(path: str | Path) -> np.ndarray:
    """Questions (N, 900) from a plain text file: one or more mazes, each one 900-character line or 30 lines of
    30, separated by blank lines. This is for mazes a person hands to `solve`, so nothing is skipped: malformed
    or unsolvable mazes raise one `DataError` naming each by its first line."""
    p, text = read_text(path, "maze")
    blocks = _maze_blocks(text)
    if not blocks:
        raise DataError(f"{p}: no mazes (the file is empty or blank)")
    q, reasons = _mazes_from_strings([t for _, t in blocks], "", allow_path=False)
    parsed = np.nonzero([r is None for r in reasons])[0]
    for i in parsed[shortest_path_length_batch(q[parsed]) < 0]:
        reasons[i] = "G cannot be reached from S"
    report(p, [(line, r) for (line, _), r in zip(blocks, reasons) if r], False, "maze", skippable=False)
    return q


# ----------------------------------------------------------------------------------------------------------
# Token encoding and augmentation
# ----------------------------------------------------------------------------------------------------------

def encode(questions: np.ndarray, answers: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Mazes -> model tokens. Mazes are stored as tokens already, so this checks and copies; it exists so every
    task offers the same encode/decode pair to the data pipeline."""
    inputs = _as_batch(questions, "questions").copy()
    labels = None if answers is None else _as_batch(answers, "answers").copy()
    if labels is not None and labels.shape != inputs.shape:
        raise ValueError(f"questions {inputs.shape} and answers {labels.shape} differ in shape")
    return inputs, labels


def decode(tokens: np.ndarray) -> np.ndarray:
    """Model tokens -> mazes: the identity, with out-of-range values clipped to the vocabulary 0..5."""
    return np.clip(np.asarray(tokens).astype(np.int64), 0, VOCAB_SIZE - 1).astype(np.uint8)


def augment_dihedral(questions: np.ndarray, answers: np.ndarray | None,
                     transform_ids: np.ndarray | int) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply dihedral transform ``transform_ids[n]`` (ids as in `recursia.tasks.grids`) to maze n and its answer.

    Rotations and reflections preserve 4-neighbour steps and distances, so a transformed answer is still a valid
    shortest path of the transformed maze. It is not necessarily the path `bfs_label` would pick there: the
    down-left-right-up tie-break does not commute with the transform. Undo with `grids.inverse_dihedral`.
    """
    q = _as_batch(questions, "questions")
    a = None if answers is None else _as_batch(answers, "answers")
    if a is not None and a.shape != q.shape:
        raise ValueError(f"questions {q.shape} and answers {a.shape} differ in shape")
    ids = np.broadcast_to(np.asarray(transform_ids), (len(q),))
    if ids.dtype.kind not in "iu" or (len(ids) and (ids.min() < 0 or ids.max() >= NUM_DIHEDRAL)):
        raise ValueError(f"transform ids must be integers 0..{NUM_DIHEDRAL - 1}")
    out_q = np.empty_like(q)
    out_a = None if a is None else np.empty_like(a)
    for t in np.unique(ids):
        sel = ids == t
        out_q[sel] = dihedral(q[sel].reshape(-1, SIZE, SIZE), int(t)).reshape(-1, SEQ_LEN)
        if a is not None:
            out_a[sel] = dihedral(a[sel].reshape(-1, SIZE, SIZE), int(t)).reshape(-1, SEQ_LEN)
    return out_q, out_a



def perturb(questions: np.ndarray, copies: int, seed: int = 0):
    """`copies` (at most 8) copies of each maze under distinct dihedral transforms 0..copies-1 (puzzle-major;
    copy 0 is the maze itself), and `undo(values, rows=None)` mapping per-cell arrays of the copies back. A path
    that is shortest stays shortest under each transform, so a copy's answer, mapped back, is checked as is.
    The transforms are fixed, so `seed` changes nothing (it is there for the common signature)."""
    if not 1 <= copies <= NUM_DIHEDRAL:
        raise ConfigError(f"a maze has {NUM_DIHEDRAL} symmetries (rotations and reflections): --perturb must be "
                          f"1..{NUM_DIHEDRAL}, got {copies}")
    q = _as_batch(questions, "questions")
    ids = np.tile(np.arange(copies), len(q))

    def undo(values: np.ndarray, rows=None, digits: bool = True) -> np.ndarray:
        which = ids if rows is None else ids[rows]
        v = np.asarray(values)
        if v.shape != (len(which), SEQ_LEN):
            raise ValueError(f"values must have shape ({len(which)}, {SEQ_LEN}), one row per copy, got {v.shape}")
        out = np.empty_like(v)
        for t in range(copies):
            sel = which == t
            out[sel] = inverse_dihedral(v[sel].reshape(-1, SIZE, SIZE), t).reshape(-1, SEQ_LEN)
        return out

    return augment_dihedral(np.repeat(q, copies, axis=0), None, ids)[0], undo


# ----------------------------------------------------------------------------------------------------------
# Generator
# ----------------------------------------------------------------------------------------------------------

_GEN_BATCH = 2048  # fixed, so that a smaller count with the same seed yields a prefix of a larger one
_MATCHED_POOL = 5  # "matched": candidates drawn per maze kept
_GIVE_UP_AFTER = 1_000_000  # draws before judging whether the settings can deliver ("open" needs ~43,000 each)
_MAX_TRIES = 100_000_000  # projected draws beyond which we stop (about 15 minutes)


def _check_generate_args(count: int, min_path: int, wall_range: tuple[int, int], goal: str) -> tuple[int, int]:
    if goal not in ("far", "open", "matched"):
        raise ConfigError(f"generate: goal must be 'matched', 'far' or 'open', got {goal!r}")
    if count < 0:
        raise ConfigError(f"generate: count must be >= 0, got {count}")
    if not 2 <= min_path <= SEQ_LEN:
        raise ConfigError(f"generate: min_path must be 2..{SEQ_LEN} (cells including S and G), got {min_path}")
    lo, hi = (int(w) for w in wall_range)
    if not 0 <= lo <= hi <= SEQ_LEN - 2:
        raise ConfigError(f"generate: wall_range must be (low, high) with 0 <= low <= high <= {SEQ_LEN - 2}, "
                          f"got {tuple(wall_range)}")
    if min_path > SEQ_LEN - lo:
        raise ConfigError(f"generate: min_path={min_path} cannot be reached with at least {lo} walls "
                          f"(at most {SEQ_LEN - lo} open cells)")
    return lo, hi


def _draw_layouts(rng: np.random.Generator, batch: int,
                  walls: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Wall masks (B, 900) with a wall count uniform in `walls` and uniformly placed walls; two distinct cells per
    maze, `first` and `second`, each uniform among its open cells; and an (B,) bool mask of the usable draws.

    Every cell gets a random 16-bit key: the n smallest keys are the walls, the next one is `first` (S) and the
    one after is `second` (G under the "open" rule; a sentinel stands in when only one cell is open). Given the
    wall set the open cells' keys are exchangeable, which makes both picks uniform. Sorting 16-bit keys is many
    times faster than `argsort`. Draws where these order statistics tie (about 4%) are discarded; that keeps
    the law exact, because the event does not depend on which cells hold which keys.
    """
    n_walls = rng.integers(walls[0], walls[1] + 1, size=batch)
    keys = rng.integers(0, 1 << 16, size=(batch, SEQ_LEN), dtype=np.uint16)
    ordered = np.sort(keys, axis=1)
    ranks = n_walls[:, None] + np.arange(-1, 3)  # the n-th smallest key, first, second, and the one after
    stats = np.take_along_axis(ordered, np.clip(ranks, 0, SEQ_LEN - 1), axis=1).astype(np.int32)
    stats[ranks < 0] = -1  # no walls: nothing below the first open cell
    stats[ranks >= SEQ_LEN] = 1 << 16  # nothing above the last cell
    cut, first_key, second_key, after = stats.T
    usable = (cut < first_key) & (first_key < second_key) & (second_key < after)
    first_key = first_key.astype(np.uint16)
    wall = keys < first_key[:, None]  # the n smallest keys, since no key lies between the n-th and the next
    first = (keys == first_key[:, None]).argmax(axis=1)
    second = (keys == second_key.astype(np.uint16)[:, None]).argmax(axis=1)
    return wall, first, second, usable


def _cell_bits(cells: np.ndarray) -> np.ndarray:
    """(N,) flat cell indices -> (N, 30) packed masks holding just that cell."""
    bits = np.zeros((len(cells), SIZE), dtype=np.uint32)
    bits[np.arange(len(cells)), cells // SIZE] = _ONE << (cells % SIZE).astype(np.uint32)
    return bits


def _search_layers(start: np.ndarray, allowed: np.ndarray, layers: int,
                   target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Advance `layers` BFS layers from `start` for a batch of packed mazes, dropping the mazes whose search
    stopped growing or reached a `target` cell (pass zeros for none): neither can have a target or a far cell
    at least `layers + 1` steps away.

    Returns the surviving maze indices and their reach and allowed masks. Survivors are checked every 4 layers,
    which keeps the bookkeeping cheap: most random mazes are either too open (all cells within ~60 steps) or too
    closed (a small component), so they leave early and the long searches run on a handful of rows.
    """
    active = np.arange(len(start))
    near, ok, tgt = start & allowed, allowed, target
    done = 0
    while done < layers and len(active):
        before = near
        for _ in range(min(4, layers - done)):
            near = _grow(near, ok)
        done += 4
        keep = (near != before).any(axis=1) & ~(near & tgt).any(axis=1)
        active, near, ok, tgt = active[keep], near[keep], ok[keep], tgt[keep]
    return active, near, ok


def _draw_candidates(rng: np.random.Generator, batch: int, walls: tuple[int, int], min_path: int,
                     goal: str) -> tuple[np.ndarray, np.ndarray]:
    """Questions for the draws of one batch whose goal is at least `min_path` cells from S (the others are
    rejected), and each one's weight under the "open" rule relative to the "far" rule (|far cells| / |open
    cells other than S|; 1 for "open"). `goal` is the rule of `generate`. The number of random draws does not
    depend on the outcomes, so results follow the seed."""
    wall, start, second, usable = _draw_layouts(rng, batch, walls)
    goal_keys = rng.random(batch)
    allowed = _pack(~wall & usable[:, None])  # an unusable draw has nowhere to go, so it is rejected at once
    # Layers 0..min_path-2 hold the cells whose path from S has fewer than min_path cells.
    if goal == "open":  # G is drawn up front, and most searches end early on reaching it
        target = _cell_bits(second)
        idx, near, ok = _search_layers(_cell_bits(start), allowed, min_path - 2, target)
        idx = idx[(_flood(near, ok) & target[idx]).any(axis=1)]
        cell = second[idx]
        weight = np.ones(len(idx))
    else:
        idx, near, ok = _search_layers(_cell_bits(start), allowed, min_path - 2, np.zeros_like(allowed))
        far = _unpack(_flood(near, ok) & ~near)
        has = far.any(axis=1)
        idx, far = idx[has], far[has]
        pick = (goal_keys[idx] * far.sum(axis=1)).astype(np.int64)
        cell = (np.cumsum(far, axis=1) > pick[:, None]).argmax(axis=1)
        weight = far.sum(axis=1) / ((~wall[idx]).sum(axis=1) - 1)
    rows = np.arange(len(idx))
    q = np.where(wall[idx], WALL, OPEN).astype(np.uint8)
    q[rows, start[idx]] = START
    q[rows, cell] = GOAL
    return q, weight


def generate(count: int, *, seed: int, min_path: int = 110, wall_range: tuple[int, int] = (249, 405),
             goal: str = "matched", progress: bool = False) -> MazeRecords:
    """Random mazes like the official maze-30x30-hard set, deterministic for a given seed.

    Per maze: a wall count uniform in `wall_range` (inclusive), walls on uniformly chosen cells, S uniform among
    open cells, then G by the `goal` rule, at least `min_path` cells (S and G included) from S along a shortest
    path; a maze that fails is drawn again from scratch:

    * ``"far"``: G uniform among the cells far enough from S (a maze with none is redrawn). About 0.06% of
      draws succeed with the defaults; 1000 mazes take about 15 s on one core.
    * ``"open"``: G uniform among all open cells, the maze kept only if G is far enough. This weights mazes by
      how many far cells they have, so paths come out longer; it reproduces the official path-length
      distribution (mean 115 against 112.5 for "far") but only about 0.002% of draws succeed: about 7 minutes
      per 1000 mazes on one core.

    * ``"matched"`` (default): the "open" rule's distribution at a fraction of its cost. It draws
      `_MATCHED_POOL` x `count` mazes by the "far" rule, then keeps `count` of them, sampled without
      replacement with weight |far cells| / |open cells other than S|, the ratio of the two rules'
      probabilities (a maze drawn twice has its weights added). About 5 times the "far" rule's time: 1000
      mazes took 74 s on one core (docs/benchmarks.md). Path lengths: mean 114.4 and median 113 over 1000
      mazes, against 115.1 and 113 in the official training set.

    Rejection favours dense mazes (long detours), so accepted wall counts are not uniform over `wall_range`.
    Labels follow `bfs_label`; ratings are path lengths. No question repeats within one call. Under "far" and "open"
    a smaller `count` with the same seed gives a prefix of a larger one; "matched" resamples, so it does not. `stats` reports draws tried and accepted.
    """
    walls = _check_generate_args(count, min_path, wall_range, goal)
    rng = np.random.default_rng(seed)
    # "matched" keeps drawing until it holds _MATCHED_POOL x count draws (repeats included: a maze drawn twice
    # counts twice, as it would in the weighting) and at least `count` distinct mazes.
    pool = count * _MATCHED_POOL if goal == "matched" else count
    picked: list[np.ndarray] = []
    weights: list[float] = []
    index: dict[bytes, int] = {}
    tried = accepted = 0
    bar = progress_bar(total=pool, desc="generating mazes", unit="maze", disable=not progress, leave=False)
    while len(picked) < count or (goal == "matched" and accepted < pool):
        q, w = _draw_candidates(rng, _GEN_BATCH, walls, min_path, "open" if goal == "open" else "far")
        tried += _GEN_BATCH
        accepted += len(q)
        for row, weight in zip(q, w):
            key = row.tobytes()
            if key in index:
                weights[index[key]] += float(weight)
            elif goal == "matched" or len(picked) < count:
                index[key] = len(picked)
                picked.append(row)
                weights.append(float(weight))
        bar.update(min(accepted if goal == "matched" else len(picked), pool) - bar.n)
        _check_progress(len(picked), count, tried, f"min_path={min_path}, wall_range={tuple(wall_range)}, "
                                                   f"goal={goal!r}")
    bar.close()
    if goal == "matched":  # weighted sampling without replacement (Efraimidis-Spirakis keys u^(1/w))
        keys = rng.random(len(picked)) ** (1.0 / np.asarray(weights))
        chosen = np.sort(np.argsort(-keys, kind="stable")[:count])
        picked = [picked[i] for i in chosen]
    questions = np.stack(picked) if picked else np.zeros((0, SEQ_LEN), dtype=np.uint8)
    answers = bfs_label_batch(questions)
    return MazeRecords(questions=questions, answers=answers,
                       ratings=((answers == PATH).sum(axis=1) + 2).astype(np.float64),
                       sources=[f"generated:seed={seed}"] * count, line_numbers=np.full(count, -1, dtype=np.int64),
                       rejected=[], stats={"tried": float(tried), "accepted": float(accepted),
                                           "acceptance_rate": accepted / tried if tried else 0.0})


def _check_progress(have: int, want: int, tried: int, settings: str) -> None:
    """Stop with a clear message when the settings (almost) never produce a maze, instead of running for hours."""
    if have < want and tried >= _GIVE_UP_AFTER and (have == 0 or tried * want / have > _MAX_TRIES):
        raise ConfigError(f"generate: only {have} of {want} mazes found in {tried} draws with {settings}; "
                          "lower min_path or change wall_range")
