"""One writer per run directory: an OS file lock held for the whole life of a training run.

Two `recursia train` processes with the same `--out` would interleave metrics.jsonl and overwrite each other's
checkpoints without any error. The lock is `fcntl.flock` on RUN_DIR/.lock, which also holds the holder's pid so
that the refusal can name it. The kernel drops a flock when its process exits for any reason (kill -9
included), so a lock file left behind by a killed run is not a held lock: the next run takes it over.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from .errors import RecursiaError

LOCK_NAME = ".lock"


class RunDirBusy(RecursiaError):
    """Another live process is writing to the run directory."""


class RunLock:
    """`with RunLock(run_dir):` holds the run directory's lock, or raises RunDirBusy naming the holder."""

    def __init__(self, run_dir: str | Path, what: str = "training run"):
        self.path = Path(run_dir) / LOCK_NAME
        self.what = what  # named in the refusal: "training run", "code evaluation"
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        import fcntl  # POSIX only; imported here so that importing Recursia never needs it

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirBusy(f"{self.path.parent} is in use by another {self.what} (pid {holder}); wait for it "
                             "to finish, stop it, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)  # a leftover file then names no one
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
