"""Model-guided synthesis against plain enumeration at equal wall time per task, one CPU thread, in one process.

    python benchmarks/deepcoder_guided.py MODEL [MODEL ...] --file ../shared/data/exedec/deepcoder/NONE.jsonl \
        [--time-limits 0.1 1 10] [--limit N] [--stride K] [--json OUT.json]
    python benchmarks/deepcoder_guided.py MODEL --generated 300 --seed 7   # generated tasks (development)

Each MODEL is a function-prior checkpoint (task `deepcoder-prior`, e.g. the recursive one and its one-pass
ablation); `--frequency-prior SPLIT` adds the prior a network must beat: each function's share of the split's
generated training programs, the same for every task. At each time limit T, every task gets T seconds: plain
enumeration (`deepcoder_search.search`) for T, and for each model its prior (counted in the T) then
`weighted_search` for the rest. Solve rates overall and by the reference program's length; the load average is
printed before and after.

Time limits run in increasing order, and a task a method solved within a smaller limit keeps that result at the
larger ones without being rerun: both searches visit candidates in a fixed order, so more time only adds
candidates after the ones already tried and finds the same program. This makes a 10 s column affordable.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from recursia.checkpoint import load_model
from recursia.runtime import set_threads
from recursia.tasks import deepcoder as dc
from recursia.tasks import deepcoder_search as search
from recursia.tasks.deepcoder_prior import frequency_prior, solve_tasks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="function-prior checkpoints (run directories or names)")
    ap.add_argument("--file", type=Path, help="jsonl task file (test data: never trained or tuned on)")
    ap.add_argument("--generated", type=int, default=0, help="instead of --file: this many generated tasks")
    ap.add_argument("--seed", type=int, default=7, help="generator seed of --generated")
    ap.add_argument("--min-length", type=int, default=1)
    ap.add_argument("--max-length", type=int, default=5)
    ap.add_argument("--time-limits", type=float, nargs="+", default=[0.1, 1.0])
    ap.add_argument("--limit", type=int, default=0, help="only the first N tasks of --file (0: all)")
    ap.add_argument("--stride", type=int, default=1, help="every K-th task of --file (after --limit): a sample "
                    "that spreads over the file's input sets (10 tasks share one)")
    ap.add_argument("--frequency-prior", metavar="SPLIT", help="also search guided by how often each function "
                    "appears in 5000 tasks of SPLIT's training distribution (no network; seed 99)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    set_threads(1)
    if args.generated:
        tasks = dc.generate(args.generated, args.seed, min_length=args.min_length, max_length=args.max_length)
        name = f"generated(seed {args.seed}, lengths {args.min_length}-{args.max_length})"
    elif args.file:
        tasks = dc.read_tasks(args.file)
        tasks = (tasks[:args.limit] if args.limit else tasks)[::args.stride]
        name = args.file.name + (f" (1 task in {args.stride})" if args.stride > 1 else "")
    else:
        ap.error("give --file TASKS.jsonl or --generated N")
    models = [(m, load_model(m, "cpu")[0]) for m in args.models]
    if args.frequency_prior:
        counted = frequency_prior(dc.generate(5000, 99, split=args.frequency_prior))
        models.append((f"frequencies of {args.frequency_prior}", counted))
    load_before = os.getloadavg()
    runs = []
    solved: dict[str, dict[int, dict]] = {}  # per method: records of the tasks it solved at a smaller limit

    def run(method: str, solve_some, t_lim: float) -> dict:
        done = solved.setdefault(method, {})
        rest = [i for i in range(len(tasks)) if i not in done]
        records = dict(done)
        records.update(zip(rest, solve_some([tasks[i] for i in rest], t_lim)))
        done.update({i: r for i, r in records.items() if r["solved"]})
        return search.summarise([records[i] for i in range(len(tasks))], name, t_lim)

    def enumerate_(some, t_lim):
        return [search.record(t, search.search(t.inputs, t.outputs, t_lim)) for t in some]

    for t_lim in sorted(args.time_limits):
        plain = run("enumeration", enumerate_, t_lim)
        guided = {m: run(m, lambda some, t, model=model: solve_tasks(model, some, t, path=name)["records"], t_lim)
                  for m, model in models}
        runs.append({"time_limit": t_lim, "enumeration": plain, "guided": guided})
    print(f"{name}: {len(tasks)} tasks, 1 thread; load average before {load_before[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")
    rows = [row for r in runs for row in [(f"enumeration, {r['time_limit']:g} s", r["enumeration"])]
            + [(f"guided by {Path(m).name}, {r['time_limit']:g} s", g) for m, g in r["guided"].items()]]
    print("\n".join(search.length_table(rows)))
    if args.json:
        args.json.write_text(json.dumps({"tasks": name, "models": args.models, "load_before": load_before,
                                         "load_after": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M"),
                                         "runs": runs}, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
