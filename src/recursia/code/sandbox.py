"""Run a candidate program on its tests in an isolated subprocess, and judge the result here, where the program
cannot reach.

A small fork server (_runner.py, started on first use) forks a trusted runner per run, in its own session. The
runner gives the candidate its own root (the Python installation read-only, a size-limited tmpfs), new pid,
network and mount namespaces, a cgroup bounding the whole sample, a seccomp filter against tracing, uid/gid
65534 when we are root, and execs a fresh `python -I -S` running _harness.py. The harness runs the program and
each test's code, and reports only the plain values the tests' leaves returned (values.py) over a private pipe;
channel.py reads that pipe strictly and the parent judges every test against checks and expected values that
never entered the sandbox (iotest.py). A forged report is only a claim about outputs; a malformed one fails the
whole sample. docs/code.md says what is guaranteed and what is out of scope.
"""

from __future__ import annotations

import functools
import marshal
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import RecursiaError
from .channel import Records
from .iotest import Test, convert

HERE = Path(__file__).resolve().parent
RUNNER, HARNESS, CODEC = HERE / "_runner.py", HERE / "_harness.py", HERE / "values.py"
PRELOAD = ("types", "math", "itertools", "operator", "heapq", "bisect")  # cheap; their attributes are restored per test
STATUSES = ("ok", "syntax_error", "program_error", "timeout", "memory", "crash", "tampered")


@dataclass(frozen=True)
class Limits:
    """What one run may use. timeout_s is wall clock for the whole run (the candidate and everything it forked
    are killed past it); memory_mb, nproc and cpu_s bound the whole sample, all its processes together (a
    cgroup, or the runner's watchdog where none can be made; the result's isolation text says which), with
    per-process rlimits as a second bound; disk_mb is the size of the tmpfs work dir."""

    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    nproc: int = 64
    file_mb: int = 16
    nofile: int = 64
    disk_mb: int = 64
    output_bytes: int = 65536
    # The largest value one check may report (encoded; larger ones fail that test), and all the run may write to
    # its result pipe (past it the sample is failed as tampered). HumanEval+'s largest expected output is 11 MB
    # (HumanEval/130), and HumanEval/15's 1,134 outputs come to 147 MB.
    value_mb: int = 16
    result_mb: int = 256
    namespaces: bool = True  # use pid/net/mount namespaces where the OS allows (False: only rlimits and uid)
    cgroup: bool = True  # a cgroup per run where the OS allows (False: per-process limits + the runner's watchdog)
    # Paths the program must not read: the benchmark's files, which hold the hidden tests and the reference
    # solutions (covered by an empty read-only tmpfs, or /dev/null for a file; needs the mount namespace).
    hide: tuple[str, ...] = ()


@dataclass
class TestOutcome:
    __test__ = False  # not a pytest test class, despite the name

    index: int  # position in the tests given, from 0
    passed: bool
    error_type: str | None = None
    message: str | None = None
    line: str | None = None  # text of the failing source line (innermost line of the program, setup or test)
    lineno: int | None = None
    part: str | None = None  # where that line is: "program", "setup", "test" or "harness"
    # What each check's leaves returned (decoded plain values, None for a leaf that raised): for feedback and
    # the `agree` rule's probes; left out of to_dict (EvalPlus outputs can be large).
    values: list | None = field(default=None, repr=False, compare=False)


@dataclass
class ExecResult:
    tests: list[TestOutcome]
    status: str
    error_type: str | None
    message: str | None
    line: str | None
    seconds: float
    stdout: str
    stderr: str
    network: str
    isolation: str
    lineno: int | None = None
    exit: str | None = None  # how the candidate process ended, e.g. "exited 0", "signaled 9", "timeout"
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(t.passed for t in self.tests)

    @property
    def all_passed(self) -> bool:
        """True only with at least one test, all passing (zero tests prove nothing)."""
        return bool(self.tests) and all(t.passed for t in self.tests)

    def signature(self) -> str:
        """A short, deterministic error signature to notice a loop that is stuck on the same error: no line
        numbers, addresses or values (they change between rewrites)."""
        if self.all_passed:
            return "ok"
        if self.status in ("timeout", "memory", "crash", "tampered"):
            return self.status
        if self.status == "syntax_error":
            return f"{self.error_type}: {self.message or ''}".rstrip(": ")[:100]
        if self.status == "program_error":
            return _normalize(f"{self.error_type}: {self.message or ''}".rstrip(": "))
        for t in self.tests:
            if not t.passed:
                if t.error_type == "AssertionError":
                    return f"AssertionError in test {t.index}"
                message = t.message or ""
                if f" raised {t.error_type}" in message:  # "f(x) raised E: text": the leaf is not part of it
                    message = message.partition(f" raised {t.error_type}")[2].lstrip(": ")
                return _normalize(f"{t.error_type}: {message}".rstrip(": "))
        return "no tests"

    def to_dict(self) -> dict:
        d = asdict(self)
        for t in d["tests"]:
            t.pop("values", None)
        d.update(passed=self.passed, all_passed=self.all_passed, signature=self.signature())
        return d


