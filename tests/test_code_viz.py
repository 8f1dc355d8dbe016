"""The code viewer (driven in headless Chromium, as tests/test_viz.py drives the puzzle viewer), the report
page, and the learning commands end to end through the CLI."""

from __future__ import annotations

import base64
import io
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

from code_records import attempt, config, real_run, record, solved_at, write_run
from recursia.code.viz import build_steps, write_viewer
from recursia.errors import VizError

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROGRAMS = ["def f(x):\n    return x\n", "def f(x):\n    return x + 2\n",
            "def f(x):\n    # one more\n    return x + 1\n"]


def three_steps() -> dict:
    atts = [attempt(0, PROGRAMS[0], [True, False]),
            attempt(1, PROGRAMS[1], [True, False], diagnosis="off by one: it returns x", calls=3),
            attempt(2, PROGRAMS[2], [True, True], diagnosis="adds 2 instead of 1 <b>", calls=5)]
    return record("mbpp/7", atts, [False, False, True], "pass", depth=3)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recursia", "code", *args], capture_output=True, text=True,
                          env=ENV, timeout=300)


def run_cli(*args: str):
    """In process (the commands' own code, without a new interpreter per call); stdout in .stdout."""
    from typer.testing import CliRunner

    from recursia.cli import app

    result = CliRunner().invoke(app, ["code", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def embedded(path: Path) -> dict:
    m = re.search(r'<script type="application/json" id="steps-data">(.*?)</script>', path.read_text(), re.S)
    assert m, "the viewer embeds its steps as JSON"
    return json.loads(m.group(1))


def test_viewer_steps_follow_the_record(tmp_path):
    run = write_run(tmp_path / "run", config(depth=3), [three_steps()])
    page = write_viewer(run, "mbpp/7", tmp_path / "v")
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and not re.search(r"<(script|img|link)[^>]*\ssrc=", text)
    steps = embedded(page)["steps"]
    assert [s["program"] for s in steps] == PROGRAMS
    assert steps[0]["diff"] == [] and "-    return x" in steps[1]["diff"] and "+    return x + 2" in steps[1]["diff"]
    assert "+    # one more" in steps[2]["diff"]
    assert [s["halt"] for s in steps] == ["continues", "continues", "halted: pass"]
    assert [s["hidden"] for s in steps] == [False, False, True] and steps[2]["submitted"] == 2
    assert [[t["passed"] for t in s["tests"]] for s in steps] == [[True, False], [True, False], [True, True]]
    assert "</b>" not in text.split('id="steps-data">')[1].split("</script>")[0]  # no markup escapes the data
    with pytest.raises(VizError, match="no finished record of 'mbpp/8'"):
        write_viewer(run, "mbpp/8", tmp_path / "v")
    real = build_steps(json.loads((real_run(tmp_path, "he") / "records.jsonl").read_text().splitlines()[0]))
    assert real[-1]["halt"].startswith("halted: stuck") and real[0]["tests"]


class View(HTMLParser):
    """The rendered step: #view's data-step, the texts of #program, #signature, #visible and the test items."""

    def __init__(self) -> None:
        super().__init__()
        self.step, self.text, self.tests, self._in = None, {}, [], None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if a.get("id") == "view":
            self.step = a.get("data-step")
        if a.get("id") in ("program", "signature", "visible", "diagnosis", "halt", "step-label"):
            self._in = a["id"]
            self.text[self._in] = ""
        if tag == "li" and "data-passed" in a:
            self.tests.append(a["data-passed"] == "true")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("pre", "td", "span"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.text[self._in] += data


def test_viewer_slider_shows_each_steps_program_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("RECURSIA_REQUIRE_BROWSER") == "1":
            pytest.fail("RECURSIA_REQUIRE_BROWSER is set but chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    rec = three_steps()
    page = write_viewer(write_run(tmp_path / "run", config(depth=3), [rec]), "mbpp/7", tmp_path / "v")
    for k in (0, 1, 2):
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                                   f"{page.as_uri()}#step={k}"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        view = View()
        view.feed(proc.stdout)
        a = rec["loop"]["attempts"][k]
        assert view.step == str(k) and view.text["step-label"].startswith(f"step {k} of 2")
        assert view.text["program"] == PROGRAMS[k]  # the slider's step shows that step's program
        assert view.text["signature"] == a["signature"]
        assert view.text["visible"] == f"{a['visible_passed']}/{a['visible_total']}"
        assert view.tests == [t["passed"] for t in a["result"]["tests"]]
        assert view.text["halt"] == ("halted: pass" if k == 2 else "continues")
        assert view.text["diagnosis"] == (a["diagnosis"] or "(none at depth 0)")


def test_report_page_and_learning_commands(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="the report needs Pillow (pip install -e '.[dev]')")
    run = real_run(tmp_path, "he")
    proc = run_cli("report", str(run), "--out", str(tmp_path / "r"))
    assert proc.exit_code == 0, proc.output
    page = (tmp_path / "r" / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4 and "https://" not in page
    records = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    assert f"model calls: {sum(r['loop']['calls'] for r in records)} in the loop" in page
    assert f"{len(records)} finished task(s)" in page
    for b in images:
        im = Image.open(io.BytesIO(base64.b64decode(b)))
        assert im.size[0] >= 400 and len(np.unique(np.asarray(im.convert("L")))) > 2  # not a blank canvas
    train = write_run(tmp_path / "train", config(), [solved_at(f"mbpp/{601 + i}", i % 3) for i in range(12)])
    store = tmp_path / "s.sqlite"
    first = run_cli("store", "import", str(train), str(run), "--store", str(store))
    assert first.exit_code == 0, first.output
    assert "12 record(s) added, 0 already" in first.stdout and "3 record(s) added" in first.stdout
    assert "12 record(s) added" not in run_cli("store", "import", str(train), "--store", str(store)).stdout
    stats = run_cli("stats", str(store))
    assert stats.exit_code == 0 and "15 record(s)" in stats.stdout and "benchmark mbpp: 12 tasks" in stats.stdout
    depth = run_cli("depth", str(store), "--out", str(tmp_path / "d.json"))
    assert depth.exit_code == 0, depth.output
    assert "3 other record(s) not used" in depth.stdout and json.loads((tmp_path / "d.json").read_text())["types"]
    skills = run_cli("skills", str(store), "--out", str(tmp_path / "k.json"))
    assert skills.exit_code == 0 and "12 solved record(s) left out (no prompt stored" in skills.stdout
    bad = cli("viz", str(run), "--task", "nope", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "no finished record of 'nope'" in bad.stderr and "Traceback" not in bad.stderr
