"""The DeepCoder model against the enumerative baseline on a test file, in one process, at equal time per task:
the figure that says whether the network is worth having.

    python benchmarks/deepcoder_vs_search.py MODEL [--file ../shared/data/exedec/deepcoder/NONE.jsonl]
        [--candidates 1 10] [--halt verified] [--limit 0] [--threads 1] [--json OUT.json]

MODEL is a bundled model's name, a run directory or a checkpoint. For each B in --candidates the model solves
every task (one at a time, halting by --halt, B answers tried per step), then the bottom-up search gets, per
task, the model's mean wall time per task at that B as its time limit. Both run in this process on the same
threads, one after the other, so they see the same machine; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from recursia.halting import HaltRule
from recursia.runtime import set_threads
from recursia.solve import Solver
from recursia.tasks import deepcoder_search as search
from recursia.tasks.deepcoder_solve import solve_file

DEFAULT_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "exedec" / "deepcoder" / "NONE.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="bundled model name, run directory or checkpoint")
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE, help="jsonl task file (test data only)")
    ap.add_argument("--candidates", type=int, nargs="+", default=[1, 10], help="B values; one model run each")
    ap.add_argument("--halt", default="verified", help="halting rule of the model runs")
    ap.add_argument("--limit", type=int, default=0, help="only the first N tasks (0: all)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the search is single-threaded)")
    ap.add_argument("--json", type=Path, help="also write every result (per-task records included) here")
    args = ap.parse_args()
    set_threads(args.threads)
    solver = Solver.load(args.model, device="cpu")
    rule = HaltRule.parse(args.halt)
    load_before = os.getloadavg()
    runs = []
    with torch.no_grad():
        for b in args.candidates:
            model = solve_file(solver, args.file, rule, b, args.limit)
            base = search.evaluate_file(args.file, time_limit=model["mean_seconds"], limit=args.limit)
            runs.append({"candidates": b, "model": model, "search": base})
    print(f"{args.file.name}: {runs[0]['model']['tasks']} tasks, model {args.model}, halt {rule}, "
          f"{args.threads} thread(s); load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    rows = [row for r in runs for row in ((f"model B={r['candidates']} ({r['model']['mean_steps']:.2f} steps)",
                                           r["model"]),
                                          (f"search at {r['search']['time_limit']:.4f} s/task", r["search"]))]
    print("\n".join(search.length_table(rows)))
    if args.json:
        args.json.write_text(json.dumps({"file": str(args.file), "model": args.model, "halt": str(rule),
                                         "threads": args.threads, "load_before": load_before,
                                         "load_after": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M"),
                                         "runs": runs}, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
