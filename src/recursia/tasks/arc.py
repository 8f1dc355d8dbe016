"""ARC (Abstraction and Reasoning Corpus): reading, validating, serialising, augmenting, voting and scoring tasks.

A grid is a numpy ``uint8`` array of shape ``(h, w)`` with 1 <= h, w <= 30 and colours 0..9. A task holds a few
demonstration ("train") pairs and one or more test pairs whose outputs may be unknown (``None``).

The model sees one pair at a time on a 30x30 canvas (900 tokens, the reference TRM/HRM serialisation):
token 0 is padding, 1 marks the end of a grid (a row below it and a column right of it) and colour c is c + 2.
Predictions are cropped back at those end markers, mapped through the inverse of the augmentation that produced
them, and voted on across augmented versions of the task.

Rows, columns, pairs and test inputs are numbered from 1 in every message written for a person.
Only numpy and the standard library are used here, so data preparation does not need torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recursia.errors import DataError
from recursia.tasks.grids import NUM_DIHEDRAL, dihedral, inverse_dihedral
from recursia.tasks.records import read_text

__all__ = [
    "CANVAS", "SEQ_LEN", "VOCAB_SIZE", "PAD", "EOS", "COLOUR_OFFSET", "NUM_COLOURS", "MAX_SIZE",
    "KAGGLE_SOURCES", "SPLITS",
    "ArcTask", "Version",
    "read_task_file", "read_task_dir", "read_kaggle", "read_source",
    "task_fingerprint", "find_overlaps",
    "encode_grid_pair", "random_offset", "decode_prediction", "decode_predictions",
    "make_versions", "encode_task_version",
    "vote", "score_task", "score", "submission", "grid_to_list",
]

CANVAS = 30
SEQ_LEN = CANVAS * CANVAS
PAD, EOS, COLOUR_OFFSET = 0, 1, 2
NUM_COLOURS = 10
VOCAB_SIZE = COLOUR_OFFSET + NUM_COLOURS  # 12
MAX_SIZE = CANVAS
SPLITS = ("training", "evaluation")
# ARC Prize (Kaggle) file stems -> the source name of the same tasks in the directory format, so that protocol
# checks ("never train on the evaluation split") see the same name whichever format was read.
KAGGLE_SOURCES = {
    "arc-agi_training": "arc-agi-1/training",
    "arc-agi_evaluation": "arc-agi-1/evaluation",
    "arc-agi_training2": "arc-agi-2/training",
    "arc-agi_evaluation2": "arc-agi-2/evaluation",
    "arc-agi_concept": "concept-arc/corpus",
}
DEFAULT_SKIP_DIRS = ("MinimalTasks",)  # ConceptARC's attention-check tasks: not part of the corpus
_CHALLENGES, _SOLUTIONS = "_challenges.json", "_solutions.json"


# ----------------------------------------------------------------------------------------------------------
# Types
# ----------------------------------------------------------------------------------------------------------

@dataclass
class ArcTask:
    """One ARC task. `source` names where it came from (e.g. "arc-agi-1/evaluation") so that training and
    evaluation protocols can be enforced by name; test outputs are None where the answers are not known."""

    task_id: str
    source: str
    train: list[tuple[np.ndarray, np.ndarray]]
    test: list[tuple[np.ndarray, np.ndarray | None]]

    @property
    def has_test_outputs(self) -> bool:
        return all(out is not None for _, out in self.test)

    def test_outputs(self) -> list[np.ndarray]:
        """The known answers, one per test input; raises `DataError` when any is missing (nothing to score)."""
        missing = [i + 1 for i, (_, out) in enumerate(self.test) if out is None]
        if missing:
            raise DataError(f"task {self.task_id} ({self.source}): test input {missing[0]} has no known output")
        return [out for _, out in self.test]  # type: ignore[misc]

    def grids(self) -> Iterator[np.ndarray]:
        """Every grid in a fixed order: train inputs/outputs, then test inputs and known test outputs."""
        for inp, out in self.train:
            yield inp
            yield out
        for inp, maybe_out in self.test:
            yield inp
            if maybe_out is not None:
                yield maybe_out


def _colour_perm(colours: Any) -> np.ndarray:
    arr = np.asarray(colours)
    if arr.shape != (NUM_COLOURS,) or arr.dtype.kind not in "iu":
        raise ValueError(f"colours must be 10 integers (a map of colours 0..9), got shape {arr.shape}")
    if sorted(arr.tolist()) != list(range(NUM_COLOURS)) or arr[0] != 0:
        raise ValueError(f"colours must permute 1..9 and keep 0 (the background) fixed, got {arr.tolist()}")
    out = arr.astype(np.uint8)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Version:
    """An augmented version of a task: colour c becomes colours[c], then dihedral transform t (grids.py ids).

    The same version applies to every grid of a task, so the puzzle's rule survives; `invert` undoes it exactly
    so that a prediction made on a version can be compared with (and voted against) the original task.
    """

    t: int
    colours: np.ndarray
    _inverse: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= int(self.t) < NUM_DIHEDRAL:
            raise ValueError(f"dihedral transform id must be 0..7, got {self.t}")
        colours = _colour_perm(self.colours)
        inverse = np.argsort(colours).astype(np.uint8)
        inverse.flags.writeable = False
        object.__setattr__(self, "t", int(self.t))
        object.__setattr__(self, "colours", colours)
        object.__setattr__(self, "_inverse", inverse)

    @classmethod
    def identity(cls) -> Version:
        return cls(0, np.arange(NUM_COLOURS, dtype=np.uint8))

    @property
    def is_identity(self) -> bool:
        return self.t == 0 and bool((self.colours == np.arange(NUM_COLOURS)).all())

    def key(self) -> tuple[int, bytes]:
        return self.t, self.colours.tobytes()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def apply(self, grid: np.ndarray) -> np.ndarray:
        return dihedral(self.colours[_as_colour_grid(grid)], self.t)

    def invert(self, grid: np.ndarray) -> np.ndarray:
        return self._inverse[inverse_dihedral(_as_colour_grid(grid), self.t)]

    def apply_task(self, task: ArcTask) -> ArcTask:
        """The whole task under this version (same id and source): what the model is shown for it."""
        return ArcTask(task.task_id, task.source,
                       [(self.apply(i), self.apply(o)) for i, o in task.train],
                       [(self.apply(i), None if o is None else self.apply(o)) for i, o in task.test])


def _as_colour_grid(grid: np.ndarray) -> np.ndarray:
    """Check a grid at the API boundary: 2-D integers 0..9 (an empty (0, 0) prediction is allowed)."""
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.dtype.kind not in "iu":
        raise ValueError(f"a grid must be a 2-D integer array, got shape {arr.shape} dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= NUM_COLOURS):
        raise ValueError(f"grid colours must be 0..9, got {arr.min()}..{arr.max()}")
    return arr.astype(np.uint8, copy=False)


def grid_to_list(grid: np.ndarray) -> list[list[int]]:
    """Plain Python ints, as the JSON task and submission formats need."""
    return np.asarray(grid).astype(int).tolist()


# ----------------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------------

def _parse_grid(value: Any, where: str) -> np.ndarray:
    """A JSON grid -> uint8 array, or a `DataError` saying exactly what is wrong and where."""
    if not isinstance(value, list) or not value:
        kind = "an empty list" if isinstance(value, list) else f"a {type(value).__name__}"
        raise DataError(f"{where}: grid must be a non-empty list of rows (lists of colours 0..9), got {kind}")
    for r, row in enumerate(value):
        if not isinstance(row, list):
            raise DataError(f"{where}: grid must be a list of lists, but row {r + 1} is a {type(row).__name__}")
    widths = [len(row) for row in value]
    for r, w in enumerate(widths):
        if w != widths[0]:
            raise DataError(f"{where}: ragged grid: row {r + 1} has {w} values but row 1 has {widths[0]}")
    h, w = len(value), widths[0]
    if not (1 <= h <= MAX_SIZE and 1 <= w <= MAX_SIZE):
        raise DataError(f"{where}: grid is {h}x{w}; height and width must be 1..{MAX_SIZE}")
    try:
        arr = np.array(value)
    except ValueError:  # nested lists of uneven depth, e.g. [[1, [2]]]
        arr = np.zeros((0, 0), dtype=object)
    if arr.dtype.kind not in "iu" or arr.shape != (h, w):
        _report_bad_value(value, where)
    if arr.min() < 0 or arr.max() >= NUM_COLOURS:
        r, c = np.argwhere((arr < 0) | (arr >= NUM_COLOURS))[0]
        raise DataError(f"{where}: value {arr[r, c]} at row {r + 1}, column {c + 1} is outside 0..9")
    return arr.astype(np.uint8)


def _report_bad_value(value: list[list[Any]], where: str) -> None:
    """Slow path, only for a grid already known to be wrong: name its first value that is not an integer."""
    for r, row in enumerate(value):
        for c, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, int):
                raise DataError(f"{where}: value {v!r} at row {r + 1}, column {c + 1} is not an integer 0..9")
            if not 0 <= v < NUM_COLOURS:
                raise DataError(f"{where}: value {v} at row {r + 1}, column {c + 1} is outside 0..9")
    raise DataError(f"{where}: grid is not a 2-D array of integers 0..9")


def _pair_field(pair: dict[str, Any], name: str, where: str) -> Any:
    if name not in pair:
        raise DataError(f"{where}: missing {name!r} (keys present: {', '.join(map(repr, pair)) or 'none'})")
    return pair[name]


def _parse_pairs(obj: dict[str, Any], part: str, where: str, need_output: bool) -> list[tuple[np.ndarray, Any]]:
    pairs = obj.get(part)
    if not isinstance(pairs, list) or not pairs:
        got = "missing" if part not in obj else f"a {type(pairs).__name__}" if not isinstance(pairs, list) else "empty"
        raise DataError(f"{where}: {part!r} must be a non-empty list of pairs, but it is {got}")
    out = []
    for n, pair in enumerate(pairs):
        at = f"{where}: {part} pair {n + 1}"
        if not isinstance(pair, dict):
            raise DataError(f"{at}: must be an object with 'input' and 'output', got a {type(pair).__name__}")
        inp = _parse_grid(_pair_field(pair, "input", at), f"{at} input")
        if need_output or pair.get("output") is not None:
            out.append((inp, _parse_grid(_pair_field(pair, "output", at), f"{at} output")))
        else:
            out.append((inp, None))
    return out


def _parse_task(obj: Any, task_id: str, source: str, where: str, require_outputs: bool) -> ArcTask:
    """Validate one task object; demonstration outputs are always required, test outputs only on request."""
    where = f"{where}: task {task_id}"
    if not isinstance(obj, dict):
        raise DataError(f"{where}: a task must be an object with 'train' and 'test', got a {type(obj).__name__}")
    train = _parse_pairs(obj, "train", where, need_output=True)
    test = _parse_pairs(obj, "test", where, need_output=require_outputs)
    return ArcTask(task_id, source, train, test)


def _load_json(path: Path) -> Any:
    """Read JSON strictly, turning decoding problems into a `DataError` that names the file and position."""
    _, text = read_text(path, "ARC")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------

def _default_source(folder: Path) -> str:
    """"<dataset>/<split>" from a folder, looking upwards past sub-folders such as ConceptARC's concepts."""
    folder = folder.resolve()
    for d in [folder, *folder.parents]:
        if d.name in (*SPLITS, "corpus") and d.parent.name:
            return f"{d.parent.name}/{d.name}"
    return f"{folder.parent.name}/{folder.name}" if folder.parent.name else folder.name


