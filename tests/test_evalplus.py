"""EvalPlus (HumanEval+ / MBPP+): the per-input comparison rules, the sticky float tolerance, the loaders on the
real release files (counts, input types), and that canonical solutions match their own outputs."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from conftest import REPO
from recursia.code import evalplus as ep
from recursia.code import iotest, values
from recursia.errors import DataError

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def evalplus_data():
    """The shared data folder holding evalplus/ (../shared/data/code beside the repository), or a skip."""
    root = REPO.parent / "shared" / "data" / "code"
    if not (root / "evalplus" / ep.HUMANEVAL_PLUS_FILE).is_file():
        pytest.skip("needs the EvalPlus release files in ../shared/data/code/evalplus")
    return root


@pytest.fixture(scope="module")
def he_plus():
    return {t.task_id: t for t in ep.load_humaneval_plus(evalplus_data(), "visible")}


@pytest.fixture(scope="module")
def mbpp_plus():
    return {t.task_id: t for t in ep.load_mbpp_plus(evalplus_data(), "visible")}


def groups(task):
    return [t.checks[0].group for t in task.hidden_tests]


# ---- per-input comparison ---------------------------------------------------------------------------------
M = ep.outputs_match


def test_exact_match_is_the_default():
    assert M(3, 3, 0.0) and M([1, (2, "a")], [1, (2, "a")], 0.0) and M({"a": {1}}, {"a": {1}}, 0.0)
    assert not M(3, 4, 0.0)
    assert not M([1, 2], (1, 2), 0.0)  # a list is not a tuple
    assert not M("3", 3, 0.0) and not M(None, 0, 0.0)


def test_floats_get_an_implicit_tolerance_with_type_and_length_checks():
    assert M(0.1 + 0.2, 0.3, 0.0)  # atol 0 and a float expected: 1e-6 applies
    assert M([0.1 + 0.2, 1.0], [0.3, 1.0], 0.0)
    assert not M(0.3 + 2e-6, 0.3, 0.0)
    assert not M(1, 1.0000001, 1e-6)  # an int is not a float
    assert not M((0.3,), [0.3], 1e-6)  # nor a tuple a list
    assert not M([0.3, 0.3], [0.3], 1e-6)  # lengths differ
    assert M(1.0, 1, 0.0)  # exact match needs no tolerance
    assert not M([[0.1 + 0.2]], [[0.3]], 0.0)  # nested floats get no implicit tolerance...
    assert M([[0.1 + 0.2]], [[0.3]], 1e-6)  # ...unless the sticky tolerance is in force (finalize)


def test_task_tolerance_and_rtol():
    assert M(1.00005, 1.0, 1e-4) and not M(1.0002, 1.0, 1e-4)
    assert M(1e9 + 50, 1e9, 1e-6)  # rtol 1e-7 of 1e9 is 100
    assert not M(1e9 + 150, 1e9, 1e-6)


@pytest.mark.parametrize("out", [None, "0.3", [[1.0], [1.0, 2.0]], ["a", "b"], {"x": 1.0}, [2 ** 70 + 1, 1.0],
                                 [None, 1.0], {1.0, 2.0}, b"ab", [complex(1, 1), "x"]])
def test_odd_outputs_fail_without_raising(out):
    exp = [1.0, 2.0] if isinstance(out, list) else 0.3
    assert M(out, exp, 1e-6) is False


def test_set_rule_replaces_exact_match():
    assert M((5, 4), (4, 5), 0.0, "set") and M([4, 5, 5], (4, 5), 0.0, "set")
    assert not M((4,), (4, 5), 0.0, "set")
    assert not M(5, (4, 5), 0.0, "set")  # not iterable
    assert not M([[4], [5]], (4, 5), 0.0, "set")  # unhashable items


def test_not_none_rule():
    assert M(True, True, 0.0, "not_none") and M("match", True, 0.0, "not_none") and M(None, False, 0.0, "not_none")
    assert not M(None, True, 0.0, "not_none")
    assert not M(False, True, 0.0, "not_none")  # a bool is compared as a bool
    assert not M("match", False, 0.0, "not_none")


def test_surface_area_accepts_either_reading_of_height():
    # Mbpp/581 with base 3, height 4: the reference says 33 (slant height 4), the alternative round(34.63) = 35.
    assert M(33, 33, 0.0, "surface_area", (3, 4)) and M(35, 33, 0.0, "surface_area", (3, 4))
    assert not M(34, 33, 0.0, "surface_area", (3, 4))
    assert not M("35", 33, 0.0, "surface_area", (3, 4))


def test_digit_distance_accepts_zero_padding():
    # 123 vs 45: the reference zips "123" with "45" (3 + 3 = 6); padded "045" gives 1 + 2 + 2 = 5.
    assert M(6, 6, 0.0, "digit_distance", (123, 45)) and M(5, 6, 0.0, "digit_distance", (123, 45))
    assert not M(7, 6, 0.0, "digit_distance", (123, 45))


def test_find_zero_accepts_any_root():
    xs = [-2.0, 0.0, 1.0]  # x**2 - 2
    assert M(2 ** 0.5, 1.414, 1e-4, "find_zero", (xs,)) and M(-(2 ** 0.5), 1.414, 1e-4, "find_zero", (xs,))
    assert not M(1.414, 1.414, 1e-4, "find_zero", (xs,))  # |poly(1.414)| = 6e-4: the expected value is not used
    assert not M("1.414", 1.414, 1e-4, "find_zero", (xs,))
    assert not M(1e200, 1.414, 1e-4, "find_zero", (xs,))  # math.pow overflows
    assert not M(complex(1, 1), 1.414, 1e-4, "find_zero", (xs,))


def test_unknown_rule_or_missing_args_is_an_error():
    with pytest.raises(ValueError, match="unknown EvalPlus rule 'sets'"):
        M(1, 1, 0.0, "sets")
    with pytest.raises(ValueError, match="needs the test's arguments"):
        M(1, 1, 0.0, "surface_area", None)


# ---- sticky tolerance -------------------------------------------------------------------------------------
def test_sticky_atols():
    assert ep.sticky_atols([1, "a", [1.0, 2.0], 3, [[1.0]]], 0.0) == [0.0, 0.0, 1e-6, 1e-6, 1e-6]
    assert ep.sticky_atols([1, 2.0, 3], 1e-4) == [1e-4] * 3
    assert ep.sticky_atols([[], [[1.0]], (1.0, True), True, [1, 2.0]], 0.0) == [0.0] * 5  # none is "floats"
    assert ep.sticky_atols([(1.0,)], 0.0) == [1e-6]
    assert ep.sticky_atols([], 0.0) == []


def test_finalize_carries_the_tolerance_within_a_group_only():
    def filled(exp, group):
        return iotest.with_expected(iotest.call_test("f", [0], group=group), [exp])

    visible = iotest.convert("assert f(0) == 1")
    tests = [visible, filled(1, "base"), filled(0.5, "base"), filled([[1.0, 2.0]], "base"),
             filled([[1.0, 2.0]], "plus")]
    done = ep.finalize(tests)
    assert done[0] == visible
    assert [t.checks[0].atol for t in done[1:]] == [0.0, 1e-6, 1e-6, 0.0]
    assert ep.finalize(done) == done  # idempotent
    # What the quirk changes: a nested float output within 1e-6 passes in base (after a float output) only.
    near = [("v", [[1.0, 2.0000001]])]
    assert iotest.judge(done[3].checks[0], near, (0,))[0] is True
    assert iotest.judge(done[4].checks[0], near, (0,))[0] is False
    with pytest.raises(ValueError, match="not filled in"):
        ep.finalize([iotest.call_test("f", [0], group="base")])


# ---- loaders ----------------------------------------------------------------------------------------------
def test_humaneval_plus_counts_and_tests(he_plus):
    assert len(he_plus) == 164
    base = sum(groups(t).count("base") for t in he_plus.values())
    plus = sum(groups(t).count("plus") for t in he_plus.values())
    assert (base, plus) == (1570, 122683)
    t = he_plus["HumanEval/0"]
    assert t.benchmark == "humaneval+" and t.reference.startswith(t.prompt) and t.reference != t.prompt
    assert groups(t) == sorted(groups(t))  # base before plus
    assert t.hidden_tests[0].args == ([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)
    assert [len(x.checks) for x in t.visible_tests] == [1, 1] and t.visible_tests[0].checks[0].expr
    assert {c.atol for x in he_plus["HumanEval/2"].hidden_tests for c in x.checks} == {1e-6}
    assert {c.rule for x in he_plus["HumanEval/32"].hidden_tests for c in x.checks} == {"find_zero"}
    assert {c.rule for t in he_plus.values() if t.entry_point != "find_zero"
            for x in t.hidden_tests for c in x.checks} == {""}
    assert he_plus["HumanEval/47"].skipped_examples  # the docstring's wrong median example


def first_rows(monkeypatch, n):
    """Loaders read only the first n records of the real file (for tests that need a few tasks only)."""
    read = ep.read_rows
    monkeypatch.setattr(ep, "read_rows", lambda path: read(path)[:n])


def test_humaneval_base_tests(he_plus, monkeypatch):
    first_rows(monkeypatch, 60)
    base = ep.humaneval_base_tests(evalplus_data())
    assert len(base) == 60
    for task_id, (reference, tests) in base.items():
        assert reference == he_plus[task_id].reference
        assert tests == tuple(t for t in he_plus[task_id].hidden_tests if t.checks[0].group == "base")
        assert len(tests) == groups(he_plus[task_id]).count("base") > 0


def test_mbpp_plus_counts_prompt_and_visible(mbpp_plus):
    assert len(mbpp_plus) == 378
    base = sum(groups(t).count("base") for t in mbpp_plus.values())
    plus = sum(groups(t).count("plus") for t in mbpp_plus.values())
    assert (base, plus) == (1174, 39841)
    assert groups(mbpp_plus["Mbpp/793"]) == ["base"] * 3  # plus_input is {}
    t = mbpp_plus["Mbpp/2"]
    assert t.benchmark == "mbpp+" and t.prompt.startswith('"""\nWrite a function') and t.prompt.endswith('"""\n')
    assert "def similar_elements" in t.reference
    assert [v.source for v in t.visible_tests] == ["assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == "
                                                   "set((4, 5))"]
    assert {c.rule for x in t.hidden_tests for c in x.checks} == {"set"}
    rules = {x.entry_point: x.hidden_tests[0].checks[0].rule for x in mbpp_plus.values()}
    assert {e: r for e, r in rules.items() if r} == {e: r for e, r in ep.MBPP_RULES.items() if e in rules}
    assert len({e for e, r in rules.items() if r}) == 12  # 7 set, 3 not_none, surface_area, digit_distance
    assert mbpp_plus["Mbpp/82"].hidden_tests[0].checks[0].atol == 1e-4


def test_mbpp_plus_inputs_are_deserialised(mbpp_plus):
    assert mbpp_plus["Mbpp/2"].hidden_tests[0].args == ((3, 4, 5, 6), (5, 7, 4, 10))
    args = mbpp_plus["Mbpp/124"].hidden_tests[0].args
    assert args == (0.0, 1j) and type(args[0]) is float and type(args[1]) is complex
    assert type(mbpp_plus["Mbpp/252"].hidden_tests[0].args[0]) is complex
    first = mbpp_plus["Mbpp/722"].hidden_tests[0].args[0]
    assert all(type(v) is tuple for v in first.values())
    assert all(type(a) is tuple for x in mbpp_plus["Mbpp/615"].hidden_tests for a in x.args)
    assert mbpp_plus["Mbpp/11"].hidden_tests[0].args == ("hello", "l")  # a task not in the table: as stored
    with pytest.raises(DataError, match="not a non-empty dict"):
        ep.mbpp_inputs("Mbpp/793", {"a": 1})


def test_protocol_all_shows_the_hidden_tests(monkeypatch):
    first_rows(monkeypatch, 5)
    for load in (ep.load_mbpp_plus, ep.load_humaneval_plus):
        tasks = load(evalplus_data(), "all")
        assert len(tasks) == 5 and all(t.visible_tests == t.hidden_tests and t.protocol == "all" for t in tasks)


def test_wrong_version_and_missing_file_are_one_clear_line(tmp_path):
    folder = tmp_path / "evalplus"
    folder.mkdir()
    with gzip.open(evalplus_data() / "evalplus" / ep.MBPP_PLUS_FILE, "rt") as f:
        first = f.readline()
    with gzip.open(folder / ep.MBPP_PLUS_FILE, "wt") as f:
        f.write(first)
    with pytest.raises(DataError) as err:
        ep.load_mbpp_plus(tmp_path, "visible")
    text = str(err.value)
    assert "\n" not in text and "is not MBPP+ v0.2.0" in text and "ee43ecabebf20deef4bb776a405ac5b1" in text
    assert "recursia code download mbpp+" in text and "mbppplus_release/releases/download/v0.2.0" in text
    with pytest.raises(DataError, match=r"HumanEval\+ data not found .*HumanEvalPlus.jsonl.gz.*v0.1.10"):
        ep.load_humaneval_plus(tmp_path, "visible")
    assert set(ep.URLS) == {"humaneval+", "mbpp+"}
    with pytest.raises(DataError, match="unknown protocol 'hidden'"):
        ep.load_mbpp_plus(evalplus_data(), "hidden")


# ---- canonical solutions against their own outputs ----------------------------------------------------------
RUNNER = r"""
import json, sys
from recursia.code import iotest, values
out = []
for job in json.load(sys.stdin):
    ns = {}
    exec(job["reference"], ns)
    results = []
    for code, args in job["tests"]:
        got = []
        def capture(j, *thunks):
            for thunk in thunks:
                try:
                    got.append(["v", values.encode(thunk())])
                except Exception as e:
                    got.append(["e", type(e).__name__, str(e)[:200]])
        ns[iotest.CAPTURE], ns[iotest.ARGS] = capture, values.decode(args)
        exec(code, ns)
        results.append(got)
    out.append(results)
