"""fp32 matrix products of TRM's shapes on the CPU: ATen's F.linear (MKL) against recursia.matmul (oneDNN).

    python benchmarks/cpu_matmul.py [--threads 1] [--reps 30]

For each shape of the CPU speed workload (TRM-MLP, hidden 128, batch 32 or 1, 97 tokens) it times the forward
product and the two gradient products of a linear layer both ways in the same process, alternating, and
prints GFLOP/s and the ratio oneDNN / ATen, with the largest relative difference between the two results.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from recursia import matmul

# (rows, fan_in, fan_out, what): batch * tokens rows for the channel SwiGLU, batch * hidden for the token one.
SHAPES = [(32 * 97, 128, 1024, "channel gate_up, batch 32"), (32 * 97, 512, 128, "channel down, batch 32"),
          (32 * 128, 97, 1024, "token gate_up, batch 32"), (32 * 128, 512, 97, "token down, batch 32"),
          (97, 128, 1024, "channel gate_up, batch 1"), (128, 97, 1024, "token gate_up, batch 1"),
          (32 * 81, 128, 11, "lm_head, batch 32")]


def timed(fn, reps: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3, help="alternating ATen/oneDNN rounds; the median is kept")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if matmul._WHY_NOT:
        raise SystemExit(f"oneDNN is not usable here: {matmul._WHY_NOT}")
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, {args.threads} thread(s)")
    print(f"{'shape':32} {'product':8} {'ATen GFLOP/s':>12} {'oneDNN GFLOP/s':>14} {'ratio':>6} {'rel diff':>9}")
    g = torch.Generator().manual_seed(0)
    for rows, fan_in, fan_out, what in SHAPES:
        x = torch.randn(rows, fan_in, generator=g)
        w = torch.randn(fan_out, fan_in, generator=g) / fan_in ** 0.5
        grad = torch.randn(rows, fan_out, generator=g)
        flops = 2 * rows * fan_in * fan_out
        cases = {
            "forward": (lambda: F.linear(x, w), lambda: matmul.linear(x, w)),
            "grad x": (lambda: grad @ w, lambda: matmul._mm(grad, w.t())),
            "grad w": (lambda: grad.t() @ x, lambda: matmul._grad_weight(grad, x)),
        }
        for name, (aten, onednn) in cases.items():
            times = {"aten": [], "onednn": []}
            for _ in range(args.rounds):
                matmul.set_cpu_matmul("aten")
                times["aten"].append(timed(aten, args.reps))
                matmul.set_cpu_matmul("onednn")
                with torch.no_grad():
                    times["onednn"].append(timed(onednn, args.reps))
            a, o = statistics.median(times["aten"]), statistics.median(times["onednn"])
            with torch.no_grad():
                ref, got = aten(), onednn()
            diff = float((got - ref).abs().max() / ref.abs().max())
            print(f"{what:32} {name:8} {flops / a / 1e9:12.0f} {flops / o / 1e9:14.0f} {a / o:5.2f}x {diff:9.1e}")


if __name__ == "__main__":
    main()
