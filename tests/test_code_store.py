"""The attempt store: schema and migration, idempotent import, concurrent writers, SIGKILL at random points."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from code_records import Task, config, real_run, solved_at, write_run
from recursia.code.store import CURRENT, SCHEMA_V1, Store, StoreError

SRC = str(Path(__file__).resolve().parents[1] / "src")
TESTS = str(Path(__file__).resolve().parent)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, TESTS])}


def test_real_records_go_in_with_every_step(tmp_path):
    he, mbpp = real_run(tmp_path, "he"), real_run(tmp_path, "mbpp")
    store = Store(tmp_path / "s.sqlite")
    assert store.version == CURRENT
    assert store.import_run(he) == (3, 0) and store.import_run(mbpp) == (4, 0)
    assert store.import_run(he) == (0, 3)  # importing twice adds nothing
    lines = [json.loads(x) for x in (he / "records.jsonl").read_text().splitlines()]
    rows = store.records()
    assert len(rows) == 7 and store.integrity() == []
    first = rows[0]
    loop = lines[0]["loop"]
    assert (first["task_id"], first["benchmark"], first["split"]) == ("HumanEval/0", "humaneval", "test")
    assert first["steps"] == len(loop["attempts"]) and first["halt_reason"] == loop["halt_reason"]
    assert first["calls"] == loop["calls"] and first["prompt_tokens"] == loop["prompt_tokens"]
    assert first["hidden_by_depth"] == lines[0]["hidden_by_depth"]
    assert first["task_type"] == "humaneval|assert|*"  # no prompt known: topic *
    steps = store.steps(first["record_id"])
    assert [s["program_sha"] for s in steps] == [a["sha"] for a in loop["attempts"]]
    assert [s["signature"] for s in steps] == [a["signature"] for a in loop["attempts"]]
    assert json.loads(steps[0]["visible_results"]) == [t["passed"] for t in loop["attempts"][0]["result"]["tests"]]
    run = store.rows("SELECT backend, model, bench FROM runs ORDER BY run_id")[0]
    assert run == {"backend": "gguf", "model": "Gemma 3 270m", "bench": "humaneval"}
    assert {r["split"] for r in rows if r["benchmark"] == "mbpp"} == {"test"}


def test_task_prompt_gives_the_type_and_bad_input_is_refused(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    task = Task("mbpp/700", "Write a function to reverse the words of a given string.")
    assert store.add_record(config(), solved_at("mbpp/700", 1), task)
    assert store.records()[0]["task_type"] == "mbpp|assert|string"
    assert store.records()[0]["split"] == "train"
    with pytest.raises(StoreError, match="not a `recursia code eval` record"):
        store.add_record(config(), {"task_id": "x"})
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="not an attempt store"):
        Store(other)


def test_an_old_version_store_is_migrated(tmp_path):
    path = tmp_path / "v1.sqlite"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1)
    db.execute("INSERT INTO schema_version VALUES (1, 'then')")
    db.execute("INSERT INTO runs (run_key, bench, backend, config, created) VALUES ('k', 'mbpp', "
               "'openai:qwen@http://x/v1', '{}', 'then')")
    db.execute("INSERT INTO records (run_id, benchmark, task_id, sample, split, first_signature, steps, halt_depth, "
               "halt_reason, calls, prompt_tokens, completion_tokens, seconds, final_visible_ok, hidden_final, added) "
               "VALUES (1, 'mbpp', 'mbpp/601', 0, 'train', 'NameError: name S is not defined', 1, 0, 'depth', 1, 5, "
               "5, 1.0, 0, 0, 'then')")
    db.commit()
    db.close()
    store = Store(path)
    assert store.version == 2
    assert [v for v, in store.db.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2]
    assert store.records()[0]["task_type"] == "mbpp|error|*"
    assert store.rows("SELECT backend, model FROM runs") == [{"backend": "openai", "model": "qwen"}]
    store.add_task(Task("mbpp/601", "Sum a list of numbers."))  # the new table works
    store.db.execute("UPDATE schema_version SET version = 9 WHERE version = 2")
    store.close()
    with pytest.raises(StoreError, match="newer than this recursia"):
        Store(path)


WRITER = """
import sys, time
from code_records import config, solved_at
from recursia.code.store import Store
time.sleep(max(0.0, float(sys.argv[4]) - time.time()))  # all start together: creation and writes overlap
store = Store(sys.argv[1])
for i in range(int(sys.argv[3])):
    store.add_record(config(), solved_at(f"mbpp/{601 + i}", i % 6), run=sys.argv[2])
"""


def test_concurrent_writers_do_not_corrupt_the_store(tmp_path):
    path, writers, each = tmp_path / "s.sqlite", 3, 40
    start = time.time() + 4.0
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"run{w}", str(each), str(start)], env=ENV,
                              stderr=subprocess.PIPE, text=True) for w in range(writers)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    store = Store(path)
    assert store.integrity() == []
    assert store.db.execute("SELECT count(*) FROM records").fetchone()[0] == writers * each
    assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == writers
    expected_steps = writers * sum(min(i % 6, 4) + 1 for i in range(each))
    assert store.db.execute("SELECT count(*) FROM steps").fetchone()[0] == expected_steps


KILLED = """
import sys
from pathlib import Path
from recursia.code.evaluate import read_records
from recursia.code.store import Store
import json
run = Path(sys.argv[2])
cfg = json.loads((run / "config.json").read_text())
records = read_records(run)
store = Store(sys.argv[1])
print("go", flush=True)
for rec in records:
    if store.add_record(cfg, rec, run=str(run.resolve())):
        print(rec["task_id"], flush=True)
"""


def test_sigkill_at_random_points_leaves_a_consistent_store(tmp_path):
    n = 1000
    run = write_run(tmp_path / "run", config(), [solved_at(f"mbpp/{601 + i}", i % 7) for i in range(n)])
    path = tmp_path / "s.sqlite"
    rng, killed, committed = random.Random(0), 0, 0
    for _ in range(4):
        child = subprocess.Popen([sys.executable, "-c", KILLED, str(path), str(run)], env=ENV,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "go", child.stderr.read()
        # Kill at a random point of the writing, counted in commits (a random sleep missed the whole write on
        # an idle machine): the child goes on committing while the signal is on its way.
        target, seen_now = rng.randint(1, 150), 0
        while seen_now < target and child.stdout.readline():
            seen_now += 1
        child.send_signal(signal.SIGKILL)
        out = child.stdout.read()  # not communicate(): it would skip what readline() already buffered
        child.wait(timeout=60)
        child.stderr.close()
        killed += child.returncode == -signal.SIGKILL
        committed += seen_now + len(out.split())
        store = Store(path)
        assert store.integrity() == []  # SQLite's integrity_check, and no record without all its steps
        stored = store.db.execute("SELECT count(*) FROM records").fetchone()[0]
        assert committed <= stored <= committed + 1  # at most the record being committed when killed
        committed = stored
        store.close()
    assert 0 < committed < n and killed >= 3  # the kills landed while writing
    store = Store(path)
    added, seen = store.import_run(run)  # resume: the rest goes in, nothing twice
    assert (added, seen) == (n - committed, committed)
    assert store.db.execute("SELECT count(*) FROM records").fetchone()[0] == n and store.integrity() == []