json.dump(out, sys.stdout)
"""

# The special rules, the implicit and explicit tolerances, the restored input types, Counter and re.Match
# outputs, plus a spread of ordinary tasks (all fast: the whole sample runs in a few seconds).
HE_SAMPLE = ["HumanEval/0", "HumanEval/2", "HumanEval/4", "HumanEval/20", "HumanEval/32", "HumanEval/53",
             "HumanEval/71", "HumanEval/115", "HumanEval/137", "HumanEval/160"]
MBPP_SAMPLE = ["Mbpp/2", "Mbpp/7", "Mbpp/82", "Mbpp/88", "Mbpp/124", "Mbpp/252", "Mbpp/558", "Mbpp/581",
               "Mbpp/615", "Mbpp/722", "Mbpp/737", "Mbpp/769", "Mbpp/787", "Mbpp/793", "Mbpp/794", "Mbpp/809"]
PLUS_PER_TASK = 40


def run_references(tasks):
    """Each task's reference on its sampled hidden tests then its visible tests, run as the sandbox runs a
    Test (its code after the program, reporting leaf values through the codec), in a plain subprocess."""
    jobs = [{"reference": t.reference,
             "tests": [[x.code, values.encode(x.args)] for x in sample(t) + list(t.visible_tests)]}
            for t in tasks]
    done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(jobs), capture_output=True,
                          text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return [[[(leaf[0], values.decode(leaf[1])) if leaf[0] == "v" else tuple(leaf) for leaf in test]
             for test in results] for results in json.loads(done.stdout)]


def sample(task):
    base = [x for x in task.hidden_tests if x.checks[0].group == "base"]
    return base + [x for x in task.hidden_tests if x.checks[0].group == "plus"][:PLUS_PER_TASK]


def test_canonical_solutions_match_themselves(he_plus, mbpp_plus):
    tasks = [he_plus[i] for i in HE_SAMPLE] + [mbpp_plus[i] for i in MBPP_SAMPLE]
    outputs = run_references(tasks)
    checked = 0
    for task, results in zip(tasks, outputs):
        assert all(leaves[0][0] == "v" for leaves in results), (task.task_id, results[:3])
        hidden = sample(task)
        tests = ep.finalize([iotest.with_expected(t, [leaves[0][1]]) for t, leaves in zip(hidden, results)])
        tests += list(task.visible_tests)
        for test, leaves in zip(tests, results):
            ok, _, message = iotest.judge(test.checks[0], leaves, test.args)
            assert ok, (task.task_id, test.source, message)
            checked += 1
    assert checked > 500
    # and a wrong output fails (find_zero ignores the expected value: 12345 is no root)
    find_zero = he_plus["HumanEval/32"]
    check = replace(find_zero.hidden_tests[0].checks[0], expected=0.0)
    assert not iotest.judge(check, [("v", 12345.0)], find_zero.hidden_tests[0].args)[0]
    not_none = dict(zip(MBPP_SAMPLE, outputs[len(HE_SAMPLE):]))["Mbpp/737"]
    assert {leaves[0][1] for leaves in not_none} == {True, False}  # re.Match reported as a bool
