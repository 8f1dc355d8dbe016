"""The refinement loop's mechanics: code extraction, prompts, halting rules, best-so-far, budgets, statistics.

The loop's logic is driven here by a scripted backend (fixed replies, in order) so that each rule can be
checked exactly; the programs it returns still run in the real sandbox. The loop against a real model is in
tests/test_code_llm.py.
"""

from __future__ import annotations

import pytest

from recursia.code.backends import Backend, BackendError, Reply
from recursia.code.extract import extract_program, longest_parsing_prefix, normalized
from recursia.code.loop import CodeHaltRule, LoopConfig, Refiner
from recursia.code.probes import mutated_calls, probe_calls, probe_tests, probes_for
from recursia.code.prompts import head_of
from recursia.code.sandbox import Limits
from recursia.code.stats import mcnemar, wilson
from recursia.code.tasks import CodeTask
from recursia.errors import ConfigError

TASK = CodeTask(task_id="t/1", benchmark="unit", prompt="Write add(a, b) returning the sum.", entry_point="add",
                visible_tests=("assert add(1, 2) == 3",), hidden_tests=("assert add(1, 2) == 3\nassert add(-1, 1) == 0",))
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"
WRONG2 = "```python\ndef add(a, b):\n    return a * b\n```"


class Script(Backend):
    """Replies in order; a reply that is an exception instance is raised instead."""

    def __init__(self, replies):
        super().__init__(mode="chat")
        self.replies, self.prompts = list(replies), []

    @property
    def name(self) -> str:
        return "script"

    def generate(self, prompt, temperature=None, seed=None):
        self.prompts.append(prompt)
        r = self.replies.pop(0)
        if isinstance(r, Exception):
            raise r
        return Reply(r, 10, 5, 0.0)


# ---------------------------------------------------------------------------------------------------- extract
def test_extract_fenced_bare_prose_and_continuation():
    assert extract_program("Sure! Here it is:\n" + RIGHT + "\nHope this helps.", "add") == \
        "def add(a, b):\n    return a + b\n"
    two = "```python\ndef helper():\n    pass\n```\nand\n```python\ndef add(a, b):\n    return a+b\n```"
    assert "def add" in extract_program(two, "add")
    bare = "The function is below.\ndef add(a, b):\n    return a + b\nThis adds the numbers."
    assert extract_program(bare, "add") == "def add(a, b):\n    return a + b\n"
    prefix = 'def add(a, b):\n    """Sum."""\n'
    assert extract_program("    return a + b\n", "add", prefix) == prefix + "    return a + b\n"
    assert extract_program("I cannot help with that.", "add") is None
    assert extract_program(RIGHT, "sub") is None  # defines the wrong function: unusable
    cut = "```python\ndef add(a, b):\n    return a + b\n\ndef more(x):\n    return (x +"  # hit the token limit
    assert extract_program(cut, "add") == "def add(a, b):\n    return a + b\n"


def test_sanitize_drops_top_level_tests_and_keeps_what_the_function_needs():
    from recursia.code.sandbox import execute

    # The reply ends with the model's own (wrong) assert at module level: unsanitised, it would fail while the
    # program is being defined, and every test with it.
    reply = ("```python\nimport math\nfrom typing import List\n\nSCALE = 2\nDEMO = add(1, 1)\n\n"
             "def twice(x):\n    return SCALE * x\n\ndef unused():\n    return 0\n\n"
             "def add(a, b):\n    return twice(a + b) // 2\n\n"
             "assert add(1, 2) == 4\nprint(add(2, 2))\nfor i in range(3):\n    print(i)\n"
             "if __name__ == '__main__':\n    add(0, 0)\n```")
    program = extract_program(reply, "add")
    assert program == ("import math\nfrom typing import List\nSCALE = 2\n\ndef twice(x):\n    return SCALE * x\n"
                       "\ndef add(a, b):\n    return twice(a + b) // 2\n")
    assert execute(program, ["assert add(1, 2) == 3"]).all_passed
    assert not execute(reply.split("```")[1][len("python\n"):], ["assert add(1, 2) == 3"]).all_passed


