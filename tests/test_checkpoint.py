"""Checkpoints: round trip, exact resume after a kill, clear errors for corrupt or mismatched files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from recursia.checkpoint import load_model, resolve
from recursia.config import build_config
from recursia.errors import CheckpointError, ConfigError
from recursia.metrics_log import read_metrics
from recursia.train import train

from conftest import REPO

TINY = ["model.hidden_size=64", "model.num_heads=4", "model.expansion=2", "model.T=1", "model.n=2",
        "model.N_sup=3", "model.puzzle_emb_len=1", "model.puzzle_emb_dim=32",
        "data.generate.train_count=64", "data.generate.test_count=16", "data.generate.blanks=10", "data.generate.min_rounds=1",
        "train.global_batch_size=32", "train.log_every=1", "train.eval_batch_size=16", "train.lr_warmup_steps=2",
        "train.compare_one_pass=false", "train.ema_rate=0.9", "train.lr_schedule=constant", "train.ema=true"]


def losses(run: Path) -> dict[int, float]:
    out = {}
    for r in read_metrics(run):
        if "train/loss" in r:
            out[r["step"]] = r["train/loss"]
    return out


def test_round_trip_and_exact_resume(tmp_path):
    straight = tmp_path / "straight"
    train(build_config("demo", TINY + ["train.steps=8"]), straight, progress=False)
    first = tmp_path / "resumed"
    train(build_config("demo", TINY + ["train.steps=4"]), first, progress=False)
    resumed_cfg = build_config("demo", TINY + ["train.steps=8"])
    train(resumed_cfg, first, resume=True, progress=False, overrides_on_resume=resumed_cfg)
    a, b = losses(straight), losses(first)
    assert sorted(a) == list(range(1, 9)) and sorted(b) == list(range(1, 9))
    assert [a[s] for s in range(1, 9)] == [b[s] for s in range(1, 9)]  # bit-for-bit
    wa = load_file(str(resolve(straight) / "model.safetensors"))
    wb = load_file(str(resolve(first) / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)

    model, cfg, meta = load_model(straight)  # round trip: loads with the config it was saved with
    assert meta["step"] == 8 and cfg.model.hidden_size == 64 and meta["weights"] == "ema"
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in wa.items())


def test_resume_refuses_changed_model(tmp_path):
    run = tmp_path / "run"
    train(build_config("demo", TINY + ["train.steps=2"]), run, progress=False)
    changed = build_config("demo", TINY + ["train.steps=4", "model.n=3"])
    with pytest.raises(ConfigError, match="cannot change model.n"):
        train(changed, run, resume=True, progress=False, overrides_on_resume=changed)
    cosine = build_config("demo", TINY + ["train.steps=2", "train.lr_schedule=cosine"])
    train(cosine, tmp_path / "cosine", progress=False)
    longer = build_config("demo", TINY + ["train.steps=4", "train.lr_schedule=cosine"])
    with pytest.raises(ConfigError, match="cannot change train.steps when resuming a run with train.lr_sch"):
        train(longer, tmp_path / "cosine", resume=True, progress=False, overrides_on_resume=longer)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(build_config("demo", TINY), run, progress=False)


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    run = tmp_path / "run"
    train(build_config("demo", TINY + ["train.steps=2"]), run, progress=False)
    ck = resolve(run)
    weights = ck / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt or truncated"):
        load_model(run)
    weights.write_bytes(data)
    # torch.compile prefixes are stripped on load
    t = load_file(str(weights))
    save_file({f"_orig_mod.{k}": v for k, v in t.items()}, str(weights))
    load_model(run)
    # a weight of the wrong shape is named
    t["lm_head.weight"] = torch.zeros(3, 3)
    save_file(t, str(weights))
    with pytest.raises(CheckpointError, match=r"lm_head.weight has shape \(3, 3\)"):
        load_model(run)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nowhere")


TIMING = ("time", "train/steps_per_s", "train/elapsed_s")  # wall-clock readings, different in every run


def test_kill_and_resume_continues_exactly(tmp_path):
    """A hard kill (SIGKILL) loses at most the steps since the last checkpoint; resuming reproduces them, and
    metrics.jsonl equals an unbroken run's record for record, also when the checkpoint (every 3 steps) falls
    inside a log window (every 7): the checkpoint carries the window's partial sums."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = [sys.executable, "-m", "recursia", "train", "--quiet"] + TINY + ["train.log_every=7"]
    run = tmp_path / "killed"
    proc = subprocess.Popen(args + ["--out", str(run), "train.steps=100000", "train.checkpoint_every=3"], env=env)
    latest = run / "checkpoints" / "latest"
    deadline = time.time() + 240
    try:
        while not latest.exists():
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = int(resolve(run).name.split("-")[1])  # the newest complete checkpoint when the kill came
    total = saved + 6
    subprocess.run([sys.executable, "-m", "recursia", "train", "--quiet", "--resume", str(run),
                    f"train.steps={total}"], check=True, env=env, timeout=300)
    straight = tmp_path / "straight"
    subprocess.run(args + ["--out", str(straight), f"train.steps={total}"], check=True, env=env, timeout=300)
    a, b = read_metrics(straight), read_metrics(run)
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in a] == \
        [{k: v for k, v in r.items() if k not in TIMING} for r in b]
    steps = [r["step"] for r in b if "train/loss" in r]
    assert steps == sorted(set(list(range(7, total + 1, 7)) + [total]))  # replaced after the kill, not doubled
    assert json.loads((run / "eval.json").read_text())["step"] == total


def test_init_from_starts_from_a_checkpoints_weights_and_refuses_another_shape(tmp_path):
    from recursia.dataset import Dataset
    from recursia.runtime import setup
    from recursia.train import Trainer

    base = tmp_path / "base"
    train(build_config("demo", TINY + ["train.steps=12"]), base, progress=False)
    saved = load_file(str(resolve(base) / "model.safetensors"))

    # The run starts from those weights (N_sup may differ: it only runs the network), not from a random init.
    cfg = build_config("demo", TINY + ["train.steps=2", "model.N_sup=4", f"train.init_from={base}"])
    data = Dataset(base / "data")
    trainer = Trainer(cfg, tmp_path / "unused", setup("cpu"), data)
    assert not all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in saved.items())
    trainer.init_weights(cfg.train.init_from)
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in saved.items())
    assert all(torch.equal(v, trainer.ema.shadow[k]) for k, v in saved.items() if k in trainer.ema.shadow)

    tuned, fresh = tmp_path / "tuned", tmp_path / "fresh"
    train(build_config("demo", TINY + ["train.steps=2", f"data.dir={base / 'data'}", f"train.init_from={base}"]),
          tuned, progress=False)
    train(build_config("demo", TINY + ["train.steps=2", f"data.dir={base / 'data'}"]), fresh, progress=False)
    assert losses(tuned)[1] < losses(fresh)[1] - 0.05  # the first step already sees trained weights

    wider = build_config("demo", TINY + ["train.steps=2", "model.hidden_size=32", f"train.init_from={base}"])
    with pytest.raises(ConfigError, match=r"model.hidden_size=64"):
        train(wider, tmp_path / "wider", progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        train(build_config("demo", TINY + ["train.steps=2", f"train.init_from={tmp_path / 'nothing'}"]),
              tmp_path / "missing", progress=False)
