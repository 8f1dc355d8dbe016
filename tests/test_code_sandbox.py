"""The code sandbox: honest programs are scored right, and a program cannot fake a pass (each trick below must
come back as not passed, with a sensible status, and leave the harness usable). The attacks on the verdict
itself are in test_code_attacks.py, those on the isolation in test_code_isolation.py."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import processes_with
from recursia.code.iotest import Unconvertible
from recursia.code.sandbox import ExecResult, Limits, TestOutcome, execute, execute_many

# f must return x + 1; WRONG returns x, so every test fails unless the trick fakes a pass.
TESTS = ["assert f(1) == 2", "assert f(2) == 3", "assert abs(f(3) - 4) < 1e-9 and len([f(0)]) == 1"]
WRONG = "def f(x):\n    return x\n"
RIGHT = "def f(x):\n    return x + 1\n"
FAST = Limits(timeout_s=5, cpu_s=5)


def assert_faked_nothing(r: ExecResult) -> None:
    assert r.passed == 0 and not r.all_passed, r.to_dict()
    assert len(r.tests) == len(TESTS)
    assert r.status in ("ok", "program_error", "syntax_error", "timeout", "memory", "crash", "tampered")


def usable() -> None:
    """The harness still works after an attack."""
    r = execute(RIGHT, TESTS, limits=FAST)
    assert r.all_passed and r.status == "ok", r.to_dict()


# ----------------------------------------------------------------------------------------------------------
def test_honest_programs_are_scored_per_test():
    r = execute(RIGHT, TESTS)
    assert r.all_passed and r.passed == 3 and r.status == "ok" and r.signature() == "ok"
    assert r.seconds > 0 and r.stdout == ""
    r = execute("def f(x):\n    y = x + 1\n    return y if x != 2 else str(y)\n",
                TESTS + ["assert f('a') == 'b'"])
    assert [t.passed for t in r.tests] == [True, False, True, False]
    assert r.tests[1] == TestOutcome(1, False, "AssertionError", "f(2) returned '3', expected 3", "assert f(2) == 3", None,
                              "test")
    t = r.tests[3]
    assert (t.error_type, t.line, t.lineno, t.part) == ("TypeError", "y = x + 1", 2, "program")
    assert t.message == "f('a') raised TypeError: can only concatenate str (not \"int\") to str"
    assert r.signature() == "AssertionError in test 1"
    assert r.to_dict()["passed"] == 2


def test_syntax_and_definition_errors():
    r = execute("def f(x)\n    return x\n", TESTS)
    assert r.status == "syntax_error" and r.error_type == "SyntaxError" and r.line == "def f(x)"
    assert r.signature() == "SyntaxError: expected ':'" and not any(t.passed for t in r.tests)
    assert all(t.message == "not run: the program has a syntax error" for t in r.tests)
    r = execute(RIGHT + "import nonexistent_module_xyz\n", TESTS)
    assert r.status == "program_error" and r.error_type == "ModuleNotFoundError"
    assert r.line == "import nonexistent_module_xyz" and r.passed == 0
    with pytest.raises(Unconvertible, match="not valid Python"):
        execute(RIGHT, ["assert f(1) == 2", "assert (", "assert f(2) == 3"])
    r = execute("def f(x)\n    return x\n", [])
    assert r.status == "syntax_error" and r.tests == []


def test_zero_tests_is_not_all_passed():
    r = execute(RIGHT, [])
    assert r.status == "ok" and r.tests == [] and not r.all_passed and r.signature() == "no tests"


def test_setup_runs_after_the_program_before_each_test():
    program = "class Node:\n    def __init__(self, v):\n        self.v = v\ndef f(n):\n    return n.v + 1\n"
    r = execute(program, ["assert f(root) == 2", "assert f(root) == 2"], setup="root = Node(1)")
    assert r.all_passed, r.to_dict()


def test_each_test_gets_a_fresh_namespace():
    r = execute(RIGHT, ["g = 5\nassert f(g) == 6", "assert f(g) == 6"])
    assert r.tests[0].passed and not r.tests[1].passed and r.tests[1].error_type == "NameError", r.to_dict()


def test_signature_has_no_numbers_strings_or_lines():
    r = execute("def f(x):\n    return [][x]\n", ["assert f(12) == 1"])
    assert r.signature() == "IndexError: list index out of range"
    r = execute("def f(x):\n    raise ValueError(f'bad value {x!r} at 0x7fff12 and 3.5')\n", ["assert f('abc')"])
    assert r.signature() == "ValueError: bad value S at N and N"
    long = execute("def f(x):\n    raise ValueError('word ' * 80)\n", ["assert f(1)"]).signature()
    assert len(long) <= 100


def test_output_is_captured_and_capped_without_deadlock():
    r = execute("import sys\nprint('x' * 3_000_000)\nsys.stderr.write('e' * 100)\n" + RIGHT, TESTS,
                limits=Limits(output_bytes=1000))
    assert r.all_passed
    assert r.stdout.startswith("x" * 1000) and "more bytes not kept" in r.stdout and r.stderr == "e" * 100


def test_isolation_and_network_are_reported_honestly():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        r = execute("import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=2)\n"
                    "    reached = True\nexcept OSError:\n    reached = False\n" % port,
                    ["assert not reached"])
    finally:
        server.close()
    assert r.network == "cut" or r.network.startswith("open: ")
    if r.network == "cut":
        assert r.all_passed, "the network is reported cut but the candidate reached a local server"
        assert "net" in r.isolation
    assert "rlimits" in r.isolation
    if os.geteuid() == 0 and "mount" in r.isolation:
        r = execute("import os\nuid = os.getuid()", ["assert uid == 65534"])
        assert r.all_passed and "uid/gid 65534" in r.isolation


def test_without_namespaces_the_result_says_so():
    r = execute(RIGHT, TESTS, limits=Limits(namespaces=False))
    assert r.all_passed
    assert r.network.startswith("open: ") and "no namespaces" in r.isolation


def test_clean_environment_and_temporary_home():
    os.environ["RECURSIA_SECRET_FOR_TEST"] = "leak"
    try:
        r = execute("import os, sys\nenv = dict(os.environ)\nhome = os.environ['HOME']\ncwd = os.getcwd()\n"
                    "open('here.txt', 'w').write('x')\nflags = sys.flags\n",
                    ["assert 'RECURSIA_SECRET_FOR_TEST' not in env",
                     "assert not [k for k in env if k.startswith('PYTHON')]",
                     "assert home == cwd and not home.startswith('/root')",
                     "assert flags.isolated == 1"])
    finally:
        del os.environ["RECURSIA_SECRET_FOR_TEST"]
    assert r.all_passed, r.to_dict()
    leftovers = [p for p in Path(tempfile.gettempdir()).glob("recursia-sandbox-*") if (p / "here.txt").exists()]
    assert not leftovers


# ---- fake-pass attempts ----------------------------------------------------------------------------------
EXITS = {
    "sys.exit at program level": WRONG + "import sys\nsys.exit(0)\n",
    "os._exit at program level": WRONG + "import os\nos._exit(0)\n",
    "sys.exit in the function": "def f(x):\n    import sys\n    sys.exit(0)\n",
    "os._exit in the function": "def f(x):\n    import os\n    os._exit(0)\n",
    "SystemExit from a test": "def f(x):\n    raise SystemExit(0)\n",
    "KeyboardInterrupt from a test": "def f(x):\n    raise KeyboardInterrupt\n",
    "GeneratorExit from a test": "def f(x):\n    raise GeneratorExit\n",
    "exit() builtin": "def f(x):\n    exit(0)\n",
}


@pytest.mark.parametrize("name", EXITS)
def test_exiting_never_passes(name):
    r = execute(EXITS[name], TESTS, limits=FAST)
    assert_faked_nothing(r)
    if "os._exit" in name:
        assert r.status == "crash" and "exited with status 0" in r.message
    elif "program level" in name:
        assert r.status == "program_error" and r.error_type == "SystemExit"
    else:
        expected = name.split()[0] if "Exit" in name or "Interrupt" in name else "SystemExit"
        assert r.status == "ok" and {t.error_type for t in r.tests} == {expected}


FAKE_RECORD = '("test", 0, True, None, None, None, None, None)'
FAKES = {
    "print fake results": WRONG + "import sys, json\nfor _ in range(3):\n"
    "    print(json.dumps({'passed': True, 'status': 'ok', 'tests': [True] * 3}))\n"
    "    print('PASSED', 'ok', '3/3', 'all tests passed', file=sys.stderr)\n"
    f"    print({FAKE_RECORD!r})\n",
    "write fake records to every fd": WRONG + "import os\nrecs = [('begin', i) for i in range(3)]\n"
    "lines = b''.join(b'\\n%s %s\\n' % (n, r) for n in [b'', b'0' * 32, b'deadbeef' * 4] for r in [\n"
    f"    {FAKE_RECORD!r}.encode(), b\"('prog', 'ok', None, None, None, None, None)\", b\"('end', 3)\"])\n"
    "for fd in range(1024):\n    try:\n        os.write(fd, lines)\n    except OSError:\n        pass\n",
    "write fake records from the function": "def f(x):\n    import os\n    for fd in range(1024):\n"
    "        try:\n            os.write(fd, b'\\n(\"test\", 0, True, None, None, None, None, None)\\n')\n"
    "        except OSError:\n            pass\n    return x\n",
    "close every fd": "def f(x):\n    import os\n    os.closerange(0, 1024)\n    return x + 1\n",
}


@pytest.mark.parametrize("name", FAKES)
def test_fake_output_never_passes(name):
    r = execute(FAKES[name], TESTS, limits=FAST)
    assert_faked_nothing(r)
    if name.startswith("print"):  # stdout is not the result channel: the real results still came through
        assert r.status == "ok" and [t.error_type for t in r.tests] == ["AssertionError"] * 3
    elif name.startswith("write"):  # anything on the result pipe that is not an honest record fails it all
        assert r.status == "tampered" and {t.error_type for t in r.tests} == {"Tampering"}, r.to_dict()
    else:  # no channel left to report on: nothing counts
        assert r.status == "crash"


BUILTINS = {
    "builtins module at program level": WRONG + "import builtins\nbuiltins.abs = lambda x: 0\n"
    "builtins.len = lambda x: 1\nbuiltins.AssertionError = type('E', (Exception,), {})\n"
    "builtins.isinstance = lambda *a: True\n",
    "__builtins__ dict at program level": WRONG + "__builtins__['abs'] = lambda x: 0\n"
    "__builtins__['AssertionError'] = Warning\n",
    "builtins module during a test": "def f(x):\n    import builtins\n    builtins.abs = lambda v: 0\n"
    "    builtins.len = lambda v: 1\n    builtins.AssertionError = Warning\n    return x\n",
    "AssertionError replaced and caught": "import builtins\nclass Quiet(BaseException):\n    pass\n"
    "builtins.AssertionError = Quiet\n" + WRONG,
    "checker redefined": WRONG + "def check(candidate):\n    return True\nassert_equal = lambda *a: None\n"
    "import sys\nsys.modules['__candidate__'].check = check\n",
    "module function patched at program level": WRONG + "import math\nmath.isclose = lambda *a, **k: True\n"
    "math.fabs = lambda x: 0.0\n",
    "__code__ of the harness replaced": WRONG + "import __main__\n__main__._main.__code__ = (lambda: 0).__code__\n",
}
CHECK_TESTS = ["import math\nassert math.isclose(f(1), 2) and math.fabs(f(1) - 2) < 1e-9",
               "candidate = f\nassert candidate(2) == 3",
               "assert abs(f(3) - 4) < 1e-9 and len([f(0)]) == 1"]


@pytest.mark.parametrize("name", BUILTINS)
def test_patching_builtins_or_the_checker_never_passes(name):
    r = execute(BUILTINS[name], CHECK_TESTS, limits=FAST)
    assert_faked_nothing(r)
    if "__code__" not in name:
        assert r.status == "ok" and all(t.error_type == "AssertionError" for t in r.tests), r.to_dict()


def test_reaching_the_harness_is_refused():
    """The routes to the harness's locals (and so to the nonce) are closed: frames, gc, signals, ctypes."""
    attempts = {
        "sys._getframe": "import sys\nsys._getframe(1)",
        "traceback frame": "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    e.__traceback__.tb_frame",
        "inspect.stack": "import inspect\ninspect.stack()",
        "gc": "import gc\ngc.get_objects()",
        "gc referrers": "import gc\ngc.get_referrers(f)",
        "gc save-all": "import gc\ngc.set_debug(gc.DEBUG_SAVEALL)",
        "gc via _imp": "import _imp, importlib.machinery as m\n_imp.create_builtin(m.ModuleSpec('gc', None))",
        "ctypes": "import ctypes",
        "_ctypes via _imp": "import _imp, importlib.util as u\n"
        "_imp.create_dynamic(u.find_spec('_ctypes') or m)",
        "_signal via _imp": "import _imp, importlib.machinery as m\n"
        "_imp.create_builtin(m.ModuleSpec('_signal', None)).signal(10, print)",
        "settrace": "import sys\nsys.settrace(lambda *a: None)",
        "setprofile": "import sys\nsys.setprofile(lambda *a: None)",
        "current frames": "import sys\nsys._current_frames()",
        "generator frame": "def g():\n    yield\nx = g()\nx.gi_frame",
        "audit hook": "import sys\nsys.addaudithook(lambda *a: None)\nassert False, 'hook added'",
        "/proc/self/mem": "open('/proc/self/mem', 'rb')",
    }
    results = execute_many([("x = 1\n" + code, [RIGHT + "assert f(1) == 2"], "") for code in attempts.values()],
                           workers=2, limits=FAST)
    for name, r in zip(attempts, results):
        assert r.status in ("program_error", "crash") or (name == "audit hook" and r.status == "ok"), (name, r)
        assert r.passed == 0 or name == "audit hook", (name, r.to_dict())
        if name == "audit hook":  # sys.addaudithook fails silently by design: the hook is simply not added
            assert r.status == "program_error" and r.message == "hook added"


