"""CPU latency of solving one puzzle with a paper-sized network (issue #4, item 8).

    python benchmarks/solve_speed.py [--preset sudoku-mlp] [--repeats 5] [--threads 2] [--dtype float32] [--checkpoint RUN]

Times `Solver.solve_batch` on one Sudoku-Extreme-style puzzle after one untimed warm-up call, with all N_sup
supervision steps (the default of `recursia solve`) and with early halting. Without --checkpoint the network
has its initial weights: a step costs the same whatever the weights, so the all-steps time is the trained
model's; the early-halting time depends on when a trained halting head fires, so it is only meaningful with a
checkpoint. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from recursia.checkpoint import load_model
from recursia.config import build_config
from recursia.model import TaskSpec, build_model
from recursia.solve import Solver
from recursia.tasks import get_task

PUZZLE = "..............3.85..1.2.......5.7.....4...1...9.......5......73..2.1........4...9"  # 17 clues


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="sudoku-mlp")
    ap.add_argument("--checkpoint", default=None)
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
    grid = solver.parse(PUZZLE)
    result = {"preset": None if args.checkpoint else args.preset, "checkpoint": args.checkpoint,
              "N_sup": model.cfg.N_sup, "dtype": args.dtype, "threads": args.threads, "cpu": platform.processor() or platform.machine(),
              "torch": torch.__version__}
    for mode, early in (("all_steps", False), ("early_halt", True)):
        solver.solve_batch([grid], early_halt=early)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            r = solver.solve_batch([grid], early_halt=early)[0]
            times.append(time.perf_counter() - start)
        result[mode] = {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
                        "steps": r.steps}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
