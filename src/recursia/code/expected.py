"""Expected values from the reference solution, computed once and cached, as EvalPlus does.

A test built from inputs alone (EvalPlus's base and plus inputs) says `equal` with an expected value still
MISSING. `ready(task)` runs the task's oracle (a trusted program: EvalPlus's canonical solution) on those
inputs in the sandbox, once, and fills the values in; they are cached on disk by the hash of the program and
the inputs (`$RECURSIA_CACHE`, else `$XDG_CACHE_HOME/recursia`, else `~/.cache/recursia`), so a later run
reads them instead. The sandbox that runs the oracle is the same one that runs candidates; only what it
returns is used, and only as the expected value of the oracle's own tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from ..errors import DataError
from .iotest import MISSING, Check, Test, with_expected
from .values import decode, encode

_MEMORY: dict[str, object] = {}
_LOCK = threading.Lock()


def cache_root() -> Path:
    """Recursia's cache: `$RECURSIA_CACHE`, else `$XDG_CACHE_HOME/recursia`, else `~/.cache/recursia`."""
    root = os.environ.get("RECURSIA_CACHE") or (
        Path(os.environ["XDG_CACHE_HOME"]) / "recursia" if os.environ.get("XDG_CACHE_HOME")
        else Path.home() / ".cache" / "recursia")
    return Path(root)


def cache_dir() -> Path:
    return cache_root() / "expected"


def needs(task) -> bool:
    return any(c.equal and c.expected is MISSING for t in task.hidden_tests + task.visible_tests for c in t.checks)


def ready(task, limits=None):
    """`task` with every MISSING expected value filled (from the cache, else by running its oracle)."""
    if not needs(task):
        return task
    key = _key(task)
    with _LOCK:
        filled = _MEMORY.get(key)
    if filled is None:
        filled = _fill(task, key, limits)
        with _LOCK:
            _MEMORY[key] = filled
    return filled


def _key(task) -> str:
    h = hashlib.sha256()
    for part in (task.oracle or task.reference or "", task.setup):
        h.update(part.encode() + b"\0")
    for t in task.hidden_tests + task.visible_tests:
        h.update(t.code.encode() + b"\0" + (encode(t.args, 1 << 30) if t.args is not None else "").encode() + b"\0")
    return h.hexdigest()


def _fill(task, key: str, limits):
    from .evalplus import finalize
    from .sandbox import Limits, execute

    program = task.oracle or task.reference
    if not program:
        raise DataError(f"{task.task_id}: its tests compare with a reference solution, and it has none")
    keys = {id(t): (t.code, _args_key(t)) for t in task.hidden_tests + task.visible_tests
            if any(c.equal and c.expected is MISSING for c in t.checks)}  # inputs encoded once per test
    unique = list({keys[i]: t for t in task.hidden_tests + task.visible_tests if (i := id(t)) in keys}.values())
    path = cache_dir() / f"{key}.json"
    cached = _read_cache(path, len(unique))
    if cached is None:
        # The oracle is trusted, and EvalPlus gives it 4 GB: more than a candidate gets by default.
        limits = limits or Limits(timeout_s=300, cpu_s=300, memory_mb=4096)  # HumanEval/130 took 76 s loaded
        cached = _run_oracle(task, program, unique, limits, execute)
        _write_cache(path, cached)
    values, dropped = cached
    by_key = {keys[id(t)]: v for t, v in zip(unique, values)}

    def fill(tests):
        expected = [by_key[keys[id(t)]] if id(t) in keys else None for t in tests]
        out = [with_expected(t, e) if e is not None else t for t, e in zip(tests, expected)
               if id(t) not in keys or e is not None]  # a dropped test (None) leaves the task
        return tuple(finalize(out))

    return replace(task, hidden_tests=fill(task.hidden_tests), visible_tests=fill(task.visible_tests),
                   dropped_tests=task.dropped_tests + tuple(dropped))


def _run_oracle(task, program: str, unique: list, limits, execute) -> tuple[list, list]:
    """(expected values per test, None for a dropped one; why each was dropped). A test whose expected output
    is too large to cross the sandbox's wall (or to build in memory) cannot be judged outside it: it is dropped
    and said so (`recursia code check` lists them); any other failure of the oracle is an error."""
    values: list = [None] * len(unique)
    dropped: list[str] = []
    left = list(range(len(unique)))
    while left:
        probes = [replace(unique[k], checks=tuple(Check(leaves=c.leaves, expr="_v(0) is not _NOTHING")
                                                  for c in unique[k].checks)) for k in left]
        result = execute(program, probes, task.setup, limits)
        bad = next((j for j, o in enumerate(result.tests) if not o.passed), None)
        for j, outcome in enumerate(result.tests[:bad]):
            values[left[j]] = [leaves[0] for leaves in outcome.values]
        if bad is None:
            break
        outcome, k = result.tests[bad], left[bad]
        if outcome.error_type not in ("ValueRefused", "MemoryError") and result.status != "memory":
            raise DataError(f"{task.task_id}: the reference solution fails on its own test {k} "
                            f"({unique[k].source[:80]}): {outcome.error_type}: {outcome.message}; "
                            f"run status {result.status}")
        dropped.append(f"{unique[k].source[:100]}: the expected output is too large to judge outside the sandbox "
                       f"({outcome.message or result.message})"[:400])
        left = left[bad + 1:]
    return values, dropped


def _args_key(t: Test) -> str:
    return encode(t.args, 1 << 30) if t.args is not None else ""


def _read_cache(path: Path, n: int):
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # unreadable or torn: computed again, and rewritten
    if not isinstance(data, dict) or not isinstance(data.get("values"), list) or len(data["values"]) != n:
        return None
    values = [None if row is None else [decode(x, 1 << 30) for x in row] for row in data["values"]]
    return values, [str(d) for d in data.get("dropped", [])]


def _write_cache(path: Path, cached: tuple) -> None:
    """Atomic (a temporary file renamed); a cache that cannot be written only costs the next run time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".expected-")
        with os.fdopen(fd, "w") as f:
            values, dropped = cached
            json.dump({"values": [None if row is None else [encode(x, 1 << 30) for x in row] for row in values],
                       "dropped": dropped}, f)
        os.replace(tmp, path)
    except OSError as e:
        import warnings

        warnings.warn(f"cannot cache expected values in {path.parent} ({e.strerror or e}); set RECURSIA_CACHE "
                      "to a writable folder to save recomputing them", stacklevel=2)
