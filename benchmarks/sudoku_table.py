"""A Sudoku model's accuracy by difficulty, on the three sources of heldout-1000, and its solve time.

    python benchmarks/sudoku_table.py [MODEL] [--heldout ../shared/data/sudoku-extreme-1k/heldout-1000.csv]
                                      [--per-level 200] [--levels 36 40 45 50 54 56 58]
                                      [--halt all verified stable=2] [--timed 210] [--timing-only]
                                      [--threads 1] [--exclude RUN/data]

MODEL is a bundled name (default `sudoku`) or a run/checkpoint. Generated held-out puzzles come from the
built-in generator with seed 7 (the `sudoku-cpu` preset trains on seed 0), by --method `search` as in
training (the row names the generator's mean guesses per puzzle); with --exclude, any of them that is in that
dataset's training split is dropped (and the count printed). Per level and source: exact accuracy (the answer is a valid solution of the
puzzle; every puzzle here has one solution, so that is the label) and mean steps, for each halting rule, all
puzzles of a level solved as one batch. Then the solve time of single puzzles, one `Solver.solve` call each, under
each halting rule (`verified` is the default; `all`, every step, is the baseline), over --timed puzzles drawn
evenly from the levels: median and 95th percentile, and the ratio to `all`.
Prints a markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from recursia.halting import HaltRule
from recursia.solve import Solver
from recursia.tasks import sudoku


def level_puzzles(blanks: int, count: int, seed: int, method: str) -> tuple[np.ndarray, float]:
    """Questions of one level and their mean rating (search: the solver's guesses)."""
    r = sudoku.generate(count, seed=seed * 100 + blanks, blanks=blanks, method=method)
    return r.questions, float(r.ratings.mean())


def training_questions(data_dir: Path) -> set[bytes]:
    """Questions of a dataset's training split, as the bytes of their 81 digits."""
    from recursia.dataset import Dataset

    q = sudoku.decode(Dataset(data_dir).split("train").inputs)
    return {row.astype(np.int8).tobytes() for row in q}


def score(solver: Solver, grids: list[np.ndarray], rule: HaltRule) -> tuple[float, float]:
    results = solver.solve_batch(grids, rule)
    return float(np.mean([r.valid for r in results])), float(np.mean([r.steps for r in results]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default="sudoku")
    ap.add_argument("--heldout", default="../shared/data/sudoku-extreme-1k/heldout-1000.csv")
    ap.add_argument("--per-level", type=int, default=200)
    ap.add_argument("--levels", type=int, nargs="+", default=[36, 40, 45, 50, 54, 56, 58])
    ap.add_argument("--method", default="search", choices=["search", "singles"],
                    help="the generator's method (the sudoku-cpu preset trains on search puzzles)")
    ap.add_argument("--halt", nargs="+", default=["all", "verified", "stable=2"])
    ap.add_argument("--timed", type=int, default=210)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timing-only", action="store_true", help="skip the accuracy rows")
    ap.add_argument("--exclude", default=None, help="a dataset whose training puzzles must not be scored")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    solver = Solver.load(args.model, device="cpu")
    rules = [HaltRule.parse(h) for h in args.halt]
    seen = training_questions(Path(args.exclude)) if args.exclude else set()
    rows, out = [], {"model": args.model, "threads": args.threads, "torch": torch.__version__,
                     "cpu": platform.processor() or platform.machine(), "N_sup": solver.model.cfg.N_sup,
                     "rows": []}
    sets: list[tuple[str, list[np.ndarray]]] = []
    for b in args.levels:
        q, rating = level_puzzles(b, args.per_level, args.seed, args.method)
        keep = [g for g in q if g.astype(np.int8).tobytes() not in seen]
        if len(keep) < len(q):
            print(f"blanks {b}: {len(q) - len(keep)} puzzle(s) dropped, in the training set")
        what = "guesses" if args.method == "search" else "rounds of singles"
        sets.append((f"generated ({args.method}), {b} blanks, {rating:.1f} {what}",
                     [g.reshape(9, 9) for g in keep]))
    if Path(args.heldout).is_file():
        held = sudoku.read_csv(args.heldout)
        for src in sorted(set(held.sources)):
            idx = [i for i, s in enumerate(held.sources) if s == src]
            sets.append((f"heldout-1000: {src}", [held.questions[i].reshape(9, 9) for i in idx]))
    else:
        print(f"no {args.heldout}: heldout-1000 rows skipped")
    for name, grids in sets if not args.timing_only else []:
        row = {"set": name, "puzzles": len(grids)}
        for h, rule in zip(args.halt, rules):
            acc, steps = score(solver, grids, rule)
            row[h] = {"exact_accuracy": acc, "mean_steps": steps}
        out["rows"].append(row)
        rows.append(row)
        print(f"{name}: " + ", ".join(f"{h} {row[h]['exact_accuracy']:.1%} in {row[h]['mean_steps']:.2f} steps"
                                      for h in args.halt), flush=True)
    per = max(1, args.timed // len(args.levels))
    timed = [g.reshape(9, 9) for b in args.levels for g in level_puzzles(b, per, args.seed + 1, args.method)[0]]
    solver.solve(timed[0])  # warm-up
    out["solve_time"] = {}
    for h, rule in zip(args.halt, rules):  # the same puzzles under each rule: `all` is the baseline
        times, solved = [], 0
        for g in timed:
            t = time.perf_counter()
            r = solver.solve(g, rule)
            times.append(time.perf_counter() - t)
            solved += r.valid
        times.sort()
        out["solve_time"][h] = {"puzzles": len(times), "median_s": statistics.median(times),
                                "p95_s": times[min(len(times) - 1, int(0.95 * len(times)))],
                                "solved": solved / len(times)}
    print("\n| puzzles | n | " + " | ".join(f"{h}: exact / mean steps" for h in args.halt) + " |")
    print("|---|---|" + "---|" * len(args.halt))
    for row in rows:
        print(f"| {row['set']} | {row['puzzles']} | " + " | ".join(
            f"{row[h]['exact_accuracy']:.1%} / {row[h]['mean_steps']:.2f}" for h in args.halt) + " |")
    base = out["solve_time"].get("all")
    for h, st in out["solve_time"].items():
        ratio = f", {base['median_s'] / st['median_s']:.2f}x faster than all (median)" if base and h != "all" else ""
        print(f"solve time per puzzle, one at a time, {h}, {st['puzzles']} puzzles over the levels: median "
              f"{st['median_s'] * 1000:.1f} ms, 95th percentile {st['p95_s'] * 1000:.1f} ms "
              f"({st['solved']:.1%} solved){ratio}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