def test_signal_handlers_get_no_frame():
    """A Python signal handler is called with the current frame (a way to the harness): the sandbox installs
    it behind a trampoline that passes None."""
    program = ("import os, signal, time\nframes = []\n"
               "signal.signal(signal.SIGUSR1, lambda signum, frame: frames.append(frame))\n"
               "def f(x):\n    os.kill(os.getpid(), signal.SIGUSR1)\n    time.sleep(0.05)\n    return x + 1\n")
    program += "def handler():\n    return signal.getsignal(signal.SIGUSR1).__name__\n"
    r = execute(program, ["assert f(1) == 2 and frames == [None]", "assert handler() == '<lambda>'"], limits=FAST)
    assert r.all_passed, r.to_dict()


def test_a_forked_copy_never_reports():
    """The copy made by fork() runs the harness on; it must not report (it could pass where the original
    fails)."""
    program = ("import os\ndef f(x):\n    pid = os.fork()\n    if pid == 0:\n        return x + 1\n"
               "    os.waitpid(pid, 0)\n    return x\n")
    r = execute(program, TESTS, limits=FAST)
    assert_faked_nothing(r)
    assert [t.error_type for t in r.tests] == ["AssertionError"] * 3


def test_a_value_whose_eq_is_always_true_never_passes():
    """The comparison is made in the parent on plain values: an object with its own __eq__ (or an int subclass
    carrying one) travels only as its type's name and truth value, so its __eq__ never runs."""
    for program in ("class Any:\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return Any()\n",
                    "class Int(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
                    "def f(x):\n    return Int(x)\n"):
        r = execute(program, TESTS, limits=FAST)
        assert_faked_nothing(r)  # it arrives as an opaque stand-in that equals nothing but itself
        assert r.tests[0].message in ("f(1) returned <Any object>, expected 2",
                                      "f(1) returned <Int object>, expected 2"), r.to_dict()


