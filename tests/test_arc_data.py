"""ARC data sets and evaluation: builders on small subsets, protocols, the leak refusal, voting end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from recursia.config import ModelConfig, build_config
from recursia.dataset import Dataset
from recursia.errors import DataError
from recursia.model import StepOutput, TaskSpec, build_model
from recursia.tasks import arc
from recursia.tasks.arc_data import build_arc_dataset
from recursia.tasks.arc_eval import evaluate_arc

from conftest import need_data


def small_source(tmp_path: Path, n_train: int = 6, n_eval: int = 4) -> Path:
    """A copy of a few ARC-AGI-1 tasks laid out like the real data set (training/ and evaluation/)."""
    root = need_data("arc-agi-1")
    src = tmp_path / "arc-agi-1"
    for split, n in (("training", n_train), ("evaluation", n_eval)):
        (src / split).mkdir(parents=True)
        for f in sorted((root / split).glob("*.json"))[:n]:
            shutil.copy(f, src / split / f.name)
    return src


def test_reference_build_layout(tmp_path):
    src = small_source(tmp_path)
    m = build_arc_dataset([src], tmp_path / "d", versions=2, seed=0, progress=False)
    tasks = arc.read_source(src)
    train = [t for t in tasks if t.source.endswith("training")]
    evaluation = [t for t in tasks if t.source.endswith("evaluation")]
    train_pairs = sum(len(t.train) + len(t.test) for t in train) + sum(len(t.train) for t in evaluation)
    assert m["splits"]["train"]["examples"] == 3 * train_pairs  # the original and 2 versions of each task
    assert m["splits"]["train"]["groups"] == len(tasks)  # one group per task, its versions as puzzles
    assert m["splits"]["test"]["examples"] == 3 * sum(len(t.test) for t in evaluation)
    assert m["arc"]["protocol"] == "reference" and m["num_puzzle_ids"] == 1 + 3 * len(tasks)
    ds = Dataset(tmp_path / "d")
    test = ds.split("test")
    # a test example's puzzle id is the one its task version's demonstrations were trained with
    train_ids = set(np.asarray(ds.split("train").puzzle_ids).tolist())
    assert set(np.asarray(test.puzzle_ids).tolist()) <= train_ids
    # every test example decodes, through its version's inverse, to the original test input
    ev = {t.task_id: t for t in evaluation}
    names = [e["id"] for e in m["arc"]["evaluation_tasks"]]
    for row in range(len(test)):
        version = arc.Version(int(test.extra("version_t")[row]), np.asarray(test.extra("version_colours")[row]))
        grid = version.invert(arc.decode_prediction(np.asarray(test.inputs[row])))
        task = ev[names[int(test.extra("task")[row])]]
        assert np.array_equal(grid, task.test[int(test.extra("test_index")[row])][0])
    again = build_arc_dataset([src], tmp_path / "e", versions=2, seed=0, progress=False)
    assert again["fingerprint"] == m["fingerprint"]  # seeded and reproducible


def test_heldout_protocol_keeps_evaluation_tasks_out_of_training(tmp_path):
    src = small_source(tmp_path)
    m = build_arc_dataset([src], tmp_path / "h", protocol="heldout", versions=1, progress=False)
    ds = Dataset(tmp_path / "h")
    eval_ids = set()
    for t in m["arc"]["tasks"]:
        if t["role"] == "eval":
            eval_ids |= set(range(t["puzzle_ids"][0], t["puzzle_ids"][1] + 1))
    assert not eval_ids & set(np.asarray(ds.split("train").puzzle_ids).tolist())
    assert set(np.asarray(ds.split("adapt").puzzle_ids).tolist()) == eval_ids


def test_refuses_arc_agi_2_training_with_arc_agi_1_evaluation(tmp_path):
    a2 = need_data("arc-agi-2", "training")
    a1 = need_data("arc-agi-1", "evaluation")
    with pytest.raises(DataError) as info:
        build_arc_dataset([a2, a1], tmp_path / "x", versions=0, progress=False)
    message = str(info.value)
    assert "376 training tasks" in message and "ARC-AGI-2 training contains 376" in message
    assert not (tmp_path / "x").exists()


def test_isolated_duplicate_is_dropped_and_reported(tmp_path):
    root = need_data("arc-agi-1")
    src = tmp_path / "arc-agi-1"
    for split, name in (("training", "40853293"), ("training", "007bbfb7"), ("evaluation", "070dd51e")):
        (src / split).mkdir(parents=True, exist_ok=True)
        shutil.copy(root / split / f"{name}.json", src / split)
    m = build_arc_dataset([src], tmp_path / "d", versions=0, progress=False)
    assert m["arc"]["dropped_training_tasks"] == {"40853293": ["070dd51e"]}
    assert [t["id"] for t in m["arc"]["tasks"] if t["role"] == "train"] == ["007bbfb7"]
    # the command line says so too, not only the manifest
    import os
    import subprocess
    import sys

    from conftest import REPO

    proc = subprocess.run([sys.executable, "-m", "recursia", "data", "build", "arc", "--source", str(src), "--out",
                           str(tmp_path / "c"), "--augment", "0"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr
    assert "note: left out 1 training task(s) that copy evaluation tasks: 40853293 (= 070dd51e)" in proc.stdout


class Oracle(nn.Module):
    """Answers every test example with its label (or with a wrong grid): checks the evaluator, not a model."""

    def __init__(self, split, wrong: bool = False, n_sup: int = 2):
        super().__init__()
        self.cfg = ModelConfig(N_sup=n_sup, halting="halt")
        self.embed_tokens = nn.Parameter(torch.zeros(1))
        labels = np.asarray(split.labels)
        self.answer = {bytes(np.asarray(split.inputs[i])): labels[i] for i in range(len(split))}
        self.wrong = wrong

    def initial_state(self, batch):
        return {}

    def forward(self, state, inputs, puzzle_ids):
        labels = np.stack([self.answer[bytes(x)] for x in inputs.numpy().astype(np.uint8)])
        if self.wrong:
            labels = np.where(labels >= 2, (labels - 2 + 1) % 10 + 2, labels)  # every colour shifted by one
        logits = torch.nn.functional.one_hot(torch.from_numpy(labels).long(), 12).float() * 10
        # later versions sound more confident, so a vote that failed to map answers back would pick a wrong one
        q_halt = puzzle_ids.float() * 0.01
        return StepOutput({}, logits, q_halt, torch.zeros(inputs.shape[0]))


def test_evaluator_scores_perfect_and_wrong_predictions(tmp_path):
    src = small_source(tmp_path, n_train=2, n_eval=5)
    build_arc_dataset([src], tmp_path / "d", versions=3, progress=False)
    ds = Dataset(tmp_path / "d")
    perfect = evaluate_arc(Oracle(ds.split("test")), ds, out_dir=tmp_path / "out", progress=False)
    assert perfect["arc"]["pass@1"] == 1.0 and perfect["arc"]["pass@2"] == 1.0
    assert perfect["arc"]["max_votes_per_test_input"] == 4 and perfect["arc"]["tasks"] == 5
    wrong = evaluate_arc(Oracle(ds.split("test"), wrong=True), ds, progress=False)
    assert wrong["arc"]["pass@2"] == 0.0
    again = evaluate_arc(Oracle(ds.split("test")), ds, out_dir=tmp_path / "out", progress=False)
    assert again["arc"] == perfect["arc"]  # votes are cleared: the earlier wrong evaluation left no trace
    sub = json.loads((tmp_path / "out" / "submission-reference.json").read_text())
    tasks = {t.task_id: t for t in arc.read_source(src) if t.source.endswith("evaluation")}
    assert set(sub) == set(tasks)
    for task_id, entries in sub.items():
        assert len(entries) == len(tasks[task_id].test)
        for entry, (_, truth) in zip(entries, tasks[task_id].test):
            assert entry["attempt_1"] == truth.tolist()


def test_arc_model_trains_and_heldout_fitting_touches_only_new_rows(tmp_path):
    from recursia.adapt import fit_embeddings

    src = small_source(tmp_path, n_train=3, n_eval=2)
    build_arc_dataset([src], tmp_path / "h", protocol="heldout", versions=1, progress=False)
    ds = Dataset(tmp_path / "h")
    cfg = build_config("arc1-att", ["model.hidden_size=32", "model.num_heads=2", "model.T=1", "model.n=1",
                                    "model.N_sup=2", "model.puzzle_emb_dim=32", "model.puzzle_emb_len=1",
                                    f"data.dir={tmp_path / 'h'}"])
    model = build_model(cfg.model, TaskSpec(900, 12, ds.manifest["num_puzzle_ids"]))
    weights = {k: v.clone() for k, v in model.state_dict().items() if k != "puzzle_emb.table"}
    fit_embeddings(model, ds.split("adapt"), cfg, steps=3, batch_size=8, progress=False)
    table = model.puzzle_emb.table.float()
    fitted = set(np.asarray(ds.split("adapt").puzzle_ids).tolist())
    assert all(table[i].abs().sum() > 0 for i in fitted)
    assert all(table[i].abs().sum() == 0 for i in range(table.shape[0]) if i not in fitted)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())  # network frozen


@pytest.mark.slow
def test_arc_through_the_command_line(tmp_path, monkeypatch):
    """build -> train -> eval -> solve (a known evaluation task, and a task the model never saw)."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "recursia", *args], capture_output=True, text=True, env=env,
                              timeout=300)

    src = small_source(tmp_path, n_train=3, n_eval=2)
    data, out = tmp_path / "data", tmp_path / "run"
    proc = run("data", "build", "arc", "--source", str(src), "--out", str(data), "--augment", "1")
    assert proc.returncode == 0, proc.stderr
    proc = run("train", "--quiet", "--preset", "arc1-att", "--data", str(data), "--out", str(out),
               "model.hidden_size=32", "model.num_heads=2", "model.T=1", "model.n=1", "model.N_sup=2",
               "model.puzzle_emb_dim=32", "model.puzzle_emb_len=1", "train.steps=3", "train.global_batch_size=8",
               "train.eval_batch_size=8", "train.adapt_steps=2")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "eval.json").read_text())
    assert result["protocol"] == "reference" and "pass@2" in result["arc"]
    assert (out / "submission-reference.json").is_file()
    proc = run("eval", str(out), "--json", str(tmp_path / "e.json"), "--quiet")
    assert proc.returncode == 0 and "ARC (reference protocol): pass@1" in proc.stdout
    known = sorted((src / "evaluation").glob("*.json"))[0]
    proc = run("solve", str(out), "--file", str(known))
    assert proc.returncode in (0, 1) and "reference protocol" in proc.stdout and "attempt 1" in proc.stdout
    new = sorted((need_data("arc-agi-1") / "evaluation").glob("*.json"))[-1]  # not in this model's data
    proc = run("solve", str(out), "--file", str(new), "--versions", "2")
    assert proc.returncode in (0, 1), proc.stderr
    assert "a task new to this model" in proc.stdout and "test input 1:" in proc.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[1]]}]}')
    proc = run("solve", str(out), "--file", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # fitting a new task: its own batch size and step count, and a bar that counts the steps
    proc = run("solve", str(out), "--file", str(new), "--versions", "1", "--adapt-steps", "3",
               "--adapt-batch-size", "2")
    assert proc.returncode in (0, 1), proc.stderr
    assert "(3 steps at batch 2)" in proc.stdout and "fit embeddings (batch 2)" in proc.stderr
    assert "3/3" in proc.stderr
    # by default the batch is at most the task's demonstration examples, not the 768 of the ARC presets
    import dataclasses

    from recursia.checkpoint import load_model
    from recursia.tasks import arc_solve

    seen = []
    monkeypatch.setattr("recursia.adapt.fit_embeddings", lambda m, split, c, steps, batch, *a: seen.append(
        (len(split), batch)))
    model, cfg, _ = load_model(out)
    with pytest.raises(DataError, match="is a directory; pass one task's .json file"):
        arc_solve.solve_task_file(model, cfg, tmp_path, progress=False)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, eval_batch_size=768))
    arc_solve.solve_task_file(model, cfg, new, versions=1, progress=False)
    assert len(seen) == 1 and seen[0][1] == seen[0][0] < 768