def _normalize(text: str) -> str:
    text = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "S", text)
    text = re.sub(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:e[+-]?\d+)?", "N", text)
    return text[:100]


# ----------------------------------------------------------------------------------------------------------
def execute(program: str, tests: Sequence[Test | str], setup: str = "", limits: Limits = Limits(),
            names: Sequence[str] = ()) -> ExecResult:
    """Run `program`, then each test in a fresh copy of its namespace after `setup`; judge each test here from
    the values it reported. A test given as source (`assert f(1) == 2`) is converted first (iotest.convert;
    `names` are the candidate's names the test uses, beyond the rule there)."""
    tests = [t if isinstance(t, Test) else convert(t, names, setup) for t in tests]
    nonce, runner_nonce = secrets.token_hex(16), secrets.token_hex(16)
    value_bytes = limits.value_mb << 20
    specs = [(t.code, None if t.args is None else marshal.dumps(t.args), t.fresh) for t in tests]
    payload = marshal.dumps((program, specs, setup, nonce, 3, PRELOAD, list(_site_paths()), _codec_code(),
                             value_bytes))
    job = marshal.dumps({"nonce": nonce, "runner_nonce": runner_nonce, "payload": payload,
                         "python": sys.executable, "harness": _harness_file(), "namespaces": limits.namespaces,
                         "limits": {k: v for k, v in asdict(limits).items() if k != "namespaces"}})
    t0 = time.monotonic()
    records = Records(nonce, runner_nonce, tests, max_line=value_bytes * 2 + 65536, max_total=limits.result_mb << 20)
    read_fd, write_fd = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        _SERVER.submit(job, [write_fd, out_w, err_w])
    except BaseException:
        for f in (read_fd, out_r, err_r):
            os.close(f)
        raise
    finally:
        for f in (write_fd, out_w, err_w):
            os.close(f)
    out, err = _Capped(out_r, limits.output_bytes), _Capped(err_r, limits.output_bytes)
    readers = [threading.Thread(target=f, daemon=True) for f in (out.run, err.run, lambda: records.read(read_fd))]
    for t in readers:
        t.start()
    notes = []
    for t in readers:
        t.join(timeout=max(0.0, t0 + limits.timeout_s + 15 - time.monotonic()))
    if any(t.is_alive() for t in readers):  # the runner should have ended the run long ago
        notes.append("the run did not end in time; the sandbox killed what was left")
        _kill(records.runner, records.pid)
        for t in readers:
            t.join(timeout=5)
    for f in (read_fd, out_r, err_r):
        os.close(f)
    result = _result(records, limits)
    result.seconds = records.seconds if records.seconds is not None else time.monotonic() - t0
    result.stdout, result.stderr = out.text(), err.text()
    result.notes = notes + result.notes
    return result


def _result(rec: Records, limits: Limits) -> ExecResult:
    """The run's status and each test's judged outcome, from what the channel read."""
    how, code = rec.exit or ("unknown", None)
    exit_text = {"exited": f"exited {code}", "signaled": f"signaled {code}", "timeout": "timeout"}.get(
        how, "the runner did not report how the candidate ended")
    complete = rec.end is not None
    status, etype, message, line, lineno = "ok", None, None, None, None
    if rec.prog is not None and rec.prog[0] in ("syntax_error", "program_error"):
        status, etype, message, line, lineno = rec.prog[0], rec.prog[1], rec.prog[2], rec.prog[3], rec.prog[4]
    out_of_cpu = how == "signaled" and code in (9, 24) and (rec.cpu or 0) >= limits.cpu_s - 0.05
    if complete and rec.torn:
        rec.tampered = rec.tampered or "a partial line on the result pipe after the final record"
    if complete and how == "exited" and code != 0:
        rec.tampered = rec.tampered or f"the process exited with status {code} after its final record"
    if rec.tampered:
        status, etype, message = "tampered", "Tampering", f"the sample is failed whole: {rec.tampered}"
    elif how == "timeout" or out_of_cpu:
        status, etype = "timeout", "Timeout"
        message = (f"the run took longer than {limits.timeout_s:g} s (wall clock) and was killed"
                   if how == "timeout" else f"the run used more than {limits.cpu_s} s of CPU time")
    elif rec.oom and not complete:
        status, etype, message = "memory", "MemoryError", f"the sample used more than {limits.memory_mb} MB"
    elif not complete and status == "ok":
        status, etype = "crash", "Crash"
        if rec.fatal:
            message = rec.fatal
        elif how == "exited":
            message = f"the process exited with status {code} before the tests finished (os._exit or a crash)"
        elif how == "signaled":
            message = f"the process was killed by signal {code}" + (" (out of memory?)" if code == 9 else "")
        else:
            message = "the sandbox runner ended without reporting (killed?)"
    elif complete and how == "signaled":
        status, etype, message = "crash", "Crash", f"the process was killed by signal {code} after reporting"
        complete = False
    why = {"syntax_error": "the program has a syntax error",
           "program_error": "the program raised an error while being defined"}.get(status)
    outcomes = rec.outcomes(complete and status == "ok", why or f"the run ended early ({status}: {message})",
                            etype)
    if status == "ok" and any(t.error_type == "MemoryError" for t in outcomes):
        status, etype = "memory", "MemoryError"
        message = next(t.message for t in outcomes if t.error_type == "MemoryError")
    if status == "program_error" and etype == "MemoryError":
        status = "memory"
    return ExecResult(tests=outcomes, status=status, error_type=etype, message=message, line=line, seconds=0.0,
                      stdout="", stderr="", lineno=lineno, exit=exit_text,
                      network=rec.network or "unknown (the runner did not report)",
                      isolation=rec.iso or "unknown (the runner did not report)")