def test_killing_the_parent_and_every_pid():
    me = os.getpid()
    program = WRONG + ("import os\nfor sig in (9, 15):\n    for pid in [os.getppid(), 0, -1] + list(range(1, 4000)):\n"
                       "        try:\n            os.kill(pid, sig)\n        except OSError:\n            pass\n")
    program += f"try:\n    os.kill({me}, 9)\nexcept OSError:\n    pass\n"
    r = execute(program, TESTS, limits=FAST)
    assert_faked_nothing(r)
    assert r.status == "ok" and [t.error_type for t in r.tests] == ["AssertionError"] * 3
    assert os.getpid() == me
    usable()


def test_no_child_outlives_the_run():
    marker = f"recursia-orphan-{uuid.uuid4().hex}"
    program = WRONG + ("import os, sys\nfor _ in range(3):\n    if os.fork() == 0:\n        os.setsid()\n"
                       "        if os.fork() == 0:\n"
                       f"            os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', "
                       f"'{marker}'])\n        os._exit(0)\nimport time\ntime.sleep(0.3)\n")
    for limits in (FAST, Limits(timeout_s=5, cpu_s=5, namespaces=False)):
        r = execute(program, TESTS, limits=limits)
        assert_faked_nothing(r)
        time.sleep(0.2)
        assert processes_with(marker) == [], f"a child outlived the run ({r.isolation})"


