"""`recursia solve` for ARC: answer the test inputs of one task file with a trained model.

A task that is an evaluation task of the model's own data set (reference protocol) is answered with its
trained embeddings, exactly as `recursia eval` would. Any other task is new to the model: like the heldout
protocol, it gets fresh embedding rows fitted on its demonstration pairs alone (network frozen), then its test
inputs are answered under several versions and the votes ranked. The printed result says which way was taken.

Fitting runs `train.adapt_steps` steps at `train.adapt_batch_size` (0: train.eval_batch_size), capped at the
number of demonstration examples: one task has a few dozen, and a batch of 768 slots (the ARC presets' eval
batch) would repeat each of them many times at many times the cost per step.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..dataset import Dataset
from ..errors import ConfigError, DataError
from ..model import RecursiveModel
from . import arc
from .arc_data import single_task_dataset
from .arc_eval import evaluation_tasks, predict


@dataclass
class ArcAnswer:
    test_index: int
    attempts: list[np.ndarray]  # the two best grids (fewer if the model produced fewer distinct answers)
    correct: bool | None  # None when the task file has no test output


class RowSubset:
    """Some rows of a split, seen as a split (for answering one task of a data set)."""

    def __init__(self, split: Any, rows: np.ndarray):
        self.split, self.rows_index = split, rows
        self.inputs = split.inputs

    def __len__(self) -> int:
        return len(self.rows_index)

    def rows(self, index: np.ndarray) -> dict[str, np.ndarray]:
        out = self.split.rows(self.rows_index[index])
        out["index"] = index.astype(np.int64)
        return out

    def extra(self, key: str) -> np.ndarray:
        return np.asarray(self.split.extra(key))[self.rows_index]


def _known_evaluation_task(data: Dataset, task: arc.ArcTask) -> int | None:
    if data.task != "arc" or data.manifest["arc"]["protocol"] != "reference":
        return None
    fingerprint = arc.task_fingerprint(task)
    evaluation = [t for t in data.manifest["arc"]["tasks"] if t["role"] == "eval"]
    return next((i for i, t in enumerate(evaluation) if t["fingerprint"] == fingerprint), None)


def solve_task_file(model: RecursiveModel, cfg: Any, path: str | Path, versions: int = 8,
                    progress: bool = True, adapt_steps: int | None = None,
                    adapt_batch_size: int | None = None) -> tuple[list[ArcAnswer], str]:
    """Answer the test inputs of the task in `path`. `adapt_steps` and `adapt_batch_size` override the run's
    train.adapt_steps and the batch for fitting a new task (default: see the module docstring)."""
    if versions < 0 or (adapt_steps is not None and adapt_steps < 0) or \
            (adapt_batch_size is not None and adapt_batch_size < 1):
        raise ConfigError("--versions and --adapt-steps must be at least 0 and --adapt-batch-size at least 1")
    if Path(path).is_dir():
        raise DataError(f"ARC task file {path} is a directory; pass one task's .json file")
    task = arc.read_task_file(path, require_outputs=False)
    data = Dataset(cfg.data.dir) if cfg.data.dir and (Path(cfg.data.dir) / "manifest.json").is_file() else None
    index = _known_evaluation_task(data, task) if data is not None else None
    if index is not None:
        test = data.split("test")
        rows = np.nonzero(np.asarray(test.extra("task")) == index)[0]
        _, predictions, votes = predict(model, RowSubset(test, rows), evaluation_tasks(data),
                                        progress=progress)
        how = f"an evaluation task of {data.root} (reference protocol): its trained embeddings, {votes} versions"
        ranked = next(iter(predictions.values()), [])
    else:
        steps = cfg.train.adapt_steps if adapt_steps is None else adapt_steps
        ranked, votes, batch = _solve_new_task(model, cfg, task, versions, progress, steps, adapt_batch_size)
        how = (f"a task new to this model: embeddings fitted on its {len(task.train)} demonstration pairs "
               f"({steps} steps at batch {batch}), {votes} versions voted")
    answers = []
    for n, (_, truth) in enumerate(task.test):
        grids = (ranked[n] if n < len(ranked) else [])[:2]
        correct = None if truth is None else any(g.shape == truth.shape and np.array_equal(g, truth) for g in grids)
        answers.append(ArcAnswer(n, grids, correct))
    return answers, how


def _solve_new_task(model: RecursiveModel, cfg: Any, task: arc.ArcTask, versions: int, progress: bool,
                    steps: int, batch_size: int | None) -> tuple[list[list[np.ndarray]], int, int]:
    from ..adapt import fit_embeddings

    if model.puzzle_emb is None:
        raise DataError("this model has no puzzle embeddings, so it cannot be fitted to a new ARC task")
    table = model.puzzle_emb.table
    first_id = table.shape[0]
    with tempfile.TemporaryDirectory(prefix="recursia-arc-") as tmp:
        manifest = single_task_dataset(task, Path(tmp) / "task", versions, cfg.train.seed, first_id)
        extra_rows = manifest["num_puzzle_ids"] - first_id
        model.puzzle_emb.table = torch.cat([table, table.new_zeros(extra_rows, table.shape[1])])
        try:
            data = Dataset(Path(tmp) / "task")
            adapt = data.split("adapt")
            if batch_size is None:
                batch_size = min(cfg.train.adapt_batch_size or cfg.train.eval_batch_size, len(adapt))
            fit_embeddings(model, adapt, cfg, steps, batch_size, cfg.train.seed, progress)
            _, predictions, votes = predict(model, data.split("test"), [task], progress=progress)
        finally:
            model.puzzle_emb.table = table
    return predictions.get(task.task_id, []), votes, batch_size
