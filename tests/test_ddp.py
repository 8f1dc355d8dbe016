"""DistributedDataParallel on the CPU (gloo): two processes with half batches match one with the full batch."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from recursia.checkpoint import resolve
from recursia.metrics_log import read_metrics

from conftest import REPO

ARGS = ["--quiet", "model.hidden_size=32", "model.num_heads=2", "model.expansion=2", "model.T=1", "model.n=2",
        "model.N_sup=2", "model.halting=fixed", "model.puzzle_emb_len=1", "model.puzzle_emb_dim=32",
        "data.generate.train_count=64", "data.generate.test_count=8", "data.generate.blanks=10", "data.generate.min_rounds=1",
        "train.global_batch_size=16", "train.steps=5", "train.lr_warmup_steps=1", "train.ema=false",
        "train.compare_one_pass=false", "train.log_every=1", "train.eval_batch_size=8", "train.threads=1",
        # fp32 even where `auto` trains in bf16 (CPUs with native bf16): a rank's weight gradient, rounded to
        # bf16 over 8 rows, differs from one process's over 16 by bf16 rounding, which is not DDP's to match
        "model.forward_dtype=float32"]


def test_two_processes_match_one(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, "-m", "recursia", "train", "--out", str(one), *ARGS], check=True, env=env,
                   timeout=300)
    data = one / "data"  # both runs read the same generated data
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "recursia", "train", "--out", str(two), "--data", str(data), *ARGS],
                   check=True, env=env, timeout=300)
    a = load_file(str(resolve(one) / "model.safetensors"))
    b = load_file(str(resolve(two) / "model.safetensors"))
    assert set(a) == set(b)
    moved = 0
    for k in a:
        assert torch.allclose(a[k], b[k], atol=2e-5, rtol=0), k
        moved += 1
    start = load_file(str(resolve(one) / "train_state.safetensors"))
    assert "rank1.carry.steps" in load_file(str(resolve(two) / "train_state.safetensors"))
    assert "rank0.carry.steps" in start and moved > 10
    assert a["puzzle_emb.table"].abs().sum() > 0  # the sparse SignSGD rows were trained in both
    # logged metrics are reduced over ranks: the same per-step loss and exact accuracy as one process
    la = [(r["step"], r["train/loss"]) for r in read_metrics(one) if "train/loss" in r]
    lb = [(r["step"], r["train/loss"]) for r in read_metrics(two) if "train/loss" in r]
    assert [s for s, _ in la] == [s for s, _ in lb] == [1, 2, 3, 4, 5]
    assert all(abs(x - y) < 1e-4 * max(1.0, abs(x)) for (_, x), (_, y) in zip(la, lb))
