"""The skill library: training-split tasks only, BM25 retrieval finds the relevant skill for a paraphrase."""

from __future__ import annotations

import pytest

from code_records import Task, attempt, config, record, solved_at
from recursia.code.depth import LeakError
from recursia.code.skills import Skill, SkillLibrary
from recursia.code.store import Store

PROMPTS = {
    "mbpp/601": "Write a function to reverse the words in a given string.",
    "mbpp/602": "Write a function to find the maximum element of a list of numbers.",
    "mbpp/603": "Write a python function to check whether a given number is prime.",
    "mbpp/604": "Write a function to count the vowels in a string.",
    "mbpp/605": "Write a function to sort a list of tuples by their second item.",
}
REVERSE = "def reverse_words(s):\n    return ' '.join(s.split()[::-1])\n"


def filled(tmp_path) -> Store:
    store = Store(tmp_path / "s.sqlite")
    for tid, prompt in PROMPTS.items():
        fixed = REVERSE if tid == "mbpp/601" else f"def f(x):\n    return {tid[-1]}\n"
        store.add_record(config(), solved_at(tid, 2 if tid == "mbpp/601" else 0, fixed=fixed), Task(tid, prompt))
    store.add_record(config(), solved_at("mbpp/606", 9), Task("mbpp/606", "Reverse a list."))  # never solved
    t = Task("mbpp/12", "Write a function to reverse the words of a string.")  # a test-split task, solved
    store.add_record(config(split="test"), solved_at(t.task_id, 0, fixed="def leaked(): pass\n"), t)
    return store


def test_no_test_split_task_enters_the_library(tmp_path):
    store = filled(tmp_path)
    lib, no_prompt = SkillLibrary.from_store(store)
    assert no_prompt == 0
    assert {s.task_id for s in lib.skills} == set(PROMPTS)  # solved training tasks; no mbpp/12, no mbpp/606
    assert all(s.split == "train" for s in lib.skills)
    assert not any("leaked" in s.program for s in lib.skills)
    with pytest.raises(LeakError, match="test-split task"):
        lib.add(Skill("solution", "mbpp", "mbpp/12", "test", "p", "def leaked(): pass"))
    with pytest.raises(LeakError, match="only train/validation"):
        SkillLibrary.from_store(store, splits=("train", "test"))
    lib.save(tmp_path / "skills.json")
    assert [s.task_id for s in SkillLibrary.load(tmp_path / "skills.json").skills] == [s.task_id for s in lib.skills]


def test_verified_fixes_are_before_after_pairs(tmp_path):
    lib, _ = SkillLibrary.from_store(filled(tmp_path))
    fixes = [s for s in lib.skills if s.kind == "fix"]
    assert [f.task_id for f in fixes] == ["mbpp/601"]  # only it needed refining
    fix = fixes[0]
    assert fix.program == REVERSE and fix.before != REVERSE and fix.error == "AssertionError in test 1"
    # a record whose later attempt passed visible tests but not hidden ones gives nothing
    store = Store(tmp_path / "t.sqlite")
    atts = [attempt(0, "def g(): return 1\n", [True, False]), attempt(1, "def g(): return 2\n", [True, True])]
    store.add_record(config(), record("mbpp/610", atts, [False, False], "pass"), Task("mbpp/610", "Anything."))
    assert SkillLibrary.from_store(store)[0].skills == []


def test_retrieval_finds_the_skill_for_a_paraphrased_prompt(tmp_path):
    lib, _ = SkillLibrary.from_store(filled(tmp_path))
    hits = lib.retrieve("Write a python function that reverses the order of the words of a sentence string.", k=2)
    assert [s.task_id for s, _ in hits][:1] == ["mbpp/601"] and hits[0][1] > 0
    # BM25 is lexical: a paraphrase must share (stemmed) words; synonyms alone ("largest") would not do
    assert lib.retrieve("Find the maximum value in the given list.", k=1)[0][0].task_id == "mbpp/602"
    assert lib.retrieve("Is n a prime number?", k=1)[0][0].task_id == "mbpp/603"
    assert lib.retrieve("zzz qqq", k=2) == []  # nothing shared: nothing retrieved
    text = lib.for_task(Task("mbpp/800", "Reverse the words in a sentence."), k=2, max_chars=600)
    assert "reverse_words" in text and len(text) <= 600 and text.startswith("Skills from similar solved tasks")
    assert "mbpp/601" not in {s.task_id for s, _ in lib.retrieve(PROMPTS["mbpp/601"], exclude="mbpp/601")}
    # MBPP+ spells the same task "Mbpp/601": its own solution must not be handed to it either
    assert "mbpp/601" not in {s.task_id for s, _ in lib.retrieve(PROMPTS["mbpp/601"], exclude="Mbpp/601")}
    assert "reverse_words" not in lib.for_task(Task("Mbpp/601", PROMPTS["mbpp/601"]), k=1)


def test_evalplus_tasks_keep_the_split_of_the_task_they_extend():
    """MBPP+ holds MBPP train and validation tasks (Mbpp/602 is train task 602): a library or a depth policy
    learned on the training splits must treat them as training tasks, not as held-out ones."""
    from recursia.code.tasktypes import task_split

    assert [task_split("mbpp+", f"Mbpp/{n}") for n in (2, 11, 510, 511, 600, 602, 809)] == \
        ["prompt", "test", "test", "validation", "validation", "train", "train"]
    assert task_split("humaneval+", "HumanEval/0") == "test"


def test_checked_references_of_training_tasks_join_the_library():
    """A training task's reference enters only if it passes its tests in the real sandbox; a held-out task's
    reference is refused before anything runs."""
    from recursia.code.tasks import CodeTask

    def task(tid, prompt, reference):
        return CodeTask(tid, "mbpp", prompt, "rev", ("assert rev('a b') == 'b a'",),
                        ("assert rev('x y z') == 'z y x'",), reference=reference)

    good = task("mbpp/610", "Write a function to reverse the words in a string.", REVERSE.replace("reverse_words", "rev"))
    bad = task("mbpp/611", "Write a function to reverse a string.", "def rev(s):\n    return s.upper()\n")
    lib = SkillLibrary()
    assert lib.add_references([good, bad]) == 1
    assert [(s.kind, s.task_id, s.split) for s in lib.skills] == [("reference", "mbpp/610", "train")]
    assert lib.retrieve("Reverse the order of the words of a sentence.")[0][0].task_id == "mbpp/610"
    with pytest.raises(LeakError, match="mbpp/20"):
        lib.add_references([task("mbpp/20", "held out", REVERSE)])