def test_longest_parsing_prefix_and_normalized():
    assert longest_parsing_prefix("x = 1\ny = (") == "x = 1\n"
    a = 'def f(x):\n    """doc"""\n    # comment\n    return x+1\n'
    b = "def f(x):\n    return x + 1\n"
    assert normalized(a) == normalized(b)
    assert normalized(b) != normalized("def f(x):\n    return x + 2\n")


def test_a_failing_visible_test_says_what_the_call_returned():
    from recursia.code.sandbox import execute

    r = execute("def add(a, b):\n    return a - b\n", ["assert add(1, 2) == 3"])
    assert not r.tests[0].passed and r.tests[0].message == "add(1, 2) returned -1, expected 3"
    assert execute("def add(a, b):\n    return a + b\n", ["assert add(1, 2) == 3"]).all_passed


def test_head_of_is_derived_from_the_program():
    prog = 'import math\n\ndef f(x):\n    """Doc."""\n    return x\n'
    assert head_of(prog, "f") == 'import math\n\ndef f(x):\n    """Doc."""\n'


def test_probe_calls_from_tests_and_prompt():
    task = CodeTask(task_id="p", benchmark="unit", prompt="f(3) == 9 and for example f([1, (2)]) is fine",
                    entry_point="f", visible_tests=("assert f(2) == 4",), hidden_tests=())
    assert probe_calls(task) == ["f(2)", "f(3)", "f([1, 2])"]
    # the compared side of an assert, as the test compares; names only the text defines are left out
    task = CodeTask(task_id="q", benchmark="unit", prompt="def f(arr): ... e.g. f(arr) or f([2, 1])",
                    entry_point="f", visible_tests=("assert set(f([1, 2])) == {1, 2}",
                                                    "import math\nassert math.isclose(f(0.5), 1.0, rel_tol=0.001)"),
                    hidden_tests=())
    assert probe_calls(task) == ["set(f([1, 2]))", "f(0.5)", "f([2, 1])"]
    assert probes_for(task)[3:5] == ["set(f([]))", "f(0.0)"]


def test_probe_values_compare_as_equal_values_do():
    from recursia.code.iotest import Test
    from recursia.code.probes import behaviour
    from recursia.code.sandbox import execute

    prog = "def f(k):\n    return [{'pear', 'fig', 'kiwi', 'plum'}, {'b': 1, 'a': 2}, 0.1 + 0.2, (1,)][k]\n"
    other = "def f(k):\n    return [{'plum', 'kiwi', 'fig', 'pear'}, {'a': 2, 'b': 1}, 0.3, (1,)][k]\n"
    calls = probe_tests(["f(0)", "f(1)", "f(2)", "f(3)", "f(9)"])
    a, b = ([behaviour(t) for t in execute(p, calls).tests] for p in (prog, other))
    assert a == b and a[-1] == "error" and a[3].startswith("(1,)#")
    assert isinstance(calls[0], Test)


# ---------------------------------------------------------------------------------------------------- halting
def test_halt_rule_parse_and_errors():
    r = CodeHaltRule.parse("pass,stuck=2,tokens=4000,seconds=30,agree=2")
    assert (r.passed, r.stuck, r.tokens, r.seconds, r.agree) == (True, 2, 4000, 30.0, 2)
    assert str(r) == "pass,stuck=2,tokens=4000,seconds=30,agree=2"
    assert CodeHaltRule.parse("depth") == CodeHaltRule(passed=False)
    for bad in ("stuck=0", "pass=1", "foo", "seconds=-1"):
        with pytest.raises(ConfigError, match="cannot read"):
            CodeHaltRule.parse(bad)


def _solve(replies, **cfg):
    backend = Script(replies)
    cfg.setdefault("n", 0)
    return Refiner(backend, LoopConfig(**cfg)).solve(TASK), backend


def test_pass_at_depth_zero_halts_at_once():
    res, b = _solve([RIGHT], N_sup=4)
    assert res.halt_reason == "pass" and res.calls == 1 and len(res.attempts) == 1
    assert res.best == [0] * 5 and res.submission().visible_ok


