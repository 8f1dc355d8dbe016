"""Puzzle tasks: reading, validating, augmenting, generating and encoding each benchmark.

Every task plugs into the rest of Recursia through a `Task`: the model, the training loop and evaluation only
ever see token arrays; `solve` and `viz` use the task's parse/format/check functions to talk to the user.
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
    problems: Callable[[np.ndarray], list[str]]  # what is wrong with a question (e.g. contradictory clues)
    encode: Callable[[np.ndarray], np.ndarray]  # question grids (N, ...) -> input tokens (N, seq_len)
    decode: Callable[[np.ndarray], np.ndarray]  # tokens (N, seq_len) -> grids
    check: Callable[[np.ndarray, np.ndarray], list[str]]  # reasons an answer is wrong for a question
    format: Callable[[np.ndarray], str]  # grid -> text for the terminal


def get_task(name: str) -> Task:
    if name == "sudoku":
        from . import sudoku

        return Task("sudoku", sudoku.SEQ_LEN, sudoku.VOCAB_SIZE, sudoku.parse_grid, sudoku.clue_conflicts,
                    lambda q: sudoku.encode(q)[0], sudoku.decode, sudoku.check_answer,
                    lambda g: sudoku.format_grid(g, pretty=True))
    raise DataError(f"unknown task {name!r}; known tasks: sudoku")


def generate_dataset(gen: Any, out: str | Path) -> dict[str, Any]:
    """Write a generated dataset (config: `GenerateConfig`) to `out`; returns its manifest."""
    if gen.task == "sudoku":
        from .sudoku_data import generate_sudoku_dataset

        return generate_sudoku_dataset(out, train_count=gen.train_count, test_count=gen.test_count,
                                       blanks=gen.blanks, min_rounds=gen.min_rounds,
                                       augmentations=gen.augmentations, seed=gen.seed)
    raise DataError(f"cannot generate task {gen.task!r}; generators exist for: sudoku")
