"""Learning without gradients, measured on held-out tasks: a depth policy against fixed depths, skills against
none, and the success-rate estimates with the divergence alarm (docs/benchmarks.md, "Learning without gradients").

    python benchmarks/no_gradient_learning.py --run RUN --policy depths.json --data DATA \
        [--skills-run SKILLS_RUN] [--store STORE ...]

RUN is a fixed-depth `recursia code eval` run on held-out tasks; the policy (from `recursia code depth`, learned
on MBPP train/validation) is replayed on it task by task, so every arm is paired with every other on the same
programs. SKILLS_RUN is the same settings with `--skills`; it is compared with RUN at depth 0 (one greedy draw)
and at the end of the loop. Each STORE (`--store` of those runs) gets its pass rate with the Wilson and Beta 95%
intervals, the seed's moving average (start 0.5, decay 0.999), the same average with its start divided out,
and the divergence alarm. Every row gives model calls per task, so a gain bought with calls shows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recursia.code.estimates import ema_debiased, summarise_store
from recursia.code.evaluate import compare, read_config
from recursia.code.store import Store
from recursia.code.tasks import load_tasks


def _pct(x: dict) -> str:
    return f"{100 * x['rate']:.1f}% ({x['pass']}/{x['n']}; {100 * x['ci95'][0]:.1f}-{100 * x['ci95'][1]:.1f})"


def _row(label: str, r: dict, side: str = "b") -> str:
    x, m = r[side], r["mcnemar"]
    other = "a_only" if side == "b" else "b_only"
    mine = "b_only" if side == "b" else "a_only"
    return (f"| {label} | {_pct(x)} | {x['calls'] / x['n']:.2f} | "
            f"{m[mine]} vs {m[other]}, p = {m['p_value']:.3g} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--policy", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--skills-run", type=Path)
    ap.add_argument("--store", type=Path, nargs="*", default=[])
    args = ap.parse_args()

    config = read_config(args.run)
    tasks = load_tasks(config["bench"], args.data, split=config.get("split"))
    policy = f"policy={args.policy}"
    print(f"## depth policy on {args.run} ({config['bench']}, fixed depth {config['depth']})\n")
    print("| arm | pass@1 hidden (95% CI) | calls per task | this arm vs the policy, McNemar |")
    print("|---|---|---|---|")
    fixed = [compare(args.run, args.run, policy, f"depth={d}", tasks) for d in range(config["depth"] + 1)]
    a = fixed[0]["a"]  # the policy's side is the same in every comparison
    print(f"| depth policy | {_pct(a)} | {a['calls'] / a['n']:.2f} | - |")
    for d, r in enumerate(fixed):
        print(_row(f"fixed depth {d}", r))

    if args.skills_run:
        print(f"\n## skills: {args.skills_run} against {args.run}\n")
        print("| arm | pass@1 hidden (95% CI) | calls per task | skills vs none, McNemar |")
        print("|---|---|---|---|")
        for arm, label in (("depth=0", "depth 0 (one greedy draw)"), ("final", "loop (final)")):
            r = compare(args.skills_run, args.run, arm, arm)
            print(_row(f"{label}, skills", r, "a"))
            print(f"| {label}, no skills | {_pct(r['b'])} | {r['b']['calls'] / r['b']['n']:.2f} | |")
            if r["unpaired"]["only_a"] or r["unpaired"]["only_b"]:
                print(f"| (not paired: {r['unpaired']['only_a']} / {r['unpaired']['only_b']}) | | | |")

    for path in args.store:
        with Store(path, create=False) as s:
            rows = s.records()
        summary = summarise_store(rows)
        print(f"\n## estimates: {path} ({len(rows)} records, in the order they were made)\n")
        print("| benchmark | records | hidden pass (Wilson 95%) | Beta mean (95%) | seed's EMA | EMA, start "
              "divided out | alarm (last 30 vs earlier) |")
        print("|---|---|---|---|---|---|---|")
        for name, g in summary["benchmark"].items():
            outcomes = [bool(r["hidden_final"]) for r in rows if r["benchmark"] == name]
            h, al = g["hidden"], g["alarm"]
            alarm = ("n/a (fewer than 60)" if al["recent"] is None else
                     f"{'FIRED' if al['fired'] else 'quiet'}: {100 * al['recent']:.1f}% vs "
                     f"{100 * al['earlier']:.1f}%, gap {100 * al['gap']:.1f} vs noise {100 * al['noise']:.1f}")
            print(f"| {name} | {g['records']} | {100 * h['rate']:.1f}% ({100 * h['wilson95'][0]:.1f}-"
                  f"{100 * h['wilson95'][1]:.1f}) | {100 * h['beta_mean']:.1f}% ({100 * h['beta95'][0]:.1f}-"
                  f"{100 * h['beta95'][1]:.1f}) | {g['ema']:.3f} | {ema_debiased(outcomes)[-1]:.3f} | "
                  f"{alarm} |")
        fired = [(name, g["records"]) for name, g in summary["type"].items() if g["alarm"]["fired"]]
        checked = sum(1 for g in summary["type"].values() if g["alarm"]["recent"] is not None)
        print(f"\ntask types with 60 or more records (the alarm can look): {checked}; fired: {fired or 'none'}")


if __name__ == "__main__":
    main()
