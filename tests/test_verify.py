"""Execution-verified halting and candidates beyond the argmax: each task's answer check, `--halt verified`
against a full rollout, its composition with `stable`, the refusal for a task without a check, and the k-best
candidate search."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from recursia.dataset import Dataset
from recursia.errors import ConfigError
from recursia.evaluate import evaluate
from recursia.halting import HaltRule, run, stop_steps
from recursia.model import TaskSpec, build_model
from recursia.solve import Solver
from recursia.supervision import rollout
from recursia.tasks import deepcoder as D
from recursia.tasks import get_task, maze
from recursia.tasks.sudoku_data import generate_sudoku_dataset
from recursia.verify import Verifier, k_best

from conftest import tiny_model_config


def test_parse_verified_and_compose() -> None:
    rule = HaltRule.parse("verified,stable=2")
    assert rule == HaltRule(stable=2, verified=True) and HaltRule.parse(str(rule)) == rule
    assert str(HaltRule.parse("verified")) == "verified"
    with pytest.raises(ConfigError, match="halting rule"):
        HaltRule.parse("verified=1")


def _corrupt(rows: np.ndarray, cells: np.ndarray) -> np.ndarray:
    bad = rows.copy()
    bad[np.arange(len(bad)), cells] = np.where(bad[np.arange(len(bad)), cells] == 2, 3, 2)
    return bad


def test_each_task_verifies_its_labels_and_rejects_a_changed_cell(tmp_path) -> None:
    generate_sudoku_dataset(tmp_path / "s", train_count=0, test_count=6, blanks=30, min_rounds=1,
                            augmentations=0, seed=1)
    s = Dataset(tmp_path / "s").split("test").rows(np.arange(6))
    sudoku = get_task("sudoku")
    assert sudoku.verify(s["inputs"], s["labels"]).all()
    blank = np.argmax(s["inputs"] == 1, axis=1)  # a blank cell: changing it breaks a unit, not a clue
    assert not sudoku.verify(s["inputs"], _corrupt(s["labels"], blank)).any()

    m = maze.generate(4, seed=0, min_path=12, wall_range=(150, 250))
    q = np.asarray(m.questions)
    answers = np.stack([maze.bfs_label(x) for x in q])
    assert get_task("maze").verify(q, answers).all()
    on_path = np.argmax(answers == maze.PATH, axis=1)
    cut = answers.copy()
    cut[np.arange(len(cut)), on_path] = maze.OPEN  # one path cell removed: too short, S and G disconnected
    assert not get_task("maze").verify(q, cut).any()

    tasks = D.generate(20, seed=2)
    x, y = D.encode(tasks)
    dc = get_task("deepcoder")
    assert dc.verify(x, y).all() and dc.answer_cells == slice(D.PROGRAM_START, D.SEQ_LEN)
    wrong = y.copy()
    wrong[:, D.PROGRAM_START] = D.EOS  # no statement at all: not a program
    assert not dc.verify(x, wrong).any()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "d"
    generate_sudoku_dataset(out, train_count=8, test_count=32, blanks=20, min_rounds=1, augmentations=0, seed=3)
    return Dataset(out)


def _random_model():
    torch.manual_seed(1)
    model = build_model(tiny_model_config(N_sup=8, halting="halt", puzzle_emb_len=1), TaskSpec(81, 11, 1)).eval()
    with torch.no_grad():
        model.q_head.weight.normal_(0, 1.0)
        model.q_head.bias.zero_()
    return model


def _check(inputs: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """A stand-in answer check that a random network passes at varied steps: the tokens sum to 0 mod 7. The
    halting machinery must not care what the check means."""
    return predictions.astype(np.int64).sum(1) % 7 == 0


def _full(model, data):
    rows = data.split("test").rows(np.arange(len(data.split("test"))))
    inputs, pids = torch.from_numpy(rows["inputs"]), torch.from_numpy(rows["puzzle_ids"])
    full = rollout(model, inputs, pids)
    full.verified = [torch.from_numpy(_check(rows["inputs"], p.numpy())) for p in full.predictions]
    return inputs, pids, full


def test_verified_halting_keeps_the_answer_the_full_rollout_verifies(data) -> None:
    model = _random_model()
    inputs, pids, full = _full(model, data)
    ok = torch.stack(full.verified)  # (S, B)
    rec, stopped = run(model, inputs, pids, HaltRule(verified=True), verifier=Verifier(_check))
    first = torch.where(ok.any(0), ok.double().argmax(0), torch.full_like(stopped, len(ok) - 1))
    assert torch.equal(stopped, first) and torch.equal(stop_steps(HaltRule(verified=True), full), first)
    assert len(set(first.tolist())) > 2 and ok.any(0).sum() < len(first)  # varied, and some never verify
    for b in range(len(stopped)):
        s = int(stopped[b])
        assert torch.equal(rec.predictions[-1][b], full.predictions[s][b])  # the very answer the full run had
        assert bool(rec.verified[-1][b]) == bool(ok[s, b])
        assert int(sum(t[b] for t in rec.tried)) == s + 1  # B = 1: one answer checked per step run


def test_verified_composes_with_stable(data) -> None:
    model = _random_model()
    inputs, pids, full = _full(model, data)
    both = HaltRule.parse("verified,stable=1")
    expected = torch.minimum(stop_steps(HaltRule(verified=True), full), stop_steps(HaltRule(stable=1), full))
    _, stopped = run(model, inputs, pids, both, verifier=Verifier(_check))
    assert torch.equal(stop_steps(both, full), expected) and torch.equal(stopped, expected)
    assert not torch.equal(expected, stop_steps(HaltRule(verified=True), full))  # stable really took part
    assert not torch.equal(expected, stop_steps(HaltRule(stable=1), full))


def test_sweep_in_evaluate_scores_verified_rules(data) -> None:
    model = _random_model()
    _, _, full = _full(model, data)
    rules = [HaltRule(), HaltRule(verified=True)]
    r = evaluate(model, data.split("test"), batch_size=10, progress=False, halt_rules=rules, verify=_check)
    sweep = {row["rule"]: row for row in r["halting_tradeoff"]}
    ok = torch.stack(full.verified)
    assert sweep["verified"]["verified_accuracy"] == pytest.approx(float(ok.any(0).double().mean()))
    assert sweep["all"]["verified_accuracy"] == pytest.approx(float(ok[-1].double().mean()))
    assert r["all_steps"]["verified_by_step"] == pytest.approx(ok.double().mean(1).tolist())
    assert sweep["verified"]["mean_steps"] == pytest.approx(float((stop_steps(rules[1], full) + 1).double().mean()))


def test_verified_is_refused_for_a_task_without_a_check(data) -> None:
    task = dataclasses.replace(get_task("sudoku"), name="nocheck", verify=None)
    with pytest.raises(ConfigError, match="task nocheck has no answer check"):
        Verifier.for_task(task)
    model = _random_model()
    grid = get_task("sudoku").decode(np.asarray(data.split("test").inputs[:1]))[0]
    with pytest.raises(ConfigError, match="no answer check"):
        Solver(model, task).solve(grid, HaltRule(verified=True))
    with pytest.raises(ConfigError, match="no answer check"):
        Solver(model, task).solve(grid, HaltRule(stable=2), candidates=4)
    inputs, pids, _ = _full(model, data)
    with pytest.raises(ConfigError, match="verif"):
        run(model, inputs, pids, HaltRule(verified=True))
    with pytest.raises(ConfigError, match="verify"):
        evaluate(model, data.split("test"), progress=False, halt_rules=[HaltRule(verified=True)])


def test_k_best_is_the_probability_order() -> None:
    torch.manual_seed(0)
    logp = torch.log_softmax(torch.randn(4, 3) * 2, -1).sort(-1, descending=True).values
    every = sorted(itertools.product(range(3), repeat=4),
                   key=lambda r: -sum(float(logp[i, k]) for i, k in enumerate(r)))
    got = k_best(logp, 81)
    assert len(got) == 81 and len({tuple(r) for r in got}) == 81
    score = [sum(float(logp[i, k]) for i, k in enumerate(r)) for r in got]
    assert all(a >= b - 1e-9 for a, b in zip(score, score[1:]))
    assert [tuple(r) for r in got[:10]] == every[:10]


def test_candidates_keep_the_first_answer_that_verifies() -> None:
    # two cells of three tokens; the argmax (0, 0) fails, the best alternatives are (0, 1), then (1, 0)
    logits = torch.log(torch.tensor([[[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]]] * 2))
    pred = logits.argmax(-1)
    inputs = torch.zeros_like(pred)
    target = np.array([[1, 0], [2, 2]])  # row 0 wants the 3rd best answer; row 1 one far down the list

    def per_row(x, p):
        return np.array([(row == target[int(x[k, 0])]).all() for k, row in enumerate(p)])

    inputs[1] = 1
    p, ok, tried = Verifier(per_row, candidates=4)(inputs, logits, pred)
    assert ok.tolist() == [True, False] and tried.tolist() == [3, 4]
    assert p[0].tolist() == [1, 0] and p[1].tolist() == pred[1].tolist()
    p, ok, tried = Verifier(per_row, candidates=1)(inputs, logits, pred)
    assert ok.tolist() == [False, False] and tried.tolist() == [1, 1] and torch.equal(p, pred)
    p, ok, _ = Verifier(per_row, candidates=9)(inputs, logits, pred)
    assert ok.tolist() == [True, True] and p[1].tolist() == [2, 2]


def test_solve_deepcoder_file_writes_records_and_solve_rate(tmp_path) -> None:
    """`recursia solve RUN --file TASKS.jsonl --json OUT.json --candidates B`: one record per task, the summary
    by program length, and `solved` true exactly when the reported program reproduces the task's examples."""
    import json

    from typer.testing import CliRunner

    from recursia.cli import app
    from recursia.config import build_config
    from recursia.train import train

    tasks = D.generate(12, seed=5, max_length=2)
    D.write_tasks(tasks, tmp_path / "tasks.jsonl")
    cfg = build_config("deepcoder", ["data.generate.train_count=20", "data.generate.test_count=0",
                                     "model.hidden_size=32", "model.N_sup=3", "train.steps=2",
                                     "train.global_batch_size=4"])
    train(cfg, tmp_path / "run", progress=False)
    out = tmp_path / "out.json"
    r = CliRunner().invoke(app, ["solve", str(tmp_path / "run"), "--file", str(tmp_path / "tasks.jsonl"),
                                 "--json", str(out), "--candidates", "3", "--halt", "verified,stable=2"])
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    assert result["candidates"] == 3 and result["halt"] == "stable=2,verified" and result["tasks"] == 12
    assert set(result["by_length"]) == {"1", "2"} and sum(g["tasks"] for g in result["by_length"].values()) == 12
    for rec, t in zip(result["records"], tasks):
        assert 1 <= rec["steps"] <= 3 and rec["steps"] <= rec["tried"] <= 3 * rec["steps"] and rec["seconds"] > 0
        program = D.parse_program(rec["program"]) if rec["program"] else None
        assert rec["solved"] == (program is not None and D.solves(program, t.inputs, t.outputs))
    assert result["solve_rate"] == pytest.approx(np.mean([rec["solved"] for rec in result["records"]]))
    bad = CliRunner().invoke(app, ["solve", str(tmp_path / "run"), "--file", str(tmp_path / "tasks.jsonl"),
                                   "extra"])
    assert bad.exit_code != 0
    # an answer keeps the question's examples (only the program cells are the model's), so it always prints
    solver = Solver.load(tmp_path / "run", device="cpu")
    row = D.encode_task(D.DeepCoderTask(tasks[0].inputs, tasks[0].outputs))[0]
    answer = solver.solve(row, HaltRule(verified=True), candidates=2).answer
    assert np.array_equal(answer[:D.PROGRAM_START], row[:D.PROGRAM_START])
    assert solver.task.format(answer).startswith("example 1: ")
