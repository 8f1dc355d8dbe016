"""The result channel of one sandbox run: the pipe the runner and the harness write records to, read here
strictly, and the verdict computed from it.

Every line must be a record of this run: the runner's (prefixed by a nonce only the runner holds) or the
harness's (prefixed by the run's nonce), a JSON array of a known kind and shape, in the order an honest run
writes them. Anything else (a line without a nonce, bad JSON, a duplicate, a test reported twice or out of
order, a value that does not decode, more checks than the test has, an exit after the final record that is not
a clean one) is tampering, and fails the whole sample: an honest program never touches this pipe.

The harness reports values, not verdicts; `Records.outcomes` judges them against the tests' checks
(iotest.judge), here in the trusted parent.
"""

from __future__ import annotations

import json
from typing import Sequence

from .iotest import Test, judge
from .values import ValueRefused, decode

HARNESS_KINDS = {"start": 1, "prog": 7, "begin": 2, "end": 2}
RUNNER_KINDS = {"runner": 2, "iso": 3, "fatal": 2, "pid": 2, "exit": 5, "oom": 2}


class Records:
    """Parses the pipe as it is read; `tampered` holds the first reason found, if any."""

    def __init__(self, nonce: str, runner_nonce: str, tests: Sequence[Test], max_line: int, max_total: int):
        self.prefix, self.runner_prefix = nonce.encode() + b" ", runner_nonce.encode() + b" "
        self.tests, self.max_line, self.max_total = tests, max_line, max_total
        self.iso = self.network = self.fatal = None
        self.pid: int | None = None
        self.runner: int | None = None
        self.exit: tuple | None = None
        self.seconds: float | None = None
        self.cpu: float | None = None
        self.oom = False
        self.started = False
        self.prog: list | None = None
        self.begun: list[int] = []
        self.results: dict[int, list] = {}
        self.end: int | None = None
        self.tampered: str | None = None
        self.torn = False
        self.total = 0

    # ---- reading -------------------------------------------------------------------------------------------
    def read(self, fd: int) -> None:
        import os

        buf = b""
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            self.total += len(chunk)
            if self.total > self.max_total:
                self._tamper(f"more than {self.max_total >> 20} MB on the result pipe")
                buf = b""
                continue  # keep reading (so the writer never blocks), keep nothing
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._line(line)
            if len(buf) > self.max_line:
                self._tamper(f"a line of more than {self.max_line:,} bytes on the result pipe")
                buf = b""
        if buf:  # a record cut short: a run killed while writing (then it failed already), else tampering
            self.torn = True

    def _tamper(self, why: str) -> None:
        if self.tampered is None:
            self.tampered = why

    def _line(self, line: bytes) -> None:
        if not line:
            return
        runner = line.startswith(self.runner_prefix)
        if not runner and not line.startswith(self.prefix):
            return self._tamper("a line on the result pipe that is not this run's")
        body = line[len(self.runner_prefix if runner else self.prefix):]
        try:
            rec = json.loads(body)
        except (ValueError, RecursionError):
            return self._tamper("a record that is not JSON")
        if type(rec) is not list or not rec or type(rec[0]) is not str:
            return self._tamper("a record of the wrong shape")
        kind = rec[0]
        kinds = RUNNER_KINDS if runner else HARNESS_KINDS
        if kind == "test" and not runner:
            return self._test(rec)
        if kinds.get(kind) != len(rec):
            return self._tamper(f"an unknown or malformed {kind[:20]!r} record")
        try:
            (self._runner_record if runner else self._harness_record)(kind, rec)
        except (TypeError, ValueError):
            self._tamper(f"a {kind!r} record with fields of the wrong type")

    def _runner_record(self, kind: str, rec: list) -> None:
        if kind == "iso":
            self.iso, self.network = _text(rec[1], 4000), _text(rec[2], 500)
        elif kind == "fatal":
            self.fatal = _text(rec[1], 2000)
        elif kind == "pid":
            self.pid = _int(rec[1])
        elif kind == "runner":
            self.runner = _int(rec[1])
        elif kind == "oom":
            self.oom = bool(rec[1])
        elif kind == "exit":
            if self.exit is not None:
                raise ValueError("two exit records")
            self.exit = (_text(rec[1]), _int(rec[2]) if rec[2] is not None else None)
            self.seconds, self.cpu = float(rec[3]), float(rec[4])

    def _harness_record(self, kind: str, rec: list) -> None:
        if self.end is not None:
            return self._tamper("a record after the final one")
        if kind == "start":
            if self.started:
                return self._tamper("two start records")
            self.started = True
        elif kind == "prog":
            if self.prog is not None or not self.started:
                return self._tamper("a program record out of place")
            if rec[1] not in ("ok", "syntax_error", "program_error"):
                return self._tamper("a program record with an unknown status")
            self.prog = [rec[1], _text(rec[2]), _text(rec[3], 500), _text(rec[4], 300), _opt_int(rec[5]),
                         _text(rec[6])]
        elif kind == "begin":
            i = _int(rec[1])
            if self.prog is None or self.prog[0] != "ok" or i != len(self.begun) or i >= len(self.tests) \
                    or (self.begun and self.begun[-1] not in self.results):
                return self._tamper("a test begun out of order")
            self.begun.append(i)
        elif kind == "end":
            n = _int(rec[1])
            finished = len(self.results) == len(self.tests) if self.prog and self.prog[0] == "ok" else not self.begun
            if n != len(self.tests) or self.prog is None or not finished:
                return self._tamper("a final record before every test was reported")
            self.end = n

    def _test(self, rec: list) -> None:
        if self.end is not None:
            return self._tamper("a record after the final one")
        if len(rec) < 4 or type(rec[1]) is not int or not self.begun or rec[1] != self.begun[-1] \
                or rec[1] in self.results:
            return self._tamper("a test result out of order or twice")
        i, status = rec[1], rec[2]
        if status == "ok" and len(rec) == 4:
            error, captures = None, rec[3]
        elif status == "error" and len(rec) == 9:
            try:
                error = [_text(rec[3], 100), _text(rec[4], 500), _text(rec[5], 300), _opt_int(rec[6]), _text(rec[7])]
            except (TypeError, ValueError):
                return self._tamper("a test error record with fields of the wrong type")
            captures = rec[8]
        else:
            return self._tamper("a test record of the wrong shape")
        try:
            decoded = self._captures(self.tests[i], captures, complete=status == "ok")
        except (TypeError, ValueError, ValueRefused) as e:
            return self._tamper(f"test {i}: {e}")
        self.results[i] = [error, decoded]

    def _captures(self, test: Test, captures, complete: bool) -> list:
        """Each check's leaves as ("v", value) or ("e", type, message, line, lineno, part), in order: exactly
        one entry per check when the test ran to its end, a prefix of them when it raised."""
        if type(captures) is not list:
            raise TypeError("captures must be a list")
        if len(captures) > len(test.checks) or (complete and len(captures) != len(test.checks)):
            raise ValueError(f"{len(captures)} checks reported, the test has {len(test.checks)}")
        out = []
        for j, entry in enumerate(captures):
            if type(entry) is not list or len(entry) != 2 or entry[0] != j or type(entry[1]) is not list:
                raise ValueError("checks reported out of order")
            leaves = entry[1]
            if len(leaves) != len(test.checks[j].leaves):
                raise ValueError(f"check {j}: {len(leaves)} values for {len(test.checks[j].leaves)} leaves")
            got = []
            for leaf in leaves:
                if type(leaf) is list and len(leaf) == 2 and leaf[0] == "v":
                    got.append(("v", decode(leaf[1], self.max_line)))
                elif type(leaf) is list and len(leaf) == 6 and leaf[0] == "e":
                    got.append(("e", _text(leaf[1], 100) or "?", _text(leaf[2], 500), _text(leaf[3], 300),
                                _opt_int(leaf[4]), _text(leaf[5])))
                else:
                    raise ValueError("a leaf of the wrong shape")
            out.append(got)
        return out

    # ---- judging -------------------------------------------------------------------------------------------
    def outcomes(self, complete: bool, why_not_run: str, etype: str | None):
        """A TestOutcome per test: judged from its values where the run finished cleanly."""
        from .sandbox import TestOutcome

        out = []
        for i, test in enumerate(self.tests):
            result = self.results.get(i)
            if self.tampered:
                out.append(TestOutcome(i, False, "Tampering", f"the sample is failed whole: {self.tampered}",
                                       part="harness"))
            elif result is None:
                reason = ("not finished: " if i in self.begun else "not run: ") + why_not_run
                out.append(TestOutcome(i, False, etype or "NotRun", reason, part="harness"))
            else:
                out.append(_judged(i, test, result[0], result[1], complete))
        return out


