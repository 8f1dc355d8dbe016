"""Attacks on the verdict itself, as an attacker would try them: each worked against a harness that judged
inside the process running the candidate (checked against that harness when these tests were written), and
each must fail now that the sandbox only reports values and the parent judges them (iotest.py, channel.py).
Attacks on the isolation (files, ptrace, memory) are in test_code_isolation.py."""

from __future__ import annotations

import json
import time

import pytest

from recursia.code.channel import Records
from recursia.code.iotest import convert
from recursia.code.sandbox import Limits, _result, execute

FAST = Limits(timeout_s=10, cpu_s=10)
WRONG_TESTS = ["assert g(0) == 0", "assert f(1) == 2", "assert f(2) == 3", "assert f(3) == 4"]

# Takes the harness's own `emit` from its frame while the harness walks a traceback (the only moment frame
# access is allowed on its thread), then reports every test as passed and exits.
STEAL = '''
import os
def _steal():
    try:
        raise KeyError
    except KeyError as e:
        tb = e.__traceback__
    frame = tb.tb_frame
    while frame is not None:
        loc = frame.f_locals
        if "emit" in loc and "test_codes" in loc:
            return loc
        frame = frame.f_back
def _forge():
    try:
        loc = _steal()
    except Exception:
        return
    if not loc:
        return
    emit, n = loc["emit"], len(loc["test_codes"])
    FORGE
    emit(("end", n))
    os._exit(0)
def f(x):
    return x
def g(x):
    raise ValueError("open the gate")
import gc
gc.callbacks.append(lambda phase, info: _forge())
gc.set_threshold(1)
'''
OLD_FORMAT = "for i in range(n):\n        emit(('test', i, True, None, None, None, None, None))"
NEW_FORMAT = ("for i in range(len(loc['begun']) if 'begun' in loc else 0, n):\n"
              "        emit(('begin', i))\n        emit(('test', i, 'ok', [[0, [['v', '2']]]]))")

# Raw memory writes without ctypes: numpy's __array_interface__ pointed at the int and bool type objects
# clears their immutable flag, then every int and bool compares equal to anything in this process.
RAW_MEMORY = '''
import numpy as np
class _Mem:
    def __init__(self, addr, n):
        self.__array_interface__ = {"data": (addr, False), "shape": (n,), "typestr": "|u1", "version": 3}
def _mutable(tp):
    view = np.asarray(_Mem(id(tp) + 168, 8))  # tp_flags of a CPython 3.11 type object on a 64-bit build
    flags = int.from_bytes(bytes(view), "little") & ~(1 << 8)  # clear Py_TPFLAGS_IMMUTABLETYPE
    view[:] = np.frombuffer(flags.to_bytes(8, "little"), dtype=np.uint8)
for _tp in (int, bool):
    _mutable(_tp)
    _tp.__eq__ = lambda a, b: True
def f(x):
    return x
def g(x):
    return 1
'''


@pytest.mark.parametrize("forge", [OLD_FORMAT, NEW_FORMAT], ids=["old-records", "well-formed-claims"])
def test_stealing_the_harness_reporter_never_passes(forge):
    r = execute(STEAL.replace("FORGE", forge), WRONG_TESTS, limits=FAST)
    assert not r.all_passed and not any(t.passed for t in r.tests[2:]), r.to_dict()
    if forge is OLD_FORMAT:  # the forged lines are not records of this protocol: the whole sample fails
        assert r.status == "tampered" and {t.error_type for t in r.tests} == {"Tampering"}


def test_patching_int_and_bool_equality_in_memory_never_passes():
    pytest.importorskip("numpy")
    r = execute(RAW_MEMORY, WRONG_TESTS + ["assert g(1) is False", "assert g(1) == False", "assert f(1) == 2.5"], limits=FAST)
    assert r.passed == 0, r.to_dict()
    assert r.tests[1].message == "f(1) returned 1, expected 2"


def test_values_crafted_to_collide_in_a_set_are_refused_fast():
    # 20,000 distinct ints with one hash: set() of them takes minutes; the check asks for set(f(1)).
    program = "def f(x):\n    return [x + k * (2 ** 61 - 1) for k in range(20000)]\n"
    t0 = time.monotonic()
    r = execute(program, ["assert set(f(1)) == {1}"], limits=FAST)
    assert time.monotonic() - t0 < 20
    assert not r.all_passed and "collision" in (r.tests[0].message or "") + (r.message or ""), r.to_dict()