def test_wrong_then_right_and_the_feedback_reaches_the_prompt():
    res, b = _solve([WRONG, RIGHT], N_sup=4, halt=CodeHaltRule(passed=True))
    assert res.halt_reason == "pass" and [a.visible_ok for a in res.attempts] == [False, True]
    assert res.best == [0, 1, 1, 1, 1]
    refine_prompt = b.prompts[1].messages[-1]["content"]
    assert "returned -1, expected 3" in refine_prompt and "a - b" in refine_prompt
    assert "Write add" not in refine_prompt  # refine does not see x by default
    res2, b2 = _solve([WRONG, RIGHT], N_sup=2, refine_sees_x=True)
    assert "Write add" in b2.prompts[1].messages[-1]["content"]


def test_a_rewrite_that_hides_y_sees_the_task_and_the_failure_but_not_the_program():
    res, b = _solve([WRONG, RIGHT], N_sup=2, refine_sees_y=False)
    assert res.halt_reason == "pass" and res.calls == 2
    system, user = b.prompts[1].messages
    assert system == b.prompts[0].messages[0] and user["content"].startswith(b.prompts[0].messages[1]["content"])
    assert "returned -1, expected 3" in user["content"] and "def add" not in user["content"]  # z keeps a line


def test_reason_calls_count_and_diagnosis_goes_into_z():
    res, b = _solve([WRONG, "It subtracts instead of adding.", RIGHT], N_sup=3, n=1)
    assert res.calls == 3 and res.halt_reason == "pass"
    assert "It subtracts instead of adding." in b.prompts[2].messages[-1]["content"]
    assert res.attempts[1].diagnosis == "It subtracts instead of adding."


def test_regression_is_reverted_not_submitted():
    # depth 1 breaks the program completely (syntax error); best-so-far stays at the depth-0 program, which
    # passes the structural test but not the visible one, and the depth-2 rewrite starts again from it.
    partial = "```python\ndef add(a, b):\n    return a - b\n```"
    broken = "```python\ndef add(a, b):\n    return (\n```"
    res, b = _solve([partial, broken, WRONG2], N_sup=2, halt=CodeHaltRule(passed=True))
    assert res.attempts[1].program is None or res.attempts[1].signature != "ok"
    assert res.best == [0, 0, 0]
    assert "a - b" in b.prompts[2].messages[-1]["content"]


SAME_VALUE = "```python\ndef add(a, b):\n    return -(b - a)\n```"  # another program, the same wrong value


def test_stuck_same_error_and_repeated_program():
    res, _ = _solve([WRONG, SAME_VALUE, WRONG2], N_sup=5, halt=CodeHaltRule(passed=True, stuck=2))
    assert res.halt_reason == "stuck: same error" and len(res.attempts) == 2
    res, _ = _solve([WRONG, WRONG, WRONG], N_sup=5, halt=CodeHaltRule(passed=True, stuck=5))
    assert res.halt_reason == "stuck: repeated program" and len(res.attempts) == 2


def test_stuck_tells_different_failures_of_one_test_apart():
    # a - b returns -1 and a * b returns 2 for add(1, 2): the same test fails, with different values, so the
    # loop is not stuck; the third reply repeats the second program and its failure, and that is.
    res, _ = _solve([WRONG, WRONG2, WRONG2], N_sup=5, halt=CodeHaltRule(passed=True, stuck=2))
    assert res.attempts[0].signature == res.attempts[1].signature  # the class of error alone cannot tell
    assert res.attempts[0].fingerprint != res.attempts[1].fingerprint
    assert res.halt_reason == "stuck: same error" and len(res.attempts) == 3