def execute_many(jobs: Sequence[tuple], workers: int = 2, limits: Limits = Limits(),
                 progress: bool = False, desc: str = "sandbox") -> list[ExecResult]:
    """Run (program, tests, setup[, limits]) jobs `workers` at a time (threads, each launching a sandbox), in
    order; a job without its own limits gets `limits`."""
    from ..progress import bar as tqdm  # plain lines when stderr is not a terminal

    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, unit="run")
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(execute, job[0], job[1], job[2], job[3] if len(job) > 3 else limits)
                       for job in jobs]
            results = []
            for f in futures:
                results.append(f.result())
                bar.update(1)
    finally:
        bar.close()
    return results


# ----------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _harness_file() -> str:
    """The harness compiled once (named by its content hash, so never stale): saves compiling it in every run.
    The source itself where its folder is not writable."""
    import hashlib
    import py_compile

    source = HARNESS.read_bytes()
    target = HARNESS.parent / "__pycache__" / f"_harness-{hashlib.sha256(source).hexdigest()[:16]}.pyc"
    if not target.is_file():
        try:
            py_compile.compile(str(HARNESS), cfile=str(target), doraise=True)
        except (OSError, py_compile.PyCompileError):
            return str(HARNESS)
    return str(target)


@functools.lru_cache(maxsize=1)
def _codec_code() -> bytes:
    """values.py compiled once, for the harness (which must not import recursia, nor read our files)."""
    return marshal.dumps(compile(CODEC.read_text(), str(CODEC), "exec"))


@functools.lru_cache(maxsize=1)
def _site_paths() -> tuple[str, ...]:
    """This interpreter's site-packages, so that a candidate can import what is installed, although the
    sandbox starts Python without `site` (-S: several milliseconds faster per run)."""
    import site

    return tuple(p for p in site.getsitepackages() if os.path.isdir(p))


def _kill(runner_pid: int | None, candidate_pid: int | None) -> None:
    for pid in (candidate_pid, runner_pid):
        if pid:
            try:
                os.killpg(pid, 9) if pid == runner_pid else os.kill(pid, 9)
            except OSError:
                pass  # already gone


class _Server:
    """The fork server (_runner.py), started on first use and again if it died; shared by all threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.owner = 0  # the pid that started the server (a forked copy of this process starts its own)

    def submit(self, job: bytes, fds: list[int]) -> None:
        """Send one job (in a memory file) with the write ends of its result, stdout and stderr pipes."""
        if sys.platform != "linux":
            raise RecursiaError(f"the code sandbox needs Linux (namespaces, memfd, pidfd), not {sys.platform}")
        job_fd = os.memfd_create("recursia-job")
        try:
            os.write(job_fd, job)
            os.lseek(job_fd, 0, os.SEEK_SET)
            with self.lock:
                if self.proc is None or self.owner != os.getpid() or self.proc.poll() is not None:
                    self._start()
                try:
                    socket.send_fds(self.sock, [b"j"], [job_fd] + fds)
                except OSError:  # the server died since: start it again, once
                    self._start()
                    socket.send_fds(self.sock, [b"j"], [job_fd] + fds)
        finally:
            os.close(job_fd)

    def _start(self) -> None:
        if self.sock is not None:
            self.sock.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-B", str(RUNNER), str(theirs.fileno())],
                                     pass_fds=(theirs.fileno(),), env=env, cwd="/", stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        theirs.close()
        self.sock, self.owner = ours, os.getpid()


_SERVER = _Server()


class _Capped:
    """Reads a pipe to its end (so a chatty program never blocks on a full pipe), keeping the first `cap` bytes."""

    def __init__(self, fd: int, cap: int):
        self.fd, self.cap, self.data, self.dropped = fd, cap, bytearray(), 0

    def run(self) -> None:
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            room = max(self.cap - len(self.data), 0)
            self.data += chunk[:room]
            self.dropped += len(chunk) - len(chunk[:room])

    def text(self) -> str:
        s = self.data.decode("utf-8", "replace")
        return s + (f"\n[... {self.dropped} more bytes not kept]" if self.dropped else "")
