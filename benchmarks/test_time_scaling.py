"""Accuracy against test-time compute for a Sudoku or Maze model: depth, perturbed copies, and both.

    python benchmarks/test_time_scaling.py [MODEL] --file ../shared/data/sudoku-extreme-1k/heldout-1000.csv \
        [--copies 16] [--steps 16] [--deep 64] [--wide 4:32] [--limit N] [--threads 1] [--json OUT.json] \
        [--timed 100 --timed-copies 1,4,8,16 --timed-budgets 0.5,1,2] [--only-timed]

MODEL is a bundled name (default `sudoku`) or a checkpoint. The file is a CSV with question and answer columns
(a `source` column splits the rows) or, for a Maze model, the Maze-Hard CSV. Every row of the tables is what
`Solver.solve_batch` returns with those settings, computed from full rollouts instead of one solve per setting:
an answer at a step does not depend on when a puzzle stops, and copy k of a puzzle depends only on (seed,
puzzle, k), so one rollout of C copies for S steps holds every setting with fewer copies or steps. `verified`
selection stops a puzzle's copies at the first step where one verifies (its network applications count every
copy up to there); `vote` runs every copy every step and takes the answer most copies give. A check at the end
solves some puzzles with `solve_batch` itself and asserts the same answers and applications.

Axes: copies P = 1, 2, 4, ... up to --copies at --steps steps; depth K up to --deep steps with the puzzle alone;
--wide P:K, P copies for K steps (both at once). --timed N: wall time of one `solve` call per puzzle on one
thread (median, 95th percentile) for N puzzles spread through the file; --timed-budgets B,...: the same for
`solve --budget B` (rounds of the model's default copies, or --round-copies, while the time fits); --only-timed:
those rows alone. Prints markdown tables and writes --json;
--plot OUT.png draws exact accuracy against network applications per puzzle, one line per axis and selection
(`--replot RESULT.json --plot OUT.png` draws it from a saved result without solving anything).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass

import numpy as np
import torch

from recursia.halting import HaltRule, run
from recursia.progress import bar
from recursia.solve import Solver, choose
from recursia.verify import Verifier


@dataclass
class Rollout:
    """Copies x steps of every puzzle: answers mapped back (N, C, S, L), whether each verifies, whether right."""

    answers: np.ndarray
    verified: np.ndarray  # (N, C, S) bool
    right: np.ndarray  # (N, C, S) bool
    seconds: float


def read_rows(path: str, task: str, limit: int) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Questions, answers and sources of a CSV of puzzles."""
    if task == "sudoku":
        from recursia.tasks import sudoku as mod
    else:
        from recursia.tasks import maze as mod
    recs = mod.read_csv(path)
    n = limit or len(recs.questions)
    return list(recs.questions[:n]), np.asarray(recs.answers[:n]), [str(s) for s in recs.sources[:n]]