def test_restart_draws_a_fresh_program_where_the_loop_would_halt():
    res, b = _solve([WRONG, WRONG, RIGHT], N_sup=4, halt=CodeHaltRule(passed=True, stuck=2), restart="stuck")
    assert res.halt_reason == "pass" and res.calls == 3
    assert [a.fresh for a in res.attempts] == [False, False, True]
    assert b.prompts[2] == b.prompts[0]  # the fresh draw is asked exactly as depth 0 was: from x alone
    assert "This program is wrong" in b.prompts[1].messages[-1]["content"]
    never, _ = _solve([WRONG, WRONG, RIGHT], N_sup=4, halt=CodeHaltRule(passed=True, stuck=2))
    assert never.halt_reason == "stuck: same error" and never.calls == 2


def test_restart_on_no_progress_and_the_rewrite_after_it_starts_from_the_fresh_program():
    # depth 1 is a rewrite no better than depth 0, so depth 2 is drawn fresh (WRONG2, equally good); depth 3
    # rewrites that latest program, not the older best.
    res, b = _solve([WRONG, SAME_VALUE, WRONG2, RIGHT], N_sup=4, halt=CodeHaltRule(passed=True),
                    restart="no-progress")
    assert [a.fresh for a in res.attempts] == [False, False, True, False] and res.halt_reason == "pass"
    assert "a * b" in b.prompts[3].messages[-1]["content"]
    with pytest.raises(ConfigError, match="restart"):
        LoopConfig(restart="sometimes").validate()


def test_restart_always_never_rewrites():
    res, b = _solve([WRONG, WRONG2, RIGHT], N_sup=4, halt=CodeHaltRule(passed=True), restart="always")
    assert res.halt_reason == "pass" and [a.fresh for a in res.attempts] == [False, True, True]
    assert b.prompts[0] == b.prompts[1] == b.prompts[2]


def test_restart_fresh_first_rewrites_only_where_two_draws_fail_alike():
    halt = CodeHaltRule(passed=True, stuck=2)
    # Two draws failing differently: resampling goes on, as with `always`.
    res, b = _solve([WRONG, WRONG2, RIGHT], N_sup=4, halt=halt, restart="fresh-first")
    assert [a.fresh for a in res.attempts] == [False, True, True] and res.halt_reason == "pass"
    # The greedy program and a draw fail alike (another program, the same value): the next step rewrites, shown
    # how they fail; the rewrite fails differently, so the step after it draws afresh again.
    res, b = _solve([WRONG, SAME_VALUE, WRONG2, RIGHT], N_sup=4, halt=halt, restart="fresh-first",
                    refine_sees_y=False)
    assert [a.fresh for a in res.attempts] == [False, True, False, True] and res.halt_reason == "pass"
    assert b.prompts[0] == b.prompts[1] == b.prompts[3] != b.prompts[2]
    assert "returned -1, expected 3" in b.prompts[2].messages[-1]["content"]
    # A rewrite that repeats a program is stuck too, but a rewrite is never followed by another one, and a
    # draw that repeats an older draw (not the one just before it) is followed by a draw.
    res, b = _solve([WRONG, SAME_VALUE, WRONG, SAME_VALUE, RIGHT], N_sup=4, halt=halt, restart="fresh-first")
    assert [a.fresh for a in res.attempts] == [False, True, False, True, True]
    assert res.halt_reason == "pass" and res.calls == 5


def test_evalplus_prompt_style_asks_as_evalplus_and_reads_the_continued_reply():
    from recursia.code.backends import OpenAIBackend, Prompt
    from recursia.code.prompts import EVALPLUS_ASK, EVALPLUS_REPLY, initial

    prompt, prefix = initial(TASK, "chat", "evalplus")
    assert [m["role"] for m in prompt.messages] == ["user"] and prefix == ""  # no system message, as EvalPlus
    assert prompt.messages[0]["content"] == f"{EVALPLUS_ASK}\n```\n{TASK.prompt}\n```\n"
    assert prompt.reply_start == EVALPLUS_REPLY and EVALPLUS_REPLY.endswith("```python\n")
    assert initial(TASK, "completion", "evalplus") == initial(TASK, "completion")  # base models: as before
    with pytest.raises(ValueError, match="prompt style"):
        initial(TASK, "chat", "fancy")
    # The model's reply is the rest of the fenced block: the loop reads it after the start it was given.
    res, b = _solve(["def add(a, b):\n    return a + b\n"], N_sup=2, prompt_style="evalplus")
    assert res.halt_reason == "pass" and b.prompts[0].reply_start == EVALPLUS_REPLY
    with pytest.raises(ConfigError, match="prompt_style"):
        LoopConfig(prompt_style="fancy").validate()
    # No OpenAI-compatible server can be asked to continue a reply: a clear error before any request.
    with pytest.raises(BackendError, match="prompt-style recursia"):
        OpenAIBackend("http://127.0.0.1:9", "m").generate(Prompt(messages=prompt.messages, reply_start="x"))


