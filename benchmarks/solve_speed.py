"""CPU time to solve puzzles with a model, per inference-time halting rule.

    python benchmarks/solve_speed.py [--preset sudoku-mlp | --checkpoint RUN] [--file PUZZLES] [--halt all stable=2]
                                     [--repeats 5] [--threads 2] [--dtype float32]

Times `Solver.solve_batch` after one untimed warm-up call: on one 17-clue Sudoku by default, or on every
puzzle of --file solved as one batch. Without --checkpoint the network has the preset's shape and its initial
weights: a step costs the same whatever the weights, so the `all` time is the trained model's, but when other
rules stop depends on a trained model. Prints one JSON line with, per rule, the median and best wall time, the
time per puzzle, the mean steps run and the fraction of valid answers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from recursia.checkpoint import load_model
from recursia.config import build_config
from recursia.halting import HaltRule
from recursia.model import TaskSpec, build_model
from recursia.solve import Solver
from recursia.tasks import get_task

PUZZLE = "..............3.85..1.2.......5.7.....4...1...9.......5......73..2.1........4...9"  # 17 clues


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="sudoku-mlp")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--file", default=None, help="puzzles, one per line, solved as one batch")
    ap.add_argument("--halt", nargs="+", default=["all", "stable=2"], help="halting rules to time")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="forward dtype")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("sudoku")
    if args.checkpoint:
        model, _, _ = load_model(args.checkpoint, torch.device("cpu"))
    else:
        torch.manual_seed(0)
        model = build_model(build_config(args.preset, []).model, TaskSpec(task.seq_len, task.vocab_size, 1))
    model.eval()
    model.set_forward_dtype(getattr(torch, args.dtype))
    solver = Solver(model, task)
    grids = solver.read_file(Path(args.file)) if args.file else [solver.parse(PUZZLE)]
    result = {"preset": None if args.checkpoint else args.preset, "checkpoint": args.checkpoint,
              "puzzles": len(grids), "N_sup": model.cfg.N_sup, "dtype": args.dtype, "threads": args.threads,
              "cpu": platform.processor() or platform.machine(), "torch": torch.__version__}
    for rule in args.halt:
        halt = HaltRule.parse(rule)
        solver.solve_batch(grids[:1], halt)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            results = solver.solve_batch(grids, halt)
            times.append(time.perf_counter() - start)
        result[str(halt)] = {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
                             "median_s_per_puzzle": round(statistics.median(times) / len(grids), 5),
                             "mean_steps": round(sum(r.steps for r in results) / len(results), 3),
                             "valid": round(sum(r.valid for r in results) / len(results), 4)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
