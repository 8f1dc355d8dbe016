"""Puzzle tasks: reading, validating, augmenting, generating and encoding each benchmark.

Every task plugs into the rest of Recursia through a `Task`: the model, the training loop and evaluation only
ever see token arrays; `solve` and `eval` use the task's functions to talk to the user and to check answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


def _sudoku() -> Task:
    from . import sudoku

    def read_file(path: Path) -> list[np.ndarray]:
        return list(sudoku.read_lines(path).questions)

    def problems(grid: np.ndarray) -> list[str]:
        return [f"contradictory clues: {m}" for m in sudoku.clue_conflicts(grid)]

    return Task("sudoku", sudoku.SEQ_LEN, sudoku.VOCAB_SIZE, sudoku.parse_grid, read_file, problems,
                lambda q: sudoku.encode(q)[0], sudoku.decode, sudoku.check_answer,
                lambda g: sudoku.format_grid(g, pretty=True))


def _maze() -> Task:
    from . import maze

    def metrics(inputs: np.ndarray, predictions: np.ndarray) -> dict[str, np.ndarray]:
        return {"valid_shortest_path": maze.valid_shortest_path_batch(inputs, predictions)}

    return Task("maze", maze.SEQ_LEN, maze.VOCAB_SIZE, maze.parse_maze, lambda p: list(maze.read_mazes(p)),
                maze.maze_problems, lambda q: maze.encode(q)[0], maze.decode, maze.check_path, maze.format_maze,
                metrics)


TASKS = {"sudoku": _sudoku, "maze": _maze}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]()


def generate_dataset(gen: Any, out: str | Path) -> dict[str, Any]:
    """Write a generated dataset (config: `GenerateConfig`) to `out`; returns its manifest."""
    if gen.task == "sudoku":
        from .sudoku_data import generate_sudoku_dataset

        return generate_sudoku_dataset(out, train_count=gen.train_count, test_count=gen.test_count,
                                       blanks=gen.blanks, min_rounds=gen.min_rounds,
                                       augmentations=gen.augmentations, seed=gen.seed)
    if gen.task == "maze":
        from .maze_data import generate_maze_dataset

        return generate_maze_dataset(out, train_count=gen.train_count, test_count=gen.test_count, seed=gen.seed)
    raise DataError(f"cannot generate task {gen.task!r}; generators exist for: sudoku, maze")