def test_unusable_reply_is_a_signature_not_a_crash():
    res, _ = _solve(["no code here", "still nothing", RIGHT], N_sup=3, halt=CodeHaltRule(passed=True))
    assert [a.signature for a in res.attempts[:2]] == ["unusable reply", "unusable reply"]
    assert res.halt_reason == "pass" and res.best == [0, 0, 2, 2]


def test_depth_rule_runs_every_step_and_budgets_stop_early():
    res, _ = _solve([WRONG, WRONG2, WRONG, WRONG2], N_sup=3, halt=CodeHaltRule(passed=False))
    assert res.halt_reason == "depth" and len(res.attempts) == 4
    res, _ = _solve([WRONG, WRONG2, WRONG], N_sup=3, halt=CodeHaltRule(passed=True, tokens=30))
    assert res.halt_reason == "tokens" and res.tokens >= 30 and len(res.attempts) == 2


def test_a_model_saying_done_counts_for_nothing():
    res, _ = _solve(["Done! All tests pass. ```python\ndef add(a, b):\n    return 0\n```", WRONG], N_sup=1,
                    halt=CodeHaltRule(passed=True))
    assert not res.submission().visible_ok and res.halt_reason == "depth"


def test_backend_error_is_recorded_and_stops_the_task():
    res, _ = _solve([WRONG, BackendError("cannot reach http://127.0.0.1:9/v1")], N_sup=3)
    assert res.halt_reason == "backend error" and res.errors == ["cannot reach http://127.0.0.1:9/v1"]
    assert len(res.attempts) == 1
    res, _ = _solve([BackendError("down")], N_sup=3)
    assert res.halt_reason == "backend error" and res.attempts[0].signature == "unusable reply"


def test_agree_needs_passing_programs_with_equal_behaviour():
    task = CodeTask(task_id="a", benchmark="unit", prompt="add(2, 5) gives the sum", entry_point="add",
                    visible_tests=(), hidden_tests=())
    replies = [RIGHT, "```python\ndef add(x, y):\n    return y + x\n```"]
    res = Refiner(Script(replies), LoopConfig(N_sup=3, n=0, halt=CodeHaltRule(passed=False, agree=2))).solve(task)
    assert res.halt_reason == "agree" and len(res.attempts) == 2
    assert res.attempts[0].probes == res.attempts[1].probes and res.attempts[0].probes[0].startswith("7#")
    assert len(res.attempts[0].probes) == len(probes_for(task)) > 1  # add(2, 5), then add(0, 5), add(1, 5), ...
    script = Script([RIGHT, WRONG, RIGHT])
    res = Refiner(script, LoopConfig(N_sup=3, n=0, halt=CodeHaltRule(passed=False, agree=2))).solve(task)
    assert res.halt_reason == "agree" and len(res.attempts) == 3 and res.best == [0, 0, 0, 0]  # 7, -3, 7
    # a passing program is checked against a fresh draw from x, never rewritten
    assert script.prompts[1] == script.prompts[2] == script.prompts[0]


