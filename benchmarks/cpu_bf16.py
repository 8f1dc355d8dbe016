"""bf16 against fp32 on the CPU: training speed of the `demo` and `sudoku-cpu` recipes, and the demo's accuracy.

    python benchmarks/cpu_bf16.py speed [--presets demo sudoku-cpu] [--threads 1 2] [--rounds 3] [--steps 100]
    python benchmarks/cpu_bf16.py accuracy [--seeds 0 1 2] [--out DIR]

`model.forward_dtype=bfloat16` keeps fp32 master weights and casts them to bf16 on use (layers.CastedLinear),
with RMSNorm, the loss (softmax or stablemax cross-entropy) and the halting head's loss in fp32, as the
reference does on GPUs; on a CPU with AVX512_BF16 PyTorch sends the bf16 products to oneDNN. The fp32 side is
the default CPU path (oneDNN's fp32 products, recursia.matmul).

speed: each measurement is a fresh `recursia bench` subprocess (untimed warm-up steps, then timed optimizer
steps), fp32 and bf16 alternating in rotating order so that a change of load hits both alike. Prints every
measurement, then per preset and thread count the median steps/s of each and the ratio bf16 / fp32.

accuracy: the `demo` recipe trained in full with each dtype and each `train.seed`, as `recursia train` runs it;
prints the exact accuracy on its 1000 held-out puzzles after 8 supervision steps, per run, and the mean and
range of each dtype.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DTYPES = ("float32", "bfloat16")


def bench(preset: str, dtype: str, threads: int, steps: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "recursia", "bench", "--preset", preset, "--steps", str(steps), "--warmup",
               str(warmup), "--quiet", "--json", str(out), f"model.forward_dtype={dtype}", f"train.threads={threads}"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def speed(args: argparse.Namespace) -> None:
    print(f"load average before: {os.getloadavg()}")
    runs: dict[tuple, list[float]] = {}
    for r in range(args.rounds):
        for preset in args.presets:
            for t in args.threads:
                for dtype in (DTYPES if r % 2 == 0 else DTYPES[::-1]):
                    m = bench(preset, dtype, t, args.steps, args.warmup)
                    runs.setdefault((preset, t, dtype), []).append(m["steps_per_s"])
                    print(f"round {r} {preset} threads {t} {dtype} ({m['cpu_matmul']} fp32 products): "
                          f"{m['steps_per_s']:.2f} steps/s, load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"load average after: {os.getloadavg()}")
    print("| preset | threads | fp32 steps/s | bf16 steps/s | bf16 / fp32 |")
    print("|---|---|---|---|---|")
    for preset in args.presets:
        for t in args.threads:
            f32, b16 = (statistics.median(runs[preset, t, d]) for d in DTYPES)
            print(f"| {preset} | {t} | {f32:.2f} | {b16:.2f} | {b16 / f32:.2f}x |")


def accuracy(args: argparse.Namespace) -> None:
    root = Path(args.out or tempfile.mkdtemp(prefix="recursia-bf16-"))
    print(f"load average before: {os.getloadavg()}; runs in {root}")
    got: dict[str, list[float]] = {d: [] for d in DTYPES}
    for seed in args.seeds:
        for dtype in DTYPES:
            run = root / f"demo-{dtype}-seed{seed}"
            start = time.perf_counter()
            cmd = [sys.executable, "-m", "recursia", "train", "--preset", "demo", "--out", str(run), "--quiet",
                   f"model.forward_dtype={dtype}", f"train.seed={seed}"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
            result = json.loads((run / "eval.json").read_text())
            acc = result["all_steps"]["exact_accuracy"]
            got[dtype].append(acc)
            print(f"seed {seed} {dtype}: exact {100 * acc:.1f}% of {result['examples']}, "
                  f"{time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"load average after: {os.getloadavg()}")
    for dtype, accs in got.items():
        print(f"{dtype}: mean {100 * statistics.mean(accs):.1f}%, range {100 * min(accs):.1f}-{100 * max(accs):.1f}%"
              f" over seeds {args.seeds}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--presets", nargs="+", default=["demo", "sudoku-cpu"])
    s.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--steps", type=int, default=100)
    s.add_argument("--warmup", type=int, default=10)
    a = sub.add_parser("accuracy")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a.add_argument("--out", default=None)
    args = ap.parse_args()
    speed(args) if args.what == "speed" else accuracy(args)


if __name__ == "__main__":
    main()
