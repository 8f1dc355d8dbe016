"""Puzzle tasks: reading, validating, augmenting, generating and encoding each benchmark.

Every task plugs into the rest of Recursia through a `Task`: the model, the training loop and evaluation only
ever see token arrays; `solve` and `eval` use the task's functions to talk to the user and to check answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class Task:
    name: str
    seq_len: int
    vocab_size: int
    parse: Callable[[str], np.ndarray]  # user text -> question grid; raises PuzzleError
    read_file: Callable[[Path], list[np.ndarray]]  # a file of puzzles -> question grids
    problems: Callable[[np.ndarray], list[str]]  # what is wrong with a question (e.g. contradictory clues)
    encode: Callable[[np.ndarray], np.ndarray]  # question grids (N, ...) -> input tokens (N, seq_len)
    decode: Callable[[np.ndarray], np.ndarray]  # tokens (N, seq_len) -> grids
    check: Callable[[np.ndarray, np.ndarray], list[str]]  # reasons an answer is wrong for a question
    format: Callable[[np.ndarray], str]  # grid -> text for the terminal
    # (input tokens, predicted tokens) -> {metric: per-example bool}, beyond exact and cell accuracy
    metrics: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]] | None = None
    # a question given as an array -> the checked grid `parse` would return; raises PuzzleError
    as_question: Callable[[np.ndarray], np.ndarray] | None = None
    # (input tokens (N, L), predicted tokens (N, L)) -> (N,) bool: the answer is a solution, checked by the
    # task's own rules (execution, constraints), not by comparison with a label. Enables `--halt verified`
    # and candidates beyond the argmax (`recursia.verify`); None: the task cannot check an answer alone.
    verify: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    # the cells `verify` reads: where candidates may differ from the argmax (a slice: no plain default)
    answer_cells: slice = field(default_factory=lambda: slice(None))
    # (question grids (N, ...), copies P, seed) -> (N*P transformed questions, puzzle-major, copy 0 the puzzle
    # itself; undo(values (N*P, ...), digits=True) mapping answers, or with digits=False per-cell values such
    # as confidences, back to each puzzle's frame). Enables `--perturb P`; None: the task has no symmetries.
    perturb: Callable[..., tuple[np.ndarray, Callable[..., np.ndarray]]] | None = None
    max_copies: int | None = None  # distinct copies `perturb` can make (Maze: its 8 symmetries); None: no limit


def _sudoku() -> Task:
    from . import sudoku

    def read_file(path: Path) -> list[np.ndarray]:
        return list(sudoku.read_lines(path, skippable=False).questions)

    def problems(grid: np.ndarray) -> list[str]:
        return [f"contradictory clues: {m}" for m in sudoku.clue_conflicts(grid)]

    return Task("sudoku", sudoku.SEQ_LEN, sudoku.VOCAB_SIZE, sudoku.parse_grid, read_file, problems,
                lambda q: sudoku.encode(q)[0], sudoku.decode, sudoku.check_answer,
                lambda g: sudoku.format_grid(g, pretty=True), as_question=sudoku.as_question,
                verify=lambda x, p: sudoku.consistent_batch(sudoku.decode(x), sudoku.decode(p)),
                perturb=sudoku.perturb)


def _maze() -> Task:
    from . import maze

    def metrics(inputs: np.ndarray, predictions: np.ndarray) -> dict[str, np.ndarray]:
        return {"valid_shortest_path": maze.valid_shortest_path_batch(inputs, predictions)}

    return Task("maze", maze.SEQ_LEN, maze.VOCAB_SIZE, maze.parse_maze, lambda p: list(maze.read_mazes(p)),
                maze.maze_problems, lambda q: maze.encode(q)[0], maze.decode, maze.check_path, maze.format_maze,
                metrics, maze.as_question, verify=maze.valid_shortest_path_batch, perturb=maze.perturb,
                max_copies=maze.NUM_DIHEDRAL)


def _deepcoder() -> Task:
    """A "question" is an encoded spec row (`deepcoder.encode_task`); answers are token rows whose program
    cells are checked by running the program, never by comparing text."""
    from . import deepcoder

    def parse(text: str) -> np.ndarray:
        return deepcoder.encode_task(deepcoder.parse_task(text))[0]

    def read_file(path: Path) -> list[np.ndarray]:
        return [deepcoder.encode_task(t)[0] for t in deepcoder.read_tasks(path)]

    def metrics(inputs: np.ndarray, predictions: np.ndarray) -> dict[str, np.ndarray]:
        return {"verified": deepcoder.verify_batch(inputs, predictions)}

    return Task("deepcoder", deepcoder.SEQ_LEN, deepcoder.VOCAB_SIZE, parse, read_file, lambda row: [],
                lambda q: np.asarray(q, dtype=np.uint8), lambda t: np.asarray(t, dtype=np.uint8),
                deepcoder.check_answer, deepcoder.format_row, metrics, deepcoder.as_question,
                verify=deepcoder.verify_batch, answer_cells=slice(deepcoder.PROGRAM_START, deepcoder.SEQ_LEN))


def _deepcoder_prior() -> Task:
    """Which DSL functions a program for the examples uses (`deepcoder_prior`): a prior that orders search."""
    from . import deepcoder, deepcoder_prior as dp

    def parse(text: str) -> np.ndarray:
        return dp.encode([deepcoder.parse_task(text)])[0][0]

    def read_file(path: Path) -> list[np.ndarray]:
        return list(dp.encode(deepcoder.read_tasks(path))[0])

    return Task("deepcoder-prior", dp.SEQ_LEN, dp.VOCAB_SIZE, parse, read_file, lambda row: [],
                lambda q: np.asarray(q, dtype=np.uint8), lambda t: np.asarray(t, dtype=np.uint8),
                dp.check_answer, dp.format_row, as_question=dp.as_question, answer_cells=dp.CELLS)


TASKS = {"sudoku": _sudoku, "maze": _maze, "deepcoder": _deepcoder, "deepcoder-prior": _deepcoder_prior}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]()


def generate_dataset(gen: Any, out: str | Path) -> dict[str, Any]:
    """Write a generated dataset (config: `GenerateConfig`) to `out`; returns its manifest."""
    if gen.task == "sudoku":
        from .sudoku_data import generate_sudoku_dataset

        return generate_sudoku_dataset(out, train_count=gen.train_count, test_count=gen.test_count,
                                       blanks=gen.blanks, blanks_max=gen.blanks_max, method=gen.method,
                                       min_rounds=gen.min_rounds, augmentations=gen.augmentations,
                                       seed=gen.seed)
    if gen.task == "maze":
        from .maze_data import generate_maze_dataset

        return generate_maze_dataset(out, train_count=gen.train_count, test_count=gen.test_count, seed=gen.seed,
                                     min_path=gen.min_path, wall_range=(gen.walls_min, gen.walls_max))
    if gen.task == "deepcoder":
        from .deepcoder import generate_deepcoder_dataset

        return generate_deepcoder_dataset(out, train_count=gen.train_count, test_count=gen.test_count,
                                          seed=gen.seed, min_length=gen.min_length, max_length=gen.max_length,
                                          split=gen.split or None)
    if gen.task == "deepcoder-prior":
        from .deepcoder_prior import generate_prior_dataset

        return generate_prior_dataset(out, train_count=gen.train_count, test_count=gen.test_count, seed=gen.seed,
                                      min_length=gen.min_length, max_length=gen.max_length,
                                      split=gen.split or None)
    raise DataError(f"cannot generate task {gen.task!r}; generators exist for: sudoku, maze, deepcoder, "
                    "deepcoder-prior")
