"""Run a candidate program and its tests in an isolated subprocess, with a result that the program cannot fake.

A small fork server (_runner.py, started on first use) forks a trusted runner per run, in its own session. The
runner enters new pid, network and mount namespaces where the OS allows, mounts a size-limited tmpfs as the work
dir, and forks the candidate: PID 1 of the new pid namespace, uid/gid 65534 when we are root, under resource
limits, exec'ing a fresh `python -I -S` running _harness.py. The harness reports each test's outcome over a
private pipe, in records that carry a per-run nonce; outcomes are read from that pipe only, never from stdout,
and a run without a complete final record counts every missing test as failed. docs/code.md says what is
guaranteed and what is out of scope.
"""

from __future__ import annotations

import ast
import functools
import marshal
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import RecursiaError

HERE = Path(__file__).resolve().parent
RUNNER, HARNESS = HERE / "_runner.py", HERE / "_harness.py"
PRELOAD = ("types", "math", "itertools", "operator", "heapq", "bisect")  # cheap; their attributes are restored per test
STATUSES = ("ok", "syntax_error", "program_error", "timeout", "memory", "crash")


@dataclass(frozen=True)
class Limits:
    """What one run may use. timeout_s is wall clock for the whole run (the candidate and everything it forked
    are killed past it); the others are per-process resource limits, disk_mb the size of the tmpfs work dir."""

    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    nproc: int = 64
    file_mb: int = 16
    nofile: int = 64
    disk_mb: int = 64
    output_bytes: int = 65536
    namespaces: bool = True  # use pid/net/mount namespaces where the OS allows (False: only rlimits and uid)
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
        if self.status in ("timeout", "memory", "crash"):
            return self.status
        if self.status == "syntax_error":
            return f"{self.error_type}: {self.message or ''}".rstrip(": ")[:100]
        if self.status == "program_error":
            return _normalize(f"{self.error_type}: {self.message or ''}".rstrip(": "))
        for t in self.tests:
            if not t.passed:
                if t.error_type == "AssertionError":
                    return f"AssertionError in test {t.index}"
                return _normalize(f"{t.error_type}: {t.message or ''}".rstrip(": "))
        return "no tests"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(passed=self.passed, all_passed=self.all_passed, signature=self.signature())
        return d


def _normalize(text: str) -> str:
    text = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "S", text)
    text = re.sub(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:e[+-]?\d+)?", "N", text)
    return text[:100]


# ----------------------------------------------------------------------------------------------------------
def execute(program: str, tests: Sequence[str], setup: str = "", limits: Limits = Limits()) -> ExecResult:
    """Run `program`, then each test (a snippet run after it, in a fresh copy of its namespace, after `setup`)."""
    tests = [str(t) for t in tests]
    workdir = tempfile.mkdtemp(prefix="recursia-sandbox-")
    nonce = secrets.token_hex(16)
    read_fd, write_fd = os.pipe()
    payload = marshal.dumps((program, tests, setup, nonce, 3, PRELOAD, list(_site_paths())))
    job = marshal.dumps({"nonce": nonce, "payload": payload, "workdir": workdir,
                         "python": sys.executable, "harness": _harness_file(), "namespaces": limits.namespaces,
                         "limits": {k: v for k, v in asdict(limits).items() if k != "namespaces"}})
    t0 = time.monotonic()
    records = _Records(nonce)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        _SERVER.submit(job, [write_fd, out_w, err_w])
    except BaseException:
        for f in (read_fd, out_r, err_r):
            os.close(f)
        shutil.rmtree(workdir, ignore_errors=True)
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
    shutil.rmtree(workdir, ignore_errors=True)
    result = records.result(len(tests), limits)
    result.seconds = records.seconds if records.seconds is not None else time.monotonic() - t0
    result.stdout, result.stderr = out.text(), err.text()
    result.notes = notes + result.notes
    return result


def execute_many(jobs: Sequence[tuple[str, Sequence[str], str]], workers: int = 2, limits: Limits = Limits(),
                 progress: bool = False, desc: str = "sandbox") -> list[ExecResult]:
    """Run (program, tests, setup) jobs `workers` at a time (threads, each launching a sandbox); in order."""
    from ..progress import bar as tqdm  # plain lines when stderr is not a terminal

    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, unit="run")
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(execute, p, t, s, limits) for p, t, s in jobs]
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