def _judged(i: int, test: Test, error, checks: list, complete: bool):
    from .sandbox import TestOutcome

    values = [[leaf[1] if leaf[0] == "v" else None for leaf in leaves] for leaves in checks]
    for j, leaves in enumerate(checks):
        ok, etype, message = judge(test.checks[j], [leaf[:3] for leaf in leaves], test.args)
        if not ok:
            raised = next((leaf for leaf in leaves if leaf[0] == "e"), None)
            line, lineno, part = (raised[3], raised[4], raised[5]) if raised and raised[5] else (
                _first_line(test.source), None, "test")
            return TestOutcome(i, False, etype, message, line, lineno, part, values=values)
    if error is not None:
        return TestOutcome(i, False, error[0], error[1], error[2], error[3], error[4], values=values)
    if not complete:
        return TestOutcome(i, False, "Incomplete", "passed, but the run did not finish, so no test counts",
                           part="harness", values=values)
    return TestOutcome(i, True, values=values)


def _first_line(source: str) -> str:
    lines = [ln for ln in source.strip().splitlines() if ln.strip().startswith("assert")] or source.splitlines()
    return (lines[0].strip() if lines else "")[:300]


def _text(value, limit: int = 200):
    if value is None:
        return None
    if type(value) is not str:
        raise TypeError("expected a string")
    return value[:limit]


def _int(value) -> int:
    if type(value) is not int:
        raise TypeError("expected an int")
    return value


def _opt_int(value):
    return None if value is None else _int(value)