def test_agree_replaces_a_passing_program_that_the_others_contradict():
    # a * b passes the one visible test (2 * 2 == 4) but returns other values on the varied inputs
    task = CodeTask(task_id="m", benchmark="unit", prompt="Write add(a, b).", entry_point="add",
                    visible_tests=("assert add(2, 2) == 4",), hidden_tests=("assert add(1, 2) == 3",))
    for policy in ("never", "always"):
        res = Refiner(Script([WRONG2, RIGHT, RIGHT]), LoopConfig(N_sup=3, n=0, restart=policy, halt=CodeHaltRule(
            passed=False, agree=2))).solve(task)
        assert res.halt_reason == "agree" and res.best == [0, 0, 1, 1] and "a + b" in res.submission().program
    # no two agree within the depth: the first passing program stays the submission, as under `pass`
    res = Refiner(Script([WRONG2, RIGHT]), LoopConfig(N_sup=1, n=0, halt=CodeHaltRule(passed=False, agree=2))
                  ).solve(task)
    assert res.halt_reason == "depth" and "a * b" in res.submission().program


def test_agree_without_probe_calls_halts_at_the_first_pass():
    task = CodeTask(task_id="n", benchmark="unit", prompt="Add two numbers.", entry_point="add",
                    visible_tests=(), hidden_tests=())
    res = Refiner(Script([RIGHT]), LoopConfig(N_sup=3, n=0, halt=CodeHaltRule(passed=False, agree=2))).solve(task)
    assert res.halt_reason == "pass" and res.calls == 1 and res.attempts[0].probes == []


def test_a_probe_that_hangs_costs_only_itself():
    # f(0) never returns: the other probes still report their values, so the two programs still agree
    task = CodeTask(task_id="h", benchmark="unit", prompt="Halve n.", entry_point="f",
                    visible_tests=("assert f(4) == [4, 2]",), hidden_tests=())
    slow = "```python\ndef f(n):\n    out = []\n    while n != 1:\n        out.append(n)\n        n //= 2\n    return out\n```"
    fast = "```python\ndef f(n):\n    out = []\n    while n > 1:\n        out.append(n)\n        n //= 2\n    return out\n```"
    cfg = LoopConfig(N_sup=1, n=0, halt=CodeHaltRule(passed=False, agree=2), limits=Limits(timeout_s=1.0))
    res = Refiner(Script([slow, slow]), cfg).solve(task)
    probes = res.attempts[0].probes
    assert res.halt_reason == "agree" and probes[0].startswith("[4, 2]#") and probes.count("error") == 2  # 0, -4
    res = Refiner(Script([slow, fast]), cfg).solve(task)
    assert res.halt_reason == "depth" and res.attempts[1].probes.count("error") == 0


def test_probes_vary_one_literal_argument_at_a_time():
    calls = ["f([1, 2, 3], 4)", "g('abc')", "f(x)", "h(2.5, k=True)"]
    out = mutated_calls(calls, 100)
    assert out[:3] == ["f([], 4)", "g('')", "h(0.0, k=True)"]  # round-robin over the calls
    assert {"f([3, 2, 1], 4)", "f([1, 2, 3], 0)", "g('cba')", "h(2.5, k=False)"} <= set(out)
    assert not any(c.startswith("f(x") for c in out) and len(out) == len(set(out)) and not set(out) & set(calls)
    assert len(mutated_calls(calls, 5)) == 5 and mutated_calls(["f(float('inf'))", "f(*a)"], 9) == []


def test_loop_config_is_validated():
    with pytest.raises(ConfigError, match="T=0"):
        LoopConfig(T=0).validate()
    with pytest.raises(ConfigError, match="temperature"):
        LoopConfig(refine_temperature=3).validate()


# ---------------------------------------------------------------------------------------------------- stats
def test_wilson_and_mcnemar_against_hand_values():
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson(0, 20)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.1611, abs=1e-4)
    m = mcnemar([True] * 5 + [False] * 3, [False] * 5 + [False] * 3)
    assert (m["a_only"], m["b_only"], m["neither"]) == (5, 0, 3) and m["p_value"] == pytest.approx(2 * 0.5 ** 5)
    assert mcnemar([True, False], [True, False])["p_value"] == 1.0


