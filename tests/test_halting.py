"""Inference-time halting: rule parsing, where each rule stops, the batched fast path, and the sweep in eval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recursia.dataset import Dataset
from recursia.errors import ConfigError
from recursia.evaluate import evaluate
from recursia.halting import HaltRule, run, stop_steps
from recursia.model import TaskSpec, build_model
from recursia.solve import Solver
from recursia.supervision import Rollout, rollout
from recursia.tasks import get_task
from recursia.tasks.sudoku_data import generate_sudoku_dataset

from conftest import tiny_model_config


def test_parse_and_describe() -> None:
    assert HaltRule.parse("all") == HaltRule()
    rule = HaltRule.parse("confidence=0.9, stable=2")
    assert rule == HaltRule(confidence=0.9, stable=2) and str(rule) == "confidence=0.9,stable=2"
    assert HaltRule.parse(str(HaltRule(learned=True, stable=1))) == HaltRule(learned=True, stable=1)
    for bad in ("confidence=1.5", "stable=0", "stable=two", "fast", "learned=1"):
        with pytest.raises(ConfigError, match="halting rule"):
            HaltRule.parse(bad)


def test_stop_steps_on_a_known_record() -> None:
    # three examples, five steps; answers as one token each, q_halt logits chosen per step
    answers = [[1, 5, 7], [2, 5, 7], [2, 5, 8], [2, 6, 8], [2, 6, 8]]
    q = [[-3.0, -3.0, 3.0], [-3.0, 0.5, 3.0], [3.0, 0.5, 3.0], [3.0, 3.0, 3.0], [3.0, 3.0, 3.0]]
    rec = Rollout([torch.tensor(a).view(3, 1) for a in answers], [torch.ones(3, 1)] * 5,
                  [torch.tensor(v) for v in q], [None] * 5, [torch.tensor(v) > 0 for v in q])
    assert stop_steps(HaltRule(), rec).tolist() == [4, 4, 4]
    assert stop_steps(HaltRule(stable=1), rec).tolist() == [2, 1, 1]  # first step equal to the one before
    assert stop_steps(HaltRule(stable=2), rec).tolist() == [3, 2, 4]
    assert stop_steps(HaltRule(learned=True), rec).tolist() == [2, 1, 0]
    assert stop_steps(HaltRule(confidence=0.9), rec).tolist() == [2, 3, 0]  # sigmoid(3) = 0.95, sigmoid(.5) = .62
    assert stop_steps(HaltRule(confidence=0.9, stable=1), rec).tolist() == [2, 1, 0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("halting") / "d"
    generate_sudoku_dataset(out, train_count=8, test_count=24, blanks=20, min_rounds=1, augmentations=0, seed=3)
    return Dataset(out)


def random_model(data: Dataset, halting: str = "halt"):
    """A random network whose halting head fires at different steps for different puzzles: random Q weights,
    and biases that put the median Q value over the test rollout at 0."""
    torch.manual_seed(1)
    model = build_model(tiny_model_config(N_sup=6, halting=halting, puzzle_emb_len=1), TaskSpec(81, 11, 1)).eval()
    rows = data.split("test").rows(np.arange(len(data.split("test"))))
    with torch.no_grad():
        model.q_head.weight.normal_(0, 1.0)
        model.q_head.bias.zero_()
        rec = rollout(model, torch.from_numpy(rows["inputs"]), torch.from_numpy(rows["puzzle_ids"]))
        model.q_head.bias[0] = -torch.stack(rec.q_halt).median()
        if halting == "qlearn":
            model.q_head.bias[1] = -torch.stack(rec.q_continue).median()
    return model


@pytest.mark.parametrize("rule", ["learned", "confidence=0.6", "stable=1", "stable=2,confidence=0.7", "all"])
def test_batched_run_matches_the_full_rollout(data, rule) -> None:
    """Dropping stopped puzzles from the batch must not change any puzzle's answers or stopping step."""
    model = random_model(data, "qlearn" if rule == "learned" else "halt")
    split = data.split("test")
    rows = split.rows(np.arange(len(split)))
    inputs, pids = torch.from_numpy(rows["inputs"]), torch.from_numpy(rows["puzzle_ids"])
    halt = HaltRule.parse(rule)
    full = rollout(model, inputs, pids)
    expected = stop_steps(halt, full)
    rec, stopped = run(model, inputs, pids, halt)
    assert torch.equal(stopped, expected)
    if rule != "all":
        assert len(set(expected.tolist())) > 1  # the case is not trivial: puzzles stop at different steps
    for b in range(len(split)):
        s = int(stopped[b])
        assert torch.equal(rec.predictions[s][b], full.predictions[s][b])
        assert torch.allclose(rec.confidence[s][b], full.confidence[s][b], atol=1e-5)
        assert torch.equal(rec.predictions[-1][b], full.predictions[s][b])  # a stopped puzzle keeps its answer


def test_sweep_in_evaluate_agrees_with_the_standard_readings(data) -> None:
    model = random_model(data)
    rules = [HaltRule(), HaltRule(learned=True), HaltRule(stable=1)]
    r = evaluate(model, data.split("test"), batch_size=10, progress=False, halt_rules=rules)
    sweep = {row["rule"]: row for row in r["halting_tradeoff"]}
    assert sweep["all"]["exact_accuracy"] == r["all_steps"]["exact_accuracy"] and sweep["all"]["mean_steps"] == 6
    assert sweep["learned"]["exact_accuracy"] == pytest.approx(r["early_halting"]["exact_accuracy"])
    assert sweep["learned"]["mean_steps"] == pytest.approx(r["early_halting"]["mean_steps"])
    assert 1 < sweep["stable=1"]["mean_steps"] <= 6


def test_solver_reports_the_trajectory(data) -> None:
    model = random_model(data)
    solver = Solver(model, get_task("sudoku"))
    grid = get_task("sudoku").decode(np.asarray(data.split("test").inputs[:1]))[0]
    puzzle = "".join(str(int(v)) for v in grid.ravel())
    r = solver.solve(puzzle, HaltRule(stable=1))
    assert r.steps == len(r.trajectory) == len(r.confidence) == len(r.halt_confidences) <= 6
    assert np.array_equal(r.trajectory[-1], r.answer) and r.confidence[0].shape == r.answer.shape
    assert 0 < r.confidence[-1].min() and r.confidence[-1].max() <= 1
    assert r.halt_confidence == r.halt_confidences[-1]
    with pytest.raises(ConfigError, match="halting head"):
        Solver(build_model(tiny_model_config(halting="fixed"), TaskSpec(81, 11, 1)), get_task("sudoku")).solve(
            puzzle, HaltRule(confidence=0.9))
