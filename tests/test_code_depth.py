"""Adaptive depth: learned per task type on MBPP train/validation records only, read back with depth_for."""

from __future__ import annotations

import json

import pytest

from code_records import Task, config, solved_at
from recursia.code.depth import LeakError, choose_depths, learn_from_store, load_policy
from recursia.code.store import Store

STRING = "Write a function to reverse the words in a given string."
NUMBER = "Write a function to find the sum of the digits of a number."


def fill(store: Store) -> None:
    """String tasks are solved by depth 1 or never; number tasks keep gaining up to depth 3."""
    for i in range(20):
        t = Task(f"mbpp/{601 + i}", STRING)
        store.add_record(config(), solved_at(t.task_id, 1 if i % 2 else 9), t)
    for i in range(20):
        t = Task(f"mbpp/{701 + i}", NUMBER)
        store.add_record(config(), solved_at(t.task_id, 1 + i % 3), t)
    for i in range(10):  # held-out tasks that would say "depth 4" if they were used
        t = Task(f"mbpp/{11 + i}", STRING)
        store.add_record(config(split="test"), solved_at(t.task_id, 4), t)


def test_depth_per_type_from_training_records(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    fill(store)
    policy, left_out = learn_from_store(store, min_gain=0.02, min_n=10)
    assert left_out == 10 and policy["records"] == 40
    assert policy["types"]["mbpp|assert|string"]["depth"] == 1
    assert policy["types"]["mbpp|assert|number"]["depth"] == 3
    assert policy["types"]["mbpp|assert|string"]["solved_by_depth"] == [0, 10, 10, 10, 10]
    path = tmp_path / "depths.json"
    path.write_text(json.dumps(policy))
    p = load_policy(path)
    assert p.depth_for(Task("mbpp/999", "Reverse each word of a string."), "AssertionError in test 1") == 1
    assert p.depth_for(Task("mbpp/998", "The product of the digits of a number."), "AssertionError in test 1") == 3
    he = Task("HumanEval/5", "def f(s: str) -> str:\n    '''Reverse the string s.'''", benchmark="humaneval")
    assert p.key_for(he, "AssertionError in test 2") == "*|assert|string"  # learned on MBPP, backs off
    assert p.depth_for(he) == p.policy["types"]["*|*|string"]["depth"]  # before the first program
    assert p.depth_for(Task("mbpp/997", "Do something.", ), "timeout") == p.policy["types"]["*|*|*"]["depth"] == 3


def test_held_out_records_are_refused(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    fill(store)
    with pytest.raises(LeakError, match="held-out task"):
        choose_depths(store.records())
    with pytest.raises(LeakError, match=r"mbpp/11 \(test\)"):
        choose_depths(store.records(("test",)))
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(Exception, match="not a depth policy"):
        load_policy(bad)


def test_policy_arm_replays_the_policy_on_a_fixed_depth_run(tmp_path):
    """`compare --arm-a policy=FILE` reads each task at its type's depth: outcome and calls as a run with
    --depth-policy would have had them (the loop's steps do not depend on its maximum depth)."""
    from recursia.code.evaluate import compare

    store = Store(tmp_path / "s.sqlite")
    fill(store)
    policy, _ = learn_from_store(store, min_gain=0.02, min_n=10)
    path = tmp_path / "depths.json"
    path.write_text(json.dumps(policy))
    run = tmp_path / "run"  # held-out: strings solved at depth 2 (past the policy's 1), numbers at 3
    run.mkdir()
    tasks = [Task(f"mbpp/{11 + i}", STRING if i < 4 else NUMBER) for i in range(8)]
    recs = [solved_at(t.task_id, 2 if i < 4 else 3) for i, t in enumerate(tasks)]
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run / "config.json").write_text(json.dumps({"protocol": "visible", "bench": "mbpp"}))
    r = compare(run, run, f"policy={path}", "depth=4", tasks)
    assert r["a"]["pass"] == 4 and r["b"]["pass"] == 8  # the policy stops strings at depth 1, before their fix
    assert r["a"]["calls"] == 4 * 3 + 4 * 7 and r["b"]["calls"] == 4 * 5 + 4 * 7  # calls 1 + 2d up to the depth
    assert r["mcnemar"]["b_only"] == 4 and r["mcnemar"]["a_only"] == 0
    with pytest.raises(Exception, match="needs the tasks' prompts"):
        compare(run, run, f"policy={path}", "depth=4", tasks[:2])