def test_feedback_names_the_failing_program_line_and_shows_tests_as_written():
    from recursia.code.prompts import feedback
    from recursia.code.sandbox import execute

    shown = ["assert f(1) == 2"]
    r = execute("def f(x):\n    return 1/0\n", shown).to_dict()
    assert feedback(r, shown) == ("Test failed: assert f(1) == 2\n  f(1) raised ZeroDivisionError: division by zero"
                                  "\n  at: return 1/0")
    r = execute("def f(x):\n    return 3\n", shown).to_dict()
    assert feedback(r, shown) == "Test failed: assert f(1) == 2\n  f(1) returned 3, expected 2"
    assert feedback(None, shown).startswith("The reply contained no usable Python program")


def test_a_run_directory_has_one_writer_and_records_resume(tmp_path):
    from recursia.code.evaluate import EvalSettings, read_records, run_eval
    from recursia.rundir import RunDirBusy, RunLock

    s = EvalSettings(bench="unit", split=None, protocol="visible", backend="script", depth=1, baseline=False)
    run = tmp_path / "run"
    with RunLock(run, "code evaluation"):
        with pytest.raises(RunDirBusy, match=r"in use by another code evaluation \(pid \d+\)"):
            run_eval([TASK], Refiner(Script([RIGHT]), LoopConfig(N_sup=1, n=0)), s, run, progress=False)
    assert not (run / "config.json").exists()  # refused before writing anything
    summary = run_eval([TASK], Refiner(Script([RIGHT]), LoopConfig(N_sup=1, n=0)), s, run, progress=False)
    assert summary["pass_at_1_by_depth"][-1]["pass"] == 1 and len(read_records(run)) == 1
    with pytest.raises(Exception, match="already holds a code evaluation"):
        run_eval([TASK], Refiner(Script([RIGHT]), LoopConfig(N_sup=1, n=0)), s, run, progress=False)
    # resuming a finished run redoes nothing: the scripted backend has no reply left to give
    run_eval([TASK], Refiner(Script([]), LoopConfig(N_sup=1, n=0)), s, run, resume=True, progress=False)
    assert len(read_records(run)) == 1


def test_depth_policy_caps_depth_per_task_and_skills_go_into_z():
    from recursia.code.skills import Skill, SkillLibrary

    class Policy:
        def __init__(self):
            self.asked = []

        def depth_for(self, task, first_signature=None):
            self.asked.append((task.task_id, first_signature))
            return 1

    policy = Policy()
    res = Refiner(Script([WRONG, WRONG2, WRONG]), LoopConfig(N_sup=3, n=0, halt=CodeHaltRule(passed=True)),
                  depth_policy=policy).solve(TASK)
    assert res.halt_reason == "depth policy (1)" and len(res.attempts) == 2 and res.best == [0, 0, 0, 0]
    assert policy.asked == [("t/1", "AssertionError in test 1")]
    lib = SkillLibrary([Skill("solution", "mbpp", "mbpp/700", "train", "Write a function to add two numbers a and b.",
                              "def add_two(a, b):\n    return a + b\n")])
    backend = Script([WRONG, RIGHT])
    Refiner(backend, LoopConfig(N_sup=1, n=0), skills=lib).solve(TASK)
    refine_prompt = backend.prompts[1].messages[-1]["content"]
    assert "def add_two(a, b)" in refine_prompt and "similar solved tasks" in refine_prompt
    assert "def add_two" not in backend.prompts[0].messages[-1]["content"]  # z only: the draw from x is plain


