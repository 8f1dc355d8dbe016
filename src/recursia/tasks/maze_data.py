"""Maze-Hard data sets on disk: built from the official CSV, or generated with the official labelling rule.

The official test split is not distributed with the 1000 training mazes we work from, so the development test
set is generated: 1000 mazes drawn the way the official ones look (independent random walls, a shortest path of
at least 110 cells) and labelled with the official rule, none identical to a training maze.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..dataset import SplitArrays, file_digest, write_dataset
from ..errors import DataError
from . import maze
from .grids import NUM_DIHEDRAL

HF_REPO = "sapientinc/maze-30x30-hard-1k"


def _train_split(questions: np.ndarray, answers: np.ndarray, dihedral: bool) -> SplitArrays:
    """One group per maze; with `dihedral`, its 8 symmetric versions form the group (one drawn per epoch)."""
    n = questions.shape[0]
    if not dihedral:
        inputs, labels = maze.encode(questions, answers)
        return SplitArrays.ungrouped(inputs, labels)
    ids = np.tile(np.arange(NUM_DIHEDRAL), n)
    q, a = maze.augment_dihedral(np.repeat(questions, NUM_DIHEDRAL, 0), np.repeat(answers, NUM_DIHEDRAL, 0), ids)
    inputs, labels = maze.encode(q, a)
    puzzles = np.arange(n * NUM_DIHEDRAL + 1, dtype=np.int64)
    groups = np.arange(0, n * NUM_DIHEDRAL + 1, NUM_DIHEDRAL, dtype=np.int64)
    return SplitArrays(inputs, labels, np.zeros(n * NUM_DIHEDRAL, dtype=np.int32), puzzles, groups)


def _test_split(questions: np.ndarray, answers: np.ndarray) -> SplitArrays:
    inputs, labels = maze.encode(questions, answers)
    return SplitArrays.ungrouped(inputs, labels)


def _generated_test(count: int, seed: int, avoid: np.ndarray, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    records = maze.generate(count + 16, seed=seed, progress=progress)
    seen = {bytes(q) for q in avoid}
    keep = [i for i, q in enumerate(records.questions) if bytes(q) not in seen][:count]
    if len(keep) < count:
        raise DataError(f"could not generate {count} test mazes distinct from the training mazes")
    return records.questions[keep], records.answers[keep]


def build_maze_dataset(source: str | Path, out: str | Path, *, test: str | Path | None = None,
                       generate_test: int = 1000, dihedral: bool = False, seed: int = 0,
                       skip_invalid: bool = False, overwrite: bool = False, progress: bool = False) -> dict[str, Any]:
    """`source`: a folder with train.csv (and maybe test.csv), or a CSV. The test split is `test`, else the
    folder's test.csv, else `generate_test` generated mazes (seeded; 0 for none; 1000 took 74 s, docs/benchmarks.md)."""
    source = Path(source)
    train_path = source / "train.csv" if source.is_dir() else source
    if test is None and source.is_dir() and (source / "test.csv").is_file():
        test = source / "test.csv"
    if not train_path.is_file():
        raise DataError(f"no training file {train_path}: --source should be a folder with train.csv (e.g. "
                        "../shared/data/maze-30x30-hard-1k) or a CSV file")
    train = maze.read_csv(train_path, skip_invalid=skip_invalid)
    splits = {"train": _train_split(train.questions, train.answers, dihedral)}
    sources = [file_digest(train_path)]
    build: dict[str, Any] = {"command": "build", "dihedral": dihedral, "seed": seed,
                             "rejected_rows": {"train": [list(r) for r in train.rejected]}}
    if test is not None:
        t = maze.read_csv(test, skip_invalid=skip_invalid)
        splits["test"] = _test_split(t.questions, t.answers)
        sources.append(file_digest(test))
        build["test"] = "file"
    elif generate_test:
        q, a = _generated_test(generate_test, seed + 1_000_003, train.questions, progress)
        splits["test"] = _test_split(q, a)
        build["test"] = f"generated: {generate_test} mazes, seed {seed + 1_000_003}"
    build["sources"] = sources
    return write_dataset(out, "maze", maze.SEQ_LEN, maze.VOCAB_SIZE, splits, build, overwrite=overwrite)


def generate_maze_dataset(out: str | Path, *, train_count: int, test_count: int, seed: int = 0,
                          min_path: int = 110, wall_range: tuple[int, int] = (249, 405),
                          overwrite: bool = False, progress: bool = False) -> dict[str, Any]:
    """Generated training and test mazes (disjoint), labelled with the official rule. The defaults give
    Maze-Hard's look (`maze.generate`); a small `min_path` gives easier mazes (min_path=2: median path 22
    cells), which a CPU-sized model can learn."""
    records = maze.generate(train_count + test_count, seed=seed, min_path=min_path, wall_range=wall_range,
                            progress=progress)
    q, a = records.questions, records.answers
    splits = {"train": _train_split(q[:train_count], a[:train_count], False)}
    if test_count:
        splits["test"] = _test_split(q[train_count:], a[train_count:])
    lengths = records.ratings
    build = {"command": "generate", "train_count": train_count, "test_count": test_count, "seed": seed,
             "min_path": min_path, "wall_range": list(wall_range),
             "path_length": {"min": int(lengths.min()), "mean": float(lengths.mean()), "max": int(lengths.max())}}
    return write_dataset(out, "maze", maze.SEQ_LEN, maze.VOCAB_SIZE, splits, build, overwrite=overwrite)


def download_maze_hard(out: str | Path) -> list[Path]:
    """Fetch Maze-Hard's train.csv and test.csv from the Hugging Face Hub (needs `recursia[hf]`)."""
    from .sudoku_data import hf_download

    return hf_download(HF_REPO, ("train.csv", "test.csv"), out)
