"""CPU training step and 16-step solve of one commit against another, timed the same way in one run.

    git worktree add /tmp/recursia-becd225 becd225
    python benchmarks/cpu_speed.py --base /tmp/recursia-becd225 [--threads 1 2] [--rounds 5]

The workload: TRM-MLP, hidden 128, batch 32, T=3 n=6, fp32. The training step is what
`Trainer.train_step` does (deep-supervision step, backward, AdamATan2, SignSGD on the puzzle embedding, EMA)
on seeded random puzzles; the solve is `Solver.solve_batch` on one 17-clue Sudoku with all 16 supervision
steps. Each measurement is a fresh subprocess that imports the commit's `src/` (PYTHONPATH), so both commits
run the same script on the same machine; the order rotates (base, head, head-aten, then head, head-aten,
base, ...) so that a change of load hits all alike. `head-aten` is the head with RECURSIA_CPU_MATMUL=aten
(MKL's products, as in the base), which shows how much of the speed-up is oneDNN's.
Each subprocess also prints a fingerprint of its losses and answer, and of one application of the network
(T=1, n=1) with fixed weights. `head-aten` must agree with the base bit for bit (same seeds, same weights);
`head` sums in another order inside its products, so its one application must agree to fp32 rounding (the
largest relative differences are printed). Its losses and answer after the timed steps are not compared:
the T=3, n=6 recursion at random initialisation amplifies any rounding difference to O(1).
Prints one line per measurement, then per thread count the medians and the ratios base / side, of wall time
and of the process's CPU time (steadier than wall time when other jobs share the cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PUZZLE = "..............3.85..1.2.......5.7.....4...1...9.......5......73..2.1........4...9"  # 17 clues
OVERRIDES = ["model.hidden_size=128", "model.puzzle_emb_dim=128", "model.T=3", "model.n=6", "model.N_sup=16",
             "model.forward_dtype=float32", "train.global_batch_size=32"]


def worker(threads: int, train_steps: int, solve_reps: int, norm: str) -> dict:
    """Runs inside the subprocess, with the commit under test first on sys.path."""
    import torch

    from recursia.config import build_config
    from recursia.halting import HaltRule
    from recursia.model import TaskSpec, build_model
    from recursia.optim import EMA, AdamATan2, SparseSignSGD
    from recursia.solve import Solver
    from recursia.supervision import DeepSupervision, Examples
    from recursia.tasks import get_task

    torch.set_num_threads(threads)
    cfg = build_config("sudoku-mlp", OVERRIDES + [f"model.reference_mlp_norm={norm}"])
    t = cfg.train
    torch.manual_seed(0)
    model = build_model(cfg.model, TaskSpec(81, 11, 1))
    opt = AdamATan2(model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), weight_decay=t.weight_decay)
    sign = SparseSignSGD(model.puzzle_emb, t.puzzle_emb_lr, t.puzzle_emb_weight_decay)
    ema = EMA(model, t.ema_rate)
    data = torch.Generator().manual_seed(1)

    def fetch(k: int) -> Examples:
        x = torch.randint(1, 11, (k, 81), generator=data, dtype=torch.uint8)
        return Examples(x, torch.randint(2, 11, (k, 81), generator=data, dtype=torch.uint8),
                        torch.zeros(k, dtype=torch.int32), torch.arange(k))

    # The arithmetic check, on one application of the same network (T=1, n=1) with fixed weights and inputs:
    # its loss, gradient norm and logits. The benchmark's own T=3, n=6 recursion is no place to compare: at
    # random initialisation it is chaotic, and an fp32 rounding difference grows to logits that differ by
    # about 3 after one supervision step (each differs as much from a float64 run of the same weights).
    torch.manual_seed(0)
    one = build_model(build_config("sudoku-mlp", OVERRIDES + [f"model.reference_mlp_norm={norm}", "model.T=1",
                                                              "model.n=1"]).model, TaskSpec(81, 11, 1))
    gen = torch.Generator().manual_seed(3)
    inputs, labels = torch.randint(1, 11, (32, 81), generator=gen), torch.randint(1, 11, (32, 81), generator=gen)
    out = one(one.initial_state(32), inputs, torch.zeros(32, dtype=torch.int32))
    check_loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 11), labels.reshape(-1))
    check_loss.backward()
    grad_norm = float(torch.stack([p.grad.norm() for p in one.parameters() if p.grad is not None]).norm())
    check = {"loss": float.hex(float(check_loss)), "grad_norm": float.hex(grad_norm),
             "logits": float.hex(float(out.logits.detach().abs().sum()))}
    sup = DeepSupervision(model, cfg.model, t.loss, generator=torch.Generator().manual_seed(2))
    carry = sup.empty_carry(t.global_batch_size, 81, torch.device("cpu"))
    losses, step_s, step_cpu = [], [], []
    model.train()
    for i in range(train_steps + 2):  # two untimed warm-up steps
        start, cpu = time.perf_counter(), time.process_time()
        carry, loss, _ = sup.train_step(carry, fetch)
        (loss / t.global_batch_size).backward()
        opt.step()
        sign.step()
        opt.zero_grad(set_to_none=True)
        ema.update(model)
        if i >= 2:
            step_s.append(time.perf_counter() - start)
            step_cpu.append(time.process_time() - cpu)
        losses.append(float(loss))
    model.eval()
    solver = Solver(model, get_task("sudoku"))
    solver.solve_batch([PUZZLE], HaltRule())  # warm-up
    solve_s, solve_cpu = [], []
    for _ in range(solve_reps):
        start, cpu = time.perf_counter(), time.process_time()
        result = solver.solve_batch([PUZZLE], HaltRule())[0]
        solve_s.append(time.perf_counter() - start)
        solve_cpu.append(time.process_time() - cpu)
    fingerprint = {"losses": [float.hex(v) for v in losses], "answer": result.to_json()["answer"],
                   "confidence": float.hex(float(sum(c.sum() for c in result.confidence))), **check}
    import recursia

    try:
        from recursia.matmul import cpu_matmul
        backend = cpu_matmul()
    except ImportError:  # commits before recursia.matmul: F.linear only
        backend = "aten"
    return {"backend": backend, "train_step_s": statistics.median(step_s), "solve_s": statistics.median(solve_s),
            "train_step_cpu_s": statistics.median(step_cpu), "solve_cpu_s": statistics.median(solve_cpu),
            "steps": result.steps, "fingerprint": fingerprint, "module": recursia.__file__}


def measure(src: Path, threads: int, args: argparse.Namespace, matmul: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(threads), "RECURSIA_CPU_MATMUL": matmul}
    cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--train-steps", str(args.train_steps),
           "--solve-reps", str(args.solve_reps), "--norm", args.norm]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"worker for {src} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, default=Path("/tmp/recursia-becd225"), help="checkout of the base commit")
    ap.add_argument("--head", type=Path, default=REPO, help="checkout under test (default: this one)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5, help="base/head pairs per thread count")
    ap.add_argument("--train-steps", type=int, default=5, help="timed training steps per subprocess")
    ap.add_argument("--solve-reps", type=int, default=3, help="timed solves per subprocess")
    ap.add_argument("--norm", default="false", choices=["false", "true"], help="model.reference_mlp_norm")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.threads[0], args.train_steps, args.solve_reps, args.norm)))
        return
    sides = {"base": (args.base / "src", "auto"), "head": (args.head / "src", "auto"),
             "head-aten": (args.head / "src", "aten")}
    order = list(sides)
    runs: dict[tuple[str, int], list[dict]] = {(s, t): [] for s in sides for t in args.threads}
    print(f"load average before: {os.getloadavg()}")
    for r in range(args.rounds):
        for t in args.threads:
            for side in order[r % 3:] + order[:r % 3]:
                m = measure(sides[side][0], t, args, sides[side][1])
                runs[side, t].append(m)
                print(f"round {r} threads {t} {side} ({m['backend']}): train step {m['train_step_s']:.3f} s "
                      f"(CPU {m['train_step_cpu_s']:.3f} s), 16-step solve {m['solve_s']:.3f} s "
                      f"(CPU {m['solve_cpu_s']:.3f} s), load {os.getloadavg()[0]:.2f}", flush=True)
    modules = sorted({m["module"] for v in runs.values() for m in v})
    print(f"load average after: {os.getloadavg()}; modules imported: {modules}")
    for t in args.threads:
        ref = runs["base", t][0]["fingerprint"]
        aten_same = all(m["fingerprint"] == ref for s in ("base", "head-aten") for m in runs[s, t])
        def rel(key: str) -> float:
            want = float.fromhex(ref[key])
            return max(abs(float.fromhex(m["fingerprint"][key]) - want) / abs(want) for m in runs["head", t])
        for side in ("head", "head-aten"):
            parts = []
            for key, what in (("train_step_s", "train step"), ("solve_s", "solve"),
                              ("train_step_cpu_s", "train CPU"), ("solve_cpu_s", "solve CPU")):
                base, head = (statistics.median(m[key] for m in runs[s, t]) for s in ("base", side))
                parts.append(f"{what} {base:.3f} -> {head:.3f} s ({base / head:.2f}x)")
            print(f"threads {t} (medians, base -> {side}): {'; '.join(parts)}")
        print(f"threads {t}: head-aten bit-identical to base: {aten_same}; head against base on one application "
              f"(T=1, n=1, same weights): largest relative difference of the loss {rel('loss'):.1e}, of the gradient "
              f"norm {rel('grad_norm'):.1e}, of the summed |logits| {rel('logits'):.1e}")

if __name__ == "__main__":
    main()
