"""The command line, run as a user runs it (subprocesses), including the error paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, need_data

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}
TINY = ["model.hidden_size=32", "model.num_heads=2", "model.expansion=2", "model.T=1", "model.n=2",
        "model.N_sup=3", "train.global_batch_size=16", "train.steps=6", "train.log_every=2",
        "train.compare_one_pass=false", "train.eval_batch_size=32"]
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


def run(*args: str, check: bool = False, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "recursia", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"recursia {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    run("data", "generate", "sudoku", "--out", str(data), "--count", "64", "--test-count", "16",
        "--blanks", "12", check=True)
    out = root / "run"
    run("train", "--quiet", "--data", str(data), "--out", str(out), *TINY, check=True)
    return {"data": data, "run": out}


def test_help_and_presets():
    assert "train" in run("--help", check=True).stdout
    out = run("presets", check=True).stdout
    for name in ("demo", "sudoku-mlp", "sudoku-att", "sudoku-hrm"):
        assert name in out


def test_train_writes_run(trained):
    run_dir = trained["run"]
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "latest").is_file()
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines if "train/loss" in x] == [2, 4, 6]
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["examples"] == 16 and len(result["all_steps"]["exact_accuracy_by_step"]) == 3


def test_eval_prints_and_writes_json(trained, tmp_path):
    out = tmp_path / "eval.json"
    proc = run("eval", str(trained["run"]), "--json", str(out), "--quiet", check=True)
    assert "exact_accuracy" in proc.stdout and "early_halting" in proc.stdout
    result = json.loads(out.read_text())
    for mode in ("all_steps", "early_halting"):
        for key in ("exact_accuracy", "cell_accuracy", "mean_steps", "q_halt_accuracy", "exact_accuracy_by_step"):
            assert key in result[mode]
    assert result["same_data_as_training"] is True
    # --steps runs past the trained N_sup (3): five per-step scores, the first three the same as before
    run("eval", str(trained["run"]), "--json", str(out), "--quiet", "--steps", "5", check=True)
    longer = json.loads(out.read_text())
    by_step = longer["all_steps"]["exact_accuracy_by_step"]
    assert len(by_step) == 5 and longer["N_sup"] == 5
    assert by_step[:3] == result["all_steps"]["exact_accuracy_by_step"]


def test_solve_prints_grid_and_validity(trained):
    proc = run("solve", str(trained["run"]), PUZZLE)
    assert proc.returncode in (0, 1)  # 1 when the (barely trained) model's answer is not a valid Sudoku
    assert "puzzle 1:" in proc.stdout and "step(s)" in proc.stdout
    assert proc.stdout.count("|") >= 18  # the boxed 9x9 grid
    js = run("solve", str(trained["run"]), PUZZLE, "--json")
    record = json.loads(js.stdout.splitlines()[0])
    assert len(record["answer"]) == 81 and isinstance(record["valid"], bool)


def test_solve_halting_rules_and_the_python_api(trained, tmp_path):
    proc = run("solve", str(trained["run"]), PUZZLE, "--halt", "stable=1", "--json")
    assert proc.returncode in (0, 1) and 1 <= json.loads(proc.stdout.splitlines()[0])["steps"] <= 3
    proc = run("solve", str(trained["run"]), PUZZLE, "--halt", "fastest")
    assert proc.returncode == 2 and "halting rule 'fastest'" in proc.stderr
    proc = run("solve", "sudoku-extreme", PUZZLE)
    assert proc.returncode == 2 and "does not ship yet" in proc.stderr
    import recursia

    model = recursia.load(str(trained["run"]), device="cpu")
    r = model.solve(PUZZLE, recursia.HaltRule())
    assert r.steps == 3 == len(r.trajectory) == len(r.confidence) and isinstance(r.valid, bool)
    assert [x.valid for x in model.solve_batch([model.parse(PUZZLE)] * 2)] == [r.valid] * 2
    # a bundled model is found by its name
    bundled = tmp_path / "pretrained"
    shutil.copytree(recursia.checkpoint.resolve(trained["run"]), bundled / "tiny")
    from unittest import mock

    with mock.patch.object(recursia.checkpoint, "PRETRAINED_DIR", bundled):
        assert recursia.checkpoint.pretrained_names() == ["tiny"]
        assert recursia.load("tiny", device="cpu").solve(PUZZLE, recursia.HaltRule()).answer.tolist() == \
            r.answer.tolist()


@pytest.mark.parametrize("puzzle,fragment", [
    (PUZZLE[:-1], "80 cells, expected 81"),
    (PUZZLE[:10] + "x" + PUZZLE[11:], "invalid character 'x'"),
    ("55" + PUZZLE[2:], "contradictory clues"),
])
def test_solve_rejects_bad_puzzles(trained, puzzle, fragment):
    proc = run("solve", str(trained["run"]), puzzle)
    assert proc.returncode == 2
    assert fragment in proc.stderr and "Traceback" not in proc.stderr


def test_solve_from_file(trained, tmp_path):
    f = tmp_path / "puzzles.txt"
    f.write_text(f"# two puzzles\r\n{PUZZLE}\r\n\r\n{PUZZLE.replace('5', '.', 1)}\r\n")
    proc = run("solve", str(trained["run"]), "--file", str(f))
    assert "puzzle 2:" in proc.stdout


@pytest.mark.parametrize("args,fragment", [
    (["train", "--preset", "nope"], "unknown preset"),
    (["train", "model.n=zero"], "should be of type int"),
    (["train", "--data", "/nonexistent/dir", "--preset", "sudoku-mlp"], "does not exist"),
    (["eval", "/nonexistent/run"], "does not exist"),
    (["data", "build", "sudoku", "--source", "/nonexistent", "--out", "/tmp/x"], "no training file"),
])
def test_errors_are_one_line_messages(args, fragment, tmp_path):
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr


def test_build_and_info_real_sudoku(tmp_path):
    src = need_data("sudoku-extreme-1k")
    out = tmp_path / "sudoku"
    run("data", "build", "sudoku", "--source", str(src), "--out", str(out), "--augment", "2", check=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"] == {"examples": 3000, "puzzles": 3000, "groups": 1000, "extras": []}
    assert manifest["splits"]["test"]["examples"] == 1000
    info = run("data", "info", str(out), check=True).stdout
    assert manifest["fingerprint"][:16] in info
    again = tmp_path / "again"  # seeded and reproducible: same fingerprint
    run("data", "build", "sudoku", "--source", str(src), "--out", str(again), "--augment", "2", check=True)
    assert json.loads((again / "manifest.json").read_text())["fingerprint"] == manifest["fingerprint"]
    proc = run("data", "build", "sudoku", "--source", str(src), "--out", str(out), "--augment", "2")
    assert proc.returncode == 2 and "--overwrite" in proc.stderr


def test_bad_csv_row_is_reported_with_line(tmp_path):
    bad = tmp_path / "train.csv"
    good_q = PUZZLE
    bad.write_text("source,question,answer,rating\n,"
                   f"{good_q},{'1' * 81},0\n")
    proc = run("data", "build", "sudoku", "--source", str(bad), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "train.csv:2" in proc.stderr


def run_here(capsys, *args: str) -> tuple[int, str]:
    """`recursia ARGS` inside this process (no start-up cost): the exit status and stderr. An exception other
    than the ones main() turns into messages propagates, so a traceback fails the test."""
    from recursia import cli

    argv = sys.argv
    sys.argv = ["recursia", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


def test_bad_values_and_inputs_get_one_line_messages(trained, tmp_path, capsys):
    """Issue 13, items 6 and 7: each of these was a traceback or a misleading message."""
    run_dir, data = str(trained["run"]), str(trained["data"])
    existing = tmp_path / "picture.png"
    existing.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    maze_file = tmp_path / "maze.txt"
    maze_file.write_text("\n".join(["#" * 30] + ["#S" + " " * 27 + "#"] + ["#" * 28 + "G#"] + ["#" * 30] * 27) + "\n")
    bad_row = tmp_path / "bad.txt"
    bad_row.write_text(PUZZLE + "\n" + "55" + PUZZLE[2:] + "\n")
    torch_file = tmp_path / "model.pt"
    torch_file.write_bytes(b"\x80\x02not a checkpoint")
    cases = [
        (["eval", run_dir, "--batch-size", "0"], "--batch-size must be at least 1"),
        (["eval", run_dir, "--limit", "-5"], "--limit and --steps at least 0"),
        (["eval", run_dir, "--steps", "-1"], "--limit and --steps at least 0"),
        (["data", "build", "sudoku", "--source", data, "--out", str(tmp_path / "a"), "--augment", "-1"],
         "--augment"),
        (["data", "generate", "sudoku", "--out", str(tmp_path / "e"), "--count", "0", "--test-count", "0"],
         "would write an empty dataset"),
        (["viz", run_dir, PUZZLE, "--out", str(existing)], "is a file; pass a folder"),
        (["solve", run_dir, "--file", str(folder)], "is a directory; pass a file"),
        (["solve", run_dir, "--file", str(maze_file)], "probably a maze file"),
        (["eval", str(torch_file)], "is not a Recursia checkpoint (a PyTorch pickle"),
        (["solve", str(torch_file), PUZZLE], "is not a Recursia checkpoint (a PyTorch pickle"),
    ]
    for args, fragment in cases:
        code, err = run_here(capsys, *args)
        assert code == 2 and fragment in err, (args, code, err)
    code, err = run_here(capsys, "solve", run_dir, "--file", str(bad_row))
    assert code == 2 and "bad.txt:2" in err and "skip" not in err  # solve cannot skip rows
    proc = run("eval", run_dir, "--batch-size", "0")  # and as a user runs it: one line, no traceback
    assert proc.returncode == 2 and proc.stderr.startswith("error: --batch-size") and "Traceback" not in proc.stderr
    assert not (tmp_path / "e").exists()


def test_python_solve_checks_arrays_like_text(trained):
    import numpy as np

    import recursia
    from recursia.errors import PuzzleError

    model = recursia.load(str(trained["run"]), device="cpu")
    for grid, fragment in ((np.zeros(80, dtype=int), "80 cells, expected 81"),
                           (np.full(81, 12), "values must be integers 0..9")):
        with pytest.raises(PuzzleError, match=fragment):
            model.solve(grid)


def test_an_empty_training_split_is_named(tmp_path):
    data = tmp_path / "only-test"
    run("data", "generate", "sudoku", "--out", str(data), "--count", "0", "--test-count", "8", "--blanks", "12",
        check=True)
    proc = run("train", "--quiet", "--data", str(data), "--out", str(tmp_path / "r"), *TINY)
    assert proc.returncode == 2 and "the train split of" in proc.stderr and "is empty" in proc.stderr
    assert "ranks" not in proc.stderr


def test_a_run_finds_its_data_from_any_directory(trained, tmp_path):
    """--data is stored absolute; a relative path saved by an older run is reported with the path tried."""
    work = tmp_path / "work"
    shutil.copytree(trained["data"], work / "data")
    proc = subprocess.run([sys.executable, "-m", "recursia", "train", "--quiet", "--data", "data", "--out", "r",
                           *TINY, "train.lr_schedule=constant"], capture_output=True, text=True, env=ENV, cwd=work,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert run("eval", str(work / "r"), "--quiet").returncode == 0  # from the repository, not from `work`
    moved = tmp_path / "moved"
    shutil.move(str(work / "data"), moved)
    proc = run("train", "--quiet", "--resume", str(work / "r"), "train.steps=8")
    assert proc.returncode == 2 and f"looked for {work / 'data'}" in proc.stderr
    assert run("train", "--quiet", "--resume", str(work / "r"), "--data", str(moved), "train.steps=8").returncode == 0
    old = tmp_path / "old"
    shutil.copytree(trained["run"], old)
    meta_path = next(old.glob("checkpoints/step-*/meta.json"))
    meta = json.loads(meta_path.read_text())
    meta["config"]["data"]["dir"] = "data/sudoku-rel"
    meta_path.write_text(json.dumps(meta))
    proc = run("eval", str(old), "--quiet")
    assert proc.returncode == 2 and "sudoku data" in proc.stderr and "a relative path" in proc.stderr
    assert f"looked up as {Path.cwd() / 'data' / 'sudoku-rel'}" in proc.stderr


HARD = "..............3.85..1.2.......5.7.....4...1...9.......5......73..2.1........4...9"  # 17 clues


def test_unsolved_puzzle_says_not_solved_and_shows_only_a_rule_abiding_partial_grid(trained):
    """An untrained model cannot solve a 17-clue puzzle: the output must say so, and the grid it shows is the
    partial grid (clues kept, no repeated digit), never the model's rule-breaking answer."""
    from recursia.tasks.sudoku import check_answer, clue_conflicts, parse_grid

    proc = run("solve", str(trained["run"]), HARD, "--halt", "all")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "puzzle 1: NOT SOLVED after 3 step(s)" in out and "1 of 1 puzzles not solved" in out
    assert "best partial grid" in out and "solved after" not in out.replace("NOT SOLVED after", "")
    grid_lines = out.split("best partial grid")[1].splitlines()[1:12]
    partial = parse_grid("".join(c for line in grid_lines for c in line if c in ".123456789"))
    question = parse_grid(HARD)
    assert clue_conflicts(partial) == [] and ((partial == question) | (question == 0)).all()
    record = json.loads(run("solve", str(trained["run"]), HARD, "--halt", "all", "--json").stdout.splitlines()[0])
    assert record["valid"] is False and check_answer(question, parse_grid(record["answer"]))
    assert parse_grid(record["partial"]).tolist() == partial.tolist()