def test_filling_the_disk():
    marker = f"recursia-fill-{uuid.uuid4().hex}"
    program = WRONG + (f"import os\nwritten = 0\nfor path in ['fill', '/tmp/{marker}', '/dev/shm/{marker}']:\n"
                       "    try:\n        with open(path, 'wb') as out:\n            while True:\n"
                       "                out.write(b'x' * (1 << 20))\n                written += 1\n"
                       "    except OSError as e:\n        error = e\n"
                       "i = 0\nwhile True:\n    try:\n        open(f'many{i}', 'wb').write(b'y' * 500_000)\n"
                       "        i += 1\n    except OSError:\n        break\n")
    r = execute(program, TESTS, limits=Limits(timeout_s=20, disk_mb=32, file_mb=8))
    assert_faked_nothing(r)
    assert r.status == "ok" and [t.error_type for t in r.tests] == ["AssertionError"] * 3
    assert not (Path("/tmp") / marker).exists() and not (Path("/dev/shm") / marker).exists()
    assert not [p for p in Path(tempfile.gettempdir()).glob("recursia-sandbox-*") if (p / "fill").exists()]
    usable()


def test_sleeping_and_spinning_past_the_limits():
    sleep = execute(WRONG + "import time\ntime.sleep(30)\n", TESTS, limits=Limits(timeout_s=1.5))
    spin = execute("def f(x):\n    while True:\n        pass\n", TESTS, limits=Limits(timeout_s=1.5))
    cpu = execute(WRONG + "while True:\n    pass\n", TESTS, limits=Limits(timeout_s=20, cpu_s=1))
    for r in (sleep, spin, cpu):
        assert_faked_nothing(r)
        assert r.status == "timeout" and r.signature() == "timeout"
    assert sleep.seconds < 5 and spin.seconds < 5 and "wall clock" in sleep.message
    assert "CPU time" in cpu.message and cpu.seconds < 10
    assert spin.tests[0].message.startswith("not finished") and spin.tests[1].message.startswith("not run")


