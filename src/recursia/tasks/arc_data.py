"""ARC-AGI data sets on disk, under one of two protocols, named in the manifest and in every report.

- `reference` (the papers): the training split holds every pair of the training tasks (ARC-AGI training,
  ConceptARC) and the demonstration pairs of the evaluation tasks; the test split holds the evaluation tasks'
  test inputs. Every task version has its own puzzle identifier, so an evaluation task's test input is answered
  with an embedding trained on that task's demonstrations: test-time training folded into training.
- `heldout`: evaluation tasks never appear in training. Their demonstration pairs go to an `adapt` split, and
  evaluation first fits only their embeddings on them with the network frozen (`recursia.adapt`).

Each task gets up to `versions` extra versions: a dihedral transform and a permutation of colours 1-9, the same
for every grid of the task, duplicates rejected. Training pairs are also translated at random inside the 30x30
canvas. Arrays are filled in place (memory maps), so ARC-AGI-1 with 1000 versions (~4M pairs, ~7 GB) needs no
more memory than one task at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..dataset import DatasetWriter, file_digest
from ..errors import DataError
from ..progress import bar as progress_bar
from . import arc

PROTOCOLS = ("reference", "heldout")


def is_evaluation(task: arc.ArcTask) -> bool:
    return task.source.rsplit("/", 1)[-1].startswith("evaluation")


def check_leaks(train: list[arc.ArcTask], evaluation: list[arc.ArcTask]) -> tuple[list[arc.ArcTask], dict]:
    """Refuse a build whose training tasks systematically contain the evaluation tasks; drop isolated copies.

    ARC-AGI-2's training set contains 376 of ARC-AGI-1's evaluation tasks, so training on it and evaluating
    on ARC-AGI-1 evaluation scores memory, not reasoning: refused. An isolated duplicate (ARC-AGI-1 training
    40853293 is evaluation task 070dd51e) is removed from training and reported in the manifest.
    """
    overlaps = arc.find_overlaps(train, evaluation)
    if not overlaps:
        return train, {}
    train_sources = sorted({t.source for t in train if t.task_id in overlaps})
    eval_sources = sorted({t.source for t in evaluation})
    if ("arc-agi-2/training" in train_sources and "arc-agi-1/evaluation" in eval_sources) \
            or len(overlaps) > max(2, 0.05 * len(evaluation)):
        raise DataError(
            f"refusing to build: {len(overlaps)} training tasks (from {', '.join(train_sources)}) are copies of "
            f"evaluation tasks (from {', '.join(eval_sources)}), e.g. {next(iter(overlaps))} = "
            f"{overlaps[next(iter(overlaps))][0]}. The model would be scored on answers it was trained on. "
            "ARC-AGI-2 training contains 376 ARC-AGI-1 evaluation tasks: evaluate it on ARC-AGI-2 evaluation "
            "(--source .../arc-agi-2), or train on ARC-AGI-1 training to evaluate on ARC-AGI-1 evaluation.")
    kept = [t for t in train if t.task_id not in overlaps]
    return kept, {"dropped_training_tasks": {k: v for k, v in sorted(overlaps.items())}}


def _pairs(task: arc.ArcTask, role: str) -> tuple[list, list]:
    """(pairs for training or adaptation, pairs for the test split) of one task."""
    if role == "train":
        return list(task.train) + [(i, o) for i, o in task.test if o is not None], []
    return list(task.train), list(task.test)


def build_arc_dataset(sources: list[str | Path], out: str | Path, *, protocol: str = "reference",
                      versions: int = 1000, seed: int = 0, translate: bool = True, overwrite: bool = False,
                      progress: bool = True) -> dict[str, Any]:
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose reference or heldout")
    tasks: list[arc.ArcTask] = []
    for s in sources:
        tasks += arc.read_source(s)
    evaluation = [t for t in tasks if is_evaluation(t)]
    train, leak_report = check_leaks([t for t in tasks if not is_evaluation(t)], evaluation)
    if not train:
        raise DataError("no training tasks among the sources; add e.g. --source .../arc-agi-1 (its training/ "
                        "folder) or --source .../concept-arc")
    rng = np.random.default_rng(seed)
    plan = []  # (task, role, versions, fit pairs, test pairs)
    for task in progress_bar(train + evaluation, desc="versions", disable=not progress, leave=False):
        role = "eval" if is_evaluation(task) else "train"
        fit, test = _pairs(task, role)
        plan.append((task, role, arc.make_versions(task, versions, rng), fit, test))
    writer = DatasetWriter(out, overwrite)
    next_id, manifest_tasks, eval_tasks, counts = _write_plan(writer, plan, protocol, rng if translate else None,
                                                              first_id=1, progress=progress)
    build = {"command": "build", "protocol": protocol, "versions": versions, "seed": seed, "translate": translate,
             "sources": [str(s) for s in sources], "examples": counts,
             "source_files": [file_digest(p) for p in map(Path, sources) if p.is_file()]}
    return writer.finish("arc", arc.SEQ_LEN, arc.VOCAB_SIZE, build, num_puzzle_ids=next_id,
                         extra=_arc_manifest(protocol, eval_tasks, manifest_tasks, next_id, leak_report))


def single_task_dataset(task: arc.ArcTask, out: str | Path, versions: int, seed: int, first_id: int,
                        translate: bool = True) -> dict[str, Any]:
    """A heldout-protocol dataset of one new task (adapt split: its demonstrations; test split: its test
    inputs), with puzzle identifiers from `first_id` on: how `recursia solve` meets an unseen ARC task."""
    rng = np.random.default_rng(seed)
    plan = [(task, "eval", arc.make_versions(task, versions, rng), list(task.train), list(task.test))]
    writer = DatasetWriter(out, overwrite=True)
    next_id, manifest_tasks, eval_tasks, counts = _write_plan(writer, plan, "heldout", rng if translate else None,
                                                              first_id=first_id, progress=False)
    return writer.finish("arc", arc.SEQ_LEN, arc.VOCAB_SIZE, {"command": "single task", "examples": counts},
                         num_puzzle_ids=next_id, extra=_arc_manifest("heldout", eval_tasks, manifest_tasks,
                                                                     next_id, {}))


def _arc_manifest(protocol: str, eval_tasks: list[arc.ArcTask], manifest_tasks: list[dict], ids: int,
                  leak_report: dict) -> dict[str, Any]:
    cost = {"ids": ids, "fp32_mb_at_512": round(ids * 512 * 4 / 2**20, 1),
            "bf16_mb_at_512": round(ids * 512 * 2 / 2**20, 1)}
    return {"arc": {
        "protocol": protocol,
        "evaluation_tasks": [{"id": t.task_id, "source": t.source,
                              "test_inputs": [arc.grid_to_list(i) for i, _ in t.test],
                              "test_outputs": [None if o is None else arc.grid_to_list(o) for _, o in t.test]}
                             for t in eval_tasks],
        "tasks": manifest_tasks, "puzzle_embedding_table": cost, **leak_report}}


def _write_plan(writer: DatasetWriter, plan: list, protocol: str, rng: np.random.Generator | None,
                first_id: int, progress: bool) -> tuple[int, list[dict], list[arc.ArcTask], dict[str, int]]:
    """Encode every version of every planned task into the writer's splits (filled in place)."""
    fit_split = {"reference": {"train": "train", "eval": "train"},
                 "heldout": {"train": "train", "eval": "adapt"}}[protocol]
    counts = {"train": 0, "adapt": 0, "test": 0}
    for task, role, vs, fit, test in plan:
        counts[fit_split[role]] += len(vs) * len(fit)
        counts["test"] += len(vs) * len(test)
    arrays = {}
    for split, n in counts.items():
        if n:
            arrays[split] = {"inputs": writer.allocate(split, "inputs", (n, arc.SEQ_LEN), np.uint8),
                             "labels": writer.allocate(split, "labels", (n, arc.SEQ_LEN), np.uint8),
                             "puzzle_ids": np.zeros(n, np.int32), "puzzles": [0], "groups": [0], "fill": 0}
    if counts["test"]:
        t = arrays["test"]
        t.update(task=np.zeros(counts["test"], np.int32), test_index=np.zeros(counts["test"], np.int16),
                 version_t=np.zeros(counts["test"], np.uint8),
                 version_colours=np.zeros((counts["test"], 10), np.uint8))
    next_id, manifest_tasks, eval_tasks = first_id, [], []
    for task, role, vs, fit, test in progress_bar(plan, desc="encode", disable=not progress, leave=False):
        first = next_id
        if role == "eval":
            eval_tasks.append(task)
        for version in vs:
            pid, next_id = next_id, next_id + 1
            moved = version.apply_task(arc.ArcTask(task.task_id, task.source, fit, test))
            _append(arrays[fit_split[role]], moved.train, pid, rng)
            if test:
                a = arrays["test"]
                start = a["fill"]
                _append(a, moved.test, pid, None)
                a["task"][start:a["fill"]] = len(eval_tasks) - 1
                a["test_index"][start:a["fill"]] = np.arange(len(test))
                a["version_t"][start:a["fill"]] = version.t
                a["version_colours"][start:a["fill"]] = version.colours
        for split in {fit_split[role]} | ({"test"} if test else set()):
            arrays[split]["groups"].append(len(arrays[split]["puzzles"]) - 1)
        manifest_tasks.append({"id": task.task_id, "source": task.source, "role": role,
                               "fingerprint": arc.task_fingerprint(task), "versions": len(vs),
                               "puzzle_ids": [first, next_id - 1]})
    for split, a in arrays.items():
        writer.save(split, "puzzle_ids", a["puzzle_ids"])
        writer.save(split, "puzzles", np.array(a["puzzles"], np.int64))
        writer.save(split, "groups", np.array(a["groups"], np.int64))
        if split == "test":
            for key in ("task", "test_index", "version_t", "version_colours"):
                writer.save(split, key, a[key])
        a["inputs"].flush()
        a["labels"].flush()
    return next_id, manifest_tasks, eval_tasks, counts


def _append(a: dict, pairs: list, pid: int, rng: np.random.Generator | None) -> None:
    """Encode `pairs` into split arrays `a` at its fill position, as one puzzle with identifier `pid`."""
    for inp, out in pairs:
        offset = arc.random_offset(rng, inp, out) if rng is not None else (0, 0)
        x, y = arc.encode_grid_pair(inp, out, offset)
        i = a["fill"]
        a["inputs"][i], a["labels"][i], a["puzzle_ids"][i] = x, y, pid
        a["fill"] = i + 1
    if pairs:
        a["puzzles"].append(a["fill"])

