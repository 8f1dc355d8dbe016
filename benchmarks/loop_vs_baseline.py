"""The loop against the equal-budget resampling baseline, per run and pooled over runs (McNemar's exact test).

    python benchmarks/loop_vs_baseline.py RUN [RUN ...] [--first N] [--fill FULL_RUN [FULL_RUN ...]]

Each RUN is a `recursia code eval` directory (with the baseline). For each: tasks, depth-0 and final pass@1 on
the hidden tests, the baseline's, the discordant tasks (loop only / baseline only) with McNemar's p, and the
mean model calls per task of each arm; then the same test on all runs' tasks pooled. `--first N` reads only
each run's first N records (to compare with a shorter run on the same tasks). The tasks where the two arms
differ are listed with the loop's halting reason, so that every win and loss can be looked up in the records.
`--fill` gives each RUN a full run whose records stand in for the tasks RUN did not run (a policy run only on
the tasks where it plays differently from a `--restart always` run: see `diverging_tasks.py`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recursia.code.evaluate import read_records
from recursia.code.stats import mcnemar


def _row(name: str, recs: list[dict]) -> tuple[list[bool], list[bool]]:
    loop = [r["hidden_by_depth"][-1] for r in recs]
    base = [r["baseline"]["hidden"] for r in recs]
    d0 = [r["hidden_by_depth"][0] for r in recs]
    m = mcnemar(loop, base)
    n = len(recs)
    calls_loop = sum(r["loop"]["calls"] for r in recs) / n
    calls_base = sum(r["baseline"]["calls"] for r in recs) / n
    print(f"| {name} | {n} | {100 * sum(d0) / n:.1f}% | {100 * sum(loop) / n:.1f}% ({sum(loop)}) | "
          f"{100 * sum(base) / n:.1f}% ({sum(base)}) | {m['a_only']} / {m['b_only']}, p = {m['p_value']:.3g} | "
          f"{calls_loop:.2f} / {calls_base:.2f} |")
    return loop, base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--first", type=int, default=0, help="only each run's first N records")
    ap.add_argument("--fill", nargs="+", type=Path, default=[],
                    help="one full run per RUN, whose records stand in for the tasks RUN did not run")
    args = ap.parse_args()
    if args.fill and len(args.fill) != len(args.runs):
        raise SystemExit(f"--fill needs one run per RUN ({len(args.runs)}), not {len(args.fill)}")

    print("| run | tasks | depth 0 | loop | baseline | loop-only / baseline-only, McNemar p | calls per task (loop / baseline) |")
    print("|---|---|---|---|---|---|---|")
    all_loop, all_base, differ = [], [], []
    for k, run in enumerate(args.runs):
        recs = [r for r in read_records(run) if "baseline" in r]
        if args.fill:
            own = {r["task_id"]: r for r in recs}
            ran = len(own)
            full = [r for r in read_records(args.fill[k]) if "baseline" in r]
            recs = [own.pop(r["task_id"], r) for r in full] + list(own.values())
            print(f"{run.name}: {ran} tasks run, {len(recs) - ran} from {args.fill[k].name}", file=sys.stderr)
        if not recs:
            raise SystemExit(f"{run}: no record with a baseline (a run made with --no-baseline?)")
        recs = recs[: args.first] if args.first else recs
        loop, base = _row(run.name, recs)
        all_loop += loop
        all_base += base
        differ += [(r["task_id"], "loop" if a else "baseline", r["loop"]["halt_reason"])
                   for r, a, b in zip(recs, loop, base) if a != b]
    if len(args.runs) > 1:
        m = mcnemar(all_loop, all_base)
        n = len(all_loop)
        print(f"| pooled | {n} | | {100 * sum(all_loop) / n:.1f}% | {100 * sum(all_base) / n:.1f}% | "
              f"{m['a_only']} / {m['b_only']}, p = {m['p_value']:.3g} | |")
    print("\nTasks where the arms differ (who solved it; the loop's halting reason):")
    for task_id, who, halt in differ:
        print(f"  {task_id}: {who} ({halt})")


if __name__ == "__main__":
    main()
