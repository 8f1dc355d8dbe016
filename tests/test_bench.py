"""`recursia bench`: it times real training steps and reports FLOPs consistent with the config."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from recursia import flops
from recursia.config import build_config

from conftest import REPO

SMALL = ["model.hidden_size=32", "model.num_heads=2", "model.expansion=2", "model.T=1", "model.n=2",
         "model.N_sup=2", "model.puzzle_emb_len=1", "model.puzzle_emb_dim=32", "train.global_batch_size=8"]


def test_bench_command_writes_consistent_json(tmp_path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "recursia", "bench", "--preset", "sudoku-att", "--steps", "3",
                           "--warmup", "1", "--quiet", "--json", str(out), *SMALL], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "steps/s" in proc.stdout and "reference (one H100): 9.2 steps/s" in proc.stdout
    r = json.loads(out.read_text())
    assert r["steps"] == 3 and r["global_batch_size"] == 8 and r["steps_per_s"] > 0
    # Both figures are rounded from the same unrounded rate (steps to 3 places, examples to 1), so they agree
    # to within those two roundings: 0.05 + 8 * 0.0005.
    assert abs(r["examples_per_s"] - r["steps_per_s"] * 8) <= 0.054 + 1e-9
    expected = flops.count(build_config("sudoku-att", SMALL).model, 81, 11).train_step(8)
    assert r["train_gflop_per_step"] == round(expected / 1e9, 1)
    assert r["mfu"] is None and r["peak_tflops"] is None  # a CPU has no known peak
    from recursia.matmul import cpu_matmul
    assert r["cpu_matmul"] == cpu_matmul() and f"{cpu_matmul()} products" in proc.stdout  # which products ran
    proc = subprocess.run([sys.executable, "-m", "recursia", "bench", "--preset", "arc1-att"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=120)
    assert proc.returncode == 2 and "pass --data" in proc.stderr and "Traceback" not in proc.stderr
