"""Maze data sets and the Maze path through train / eval / solve: builders, the evaluator's valid_shortest_path,
and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from recursia.dataset import Dataset
from recursia.evaluate import evaluate
from recursia.supervision import Rollout
from recursia.tasks import get_task
from recursia.tasks import maze as M
from recursia.tasks.maze_data import build_maze_dataset, generate_maze_dataset

from conftest import REPO, need_data

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recursia", *args], capture_output=True, text=True, env=ENV,
                          timeout=300)


def test_build_from_the_official_csv(tmp_path: Path) -> None:
    src = need_data("maze-30x30-hard-1k")
    m = build_maze_dataset(src, tmp_path / "d", generate_test=4)
    assert m["task"] == "maze" and m["seq_len"] == 900 and m["vocab_size"] == 6
    assert m["splits"]["train"]["examples"] == 1000 and m["splits"]["test"]["examples"] == 4
    assert m["build"]["rejected_rows"]["train"] == [] and m["build"]["test"].startswith("generated: 4 mazes")
    ds = Dataset(tmp_path / "d")
    official = M.read_csv(src / "train.csv")
    train = ds.split("train")
    assert np.array_equal(M.decode(np.asarray(train.inputs[:5])), official.questions[:5])
    assert np.array_equal(M.decode(np.asarray(train.labels[:5])), official.answers[:5])
    test_q = M.decode(np.asarray(ds.split("test").inputs))
    assert not {q.tobytes() for q in test_q} & {q.tobytes() for q in official.questions}
    assert M.valid_shortest_path_batch(test_q, M.decode(np.asarray(ds.split("test").labels))).all()
    # seeded: the same command gives the same fingerprint, another seed another test set
    assert build_maze_dataset(src, tmp_path / "e", generate_test=4)["fingerprint"] == m["fingerprint"]
    assert build_maze_dataset(src, tmp_path / "f", generate_test=4, seed=1)["fingerprint"] != m["fingerprint"]


def test_dihedral_build_groups_the_eight_versions(tmp_path: Path) -> None:
    csv = tmp_path / "train.csv"
    recs = M.generate(3, seed=4, goal="far")
    rows = ["source,question,answer,rating"] + [
        f"gen,{''.join(M.CHARS[t - 1] for t in q)},{''.join(M.CHARS[t - 1] for t in a)},{int(r)}"
        for q, a, r in zip(recs.questions, recs.answers, recs.ratings)]
    csv.write_text("\n".join(rows) + "\n")
    m = build_maze_dataset(csv, tmp_path / "d", generate_test=0, dihedral=True)
    assert m["splits"]["train"]["examples"] == 24 and m["splits"]["train"]["groups"] == 3
    assert "test" not in m["splits"]
    train = Dataset(tmp_path / "d").split("train")
    q, a = M.decode(np.asarray(train.inputs)), M.decode(np.asarray(train.labels))
    assert np.array_equal(q[::8], recs.questions)  # version 0 is the maze itself
    assert M.valid_shortest_path_batch(q, a).all() and len({x.tobytes() for x in q}) == 24


def test_generate_dataset_is_disjoint_and_labelled(tmp_path: Path) -> None:
    m = generate_maze_dataset(tmp_path / "g", train_count=6, test_count=3, seed=5)
    ds = Dataset(tmp_path / "g")
    tr, te = (M.decode(np.asarray(ds.split(s).inputs)) for s in ("train", "test"))
    assert len(tr) == 6 and len(te) == 3 and not {q.tobytes() for q in tr} & {q.tobytes() for q in te}
    assert np.array_equal(M.decode(np.asarray(ds.split("test").labels)), M.bfs_label_batch(te))
    assert m["build"]["path_length"]["min"] >= 110


def test_generate_dataset_with_easier_settings(tmp_path: Path) -> None:
    """min_path and wall_range reach the generator: short paths are allowed, walls stay in range."""
    m = generate_maze_dataset(tmp_path / "e", train_count=40, test_count=0, seed=3, min_path=2,
                              wall_range=(100, 120))
    q = M.decode(np.asarray(Dataset(tmp_path / "e").split("train").inputs))
    walls = (q == M.WALL).sum(1)
    assert walls.min() >= 100 and walls.max() <= 120
    assert m["build"]["path_length"]["min"] < 110 and m["build"]["min_path"] == 2


def test_evaluator_reports_valid_shortest_path(tmp_path: Path, monkeypatch) -> None:
    """An alternative shortest path is wrong by exact match but counts as a valid shortest path; a broken one
    counts as neither."""
    generate_maze_dataset(tmp_path / "g", train_count=1, test_count=4, seed=6)
    split = Dataset(tmp_path / "g").split("test")
    qs = M.decode(np.asarray(split.inputs))
    labels = M.decode(np.asarray(split.labels))
    other = M._neighbour_table("URLD")
    preds = labels.copy()
    for i in (0, 1):  # rows 0 and 1: another shortest path (where one exists)
        alt = qs[i].copy()
        alt[M._path_for(qs[i], other)[1:-1]] = M.PATH
        preds[i] = alt
    preds[2, np.nonzero(labels[2] == M.PATH)[0][0]] = M.OPEN  # row 2: broken; row 3: the official answer
    alt_differs = [not np.array_equal(preds[i], labels[i]) for i in (0, 1)]
    tokens = torch.from_numpy(M.encode(preds)[0].astype(np.int64))

    def fake_rollout(model, inputs, puzzle_ids, n_steps=None):
        b = inputs.shape[0]
        p = tokens[:b]
        return Rollout([p], [torch.ones(p.shape)], [None], [None], [None])

    class Stub(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = torch.nn.Parameter(torch.zeros(1))
            self.cfg = type("C", (), {"N_sup": 1, "halting": "fixed"})()

    monkeypatch.setattr("recursia.evaluate.rollout", fake_rollout)
    r = evaluate(Stub(), split, batch_size=8, progress=False, task_metrics=get_task("maze").metrics)
    exact = (2 - sum(alt_differs) + 1) / 4
    assert r["all_steps"]["exact_accuracy"] == exact
    assert r["all_steps"]["valid_shortest_path"] == 0.75 == r["early_halting"]["valid_shortest_path"]


def test_maze_through_the_command_line(tmp_path: Path) -> None:
    """generate -> train (maze-att, shrunk) -> eval -> solve a maze file, and clear errors for bad input."""
    data, out = tmp_path / "data", tmp_path / "run"
    proc = run("data", "generate", "maze", "--out", str(data), "--count", "16", "--test-count", "4", "--seed", "2")
    assert proc.returncode == 0, proc.stderr
    proc = run("train", "--quiet", "--preset", "maze-att", "--data", str(data), "--out", str(out),
               "model.hidden_size=32", "model.num_heads=2", "model.T=1", "model.n=1", "model.N_sup=2",
               "model.puzzle_emb_len=1", "model.puzzle_emb_dim=32", "train.steps=2", "train.global_batch_size=4",
               "train.eval_batch_size=4")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "eval.json").read_text())
    assert result["examples"] == 4 and "valid_shortest_path" in result["all_steps"]
    proc = run("eval", str(out), "--quiet")
    assert proc.returncode == 0 and "valid_shortest_path" in proc.stdout
    mazes = M.generate(2, seed=9, goal="far").questions
    file = tmp_path / "mazes.txt"
    file.write_text(M.format_maze(mazes[0]) + "\n\n" + M.format_maze(mazes[1]) + "\n")
    proc = run("solve", str(out), "--file", str(file), "--json")
    assert proc.returncode in (0, 1), proc.stderr  # 1: an untrained model's answers are not valid
    answers = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(answers) == 2
    bad = tmp_path / "bad.txt"
    bad.write_text(M.format_maze(mazes[0]).replace("G", " ") + "\n")
    proc = run("solve", str(out), "--file", str(bad))
    assert proc.returncode == 2 and "goal" in (proc.stdout + proc.stderr) and "Traceback" not in proc.stderr
