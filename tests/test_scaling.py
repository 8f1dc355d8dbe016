"""Test-time scaling: perturbed copies map back exactly under every transform, a checked answer is never traded
for an unchecked one, a puzzle's copies stop together once one verifies, and the bundled Sudoku model solves
more puzzles with more copies (fresh generator puzzles; no shared data needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import recursia
from recursia.errors import ConfigError
from recursia.halting import HaltRule
from recursia.solve import Solver, choose
from recursia.tasks import get_task, maze, sudoku


def test_sudoku_copies_map_back_under_every_kind_of_transform():
    recs = sudoku.generate(6, seed=31, blanks=45)
    copies, undo = sudoku.perturb(recs.questions, 12, seed=0)
    assert (copies[::12] == recs.questions).all()  # copy 0 is the puzzle as given
    assert (copies != np.repeat(recs.questions, 12, 0)).any(1).sum() == 6 * 11  # the others are not
    # each copy is a puzzle in its own right: solve it exactly, map the solution back, get the puzzle's solution
    solved = np.stack([sudoku.solve(g).solutions[0] for g in copies])
    assert (undo(solved) == np.repeat(recs.answers, 12, 0)).all()
    assert (undo(copies) == np.repeat(recs.questions, 12, 0)).all()
    rows = np.array([5, 13, 70])
    assert (undo(solved[rows], rows) == np.repeat(recs.answers, 12, 0)[rows]).all()
    # per-cell values (confidences) move with their cells and keep their values: the blanks' places come back
    blanks = undo((copies == 0).astype(np.float32), digits=False)
    assert blanks.dtype == np.float32 and (blanks == np.repeat(recs.questions == 0, 12, 0)).all()
    # undo inverts apply for transforms with and without the transpose
    t = sudoku.random_transforms(np.random.default_rng(0), 60)
    assert t.transpose.any() and not t.transpose.all()
    g = np.repeat(recs.answers, 10, 0)
    assert (sudoku.undo_transforms(sudoku.apply_transforms(g, t), t) == g).all()
    # copy k depends on the puzzle, k and the seed only: fewer copies are a prefix, another batch the same
    fewer, _ = sudoku.perturb(recs.questions[3:5], 5, seed=0)
    assert (fewer.reshape(2, 5, 81) == copies.reshape(6, 12, 81)[3:5, :5]).all()
    assert not (sudoku.perturb(recs.questions, 12, seed=1)[0] == copies).all()


def test_maze_copies_map_back_under_all_eight_symmetries():
    m = maze.generate(2, seed=3, min_path=20)
    copies, undo = maze.perturb(m.questions, 8)
    assert (copies[::8] == m.questions).all()
    assert len({c.tobytes() for c in copies[:8]}) == 8  # eight distinct views of one maze
    back = undo(np.stack([maze.bfs_label(g) for g in copies]))
    for q, a in zip(np.repeat(m.questions, 8, 0), back):
        assert maze.check_path(q, a) == []  # a shortest path of the copy is one of the maze
    assert (undo(copies) == np.repeat(m.questions, 8, 0)).all()
    with pytest.raises(ConfigError, match="8 symmetries"):
        maze.perturb(m.questions, 9)


def test_a_verified_candidate_is_never_replaced_by_an_unverified_one():
    wrong, right = np.zeros(81, np.uint8), np.ones(81, np.uint8)
    answers = [wrong, wrong, wrong, right]
    assert choose(answers, [False, False, False, True], "verified") == (3, 1)  # outvoted 3 to 1, still kept
    assert choose(answers, [False, False, False, True], "vote") == (0, 3)  # a vote alone would lose it
    assert choose([wrong, right, right], [False, False, False], "verified") == (1, 2)  # none checks: the vote
    assert choose([wrong, right], [False, False], "vote") == (0, 1)  # ties go to the earliest


@pytest.fixture(scope="module")
def solver():
    torch.set_num_threads(1)
    return recursia.load("sudoku", device="cpu")


def test_copies_stop_together_and_every_answer_is_checked_in_the_puzzles_frame(solver):
    grids = list(sudoku.generate(6, seed=9358, blanks=58, method="search").questions)
    for r in solver.solve_batch(grids, perturb=4, seed=1):
        assert r.valid == (sudoku.check_answer(r.question, r.answer) == [])
        assert (r.answer[r.question != 0] == r.question[r.question != 0]).all()
        if r.valid:  # the copies stopped at the step where the first verified: 4 copies x that many steps
            assert r.applications == 4 * r.steps and 0 <= r.copy < 4
        assert len(r.trajectory) == r.steps and np.array_equal(r.trajectory[-1], r.answer)
    full = solver.solve_batch(grids[:2], HaltRule(), perturb=3, steps=5)
    assert [r.applications for r in full] == [15, 15]  # 'all': every copy runs every step asked for


def test_the_bundled_model_solves_more_with_more_copies(solver):
    """Measured 2026-12-07 on these 24 puzzles (58 blanks): 18 solved alone, 24 with 8 copies."""
    grids = list(sudoku.generate(24, seed=9258, blanks=58, method="search").questions)
    one = sum(r.valid for r in solver.solve_batch(grids))
    eight = solver.solve_batch(grids, perturb=8)
    assert sum(r.valid for r in eight) >= max(one + 3, 22)
    assert all(r.applications <= 8 * solver.model.cfg.N_sup for r in eight)


def test_an_ensemble_tries_its_next_model_only_where_the_first_found_nothing(solver):
    two = Solver(solver.model, solver.task, (solver.model,))
    grids = list(sudoku.generate(8, seed=9258, blanks=58, method="search").questions)
    alone, both = solver.solve_batch(grids), two.solve_batch(grids)
    for a, b in zip(alone, both):
        assert b.valid == a.valid and b.model == 0  # the same weights twice find nothing new
        assert b.applications == a.applications * (1 if a.valid else 2)


def test_tasks_without_symmetries_refuse_perturbation_and_cli_reports_compute():
    dc = Solver(recursia.load("sudoku", device="cpu").model, get_task("deepcoder"))
    with pytest.raises(ConfigError, match="no symmetries"):
        dc.solve_batch([np.zeros(get_task("deepcoder").seq_len, np.uint8)], perturb=2)
    puzzle = "".join(map(str, sudoku.generate(1, seed=9358, blanks=50, method="search").questions[0]))
    out = subprocess.run([sys.executable, "-m", "recursia", "solve", "sudoku", puzzle, "--perturb", "4"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "copy" in out.stdout and "network applications" in out.stdout and "compute:" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "recursia", "solve", "sudoku", puzzle, "--select", "best"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "'verified'" in bad.stderr and "Traceback" not in bad.stderr


def test_eval_scores_what_solve_answers_with_perturbation(tmp_path, solver):
    """`recursia eval --perturb` gives the accuracy and compute of `solve --perturb` on a data set's test split."""
    import json

    run = [sys.executable, "-m", "recursia"]
    data = tmp_path / "d"
    subprocess.run(run + ["data", "generate", "sudoku", "--out", str(data), "--count", "2", "--test-count", "10",
                          "--blanks", "58", "--method", "search", "--seed", "77", "--augment", "0"],
                   check=True, capture_output=True)
    out = subprocess.run(run + ["eval", "sudoku", "--data", str(data), "--perturb", "4", "--quiet", "--json",
                                str(tmp_path / "e.json")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "e.json").read_text())
    from recursia.dataset import Dataset

    split = Dataset(data).split("test")
    grids = list(solver.task.decode(np.asarray(split.inputs)))
    direct = solver.solve_batch(grids, perturb=4)
    labels = solver.task.decode(np.asarray(split.labels))
    assert result["exact_accuracy"] == np.mean([np.array_equal(r.answer, a) for r, a in zip(direct, labels)])
    assert result["applications_mean"] == np.mean([r.applications for r in direct])
    assert result["scaling"]["perturb"] == 4 and "network applications per puzzle" in out.stdout
    bad = subprocess.run(run + ["eval", "sudoku", "--data", str(data), "--perturb", "2", "--halting-sweep"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "--halting-sweep" in bad.stderr and "Traceback" not in bad.stderr


def test_solve_uses_the_models_own_default_copies_and_checks_them(tmp_path, solver):
    """`recursia solve sudoku` without --perturb makes the copies the bundled model's meta.json names; a
    checkpoint that names an impossible count is refused with the file and the fix, not a traceback."""
    import json
    import shutil

    src = Path(recursia.__file__).parent / "pretrained" / "sudoku"
    meta = json.loads((src / "meta.json").read_text())
    assert solver.default_perturb == meta["solve"]["perturb"] > 1 and solver.default_budget == meta["solve"]["budget"]
    puzzle = "".join(map(str, sudoku.generate(1, seed=9358, blanks=58, method="search").questions[0]))
    assert solver.solve(puzzle, perturb=meta["solve"]["perturb"]).valid  # checked in round 1: no budget rounds
    out = subprocess.run([sys.executable, "-m", "recursia", "solve", "sudoku", puzzle, "--json"],
                         capture_output=True, text=True)
    want = solver.solve(puzzle, perturb=meta["solve"]["perturb"]).to_json()
    got = json.loads(out.stdout.splitlines()[0])
    assert got["answer"] == want["answer"] and got["applications"] == want["applications"]
    one = json.loads(subprocess.run([sys.executable, "-m", "recursia", "solve", "sudoku", puzzle, "--json",
                                     "--perturb", "1"], capture_output=True, text=True).stdout.splitlines()[0])
    assert one["applications"] == solver.solve(puzzle).applications
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    (bad / "meta.json").write_text(json.dumps({**meta, "solve": {"perturb": 0}}))
    with pytest.raises(ConfigError, match="solve.perturb is 0"):
        Solver.load(bad, device="cpu")
    (bad / "meta.json").write_text(json.dumps({**meta, "solve": {"perturb": 8, "budget": "1s"}}))
    with pytest.raises(ConfigError, match="solve.budget is '1s'"):
        Solver.load(bad, device="cpu")


def test_a_budget_adds_fresh_copies_in_rounds_until_the_time_is_spent(solver):
    """--budget: round 1 is the P copies, then puzzles without a checked answer get copies P..2P-1, and so on,
    while the time fits. A clock that ticks one second per round makes the number of rounds exact."""
    grids = list(sudoku.generate(24, seed=9258, blanks=58, method="search").questions)
    rounds = []
    batch = solver.solve_batch

    def counting(*a, **k):
        rounds.append(k.get("first_copy", 0))
        return batch(*a, **k)

    timed = Solver(solver.model, solver.task)
    timed.solve_batch = counting
    first = solver.solve_batch(grids)
    two = timed.solve_within(grids, 2.0 / len(grids), clock=lambda: float(len(rounds)))
    assert rounds == [0, 1]  # 1 s for round 1, then 1 + (a share of 1 s) fits in 2 s; a third does not
    assert sum(r.valid for r in two) > sum(r.valid for r in first)  # measured 2026-12-07: 18 -> 21
    for a, b in zip(first, two):
        assert b.valid == (sudoku.check_answer(b.question, b.answer) == [])
        if a.valid:  # a checked answer from round 1 is kept as it was
            assert b.copy == 0 and np.array_equal(a.answer, b.answer) and b.applications == a.applications
        else:  # round 2 ran copy 1 only, on the puzzles round 1 left
            assert b.applications > a.applications and (not b.valid or b.copy == 1)
    del rounds[:]
    assert sum(r.valid for r in timed.solve_within(grids, 1.0 / len(grids), clock=lambda: float(len(rounds)))) \
        == sum(r.valid for r in first) and rounds == [0]  # no time left for a second round
    with pytest.raises(ConfigError, match="--budget"):
        solver.solve_within(grids, 0)


def test_solve_budget_on_the_command_line():
    puzzle = "".join(map(str, sudoku.generate(1, seed=9358, blanks=58, method="search").questions[0]))
    out = subprocess.run([sys.executable, "-m", "recursia", "solve", "sudoku", puzzle, "--budget", "2",
                          "--perturb", "2"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "copy" in out.stdout and "compute:" in out.stdout
    for bad, why in ((["--budget", "-1"], "--budget -1"), (["--budget", "1", "--select", "vote"], "--budget 0"),
                     (["--select", "best"], "'verified'")):
        err = subprocess.run([sys.executable, "-m", "recursia", "solve", "sudoku", puzzle, *bad],
                             capture_output=True, text=True)
        assert err.returncode != 0 and why in err.stderr and "Traceback" not in err.stderr