def read_task_file(path: str | Path, source: str | None = None, *, require_outputs: bool = True) -> ArcTask:
    """One task in the directory format; its id is the file name without ".json".

    `require_outputs=False` accepts test pairs without an "output" (a hidden test set); they read as None.
    """
    p = Path(path)
    src = source if source is not None else _default_source(p.parent)
    return _parse_task(_load_json(p), p.stem, src, str(p), require_outputs)


def read_task_dir(path: str | Path, source: str | None = None, *, require_outputs: bool = True,
                  skip_dirs: Sequence[str] = DEFAULT_SKIP_DIRS) -> list[ArcTask]:
    """Every *.json task below a folder (recursing, e.g. ConceptARC's corpus/<Concept>/), sorted by path.

    Sub-folders named in `skip_dirs` are left out (by default ConceptARC's MinimalTasks, which are attention
    checks rather than corpus tasks). Task ids must be unique, since results are keyed by them.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"ARC task folder not found: {root}" if not root.exists() else f"not a folder: {root}")
    files = sorted(f for f in root.rglob("*.json") if not set(f.relative_to(root).parts[:-1]) & set(skip_dirs))
    if not files:
        raise DataError(f"{root}: no *.json task files found")
    src = source if source is not None else _default_source(root)
    tasks = [read_task_file(f, src, require_outputs=require_outputs) for f in files]
    _check_unique_ids(tasks, [str(f) for f in files], str(root))
    return tasks


def _check_unique_ids(tasks: list[ArcTask], origins: list[str], where: str) -> None:
    seen: dict[str, str] = {}
    for task, origin in zip(tasks, origins):
        if task.task_id in seen:
            raise DataError(f"{where}: task id {task.task_id!r} occurs twice ({seen[task.task_id]} and {origin}); "
                            "ids must be unique because predictions and scores are keyed by them")
        seen[task.task_id] = origin


def _kaggle_source(challenges: Path) -> str:
    stem = challenges.name[:-len(_CHALLENGES)] if challenges.name.endswith(_CHALLENGES) else challenges.stem
    return KAGGLE_SOURCES.get(stem, stem)


def read_kaggle(challenges_path: str | Path, solutions_path: str | Path | None = None,
                source: str | None = None) -> list[ArcTask]:
    """Tasks in the ARC Prize format: challenges {id: {"train", "test": [{"input"}]}}, solutions {id: [grid...]}.

    Without solutions the test outputs are None. With them, every task needs one solution per test input.
    The source defaults to the directory-format name of the same split (see `KAGGLE_SOURCES`).
    """
    cp = Path(challenges_path)
    challenges = _load_json(cp)
    if not isinstance(challenges, dict) or not challenges:
        raise DataError(f"{cp}: a challenges file must be a non-empty object {{task_id: task}}")
    sp = Path(solutions_path) if solutions_path is not None else None
    solutions = _load_solutions(sp) if sp is not None else None
    src = source if source is not None else _kaggle_source(cp)
    tasks = []
    for task_id in sorted(challenges):
        obj = challenges[task_id]
        if solutions is not None and sp is not None:
            obj = _with_solutions(obj, solutions, task_id, f"{cp}: task {task_id}", sp)
        tasks.append(_parse_task(obj, task_id, src, str(cp), require_outputs=solutions is not None))
    return tasks


def _load_solutions(path: Path) -> dict[str, Any]:
    solutions = _load_json(path)
    if not isinstance(solutions, dict):
        raise DataError(f"{path}: a solutions file must be an object {{task_id: [output grid per test input]}}")
    return solutions


def _with_solutions(obj: Any, solutions: dict[str, Any], task_id: str, where: str, sp: Path) -> Any:
    """The challenge with its test outputs filled in from the solutions file, checked one to one."""
    if not isinstance(obj, dict) or not isinstance(obj.get("test"), list):
        return obj  # _parse_task reports the malformed challenge
    if task_id not in solutions:
        raise DataError(f"{where}: no solutions in {sp} (test outputs missing)")
    sols = solutions[task_id]
    if not isinstance(sols, list) or len(sols) != len(obj["test"]):
        n = len(sols) if isinstance(sols, list) else type(sols).__name__
        raise DataError(f"{where}: {sp} gives {n} solutions for {len(obj['test'])} test inputs")
    test = [dict(pair, output=sol) if isinstance(pair, dict) else pair for pair, sol in zip(obj["test"], sols)]
    return dict(obj, test=test)


def read_source(path: str | Path) -> list[ArcTask]:
    """Tasks from whatever `path` is: a task file, a task folder, a dataset root or a Kaggle challenges file.

    A dataset root holds training/ and/or evaluation/ (tasks tagged "<root>/training" ...), or, for ConceptARC,
    corpus/ ("<root>/corpus"). A Kaggle challenges file is read with the *_solutions.json beside it, if any.
    """
    p = Path(path)
    if p.is_file():
        if p.name.endswith(_SOLUTIONS):
            raise DataError(f"{p}: this is a solutions file; pass the matching *{_CHALLENGES} file instead")
        if p.name.endswith(_CHALLENGES):
            sp = p.with_name(p.name[:-len(_CHALLENGES)] + _SOLUTIONS)
            return read_kaggle(p, sp if sp.is_file() else None)
        return [read_task_file(p)]
    if not p.is_dir():
        raise DataError(f"ARC source not found: {p}")
    splits = [p / s for s in SPLITS if (p / s).is_dir()]
    if splits:
        return [t for s in splits for t in read_task_dir(s, f"{p.resolve().name}/{s.name}")]
    if (p / "corpus").is_dir():
        return read_task_dir(p / "corpus", f"{p.resolve().name}/corpus")
    kaggle = sorted(f.name for f in p.glob(f"*{_CHALLENGES}"))
    if kaggle:
        raise DataError(f"{p}: holds several ARC Prize files ({', '.join(kaggle)}); name the challenges file to read")
    return read_task_dir(p)


# ----------------------------------------------------------------------------------------------------------
# Identity and overlap
# ----------------------------------------------------------------------------------------------------------

def _grid_digest(grid: np.ndarray) -> bytes:
    g = np.ascontiguousarray(grid, dtype=np.uint8)
    return hashlib.sha256(np.array(g.shape, dtype="<u2").tobytes() + g.tobytes()).digest()


def task_fingerprint(task: ArcTask) -> str:
    """Hex sha256 identifying a task by content, whatever its file name, format or pair order.

    It covers every demonstration pair and every test input. Pair order is ignored (ARC-AGI-2 re-lists the
    ARC-AGI-1 tasks it includes with the demonstrations sorted differently), and test outputs are left out so
    that a task reads the same with or without its solutions.
    """
    train = sorted(_grid_digest(i) + _grid_digest(o) for i, o in task.train)
    test = sorted(_grid_digest(i) for i, _ in task.test)
    h = hashlib.sha256(b"train")
    for d in train:
        h.update(d)
    h.update(b"test")
    for d in test:
        h.update(d)
    return h.hexdigest()


def find_overlaps(tasks: Iterable[ArcTask], others: Iterable[ArcTask]) -> dict[str, list[str]]:
    """For each task in `tasks` that also occurs in `others`: the ids of its matches there (a leak check).

    A match has the same fingerprint, or the same test pairs: equal test inputs and, where both tasks know them,
    equal test outputs. The second rule catches re-released copies whose demonstrations were corrected (they
    would still leak the answers) but not different puzzles that happen to share a test input.
    """
    others = list(others)
    by_fp: dict[str, list[ArcTask]] = {}
    by_inputs: dict[tuple[bytes, ...], list[ArcTask]] = {}
    for o in others:
        by_fp.setdefault(task_fingerprint(o), []).append(o)
        by_inputs.setdefault(_test_inputs_key(o), []).append(o)
    found = {}
    for t in tasks:
        same = by_fp.get(task_fingerprint(t), [])
        near = [o for o in by_inputs.get(_test_inputs_key(t), []) if _same_known_answers(t, o)]
        ids = sorted({o.task_id for o in same + near})
        if ids:
            found[t.task_id] = ids
    return found


def _test_inputs_key(task: ArcTask) -> tuple[bytes, ...]:
    return tuple(sorted(_grid_digest(i) for i, _ in task.test))


def _same_known_answers(a: ArcTask, b: ArcTask) -> bool:
    """Tasks with equal test inputs: do their answers agree (true when either task's answers are unknown)?"""
    if not (a.has_test_outputs and b.has_test_outputs):
        return True
    pairs = [sorted(_grid_digest(i) + _grid_digest(o) for i, o in t.test) for t in (a, b)]  # type: ignore[arg-type]
    return pairs[0] == pairs[1]


# ----------------------------------------------------------------------------------------------------------
# Serialisation on the 30x30 canvas
# ----------------------------------------------------------------------------------------------------------

def _canvas(grid: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """Tokens of one grid at `offset`, with end markers below and to the right (the corner stays PAD)."""
    g = _as_colour_grid(grid)
    h, w = g.shape
    r, c = offset
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    canvas[r:r + h, c:c + w] = g + COLOUR_OFFSET
    if r + h < CANVAS:
        canvas[r + h, c:c + w] = EOS
    if c + w < CANVAS:
        canvas[r:r + h, c + w] = EOS
    return canvas.reshape(SEQ_LEN)


def _span(inp: np.ndarray, out: np.ndarray | None) -> tuple[int, int]:
    """Height and width both grids of a pair need, since they share one offset."""
    shapes = [np.shape(inp)] + ([np.shape(out)] if out is not None else [])
    for s in shapes:
        if len(s) != 2 or not (1 <= s[0] <= CANVAS and 1 <= s[1] <= CANVAS):
            raise ValueError(f"grid shape {s} does not fit the {CANVAS}x{CANVAS} canvas (1..{CANVAS} each way)")
    return max(s[0] for s in shapes), max(s[1] for s in shapes)


def encode_grid_pair(inp: np.ndarray, out: np.ndarray | None,
                     offset: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """(input tokens (900,), label tokens (900,)) uint8; labels are all PAD (no loss) when `out` is None."""
    h, w = _span(inp, out)
    r, c = int(offset[0]), int(offset[1])
    if not (0 <= r <= CANVAS - h and 0 <= c <= CANVAS - w):
        raise ValueError(f"offset {(r, c)} puts a {h}x{w} pair outside the {CANVAS}x{CANVAS} canvas")
    labels = _canvas(out, (r, c)) if out is not None else np.zeros(SEQ_LEN, dtype=np.uint8)
    return _canvas(inp, (r, c)), labels


def random_offset(rng: np.random.Generator, inp: np.ndarray, out: np.ndarray | None) -> tuple[int, int]:
    """A uniform offset at which both grids of the pair fit (translation augmentation, demonstrations only)."""
    h, w = _span(inp, out)
    return int(rng.integers(0, CANVAS - h + 1)), int(rng.integers(0, CANVAS - w + 1))


def decode_prediction(tokens: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Crop a predicted canvas to a grid (colours 0..9), reading from `offset` (the origin for test inputs).

    The reference rule: going down the rows, the width is the shortest leading run of colour tokens seen so far;
    the kept rectangle is the one of largest area (the first, on ties). A model that forgets an end marker
    thus still yields its best-formed rectangle. Nothing readable gives a (0, 0) array.
    """
    t = np.asarray(tokens)
    if t.size != SEQ_LEN:
        raise ValueError(f"a prediction must have {SEQ_LEN} tokens, got {t.size}")
    t = t.reshape(CANVAS, CANVAS)[offset[0]:, offset[1]:]
    is_colour = (t >= COLOUR_OFFSET) & (t < VOCAB_SIZE)
    runs = np.where(is_colour.all(axis=1), is_colour.shape[1], np.argmin(is_colour, axis=1))
    widths = np.minimum.accumulate(runs)
    areas = widths * np.arange(1, len(widths) + 1)
    best = int(np.argmax(areas))
    if areas[best] == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    return (t[:best + 1, :widths[best]] - COLOUR_OFFSET).astype(np.uint8)


def decode_predictions(tokens: np.ndarray) -> list[np.ndarray]:
    """`decode_prediction` for a batch (N, 900) of predictions at the origin."""
    arr = np.asarray(tokens)
    return [decode_prediction(row) for row in arr.reshape(-1, SEQ_LEN)]


# ----------------------------------------------------------------------------------------------------------
# Augmentation
# ----------------------------------------------------------------------------------------------------------

def _task_views(task: ArcTask) -> list[tuple[bytes, np.ndarray]]:
    """For each dihedral t: the shapes of all transformed grids, and all their cells concatenated.

    Colour maps act cell by cell, so the transformed content of any version is one table lookup on these.
    """
    views = []
    grids = list(task.grids())
    for t in range(NUM_DIHEDRAL):
        moved = [dihedral(g, t) for g in grids]
        shapes = np.array([g.shape for g in moved], dtype="<u2").tobytes()
        views.append((shapes, np.concatenate([g.ravel() for g in moved])))
    return views


def _content_key(view: tuple[bytes, np.ndarray], colours: np.ndarray) -> bytes:
    shapes, cells = view
    return hashlib.blake2b(shapes + colours[cells].tobytes(), digest_size=16).digest()


def make_versions(task: ArcTask, count: int, rng: np.random.Generator, max_trials_factor: int = 5) -> list[Version]:
    """The original (version 0) plus up to `count` distinct random versions, deterministic for a given `rng`.

    Each try draws a dihedral id uniformly, then a permutation of colours 1..9. A try is rejected when the whole
    transformed task (every grid, test outputs included) equals one already kept, since a duplicate teaches
    nothing new and would double-count in voting. After `max_trials_factor * count` tries the list is returned as
    it is, so symmetric or few-coloured tasks end up with fewer versions.
    """
    if count < 0 or max_trials_factor < 1:
        raise ValueError(f"make_versions: count must be >= 0 and max_trials_factor >= 1, "
                         f"got {count} and {max_trials_factor}")
    versions = [Version.identity()]
    if count == 0:
        return versions
    views = _task_views(task)
    seen = {_content_key(views[0], versions[0].colours)}
    for _ in range(max_trials_factor * count):
        t = int(rng.integers(0, NUM_DIHEDRAL))
        colours = np.concatenate([[0], rng.permutation(NUM_COLOURS - 1) + 1]).astype(np.uint8)
        key = _content_key(views[t], colours)
        if key in seen:
            continue
        seen.add(key)
        versions.append(Version(t, colours))
        if len(versions) == count + 1:
            break
    return versions


def encode_task_version(task: ArcTask, version: Version, rng: np.random.Generator | None,
                        translate: bool) -> dict[str, np.ndarray]:
    """Token arrays for one version of a task, for the dataset builder.

    Returns train_inputs/train_labels (n_train, 900), train_offsets (n_train, 2), test_inputs/test_labels
    (n_test, 900) and test_has_output (n_test,) bool. With `translate`, each demonstration pair is placed at a
    random offset drawn from `rng`; test pairs always sit at the origin, where predictions are decoded.
    """
    if translate and rng is None:
        raise ValueError("encode_task_version: translate=True needs an rng to draw the offsets")
    v = version.apply_task(task)
    offsets = [random_offset(rng, i, o) if translate else (0, 0) for i, o in v.train]  # type: ignore[arg-type]
    train = [encode_grid_pair(i, o, off) for (i, o), off in zip(v.train, offsets)]
    test = [encode_grid_pair(i, o) for i, o in v.test]
    return {
        "train_inputs": np.stack([x for x, _ in train]),
        "train_labels": np.stack([y for _, y in train]),
        "train_offsets": np.array(offsets, dtype=np.int64).reshape(-1, 2),
        "test_inputs": np.stack([x for x, _ in test]),
        "test_labels": np.stack([y for _, y in test]),
        "test_has_output": np.array([o is not None for _, o in v.test], dtype=bool),
    }


# ----------------------------------------------------------------------------------------------------------
# Voting, scoring and submission
# ----------------------------------------------------------------------------------------------------------

def _grid_key(grid: np.ndarray) -> tuple[tuple[int, ...], bytes]:
    g = np.ascontiguousarray(grid, dtype=np.uint8)
    return g.shape, g.tobytes()


def vote(candidates: Sequence[tuple[np.ndarray, float]]) -> list[np.ndarray]:
    """Distinct predicted grids, best first: most votes, then highest mean confidence, then first seen.

    Candidates are (grid already mapped back to the original task, halting confidence). Empty grids are dropped:
    no ARC answer is empty, so they can only waste an attempt.
    """
    groups: dict[tuple[tuple[int, ...], bytes], list[Any]] = {}
    for grid, confidence in candidates:
        g = _as_colour_grid(grid)
        if g.size == 0:
            continue
        entry = groups.setdefault(_grid_key(g), [g, 0, 0.0, len(groups)])
        entry[1] += 1
        entry[2] += float(confidence)
    ranked = sorted(groups.values(), key=lambda e: (-e[1], -e[2] / e[1], e[3]))
    return [e[0] for e in ranked]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b))


def score_task(ranked_per_test_input: Sequence[Sequence[np.ndarray]], truths: Sequence[np.ndarray], k: int) -> float:
    """Fraction of the task's test inputs whose answer is among the first `k` ranked grids.

    A test input with no ranked grids (fewer lists than answers) counts as unsolved.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not truths:
        raise ValueError("a task needs at least one test answer to score")
    if len(ranked_per_test_input) > len(truths):
        raise ValueError(f"{len(ranked_per_test_input)} prediction lists for {len(truths)} test inputs")
    solved = sum(any(_same(g, truth) for g in ranked[:k]) for ranked, truth in zip(ranked_per_test_input, truths))
    return solved / len(truths)


def score(predictions: dict[str, Sequence[Sequence[np.ndarray]]], tasks: Sequence[ArcTask],
          ks: Sequence[int] = (1, 2, 5, 10)) -> dict[str, Any]:
    """pass@k over `tasks` (pass@1 and pass@2 always; pass@2 is the official ARC Prize metric).

    A task scores the fraction of its test inputs solved within k attempts; the overall score is the mean over
    tasks. Tasks without predictions score 0. Returns {"pass@k": float, ..., "tasks": n, "test_inputs": n,
    "per_task": {task_id: {"pass@k": float}}}.
    """
    if not tasks:
        raise ValueError("score: no tasks to score")
    unknown = sorted(set(predictions) - {t.task_id for t in tasks})
    if unknown:
        raise ValueError(f"score: predictions for {len(unknown)} task(s) not being scored, e.g. {unknown[0]!r}")
    ks = sorted(set(ks) | {1, 2})
    per_task = {}
    for task in tasks:
        truths = task.test_outputs()
        ranked = predictions.get(task.task_id, [])
        per_task[task.task_id] = {f"pass@{k}": score_task(ranked, truths, k) for k in ks}
    result: dict[str, Any] = {f"pass@{k}": float(np.mean([s[f"pass@{k}"] for s in per_task.values()])) for k in ks}
    result["tasks"] = len(tasks)
    result["test_inputs"] = sum(len(t.test) for t in tasks)
    result["per_task"] = per_task
    return result


def submission(predictions: dict[str, Sequence[Sequence[np.ndarray]]],
               tasks: Sequence[ArcTask]) -> dict[str, list[dict[str, list[list[int]]]]]:
    """The ARC Prize submission: {task_id: [{"attempt_1": grid, "attempt_2": grid} per test input]}.

    Every task and test input gets an entry, because the format requires them all: a missing or empty prediction
    becomes [[0]], and attempt_2 repeats attempt_1 when there is only one candidate.
    """
    out = {}
    for task in tasks:
        ranked = list(predictions.get(task.task_id, []))
        entries = []
        for n in range(len(task.test)):
            grids = [g for g in (ranked[n] if n < len(ranked) else []) if np.size(g)][:2]
            first = grid_to_list(grids[0]) if grids else [[0]]
            second = grid_to_list(grids[1]) if len(grids) > 1 else first
            entries.append({"attempt_1": first, "attempt_2": second})
        out[task.task_id] = entries
    return out
