"""Each ExeDec split's training distribution (reference section 4.4) as the generator draws it: lengths, op pools,
the position rule, Scanl1's lambdas and the shares of COMPOSE_NEW_OP. Each rule is checked on the programs the
generator returns, and the split's *test* rule is checked to be absent from its training data."""

from __future__ import annotations

from collections import Counter

import pytest

from recursia.config import _CHOICES, build_config
from recursia.errors import ConfigError, DataError
from recursia.tasks import deepcoder as D

FO, HO = set(D.FO_MAP), set(D.HO_MAP)


@pytest.fixture(scope="module")
def drawn() -> dict[str, list[D.DeepCoderTask]]:
    return {split: D.generate(160, seed=11, split=split) for split in D.SPLITS}


def ops(t: D.DeepCoderTask) -> list[str]:
    return [s.op for s in t.program.statements]


def test_every_task_is_solved_by_its_program_and_the_lengths_are_the_splits(drawn):
    expected = {"NONE": {1, 2, 3, 4, 5}, "LENGTH_GENERALIZATION": {1, 2, 3, 4},
                "COMPOSE_DIFFERENT_CONCEPTS": {2, 3, 4}, "SWITCH_CONCEPT_ORDER": {2, 3, 4},
                "COMPOSE_NEW_OP": {1, 2, 3, 4}, "ADD_OP_FUNCTIONALITY": {1, 2, 3, 4}}
    for split, tasks in drawn.items():
        assert len(tasks) == 160 and [t.index for t in tasks] == list(range(160))
        assert {len(t.program) for t in tasks} == expected[split], split
        assert all(D.solves(t.program, t.inputs, t.outputs) for t in tasks), split


def test_none_is_the_plain_generator():
    assert [D.task_to_json(t) for t in D.generate(40, seed=5, split="NONE")] == \
        [D.task_to_json(t) for t in D.generate(40, seed=5)]


def test_compose_different_concepts_keeps_each_program_in_one_pool(drawn):
    pools = Counter("FO" if set(ops(t)) <= FO else "HO" if set(ops(t)) <= HO else "mixed"
                    for t in drawn["COMPOSE_DIFFERENT_CONCEPTS"])
    assert pools["mixed"] == 0 and pools["FO"] == pools["HO"] == 80  # half of the tasks from each pool


def test_switch_concept_order_puts_higher_order_ops_first(drawn):
    for t in drawn["SWITCH_CONCEPT_ORDER"]:
        k = len(t.program) // 2
        assert set(ops(t)[:k]) <= HO and set(ops(t)[k:]) <= FO, D.format_program(t.program)


def test_compose_new_op_sees_scanl1_only_alone(drawn):
    tasks = drawn["COMPOSE_NEW_OP"]
    alone = [t for t in tasks if len(t.program) == 1]
    assert len(alone) == 40 and all(ops(t) == ["Scanl1"] for t in alone)  # 25 % of the tasks
    assert all("Scanl1" not in ops(t) for t in tasks if len(t.program) > 1)  # the test rule never occurs
    assert len({t.inputs for t in alone}) == 40  # each length-1 task has its own inputs


def test_add_op_functionality_gives_scanl1_only_minus_and_min(drawn):
    lams = Counter(s.lam for t in drawn["ADD_OP_FUNCTIONALITY"] for s in t.program.statements if s.op == "Scanl1")
    assert set(lams) == {"(-)", "(min)"}
    full = Counter(s.lam for t in drawn["NONE"] for s in t.program.statements if s.op == "Scanl1")
    assert {"(+)", "(max)"} <= set(full)  # the restriction is the split's, not the generator's


def test_the_split_is_a_validated_generate_option():
    assert set(_CHOICES["data.generate.split"]) == {""} | set(D.SPLITS)
    cfg = build_config("deepcoder-prior", ["data.generate.split=SWITCH_CONCEPT_ORDER"])
    assert cfg.data.generate.split == "SWITCH_CONCEPT_ORDER"
    with pytest.raises(ConfigError, match="data.generate.split"):
        build_config("deepcoder-prior", ["data.generate.split=SWITCH"])
    with pytest.raises(DataError, match="unknown split 'SWITCH'"):
        D.generate(5, split="SWITCH")


def test_a_prior_dataset_records_its_split(tmp_path):
    from recursia.dataset import Dataset
    from recursia.tasks.deepcoder_prior import generate_prior_dataset

    generate_prior_dataset(tmp_path / "d", train_count=20, test_count=5, seed=2, split="COMPOSE_NEW_OP")
    ds = Dataset(tmp_path / "d")
    assert ds.manifest["build"]["split"] == "COMPOSE_NEW_OP" and ds.task == "deepcoder-prior"