def test_oversized_and_overdeep_values_fail_their_test_only():
    program = ("def big():\n    return 'x' * (5 << 20)\n"
               "def deep():\n    v = []\n    for _ in range(200):\n        v = [v]\n    return v\n"
               "def ok():\n    return 1\n")
    r = execute(program, ["assert big() == ''", "assert deep() == []", "assert ok() == 1"],
                limits=Limits(timeout_s=10, cpu_s=10, value_mb=4))
    assert [t.passed for t in r.tests] == [False, False, True] and r.status == "ok", r.to_dict()
    assert "too large" in r.tests[0].message and "nested" in r.tests[1].message


def test_expected_values_never_reach_the_sandbox():
    t = convert("assert set(f([3, 1], 2)) == {987654321, 123456789}")
    assert "987654321" not in t.code and "123456789" not in t.code and "f([3, 1], 2)" in t.code
    assert "987654321" in t.checks[0].expr


# ---- the result channel: anything but an honest run's records fails the whole sample -----------------------
def _feed(lines: list[bytes], n_tests: int = 2, exit_code: int = 0):
    tests = [convert(f"assert f({i}) == {i}") for i in range(n_tests)]
    rec = Records("n" * 32, "r" * 32, tests, max_line=1 << 20, max_total=1 << 24)
    for line in [b"r" * 32 + b' ["runner", 5]', b"r" * 32 + b' ["iso", "test", "cut"]'] + lines + [
            b"r" * 32 + b' ["exit", "exited", %d, 0.1, 0.05]' % exit_code]:
        rec._line(line)
    return _result(rec, Limits())


def _h(*record) -> bytes:
    return b"n" * 32 + b" " + json.dumps(list(record)).encode()


HONEST = [_h("start"), _h("prog", "ok", None, None, None, None, None),
          _h("begin", 0), _h("test", 0, "ok", [[0, [["v", "0"]]]]),
          _h("begin", 1), _h("test", 1, "ok", [[0, [["v", "1"]]]]), _h("end", 2)]


def test_an_honest_stream_is_judged():
    r = _feed(HONEST)
    assert r.status == "ok" and r.all_passed
    r = _feed(HONEST[:3] + [_h("test", 0, "ok", [[0, [["v", "5"]]]])] + HONEST[4:])
    assert r.status == "ok" and [t.passed for t in r.tests] == [False, True]


@pytest.mark.parametrize("name", ["duplicate", "junk line", "bad json", "after end", "too many checks",
                                  "undecodable value", "forged runner record", "exit after end", "no begin",
                                  "custom type tag", "big int as number"])
def test_any_sign_of_tampering_fails_the_whole_sample(name):
    lines, code = list(HONEST), 0
    if name == "duplicate":
        lines.insert(4, _h("test", 0, "ok", [[0, [["v", "0"]]]]))
    elif name == "junk line":
        lines.insert(2, b"PASSED 2/2")
    elif name == "bad json":
        lines.insert(2, b"n" * 32 + b" [\"test\", 0, ")
    elif name == "after end":
        lines.append(_h("test", 1, "ok", [[0, [["v", "1"]]]]))
    elif name == "too many checks":
        lines[3] = _h("test", 0, "ok", [[0, [["v", "0"]]], [1, [["v", "0"]]]])
    elif name == "undecodable value":
        lines[3] = _h("test", 0, "ok", [[0, [["v", "{\"__class__\": 1}"]]]])
    elif name == "forged runner record":
        lines.insert(2, _h("exit", "exited", 0, 0.1, 0.1))
    elif name == "exit after end":
        code = 3
    elif name == "no begin":
        del lines[2]
    elif name == "custom type tag":
        lines[3] = _h("test", 0, "ok", [[0, [["v", "[\"object\", 1]"]]]])
    elif name == "big int as number":
        lines[3] = _h("test", 0, "ok", [[0, [["v", str(1 << 70)]]]])
    r = _feed(lines, exit_code=code)
    assert r.status == "tampered" and not any(t.passed for t in r.tests), (name, r.to_dict())
    assert all(t.error_type == "Tampering" for t in r.tests)
