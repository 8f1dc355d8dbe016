"""Learning, for real, on DeepCoder: a tiny TRM learns a tiny program set (six one-statement programs)
from generated examples and then writes programs that verify far more often than the same network untrained.

The program set is small on purpose: the test must learn in about a minute on 2 cores, so its programs are
told apart by token identity and sign (Head, Last, Reverse, Filter, negation), not arithmetic, which a tiny
network learns far more slowly (Sort/Map (*2)/Map (+1) reached 0.29 in 800 steps). What it checks is
the whole path the `deepcoder` preset uses (encoding, labels on the program cells only, training, decoding the
predicted cells into a program and running it on the examples), with a score that an untrained or broken
model cannot reach: a program counts only when it reproduces all three examples.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from recursia.config import build_config
from recursia.dataset import Dataset, write_dataset
from recursia.evaluate import evaluate_dataset
from recursia.model import TaskSpec, build_model
from recursia.solve import Solver
from recursia.tasks import deepcoder as D
from recursia.tasks import get_task
from recursia.tasks.deepcoder_solve import solve_tasks
from recursia.train import train

PROGRAMS = [D.parse_program(f"x0 = INPUT | x1 = {s} x0") for s in
            ("Head", "Last", "Reverse", "Filter (>0)", "Filter (<0)", "Map (*(-1))")]


def _tasks(count: int, seed: int) -> list[D.DeepCoderTask]:
    """Random lists of 2-5 ints in [-9, 9], three examples per task, one of the six programs; a task whose
    output is the input on every example is drawn again (the empty program would solve it)."""
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        program = rng.choice(PROGRAMS)
        ins = tuple((tuple(rng.randint(-9, 9) for _ in range(rng.randint(2, 5))),) for _ in range(3))
        outs = tuple(D.run_program(program, ex) for ex in ins)
        if all(o == ex[0] for o, ex in zip(outs, ins)):
            continue
        out.append(D.DeepCoderTask(ins, outs, program, len(out)))
    return out


@pytest.mark.slow
def test_tiny_trm_learns_a_tiny_program_set(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, "deepcoder", D.SEQ_LEN, D.VOCAB_SIZE,
                  {"train": D._split(_tasks(3000, 0)), "test": D._split(_tasks(200, 1))}, {"command": "test"})
    cfg = build_config("deepcoder", [f"data.dir={data}", "model.hidden_size=64", "model.n=1", "model.N_sup=2",
                                     "train.global_batch_size=32", "train.steps=500", "train.lr=3e-3",
                                     "train.lr_warmup_steps=20", "train.log_every=100",
                                     "train.weight_decay=0.1",
                                     # the thresholds below were measured in fp32 at this seed; where `auto`
                                     # trains in bf16, this run's rounding, and its score, would differ (over
                                     # seeds 0-2 both dtypes scored 0.34-0.53, docs/benchmarks.md, bf16)
                                     "model.forward_dtype=float32"])
    result = train(cfg, tmp_path / "run", progress=False)
    trained = result["eval"]["all_steps"]["verified"]
    torch.manual_seed(0)
    untrained = build_model(cfg.model, TaskSpec(D.SEQ_LEN, D.VOCAB_SIZE, 1)).eval()
    before = evaluate_dataset(untrained, Dataset(data), "test", progress=False)["all_steps"]["verified"]
    # no single program solves more than 0.215 of these tests: beating it by far needs reading the examples
    best_constant = max(np.mean([D.solves(p, t.inputs, t.outputs) for t in _tasks(200, 1)]) for p in PROGRAMS)
    assert before == 0.0 and best_constant < 0.25
    assert trained >= 0.4 and trained >= best_constant + 0.15, (before, best_constant, trained)  # measured 0.525

    # the same model through `recursia solve`'s path: verified halting stops early and keeps the score
    from recursia.checkpoint import load_model

    model, _, _ = load_model(tmp_path / "run", torch.device("cpu"))
    summary = solve_tasks(Solver(model.eval(), get_task("deepcoder")), _tasks(100, 2))
    assert summary["solve_rate"] >= 0.3 and summary["mean_steps"] <= 2
    solved = [r for r in summary["records"] if r["solved"]]
    assert all(D.solves(D.parse_program(r["program"]), t.inputs, t.outputs)
               for r, t in zip(summary["records"], _tasks(100, 2)) if r["solved"]) and solved
    assert np.isclose(summary["by_length"]["1"]["solve_rate"], summary["solve_rate"])
