"""Search ordered by a prior over the DSL's functions: it only returns programs that reproduce every example,
with a uniform prior it is plain enumeration, and a prior that ranks the program's own functions high solves
more tasks at the same number of candidate statements. Generated tasks only: no test file is read."""

from __future__ import annotations

import random

import pytest

from recursia.tasks import deepcoder as D
from recursia.tasks import deepcoder_search as S


@pytest.fixture(scope="module")
def tasks() -> list[D.DeepCoderTask]:
    return D.generate(60, seed=4242, min_length=1, max_length=5)


def used(task: D.DeepCoderTask) -> set[str]:
    return {s.op for s in task.program.statements} | {s.lam for s in task.program.statements if s.lam}


def test_a_uniform_prior_is_plain_enumeration(tasks):
    uniform = {f: 0.3 for f in S.FUNCTIONS}
    for t in tasks[:25]:
        plain = S.search(t.inputs, t.outputs, 60, max_tried=20000)
        guided = S.guided_search(t.inputs, t.outputs, uniform, 60, max_tried=20000)
        assert (guided.solved, guided.program, guided.tried) == (plain.solved, plain.program, plain.tried)


def test_guided_search_returns_only_programs_that_reproduce_every_example(tasks):
    rng = random.Random(7)
    found = 0
    for t in tasks:
        prior = {f: rng.random() for f in S.FUNCTIONS}
        r = S.guided_search(t.inputs, t.outputs, prior, 60, max_tried=5000)
        if r.program is not None:
            found += 1
            assert r.solved and D.solves(r.program, t.inputs, t.outputs)
        assert r.tried <= 5000 + S._CHECK_EVERY * len(S.ROUNDS + ((0, 0),))
    assert found >= 20  # the check ran on real answers


def test_restricted_functions_are_the_only_ones_used(tasks):
    allowed = ["Map", "Filter", "Sort", "Reverse", "(*2)", "(>0)", "(+1)"]
    for t in tasks[:30]:
        r = S.search(t.inputs, t.outputs, 60, functions=allowed, max_tried=5000)
        if r.program is not None:
            assert used(D.DeepCoderTask(t.inputs, t.outputs, r.program)) <= set(allowed)


def test_a_prior_that_knows_the_functions_solves_more_at_equal_nodes(tasks):
    """Measured 2026-12-07 on these 60 tasks at 20,000 candidate statements: plain 42 (70%), a noisy prior 56 (93%)."""
    rng = random.Random(0)
    plain = guided = 0
    for t in tasks:
        prior = {f: (0.6 if f in used(t) else 0.0) + 0.5 * rng.random() for f in S.FUNCTIONS}
        plain += S.search(t.inputs, t.outputs, 60, max_tried=20000).solved
        guided += S.guided_search(t.inputs, t.outputs, prior, 60, max_tried=20000).solved
    assert guided >= plain + 8


def test_a_prior_naming_unknown_functions_is_refused(tasks):
    with pytest.raises(ValueError, match="unknown functions"):
        S.guided_search(tasks[0].inputs, tasks[0].outputs, {"Mapp": 1.0})