def test_fork_bomb_and_huge_allocation():
    bomb = execute(WRONG + "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                   "        pass\n", TESTS, limits=Limits(timeout_s=2))
    assert_faked_nothing(bomb)
    assert bomb.status == "timeout"
    big = execute(WRONG + "x = bytearray(10 * 1024 ** 3)\n", TESTS, limits=FAST)
    assert_faked_nothing(big)
    assert big.status == "memory" and big.error_type == "MemoryError" and big.signature() == "memory"
    usable()


def test_execute_many_keeps_order_and_runs_in_parallel():
    jobs = [(f"def f(x):\n    return x + {k}\n", ["assert f(0) == 1"], "") for k in range(6)]
    results = execute_many(jobs, workers=2)
    assert [r.all_passed for r in results] == [False, True, False, False, False, False]
    # Two sleeping runs at once take about the time of one.
    t0 = time.monotonic()
    execute_many([("import time\ntime.sleep(1)", [], "")] * 2, workers=2)
    assert time.monotonic() - t0 < 1.9


def test_threads_can_share_the_sandbox():
    out = []
    threads = [threading.Thread(target=lambda: out.append(execute(RIGHT, TESTS).all_passed)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [True] * 4


def test_an_interpreter_in_a_virtual_environment_under_tmp_still_runs(tmp_path):
    # CI makes its virtual environment under /tmp, which the sandbox covers with the run's own tmpfs: the
    # environment must be bound back in (read-only), or every candidate dies before its first line.
    import subprocess
    import sys

    venv = Path(tempfile.mkdtemp(prefix="recursia-venv-", dir="/tmp")) / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        src = Path(__file__).resolve().parents[1] / "src"
        prog = f"import os\ndef f():\n    return 1\ndef writable():\n    return os.access({str(venv)!r}, os.W_OK)\n"
        tests = ["assert f() == 1", "assert not writable()"]
        script = (f"import sys; sys.path.insert(0, {str(src)!r})\n"
                  "from recursia.code.sandbox import execute\n"
                  f"r = execute({prog!r}, {tests!r})\n"
                  "print(r.status, r.passed, r.network)\n")
        out = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        status, passed, network = out.stdout.split(maxsplit=2)
        if "cut" not in network:
            pytest.skip("needs the mount namespace (root or user namespaces)")
        assert (status, passed) == ("ok", "2"), out.stdout
    finally:
        import shutil

        shutil.rmtree(venv.parent, ignore_errors=True)
