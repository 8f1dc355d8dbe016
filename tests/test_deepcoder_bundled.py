"""The bundled DeepCoder model (issue 9 item 6): it ships inside the package, loads by name, and the programs
it writes run. Scores are checked on tasks drawn by the generator with seeds that training never used, and on
the published test file when the public data is present; a program counts only when it reproduces every
example. The thresholds sit below the figures measured on these same tasks (in the comments; the NONE scores are
in docs/models.md), and an untrained network cannot reach them: it solves none."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import recursia
from recursia.checkpoint import PRETRAINED_DIR, read_meta, resolve
from recursia.model import TaskSpec, build_model
from recursia.solve import Solver
from recursia.tasks import deepcoder as D
from recursia.tasks import get_task
from recursia.tasks.deepcoder_solve import solve_tasks

from conftest import need_data

NAME = "deepcoder"


@pytest.fixture(scope="module")
def solver():
    torch.manual_seed(0)
    return recursia.load(NAME, device="cpu")


def test_bundled_model_ships_in_the_package_and_is_small():
    folder = resolve(NAME)
    assert folder == PRETRAINED_DIR / NAME
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size <= 15 * 2**20, size
    meta = read_meta(folder)
    assert meta["task"] == "deepcoder" and meta["config"]["model"]["N_sup"] == 1
    assert meta["config"]["data"]["dir"] is None  # no path of the machine that trained it


def _check_solved(summary, tasks):
    """Every task reported solved has a program that reproduces all its examples."""
    for r, t in zip(summary["records"], tasks):
        if r["solved"]:
            assert D.solves(D.parse_program(r["program"]), t.inputs, t.outputs), r
    return summary["solve_rate"]


# measured 2026-12-01: 0.35, 0.77 and 0.13; the same network untrained solves 0 of each
@pytest.mark.parametrize("length, candidates, at_least", [(1, 1, 0.25), (1, 10, 0.6), (2, 10, 0.05)])
def test_bundled_model_solves_fresh_generated_tasks(solver, length, candidates, at_least):
    tasks = D.generate(60, seed=9000 + length, min_length=length, max_length=length)
    summary = solve_tasks(solver, tasks, candidates=candidates)
    assert _check_solved(summary, tasks) >= at_least, summary["solve_rate"]


def test_an_untrained_network_solves_none_of_them(solver):
    torch.manual_seed(0)
    untrained = Solver(build_model(solver.model.cfg, TaskSpec(D.SEQ_LEN, D.VOCAB_SIZE, 1)).eval(),
                       get_task("deepcoder"))
    tasks = D.generate(60, seed=9001, min_length=1, max_length=1)
    assert solve_tasks(untrained, tasks, candidates=10)["solve_rate"] == 0.0


def test_solve_command_on_the_published_test_file(tmp_path):
    source = need_data("exedec", "deepcoder", "NONE.jsonl")
    few = tmp_path / "few.jsonl"
    few.write_text("".join(source.read_text().splitlines(keepends=True)[:40]))
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-m", "recursia", "solve", NAME, "--file", str(few), "--json", str(out),
                           "--candidates", "10"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    tasks = D.read_tasks(few)
    assert result["tasks"] == 40 and result["candidates"] == 10
    assert _check_solved(result, tasks) >= 0.1  # measured 0.175 (7 of 40: lengths 1 and 2 only)
    assert "solve rate" in proc.stdout
