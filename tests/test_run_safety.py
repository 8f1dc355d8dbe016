"""Runs that cannot corrupt each other or train on changed data: the run-directory lock, data verification,
stopping on a non-finite loss, and a metrics log that survives a torn last line (issue 13, items 1-5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from recursia import dataset as dataset_mod
from recursia.checkpoint import load_model, resolve
from recursia.config import build_config
from recursia.dataset import Dataset
from recursia.errors import CheckpointError, DataError, RecursiaWarning
from recursia.metrics_log import read_metrics, truncate_after
from recursia.rundir import RunDirBusy, RunLock
from recursia.tasks.sudoku_data import generate_sudoku_dataset
from recursia.train import Trainer, TrainingDiverged, train

from conftest import REPO
from test_checkpoint import TINY

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def test_a_second_writer_is_refused_before_it_touches_the_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("sentinel\n")
    with RunLock(run):
        with pytest.raises(RunDirBusy, match=rf"in use by another training run \(pid {os.getpid()}\)"):
            train(build_config("demo", TINY + ["train.steps=2"]), run, progress=False)
        # the command line says the same in one line, exit status 2
        proc = subprocess.run([sys.executable, "-m", "recursia", "train", "--quiet", "--out", str(run), *TINY],
                              capture_output=True, text=True, env=ENV, timeout=120)
        assert proc.returncode == 2 and f"(pid {os.getpid()})" in proc.stderr and "Traceback" not in proc.stderr
    assert (run / "config.yaml").read_text() == "sentinel\n"  # the loser changed nothing
    assert not (run / "data").exists() and not (run / "metrics.jsonl").exists()


def test_a_lock_left_by_a_killed_run_is_not_held(tmp_path):
    run = tmp_path / "run"
    code = ("import os, sys; from recursia.rundir import RunLock; RunLock(sys.argv[1]).acquire(); "
            "os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code, str(run)], env=ENV, timeout=60)
    assert proc.returncode == -9
    assert (run / ".lock").read_text().strip().isdigit()  # the dead holder's pid is still in the file
    train(build_config("demo", TINY + ["train.steps=2"]), run, progress=False)
    assert (run / "checkpoints" / "latest").is_file()
    assert (run / ".lock").read_text() == ""  # released at the end
    with RunLock(run):  # and free again
        pass


def test_an_array_edited_in_place_is_caught(tmp_path, monkeypatch):
    data = tmp_path / "data"
    generate_sudoku_dataset(data, train_count=64, test_count=16, blanks=10)
    calls = []
    real = dataset_mod._sha256
    monkeypatch.setattr(dataset_mod, "_sha256", lambda p: calls.append(p) or real(p))
    Dataset(data).verify()
    assert calls == []  # the build cached its own hashes
    run = tmp_path / "run"
    cfg = build_config("demo", TINY + [f"data.dir={data}", "data.generate=null", "train.steps=2"])
    train(cfg, run, progress=False)
    arr = np.load(data / "test" / "labels.npy", mmap_mode="r+")  # same size, one label changed
    arr[0, 5] = arr[0, 5] % 9 + 2
    arr.flush()
    del arr
    longer = build_config("demo", TINY + [f"data.dir={data}", "data.generate=null", "train.steps=4"])
    for attempt in (lambda: train(cfg, tmp_path / "new", progress=False),
                    lambda: train(longer, run, resume=True, progress=False, overrides_on_resume=longer)):
        with pytest.raises(DataError, match=r"test/labels.npy does not match its SHA-256"):
            attempt()
    proc = subprocess.run([sys.executable, "-m", "recursia", "eval", str(run), "--quiet"], capture_output=True,
                          text=True, env=ENV, timeout=120)
    assert proc.returncode == 2 and "test/labels.npy does not match" in proc.stderr
    calls.clear()
    with pytest.raises(DataError):
        Dataset(data).verify()
    assert [p.name for p in calls] == ["labels.npy"]  # only the changed file is hashed again


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_step = Trainer.train_step

    def poisoned(self):
        if self.step == 3:  # after step 3, a weight becomes NaN: step 4's loss is NaN
            with torch.no_grad():
                self.model.lm_head.weight[0, 0] = float("nan")
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    run = tmp_path / "run"
    cfg = build_config("demo", TINY + ["train.steps=8", "train.checkpoint_every=2", "train.log_every=5"])
    with pytest.raises(TrainingDiverged, match=r"not a finite number at step 4.*step-0000002, is kept"):
        train(cfg, run, progress=False)
    assert resolve(run).name == "step-0000002"
    weights = load_file(str(resolve(run) / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())
    # loading weights that hold NaN warns
    weights["lm_head.weight"][0, 0] = float("nan")
    save_file(weights, str(resolve(run) / "model.safetensors"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model(run)
    assert [str(w.message) for w in caught if issubclass(w.category, RecursiaWarning)
            and "NaN or infinite" in str(w.message) and "lm_head.weight" in str(w.message)]


def test_a_torn_last_metrics_line_is_dropped(tmp_path):
    run = tmp_path / "run"
    train(build_config("demo", TINY + ["train.steps=4", "train.checkpoint_every=2"]), run, progress=False)
    path = run / "metrics.jsonl"
    whole = path.read_text()
    path.write_text(whole + '{"step": 5, "time": 17')  # a kill in the middle of a write
    assert read_metrics(run) == [json.loads(x) for x in whole.splitlines()]
    truncate_after(run, 2)
    assert [r["step"] for r in read_metrics(run)] == [1, 2]
    path.write_text('{"step": 1}\n{"ste\n{"step": 2}\n')  # damage before the last line is an error
    with pytest.raises(DataError, match=r"metrics.jsonl, line 2: not a JSON record"):
        read_metrics(run)


def test_resume_before_the_first_checkpoint_says_how_to_restart(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    cfg = build_config("demo", TINY + ["train.steps=2"])
    (run / "config.yaml").write_text(json.dumps(cfg.to_dict()))
    (run / "metrics.jsonl").write_text('{"step": 1, "train/loss": 9.0}\n{"st')
    with pytest.raises(CheckpointError, match=r"no checkpoint to resume from.*--preset .*config.yaml --out"):
        train(cfg, run, resume=True, progress=False)
    train(build_config(str(run / "config.yaml")), run, progress=False)  # the restart it names
    assert [r["step"] for r in read_metrics(run) if "train/loss" in r] == [1, 2]
    assert read_metrics(run)[0]["train/loss"] != 9.0  # the earlier attempt's records are gone