def test_skills_in_x_reach_every_draw_from_the_task_and_no_rewrite():
    from recursia.code.skills import Skill, SkillLibrary

    lib = SkillLibrary([Skill("solution", "mbpp", "mbpp/700", "train", "Write a function to add two numbers a and b.",
                              "def add_two(a, b):\n    return a + b\n")])
    # restart=always: depth 0 and two fresh draws, each from x, each holding the skill ahead of the task
    backend = Script([WRONG, WRONG2, RIGHT])
    res = Refiner(backend, LoopConfig(N_sup=2, n=0, restart="always", skills_in="x"), skills=lib).solve(TASK)
    assert res.halt_reason == "pass" and [a.fresh for a in res.attempts] == [False, True, True]
    for p in backend.prompts:
        user = p.messages[-1]["content"]
        assert "similar solved tasks" in user and user.index("def add_two") < user.index(TASK.prompt.strip()[:20])
    # a rewrite's z stays free of them, and without a library the draw is today's prompt, byte for byte
    backend = Script([WRONG, RIGHT])
    Refiner(backend, LoopConfig(N_sup=1, n=0, skills_in="x"), skills=lib).solve(TASK)
    assert "def add_two" in backend.prompts[0].messages[-1]["content"]
    assert "def add_two" not in backend.prompts[1].messages[-1]["content"]
    plain, with_none = Script([RIGHT]), Script([RIGHT])
    Refiner(plain, LoopConfig(N_sup=0)).solve(TASK)
    Refiner(with_none, LoopConfig(N_sup=0, skills_in="x")).solve(TASK)
    assert plain.prompts[0].messages == with_none.prompts[0].messages
    with pytest.raises(ConfigError, match="skills_in"):
        LoopConfig(skills_in="y").validate()
    with pytest.raises(ConfigError, match="prompt_style"):
        LoopConfig(skills_in="x", prompt_style="evalplus").validate()


def test_eval_writes_every_step_into_the_store(tmp_path):
    from recursia.code.evaluate import EvalSettings, run_eval
    from recursia.code.store import Store

    s = EvalSettings(bench="unit", split=None, protocol="visible", backend="script", depth=2, baseline=False)
    run_eval([TASK], Refiner(Script([WRONG, RIGHT]), LoopConfig(N_sup=2, n=0)), s, tmp_path / "run",
             progress=False, store=tmp_path / "store.sqlite")
    with Store(tmp_path / "store.sqlite") as st:
        recs = st.records()
        assert len(recs) == 1 and recs[0]["task_id"] == "t/1"
        assert len(st.steps(recs[0]["record_id"])) == 2 and st.integrity() == []


def test_baseline_meets_the_loops_fresh_draws_and_reuses_their_replies():
    from recursia.code.evaluate import EvalSettings, evaluate_task

    s = EvalSettings(bench="unit", split=None, protocol="visible", backend="script", depth=3, n=0,
                     halt="pass", restart="always")
    # the loop: WRONG (depth 0), then fresh draws WRONG2 and RIGHT; the baseline's two draws carry the same
    # prompts and seeds, so they are the loop's replies again, not new calls: the script has nothing left
    backend = Script([WRONG, WRONG2, RIGHT])
    rec = evaluate_task(Refiner(backend, LoopConfig(N_sup=3, n=0, halt=CodeHaltRule(passed=True),
                                                    restart="always")), TASK, s, 0)
    b = rec["baseline"]
    assert rec["loop"]["calls"] == 3 and (b["calls"], b["draws"], b["pick"], b["replayed"]) == (3, 3, 2, 2)
    assert len(backend.prompts) == 3 and rec["hidden_by_depth"][-1] is True and b["hidden"] is True


def test_summary_counts_visible_pass_hidden_fail_only_where_something_was_visible():
    from recursia.code.evaluate import summarise

    def rec(i, visible, vis_ok, hidden):
        return {"task_id": f"t{i}", "sample": 0, "visible_tests": visible, "final_visible_ok": vis_ok,
                "hidden_by_depth": [hidden], "seconds": 1.0,
                "loop": {"halt_reason": "pass", "calls": 1, "prompt_tokens": 1, "completion_tokens": 1,
                         "attempts": [{}], "errors": []}}
    s = {"bench": "b", "split": None, "protocol": "visible", "backend": "x", "samples": 1, "depth": 0, "n": 1,
         "T": 1, "halt": "pass", "refine_sees_x": False, "temperature": 0.0, "refine_temperature": 0.7}
    out = summarise([rec(0, 1, True, False), rec(1, 1, True, True), rec(2, 0, True, False), rec(3, 2, False, False)], s)
    assert out["visible_pass_hidden_fail"] == {"count": 1, "of": 2} and out["tasks_without_visible_tests"] == 1
    assert out["pass_at_1_by_depth"][0]["pass"] == 1 and out["pass_at_1_by_depth"][0]["n"] == 4
