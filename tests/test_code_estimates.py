"""Task types, success-rate estimates (why not the seed's EMA), halting distributions and the divergence alarm."""

from __future__ import annotations

import random

import pytest

from code_records import Task, config, solved_at
from recursia.code.estimates import divergence, ema, ema_debiased, estimate, summarise_store
from recursia.code.store import Store
from recursia.code.tasktypes import candidates, first_class, prompt_features


def test_task_type_fields():
    assert first_class("ok") == "pass" and first_class("AssertionError in test 1") == "assert"
    assert first_class("SyntaxError: invalid syntax") == "syntax" and first_class("timeout") == "timeout"
    assert first_class("NameError: name S is not defined") == "error" and first_class("unusable reply") == "unusable"
    assert prompt_features("Write a function to reverse the words in a given string.")["topic"] == "string"
    assert prompt_features("Find the sum of the even numbers below n.")["topic"] == "number"
    assert prompt_features("Remove the duplicates from a list of tuples.")["topic"] == "list"
    assert prompt_features("Do it.")["topic"] == "other" and prompt_features("x" * 900)["length"] == "long"
    keys = candidates("mbpp", "assert", "list")
    assert keys[0] == "mbpp|assert|list" and keys[-1] == "*|*|*" and len(keys) == 8
    assert keys.index("*|assert|*") < keys.index("mbpp|*|list")  # the first error says most
    assert candidates("humaneval", "*", "list") == ["humaneval|*|list", "*|*|list", "humaneval|*|*", "*|*|*"]


def test_the_seeds_ema_barely_moves_over_164_tasks_and_the_estimate_does():
    all_pass, none_pass = [True] * 164, [False] * 164
    assert ema(all_pass)[-1] == pytest.approx(1 - 0.5 * 0.999 ** 164) == pytest.approx(0.5757, abs=1e-4)
    assert ema(none_pass)[-1] == pytest.approx(0.4243, abs=1e-4)
    rng = random.Random(1)
    twenty = [rng.random() < 0.2 for _ in range(164)]  # a true rate of 20%
    k = sum(twenty)
    assert ema(twenty)[-1] > 0.4  # still says "about a coin flip"
    assert ema_debiased(twenty)[-1] == pytest.approx(k / 164, abs=0.02)  # the start removed: about the mean
    e = estimate(k, 164)
    assert e["rate"] == k / 164 and e["wilson95"][0] < 0.2 < e["wilson95"][1] and e["wilson95"][1] < 0.4
    assert e["beta95"][0] < e["beta_mean"] < e["beta95"][1]
    assert estimate(0, 0)["wilson95"] == [0.0, 1.0]


def test_divergence_alarm_fires_on_a_drop_and_not_on_noise_or_a_rise():
    rng = random.Random(0)
    false_alarms = 0
    for _ in range(200):
        stable = [rng.random() < 0.6 for _ in range(300)]
        false_alarms += divergence(stable, window=30).fired
    assert false_alarms <= 12  # about 2% under no change (z = 2, one-sided), here at most 6%
    caught = 0
    for _ in range(50):
        drop = [rng.random() < 0.7 for _ in range(270)] + [rng.random() < 0.2 for _ in range(30)]
        caught += divergence(drop, window=30).fired
    assert caught >= 48
    rise = [rng.random() < 0.2 for _ in range(270)] + [rng.random() < 0.9 for _ in range(30)]
    d = divergence(rise, window=30)
    assert not d.fired and d.gap < 0
    short = divergence([True] * 40, window=30)
    assert not short.fired and short.recent is None  # fewer than `window` earlier outcomes: no judgement


def test_store_summary_per_benchmark_and_type(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    for i in range(12):
        t = Task(f"mbpp/{601 + i}", "Reverse the words in a given string." if i % 2 else "Sum a list of numbers.")
        store.add_record(config(), solved_at(t.task_id, i % 3 if i < 9 else 9), t)
    s = summarise_store(store.records(), window=5)
    assert s["records"] == 12 and s["benchmark"]["mbpp"]["records"] == 12
    assert s["benchmark"]["mbpp"]["hidden"]["k"] == 9
    solved_at_k = [i % 3 if i < 9 else 9 for i in range(12)]
    string_assert = [i for i in range(12) if i % 2 and solved_at_k[i] > 0]  # depth 0 failed an assert
    assert s["type"]["mbpp|assert|string"]["records"] == len(string_assert) == 5
    assert s["type"]["mbpp|pass|string"]["records"] == 1 and s["type"]["mbpp|pass|number"]["records"] == 2
    assert s["benchmark"]["mbpp"]["halting"]["reason"] == {"pass": 9, "depth": 3}
    assert s["benchmark"]["mbpp"]["halting"]["depth"] == {0: 3, 1: 3, 2: 3, 4: 3}
