"""`recursia solve` on a DeepCoder task file: per task whether the model's program reproduces every example, the
program, the steps and candidates it took, the wall time; and the solve rate overall and by program length.

Tasks are solved one at a time, so each task's wall time is its own latency (what the enumerative baseline
is given per task in `benchmarks/deepcoder_vs_search.py`). The reference program of a test task is read only
for its length (the by-length breakdown); it never reaches the model, and a solution is any program that
reproduces the examples.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..halting import HaltRule
from ..solve import VERIFIED
from . import deepcoder as dc

def solve_tasks(solver: Any, tasks: list[dc.DeepCoderTask], halt: HaltRule = VERIFIED,
                candidates: int = 1) -> dict[str, Any]:
    """Solve each task with `solver` (a `recursia.solve.Solver` of a DeepCoder model)."""
    records = []
    for t in tasks:
        row = dc.encode_task(dc.DeepCoderTask(t.inputs, t.outputs))[0]
        start = time.perf_counter()
        r = solver.solve(row, halt, candidates)
        seconds = time.perf_counter() - start
        program = dc.decode_program(r.answer, t.num_inputs)
        records.append({"index": t.index, "length": len(t.program) if t.program is not None else None,
                        "solved": bool(r.valid), "program": dc.format_program(program) if program else None,
                        "steps": r.steps, "tried": r.tried, "seconds": round(seconds, 4)})
    return summarise(records, halt, candidates)


def summarise(records: list[dict[str, Any]], halt: HaltRule, candidates: int) -> dict[str, Any]:
    n = max(len(records), 1)
    by_length = {}
    for length in sorted({r["length"] for r in records if r["length"] is not None}):
        group = [r for r in records if r["length"] == length]
        by_length[str(length)] = {"tasks": len(group), "solve_rate": sum(r["solved"] for r in group) / len(group),
                                  "mean_steps": sum(r["steps"] for r in group) / len(group)}
    return {"tasks": len(records), "candidates": candidates, "halt": str(halt),
            "solve_rate": sum(r["solved"] for r in records) / n, "by_length": by_length,
            "mean_steps": sum(r["steps"] for r in records) / n,
            "mean_tried": sum(r["tried"] or 0 for r in records) / n,
            "mean_seconds": sum(r["seconds"] for r in records) / n, "records": records}


def solve_file(solver: Any, path: str | Path, halt: HaltRule = VERIFIED, candidates: int = 1,
               limit: int = 0) -> dict[str, Any]:
    """`solve_tasks` on a jsonl task file (the first `limit` tasks when > 0)."""
    tasks = dc.read_tasks(path)
    result = solve_tasks(solver, tasks[:limit] if limit > 0 else tasks, halt, candidates)
    return {"file": str(path), **result}


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"{result.get('file', 'tasks')}: {result['tasks']} tasks, halt {result['halt']}, B = "
             f"{result['candidates']}: solve rate {100 * result['solve_rate']:.1f} %, mean {result['mean_steps']:.2f} "
             f"steps, {result['mean_tried']:.1f} programs checked, {result['mean_seconds']:.3f} s per task"]
    lines += [f"  length {n}: {100 * g['solve_rate']:.1f} % of {g['tasks']} (mean {g['mean_steps']:.2f} steps)"
              for n, g in result["by_length"].items()]
    return lines