def rollout(solver: Solver, grids: list[np.ndarray], answers: np.ndarray, copies: int, steps: int,
            seed: int, chunk: int, label: str) -> Rollout:
    """Every copy of every puzzle for `steps` steps, nothing stopped, each step's answer checked."""
    task, model = solver.task, solver.model
    verifier = Verifier.for_task(task)
    n, L = len(grids), answers.shape[-1]
    out = Rollout(np.zeros((n, copies, steps, L), np.uint8), np.zeros((n, copies, steps), bool),
                  np.zeros((n, copies, steps), bool), 0.0)
    start = time.perf_counter()
    for lo in bar(range(0, n, chunk), desc=label, total=(n + chunk - 1) // chunk):
        hi = min(n, lo + chunk)
        if copies > 1:
            q, undo = task.perturb(np.stack(grids[lo:hi]), copies, seed)
        else:
            q, undo = np.stack(grids[lo:hi]), (lambda v, rows=None, digits=True: np.asarray(v))
        x = torch.from_numpy(task.encode(q))
        rec, _ = run(model, x, torch.zeros(len(q), dtype=torch.int32), HaltRule(), n_steps=steps, verifier=verifier)
        for s in range(steps):
            a = undo(task.decode(rec.predictions[s].cpu().numpy())).reshape(hi - lo, copies, L)
            out.answers[lo:hi, :, s] = a
            out.verified[lo:hi, :, s] = rec.verified[s].cpu().numpy().reshape(hi - lo, copies)
            out.right[lo:hi, :, s] = (a == answers[lo:hi, None]).all(-1)
    out.seconds = time.perf_counter() - start
    return out


def verified_select(r: Rollout, p: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right, applications, stop step) per puzzle with P copies, at most K steps, `verified` selection."""
    v = r.verified[:, :p, :k].any(1)  # (N, K): some copy verifies at this step
    hit = v.any(1)
    stop = np.where(hit, v.argmax(1), k - 1)
    right = np.zeros(len(stop), bool)
    for i in range(len(stop)):
        s = stop[i]
        answers = [r.answers[i, c, s] for c in range(p)]
        j, _ = choose(answers, list(r.verified[i, :p, s]), "verified")
        right[i] = r.right[i, j, s]
    return right, p * (stop + 1), stop


def vote_select(r: Rollout, p: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(right, applications) per puzzle with P copies run for K steps each, the answer most copies give."""
    right = np.zeros(len(r.right), bool)
    for i in range(len(right)):
        j, _ = choose([r.answers[i, c, k - 1] for c in range(p)], [False] * p, "vote")
        right[i] = r.right[i, j, k - 1]
    return right, np.full(len(right), p * k)


def rows_for(name: str, right: np.ndarray, apps: np.ndarray, sources: list[str], p: int, k: int) -> dict:
    src = np.asarray(sources)
    return {"axis": name, "copies": p, "steps": k, "accuracy": float(right.mean()),
            "applications_mean": float(apps.mean()), "applications_median": float(np.median(apps)),
            "by_source": {s: float(right[src == s].mean()) for s in sorted(set(sources))}}


def check_against_solver(solver: Solver, grids, r: Rollout, p: int, k: int, seed: int, count: int) -> None:
    """The tables are what `solve_batch` gives: same answers, same applications, on the first `count` puzzles."""
    right, apps, stop = verified_select(r, p, k)
    res = solver.solve_batch(grids[:count], HaltRule(verified=True), perturb=p, steps=k, seed=seed)
    for i, x in enumerate(res):
        assert x.applications == apps[i], (i, x.applications, apps[i])
        assert np.array_equal(x.answer.ravel(), r.answers[i, x.copy, stop[i]]), i


def timed(solver: Solver, grids, copies: list[int], count: int, seed: int) -> list[dict]:
    """Seconds of one `Solver.solve` call per puzzle (the default `verified` halting), for each copy count, over
    `count` puzzles spread evenly through the file: median and 95th percentile, and the accuracy on them."""
    pick = np.linspace(0, len(grids) - 1, count).round().astype(int)
    rows = []
    for p in copies:
        solver.solve(grids[pick[0]], perturb=p, seed=seed)  # warm-up
        secs, ok = [], []
        for i in pick:
            t = time.perf_counter()
            ok.append(solver.solve(grids[i], perturb=p, seed=seed).valid)
            secs.append(time.perf_counter() - t)
        rows.append({"copies": p, "puzzles": count, "median_s": float(np.median(secs)),
                     "p95_s": float(np.percentile(secs, 95)), "solved": float(np.mean(ok))})
    return rows


def timed_budget(solver: Solver, grids, sources: list[str], budgets: list[float], copies: int, count: int,
                 seed: int) -> list[dict]:
    """`recursia solve --budget B` one puzzle at a time: rounds of `copies` fresh copies while the time fits.
    Seconds per puzzle (median, 95th percentile), copies tried, and the puzzles solved, also by source."""
    pick = np.linspace(0, len(grids) - 1, count).round().astype(int)
    rows = []
    for b in budgets:
        solver.solve_within([grids[pick[0]]], b, perturb=copies, seed=seed)  # warm-up
        secs, ok, apps = [], [], []
        for i in bar(pick, desc=f"budget {b:g} s", leave=False):
            t = time.perf_counter()
            r = solver.solve_within([grids[i]], b, perturb=copies, seed=seed)[0]
            secs.append(time.perf_counter() - t)
            ok.append(r.valid)
            apps.append(r.applications)
        src = np.array(sources)[pick]
        rows.append({"budget_s": b, "copies_per_round": copies, "puzzles": count,
                     "median_s": float(np.median(secs)), "p95_s": float(np.percentile(secs, 95)),
                     "mean_s": float(np.mean(secs)), "solved": float(np.mean(ok)),
                     "applications_mean": float(np.mean(apps)),
                     "by_source": {s: float(np.mean(np.array(ok)[src == s])) for s in sorted(set(sources))}})
    return rows


def plot(out: dict, path: str) -> None:
    """Accuracy against log2 of the mean network applications per puzzle, one line per axis (recursia.plot's
    Pillow charts, so no plotting library is needed)."""
    import math

    from recursia.plot import BLUE, GREEN, ORANGE, RED, Series, chart

    colours = {"copies, verified": BLUE, "copies, vote": ORANGE, "depth, verified": GREEN,
               "both, verified": RED}
    series = []
    for axis, colour in colours.items():
        rows = [r for r in out["rows"] if r["axis"] == axis]
        if axis == "both, verified":  # the wide rollout at its longest depth
            rows = [r for r in rows if r["steps"] == max(x["steps"] for x in rows)]
        if rows:
            rows.sort(key=lambda r: r["applications_mean"])
            series.append(Series(axis, [math.log2(r["applications_mean"]) for r in rows],
                                 [100 * r["accuracy"] for r in rows], colour))
    name = out["model"] + " on " + out["file"].rsplit("/", 1)[-1]
    chart(f"{name}: exact accuracy against test-time compute", series,
          "network applications per puzzle, mean (log2)", "exact %").save(path)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default="sudoku")
    ap.add_argument("--file", help="CSV of puzzles (required unless --replot)")
    ap.add_argument("--plot", default=None, help="also draw the curves into this PNG")
    ap.add_argument("--replot", default=None, help="a saved --json result: only draw --plot from it")
    ap.add_argument("--copies", type=int, default=16)
    ap.add_argument("--steps", type=int, default=None, help="steps per copy (default: the model's N_sup)")
    ap.add_argument("--deep", type=int, default=64, help="steps of the depth axis (the puzzle alone)")
    ap.add_argument("--wide", default="4:32", help="P:K, copies and steps at once ('' for none)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=64, help="puzzles per batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=int, default=24, help="puzzles re-solved with solve_batch as a check")
    ap.add_argument("--timed", type=int, default=0, help="puzzles solved one at a time on one thread, timed")
    ap.add_argument("--timed-copies", default="1,4,8,16")
    ap.add_argument("--timed-budgets", default="", help="with --timed: also `solve --budget B` for these B (s)")
    ap.add_argument("--only-timed", action="store_true", help="skip the rollouts: only the --timed rows")
    ap.add_argument("--round-copies", type=int, default=0, help="copies per --budget round (0: the model's own)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.replot:
        if not args.plot:
            ap.error("--replot needs --plot OUT.png")
        with open(args.replot) as f:
            plot(json.load(f), args.plot)
        return
    if not args.file:
        ap.error("--file is required (or --replot RESULT.json --plot OUT.png)")
    torch.set_num_threads(args.threads)
    solver = Solver.load(args.model, device="cpu")
    n_sup = solver.model.cfg.N_sup
    steps = args.steps or n_sup
    grids, answers, sources = read_rows(args.file, solver.task.name, args.limit)
    out = {"model": args.model, "file": args.file, "puzzles": len(grids), "N_sup": n_sup, "threads": args.threads,
           "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "rows": [],
           "date": time.strftime("%Y-%m-%d")}
    if args.only_timed:
        report_timed(args, solver, grids, sources, out)
        return
    wide = r_wide = None
    r = rollout(solver, grids, answers, args.copies, steps, args.seed, args.chunk, f"{args.copies} copies")
    out["seconds_copies"] = r.seconds
    ps = [p for p in (1, 2, 4, 8, 16, 32, 64) if p <= args.copies]
    for p in ps:
        right, apps, _ = verified_select(r, p, steps)
        out["rows"].append(rows_for("copies, verified", right, apps, sources, p, steps))
    for p in ps:
        right, apps = vote_select(r, p, steps)
        out["rows"].append(rows_for("copies, vote", right, apps, sources, p, steps))
    check_against_solver(solver, grids, r, min(4, args.copies), steps, args.seed, args.check)
    if args.deep > steps:
        d = rollout(solver, grids, answers, 1, args.deep, args.seed, args.chunk * 4, f"{args.deep} steps")
        assert np.array_equal(d.answers[:, 0, :steps], r.answers[:, 0]), "copy 0 must be the puzzle as given"
        out["seconds_deep"] = d.seconds
        for k in sorted({steps, *(k for k in (8, 16, 32, 48, 64, 128) if steps < k <= args.deep), args.deep}):
            right, apps, _ = verified_select(d, 1, k)
            out["rows"].append(rows_for("depth, verified", right, apps, sources, 1, k))
    if args.wide:
        wp, wk = (int(v) for v in args.wide.split(":"))
        r_wide = rollout(solver, grids, answers, wp, wk, args.seed, args.chunk, f"{wp} copies x {wk} steps")
        out["seconds_wide"] = r_wide.seconds
        for k in sorted({steps, wk}):
            for p in [p for p in ps if p <= wp]:
                right, apps, _ = verified_select(r_wide, p, k)
                out["rows"].append(rows_for("both, verified", right, apps, sources, p, k))
        wide = wp
    print(f"model {args.model} (N_sup {n_sup}) on {len(grids)} puzzles of {args.file}, {args.threads} thread(s); "
          f"rollouts {r.seconds:.0f} s" + (f" + {out.get('seconds_deep', 0):.0f} s" if args.deep > steps else "")
          + (f" + {out.get('seconds_wide', 0):.0f} s" if wide else ""))
    srcs = sorted(set(sources))
    print("| axis | copies | steps | exact | " + " | ".join(srcs) + " | applications per puzzle (mean / median) |")
    print("|---|---|---|---|" + "---|" * len(srcs) + "---|")
    for row in out["rows"]:
        print(f"| {row['axis']} | {row['copies']} | {row['steps']} | {100 * row['accuracy']:.1f}% | "
              + " | ".join(f"{100 * row['by_source'][s]:.1f}%" for s in srcs)
              + f" | {row['applications_mean']:.1f} / {row['applications_median']:.0f} |")
    report_timed(args, solver, grids, sources, out)
    if args.plot:
        plot(out, args.plot)


def report_timed(args, solver: Solver, grids, sources: list[str], out: dict) -> None:
    """The --timed rows (copies, then budgets), printed, and the result written to --json."""
    if args.timed:
        torch.set_num_threads(1)
        copies = [int(c) for c in args.timed_copies.split(",") if c]
        out["timed"] = timed(solver, grids, copies, args.timed, args.seed) if copies else []
        print("| copies | puzzles solved one at a time (1 thread) | median s | 95th percentile s | solved |")
        print("|---|---|---|---|---|")
        for t in out["timed"]:
            print(f"| {t['copies']} | {t['puzzles']} | {t['median_s']:.3f} | {t['p95_s']:.3f} | "
                  f"{100 * t['solved']:.1f}% |")
        budgets = [float(b) for b in args.timed_budgets.split(",") if b]
        if budgets:
            per_round = args.round_copies or solver.default_perturb
            out["timed_budget"] = timed_budget(solver, grids, sources, budgets, per_round, args.timed, args.seed)
            srcs = sorted(set(sources))
            print(f"| budget s ({per_round} copies a round) | puzzles | median s | 95th percentile s | solved | "
                  + " | ".join(srcs) + " | applications |")
            print("|---|---|---|---|---|" + "---|" * len(srcs) + "---|")
            for t in out["timed_budget"]:
                print(f"| {t['budget_s']:g} | {t['puzzles']} | {t['median_s']:.3f} | {t['p95_s']:.3f} | "
                      f"{100 * t['solved']:.1f}% | " + " | ".join(f"{100 * t['by_source'][s]:.1f}%" for s in srcs)
                      + f" | {t['applications_mean']:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
