"""The enumerative DeepCoder baseline on a test file: solve rate overall and by program length, at a fixed time
per task (the figure a network must beat at equal time).

    python benchmarks/deepcoder_search.py [--file ../shared/data/exedec/deepcoder/NONE.jsonl]
                                          [--time-limit 1 5] [--limit 0] [--json OUT.json]

One process, one core, tasks one after another; the load average before and after is printed because the
machine's cores are shared and a busy neighbour slows the search (fewer programs tried in the same time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from recursia.tasks.deepcoder_search import evaluate_file, summary_lines

DEFAULT_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "exedec" / "deepcoder" / "NONE.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE, help="jsonl task file (test data only)")
    ap.add_argument("--time-limit", type=float, nargs="+", default=[1.0], help="seconds per task; one run each")
    ap.add_argument("--limit", type=int, default=0, help="only the first N tasks (0: all)")
    ap.add_argument("--json", type=Path, help="also write the results (per task records included) here")
    args = ap.parse_args()
    runs = []
    for limit in args.time_limit:
        load_before = os.getloadavg()
        start = time.perf_counter()
        result = evaluate_file(args.file, time_limit=limit, limit=args.limit)
        result.update(wall_seconds=round(time.perf_counter() - start, 1), load_before=load_before,
                      load_after=os.getloadavg(), cpu=platform.processor() or platform.machine(),
                      cpus=os.cpu_count())
        for line in summary_lines(result):
            print(line)
        print(f"  wall {result['wall_seconds']} s; load average before {load_before[0]:.2f}, after "
              f"{result['load_after'][0]:.2f} ({result['cpus']} CPUs)", flush=True)
        runs.append(result)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
