"""ARC evaluation: answer every version of every test input, map each answer back, vote, score pass@k.

For each test example (one test input under one task version) the all-steps prediction is cropped at the
end-of-grid markers and mapped back through the inverse of its version's transform. Identical grids pool their
votes; the ranking is by count, with ties broken by mean halting confidence (sigmoid of q_halt). pass@2, the
official metric, counts a test input as solved when one of the two best grids is right; a task scores the
fraction of its test inputs solved, and the overall score is the mean over tasks.

Votes live in this function call only. (The reference evaluator keeps them across evaluations, so every score
it reports silently ensembles all earlier checkpoints.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset import Dataset
from ..evaluate import evaluate
from ..model import RecursiveModel
from . import arc


def evaluation_tasks(data: Dataset) -> list[arc.ArcTask]:
    """The evaluation tasks as stored in the manifest (test inputs and, where known, outputs)."""
    out = []
    for t in data.manifest["arc"]["evaluation_tasks"]:
        test = [(np.array(i, np.uint8), None if o is None else np.array(o, np.uint8))
                for i, o in zip(t["test_inputs"], t["test_outputs"])]
        out.append(arc.ArcTask(t["id"], t["source"], [], test))
    return out


def predict(model: RecursiveModel, test: Any, tasks: list[arc.ArcTask], batch_size: int = 256,
            max_examples: int = 0, progress: bool = True) -> tuple[dict[str, Any], dict[str, list], int]:
    """Run the test examples of `test` (a split with ARC extras), vote per test input. Returns the token-level
    evaluation, {task_id: [ranked grids per test input]}, and the most votes any test input received."""
    task_of, test_index = np.asarray(test.extra("task")), np.asarray(test.extra("test_index"))
    version_t, colours = np.asarray(test.extra("version_t")), np.asarray(test.extra("version_colours"))
    candidates: dict[tuple[int, int], list[tuple[np.ndarray, float]]] = {}

    def collect(idx: np.ndarray, predictions: np.ndarray, confidence: np.ndarray | None) -> None:
        for row, pred, conf in zip(idx, predictions, confidence if confidence is not None else [0.0] * len(idx)):
            grid = arc.decode_prediction(pred)
            if grid.size:
                grid = arc.Version(int(version_t[row]), colours[row]).invert(grid)
            candidates.setdefault((int(task_of[row]), int(test_index[row])), []).append((grid, float(conf)))

    result = evaluate(model, test, batch_size, max_examples, progress, on_batch=collect)
    predictions: dict[str, list[list[np.ndarray]]] = {}
    for (ti, n), cands in sorted(candidates.items()):
        ranked = predictions.setdefault(tasks[ti].task_id, [])
        ranked.extend([] for _ in range(n + 1 - len(ranked)))
        ranked[n] = arc.vote(cands)
    return result, predictions, max((len(c) for c in candidates.values()), default=0)


def evaluate_arc(model: RecursiveModel, data: Dataset, split: str = "test", batch_size: int = 256,
                 max_examples: int = 0, progress: bool = True, out_dir: Path | None = None,
                 cfg: Any = None) -> dict[str, Any]:
    protocol = data.manifest["arc"]["protocol"]
    if protocol == "heldout" and "adapt" in data.splits:
        from ..adapt import fit_embeddings

        if cfg is None:
            raise ValueError("the heldout protocol needs the run config to fit the unseen tasks' embeddings")
        fit_embeddings(model, data.split("adapt"), cfg, cfg.train.adapt_steps,
                       cfg.train.adapt_batch_size or batch_size, seed=cfg.train.seed, progress=progress)
    test = data.split(split)
    tasks = evaluation_tasks(data)
    result, predictions, votes = predict(model, test, tasks, batch_size, max_examples, progress)
    partial = 0 < max_examples < len(test)
    scored = [t for t in tasks if t.has_test_outputs and (not partial or t.task_id in predictions)]
    report: dict[str, Any] = {"protocol": protocol, "max_votes_per_test_input": votes,
                              "partial_evaluation": partial}
    if scored:
        report.update(arc.score({k: v for k, v in predictions.items() if k in {t.task_id for t in scored}},
                                scored, ks=(1, 2, 5, 10)))
    if out_dir is not None:
        path = Path(out_dir) / f"submission-{protocol}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(arc.submission(predictions, tasks)) + "\n")
        report["submission"] = str(path)
    result["protocol"] = protocol
    result["arc"] = report
    return result