class _Records:
    """Parses the result pipe: only lines that start with this run's nonce count."""

    MAX_LINE = 8192

    def __init__(self, nonce: str):
        self.prefix = nonce.encode() + b" "
        self.iso = self.network = self.fatal = None
        self.pid: int | None = None
        self.runner: int | None = None
        self.exit: tuple | None = None
        self.seconds: float | None = None
        self.cpu: float | None = None
        self.started = False
        self.prog: tuple | None = None
        self.begun: set[int] = set()
        self.tests: dict[int, tuple] = {}
        self.duplicates: set[int] = set()
        self.end: int | None = None
        self.junk = 0

    def read(self, fd: int) -> None:
        buf = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self._line(line)
            if len(buf) > self.MAX_LINE:  # a line this long is not ours: drop it
                buf, self.junk = b"", self.junk + 1
        self._line(buf)

    def _line(self, line: bytes) -> None:
        if not line.startswith(self.prefix):
            self.junk += bool(line)
            return
        try:
            rec = ast.literal_eval(line[len(self.prefix):].decode("utf-8", "replace"))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            self.junk += 1
            return
        if not isinstance(rec, tuple) or not rec:
            return
        kind = rec[0]
        if kind == "iso" and len(rec) == 3:
            self.iso, self.network = rec[1], rec[2]
        elif kind == "fatal":
            self.fatal = str(rec[1])
        elif kind == "pid":
            self.pid = int(rec[1])
        elif kind == "runner":
            self.runner = int(rec[1])
        elif kind == "exit" and len(rec) == 5:
            self.exit, self.seconds, self.cpu = (rec[1], rec[2]), float(rec[3]), float(rec[4])
        elif kind == "start":
            self.started = True
        elif kind == "prog" and len(rec) == 7:
            self.prog = rec
        elif kind == "begin":
            self.begun.add(int(rec[1]))
        elif kind == "test" and len(rec) == 8:
            i = int(rec[1])
            if i in self.tests:
                self.duplicates.add(i)
            self.tests[i] = rec
        elif kind == "end" and len(rec) == 2:
            self.end = int(rec[1])

    def result(self, n: int, limits: Limits) -> ExecResult:
        how, code = self.exit or ("unknown", None)
        exit_text = {"exited": f"exited {code}", "signaled": f"signaled {code}", "timeout": "timeout"}.get(
            how, "the runner did not report how the candidate ended")
        complete = self.end == n and self.prog is not None
        status, etype, message, line, lineno = "ok", None, None, None, None
        if self.prog is not None and self.prog[1] in ("syntax_error", "program_error"):
            status, etype, message, line, lineno = self.prog[1], self.prog[2], self.prog[3], self.prog[4], self.prog[5]
        out_of_cpu = how == "signaled" and code in (9, 24) and (self.cpu or 0) >= limits.cpu_s - 0.05
        if how == "timeout" or out_of_cpu:
            status, etype = "timeout", "Timeout"
            message = (f"the run took longer than {limits.timeout_s:g} s (wall clock) and was killed"
                       if how == "timeout" else f"the run used more than {limits.cpu_s} s of CPU time")
        elif not complete and status == "ok":
            status, etype = "crash", "Crash"
            if self.fatal:
                message = self.fatal
            elif how == "exited":
                message = (f"the process exited with status {code} before the tests finished "
                           "(os._exit or a crash)")
            elif how == "signaled":
                message = f"the process was killed by signal {code}" + (" (out of memory?)" if code == 9 else "")
            else:
                message = "the sandbox runner ended without reporting (killed?)"
        outcomes = []
        for i in range(n):
            rec = self.tests.get(i)
            if rec is not None and i not in self.duplicates:
                outcomes.append(TestOutcome(i, bool(rec[2]) and complete, rec[3], rec[4], rec[5], rec[6], rec[7]))
                if rec[2] and not complete:
                    outcomes[-1].error_type, outcomes[-1].message, outcomes[-1].part = (
                        "Incomplete", "passed, but the run did not finish, so no test counts", "harness")
            elif i in self.duplicates:
                outcomes.append(TestOutcome(i, False, "Duplicate", "two results for one test (tampering)",
                                            part="harness"))
            else:
                why = {"syntax_error": "the program has a syntax error",
                       "program_error": "the program raised an error while being defined"}.get(status)
                if why is None:
                    why = f"the run ended early ({status}: {message})"
                reason = ("not finished: " if i in self.begun else "not run: ") + why
                outcomes.append(TestOutcome(i, False, etype or "NotRun", reason, part="harness"))
        if status == "ok" and any(t.error_type == "MemoryError" for t in outcomes):
            status = "memory"
        if status == "program_error" and etype == "MemoryError":
            status = "memory"
        notes = [f"{self.junk} line(s) on the result pipe without this run's nonce were ignored"] if self.junk else []
        return ExecResult(tests=outcomes, status=status, error_type=etype, message=message, line=line,
                          seconds=0.0, stdout="", stderr="", lineno=lineno, exit=exit_text,
                          network=self.network or "unknown (the runner did not report)",
                          isolation=self.iso or "unknown (the runner did not report)", notes=notes)
