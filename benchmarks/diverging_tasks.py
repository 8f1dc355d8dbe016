"""Which tasks of a pure-resampling run (`--restart always`) another restart policy or depth would play differently.

    python benchmarks/diverging_tasks.py RUN [--restart fresh-first] [--depth D] [--check K]

With the same seeds, the loop's k-th fresh draw is the same program in every run (common random numbers), so a
policy that differs from `always` only in what it does after some attempts makes the same calls and the same
choices as the `always` run until it first takes another path. Replaying the run's recorded attempts through
the loop's own halting and restart rules (`Refiner._halt`, `Refiner._next`) finds that point; a task where it
never comes, with a call left, has the same record under both policies. With `--depth D` above the run's own,
a task that the run stopped only because its calls ran out diverges too: a deeper run goes on from there. Printed: the diverging task ids, comma
separated for `recursia code eval --tasks`, then (with `--check K`) K non-diverging ones to run as well and
compare with the `always` run's records, which shows that the claim holds for the code as it is.
`loop_vs_baseline.py --fill RUN` then scores the new run with the `always` run's records for the rest.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path

from recursia.code.evaluate import read_config, read_records
from recursia.code.loop import Attempt, CodeHaltRule, LoopConfig, LoopResult, Refiner


def diverges(record: dict, refiner: Refiner) -> int | None:
    """The attempt after which `refiner`'s policy takes another path than the recorded run, or None."""
    names = {f.name for f in fields(Attempt)}
    attempts = [Attempt(**{k: v for k, v in a.items() if k in names}) for a in record["loop"]["attempts"]]
    res = LoopResult([], "", 0, 0, 0, 0.0, [], [])
    for i, a in enumerate(attempts[: refiner.cfg.N_sup]):  # after the last of N_sup + 1 no call is left
        res.attempts.append(a)
        reason, fresh = refiner._next(res, refiner._halt(res, time.perf_counter()))
        if not reason and (not fresh or i == len(attempts) - 1):  # a rewrite, or a call the record never made
            return i
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a `recursia code eval` run made with --restart always")
    ap.add_argument("--restart", default="fresh-first")
    ap.add_argument("--depth", type=int, default=None, help="the other run's depth (default: the run's own)")
    ap.add_argument("--check", type=int, default=0, help="also print K tasks that do not diverge")
    args = ap.parse_args()
    config = read_config(args.run)
    if config.get("restart") != "always":
        raise SystemExit(f"{args.run} was run with --restart {config.get('restart')}, not always")
    cfg = LoopConfig(N_sup=config["depth"] if args.depth is None else args.depth, n=config["n"], T=config["T"], restart=args.restart,
                     halt=CodeHaltRule.parse(config["halt"]))
    refiner = Refiner(None, cfg)
    records = read_records(args.run)
    split = [(r["task_id"], diverges(r, refiner)) for r in records]
    out = [t for t, i in split if i is not None]
    same = [t for t, i in split if i is None]
    print(f"{len(out)} of {len(records)} tasks diverge under --restart {args.restart} --depth {cfg.N_sup}",
          file=sys.stderr)
    print(",".join(out + same[: args.check]))


if __name__ == "__main__":
    main()
