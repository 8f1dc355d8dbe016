"""Seeing the model think: step pictures, the HTML viewer (driven in headless Chromium), plots, solve --watch.

Tiny models are trained for a few steps: the pictures need a model, not a good one. Every check compares the
files with the model's own rollout, so a renderer that drops, repeats or mislabels a step fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from recursia.config import build_config
from recursia.errors import VizError
from recursia.train import train
from recursia.viz import CELL_PX, build_scene, trace_checkpoint, write_visuals

from conftest import REPO

PIL = pytest.importorskip("PIL", reason="the viz tests need Pillow (pip install -e '.[dev]')")
from PIL import Image  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
# Each preset keeps its mixer: MLP for Sudoku (demo), attention for the 900 cells of Maze and ARC (faster there).
SMALL = ["model.hidden_size=32", "model.num_heads=2", "model.expansion=2", "model.T=1", "model.n=1",
         "model.puzzle_emb_len=1", "train.log_every=1", "train.compare_one_pass=false", "log.tensorboard=false"]
N_SUDOKU, N_MAZE, N_ARC = 4, 3, 3


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recursia", *args], capture_output=True, text=True, env=ENV,
                          timeout=300)


@pytest.fixture(scope="module")
def sudoku_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("viz") / "sudoku"
    train(build_config("demo", SMALL + [
        f"model.N_sup={N_SUDOKU}", "model.puzzle_emb_dim=0", "data.generate.train_count=32",
        "data.generate.test_count=8", "data.generate.blanks=12", "data.generate.min_rounds=1", "train.steps=3",
        "train.global_batch_size=8", "train.eval_batch_size=8"]), run, progress=False)
    return run


@pytest.fixture(scope="module")
def maze_run(tmp_path_factory) -> tuple[Path, Path]:
    from recursia.tasks import maze
    from recursia.tasks.maze_data import generate_maze_dataset

    root = tmp_path_factory.mktemp("viz-maze")
    generate_maze_dataset(root / "data", train_count=4, test_count=2, seed=0)
    train(build_config("maze-att", SMALL + [
        f"model.N_sup={N_MAZE}", "model.puzzle_emb_dim=0", f"data.dir={root / 'data'}", "train.steps=2",
        "train.global_batch_size=4", "train.eval_batch_size=4"]), root / "run", progress=False)
    mazes = maze.generate(2, seed=5).questions
    (root / "mazes.txt").write_text("\n\n".join(maze.format_maze(q) for q in mazes) + "\n")
    return root / "run", root / "mazes.txt"


@pytest.fixture(scope="module")
def arc_run(tmp_path_factory) -> tuple[Path, Path]:
    """A model trained on two made-up ARC tasks (mirror each row); eeee0001 is its evaluation task."""
    from recursia.tasks.arc_data import build_arc_dataset

    root = tmp_path_factory.mktemp("viz-arc")
    rng = np.random.default_rng(0)

    def pair() -> dict:
        grid = rng.integers(0, 4, size=(int(rng.integers(2, 5)), int(rng.integers(2, 5)))).tolist()
        return {"input": grid, "output": [row[::-1] for row in grid]}

    for split, name in (("training", "aaaa0001"), ("evaluation", "eeee0001")):
        (root / "src" / split).mkdir(parents=True)
        (root / "src" / split / f"{name}.json").write_text(json.dumps({"train": [pair(), pair()],
                                                                       "test": [pair()]}))
    build_arc_dataset([root / "src"], root / "data", versions=1, progress=False)
    train(build_config("arc1-att", SMALL + [
        f"model.N_sup={N_ARC}", "model.puzzle_emb_dim=32", "model.puzzle_emb_dtype=float32",
        f"data.dir={root / 'data'}", "train.steps=2", "train.global_batch_size=4", "train.eval_batch_size=8"]),
        root / "run", progress=False)
    return root / "run", root / "src" / "evaluation" / "eeee0001.json"


def embedded_scene(html_path: Path) -> dict:
    text = html_path.read_text()
    match = re.search(r'<script type="application/json" id="scene-data">(.*?)</script>', text, re.S)
    assert match, "the viewer embeds its data as JSON"
    return json.loads(match.group(1))


def assert_self_contained(html_path: Path) -> None:
    text = html_path.read_text()
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=|<link\b|@import|url\(", text, re.I)


def colour_present(image: Image.Image, hex_colour: str) -> bool:
    rgb = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return bool((np.asarray(image.convert("RGB")) == rgb).all(-1).any())


# ----------------------------------------------------------------------------------------------------------
def test_sudoku_pictures_follow_the_rollout(sudoku_run, tmp_path):
    trace = trace_checkpoint(sudoku_run, PUZZLE)
    assert trace.n_steps == N_SUDOKU and trace.n_sup == N_SUDOKU
    written = write_visuals(trace, tmp_path / "all")
    assert sorted(p.name for p in written) == ["steps.gif", "steps.png", "viewer.html"]
    strip = Image.open(tmp_path / "all" / "steps.png")
    gif = Image.open(tmp_path / "all" / "steps.gif")
    assert gif.n_frames == N_SUDOKU
    # the strip grows by one equal tile per step, at least a 9x9 grid wide; a GIF frame is a one-step strip
    sizes = {}
    for n in (1, 2):
        write_visuals(trace_checkpoint(sudoku_run, PUZZLE, n_steps=n), tmp_path / f"n{n}")
        sizes[n] = Image.open(tmp_path / f"n{n}" / "steps.png").size
    tile = sizes[2][0] - sizes[1][0]
    assert tile >= 9 * CELL_PX["sudoku"] and strip.size[0] == sizes[1][0] + (N_SUDOKU - 1) * tile
    assert strip.size[1] >= 9 * CELL_PX["sudoku"] and gif.size == sizes[1]
    # changed cells are outlined in the picture exactly when the model changed a cell after step 1
    scene = build_scene(trace)
    changed = any((a != b).any() for a, b in zip(trace.answers, trace.answers[1:]))
    assert colour_present(strip, scene.changed_colour) == changed
    # the viewer is self-contained and embeds every step's actual answer, clues marked bold
    html = tmp_path / "all" / "viewer.html"
    assert_self_contained(html)
    data = embedded_scene(html)
    assert len(data["steps"]) == N_SUDOKU
    clues = np.array([0 if ch == "." else int(ch) for ch in PUZZLE])
    for k, step in enumerate(data["steps"]):
        panel = step["panels"][0]
        assert panel["text"] == [str(v) if v else "" for v in trace.answers[k]]
        assert panel["bold"] == (clues > 0).tolist()
        assert step["halt_prob"] == pytest.approx(trace.halt_prob[k])


def test_maze_pictures_draw_the_predicted_path(maze_run, tmp_path):
    from recursia.tasks import maze

    run, mazes = maze_run
    trace = trace_checkpoint(run, file=mazes, index=2, n_steps=N_MAZE + 2)  # more steps than trained is allowed
    assert trace.n_steps == N_MAZE + 2 and trace.n_sup == N_MAZE
    assert np.array_equal(trace.question, maze.read_mazes(mazes)[1])
    write_visuals(trace, tmp_path)
    assert Image.open(tmp_path / "steps.gif").n_frames == N_MAZE + 2
    assert Image.open(tmp_path / "steps.png").size[0] >= (N_MAZE + 2) * 30 * CELL_PX["maze"]
    assert_self_contained(tmp_path / "viewer.html")
    data = embedded_scene(tmp_path / "viewer.html")
    assert len(data["steps"]) == N_MAZE + 2
    ends = np.isin(trace.question, (maze.START, maze.GOAL))
    for k, step in enumerate(data["steps"]):
        on = ((trace.answers[k] == maze.PATH) | ends).reshape(30, 30)
        segments = step["panels"][0]["segments"]
        assert len(segments) == (on[:, 1:] & on[:, :-1]).sum() + (on[1:] & on[:-1]).sum()  # adjacent pairs
        assert all(on[r1, c1] and on[r2, c2] and abs(r1 - r2) + abs(c1 - c2) == 1 for r1, c1, r2, c2 in segments)


def test_arc_pictures_show_input_prediction_and_answer(arc_run, tmp_path):
    from recursia.tasks import arc

    run, task_file = arc_run
    trace = trace_checkpoint(run, file=task_file)
    by_id = trace_checkpoint(run, "eeee0001")
    task = arc.read_task_file(task_file)
    assert trace.n_steps == N_ARC and np.array_equal(trace.question, task.test[0][0])
    assert np.array_equal(trace.target, task.test[0][1])
    assert by_id.n_steps == N_ARC and all(np.array_equal(a, b) for a, b in zip(trace.answers, by_id.answers))
    write_visuals(trace, tmp_path)
    assert Image.open(tmp_path / "steps.gif").n_frames == N_ARC
    data = embedded_scene(tmp_path / "viewer.html")
    assert [p["title"] for p in data["before"] + data["after"]] == ["input", "known answer"]
    palette = [data["colours"][i] for i in data["before"][0]["fill"]]
    expected = ["#000000", "#0074D9", "#FF4136", "#2ECC40"]
    assert palette == [expected[v] for v in task.test[0][0].reshape(-1)]
    for k, step in enumerate(data["steps"]):
        assert (step["panels"][0]["rows"], step["panels"][0]["cols"]) == trace.answers[k].shape
        assert step["valid"] == (trace.answers[k].shape == task.test[0][1].shape
                                 and bool((trace.answers[k] == task.test[0][1]).all()))
    other = tmp_path / "new.json"
    other.write_text(json.dumps({"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3]]}]}))
    with pytest.raises(VizError, match="not an evaluation task"):
        trace_checkpoint(run, file=other)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class ViewParser(HTMLParser):
    """The rendered step view: its data-step, the cell texts drawn in its step panel, the step label."""

    def __init__(self) -> None:
        super().__init__()
        self.step, self.texts, self.label, self.role, self.cells = None, {}, "", None, 0
        self._cell: str | None = None
        self._in_label = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if a.get("id") == "view":
            self.step = a.get("data-step")
        if a.get("class") == "panel":
            self.role = a.get("data-role")
        if tag == "text" and a.get("class") == "cell-text" and self.role == "step":
            self._cell = a["data-cell"]
        self.cells += tag == "rect" and a.get("class") == "cell" and self.role == "step"
        self._in_label = a.get("id") == "step-label"

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self.texts[int(self._cell)] = data
            self._cell = None
        if self._in_label:
            self.label += data
            self._in_label = False


def test_viewer_renders_each_step_in_headless_chromium(sudoku_run, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("RECURSIA_REQUIRE_BROWSER") == "1":
            pytest.fail("RECURSIA_REQUIRE_BROWSER is set but chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    trace = trace_checkpoint(sudoku_run, PUZZLE)
    write_visuals(trace, tmp_path)
    seen = {}
    for k in (1, 3, N_SUDOKU):
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                                   f"{(tmp_path / 'viewer.html').as_uri()}#step={k}"],
                                  capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        view = ViewParser()
        view.feed(proc.stdout)
        assert view.step == str(k) and view.label.startswith(f"step {k} of {N_SUDOKU}")
        drawn = {i: str(v) for i, v in enumerate(trace.answers[k - 1]) if v}
        assert view.texts == drawn  # the grid at step k is the model's answer after step k
        assert view.cells == 81
        seen[k] = proc.stdout
    assert 'id="halting-chart"' in seen[1] and seen[1] != seen[N_SUDOKU]


def test_viz_command(sudoku_run, tmp_path):
    proc = cli("viz", str(sudoku_run), PUZZLE, "--out", str(tmp_path / "v"))
    assert proc.returncode == 0, proc.stderr
    for name in ("steps.png", "steps.gif", "viewer.html"):
        assert f"wrote {tmp_path / 'v' / name}" in proc.stdout and (tmp_path / "v" / name).is_file()
    bad = cli("viz", str(sudoku_run), PUZZLE[:-1], "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "80 cells, expected 81" in bad.stderr and "Traceback" not in bad.stderr


def test_plot_command(sudoku_run, tmp_path):
    proc = cli("plot", str(sudoku_run), "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    sizes = {}
    for name in ("training.png", "accuracy_by_step.png", "halting_steps.png"):
        assert f"wrote {tmp_path / 'p' / name}" in proc.stdout
        image = Image.open(tmp_path / "p" / name)
        assert image.format == "PNG" and image.size[0] >= 400 and image.size[1] >= 300
        assert len(np.unique(np.asarray(image.convert("L")))) > 2  # axes, text and data, not a blank canvas
        sizes[name] = image.size
    assert sizes["training.png"][1] > sizes["halting_steps.png"][1]  # loss and accuracy, stacked
    missing = cli("plot", str(sudoku_run), "--eval", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr


def test_plot_leaves_out_missing_values_and_refuses_empty_series():
    from recursia.plot import Series, chart, nice_ticks

    ticks = nice_ticks(0.013, 0.87)
    assert ticks[0] <= 0.013 and ticks[-1] >= 0.87 and 3 <= len(ticks) <= 8
    image = chart("t", [Series("a", [1, 2, 3], [float("nan"), 0.5, 0.7], "#FF0000")], "x", "y")
    assert colour_present(image, "#FF0000")
    with pytest.raises(VizError, match="nothing to plot"):
        chart("t", [Series("a", [1, 2], [float("nan"), float("nan")], "#FF0000")], "x", "y")


def test_halting_chart_title_and_top_tick_are_readable():
    from recursia.plot import LEFT, TOP, Series, chart, halting_title

    title = halting_title({"halting": "halt", "early_halting": {"mean_steps": 2.5}})
    assert title == "where halting stops (model.halting=halt, mean 2.50 steps)"  # not "halt halting"
    series = [Series("s", [1.0, 2.0], [0.2, 0.9], "#FF0000")]
    labelled = np.asarray(chart("t", series, "x", "examples", y_range=(0.0, 1.0)))
    bare = np.asarray(chart("t", series, "x", "", y_range=(0.0, 1.0)))
    box = (slice(TOP - 8, TOP + 8), slice(0, LEFT - 2))  # where the top tick's label ("1") is drawn
    assert np.array_equal(labelled[box], bare[box])  # the axis label does not cover it


def test_solve_watch_draws_the_steps_the_solve_runs(sudoku_run):
    """The frames end where the halting rule stops the puzzle (default for Sudoku: verified), then the usual
    output."""
    runs = {}
    for halt in ([], ["--halt", "all"], ["--halt", "confidence=0.001"]):
        proc = cli("solve", str(sudoku_run), PUZZLE, "--watch", *halt)
        assert proc.returncode in (0, 1), proc.stderr  # 1 when the barely trained model's answer is not valid
        out = proc.stdout
        steps = int(re.search(r"puzzle 1: .* after (\d+) step", out).group(1))
        positions = [out.index(f"step {k}/{N_SUDOKU}:") for k in range(1, steps + 1)]
        assert positions == sorted(positions) and positions[-1] < out.index("puzzle 1:")
        assert f"step {steps + 1}/{N_SUDOKU}:" not in out
        assert out.count("------+-------+------") == 2 * (steps + 1)  # a grid per step, then the result's
        assert ("stopped after step" in out) == (steps < N_SUDOKU)
        if not halt:
            plain = cli("solve", str(sudoku_run), PUZZLE)
            timeless = re.compile(r"\d+\.\d+ s for")  # the compute line's wall time differs from run to run
            assert plain.returncode == proc.returncode  # the usual output follows the frames
            assert timeless.sub("T s for", out).endswith(timeless.sub("T s for", plain.stdout))
        runs[" ".join(halt)] = steps
    assert runs["--halt all"] == N_SUDOKU and runs["--halt confidence=0.001"] < N_SUDOKU  # the rule stops it
    both = cli("solve", str(sudoku_run), PUZZLE, "--watch", "--json")
    assert both.returncode == 2 and "--watch" in both.stderr
