"""Training speed of a preset: untimed warm-up steps (compilation, allocator), then timed optimizer steps.

Reports steps/s, examples/s, the FLOP rate from `flops.count` and its fraction of the device's bf16 peak
(MFU), peak GPU memory (CUDA) and the process's peak resident memory (on a CPU, where activations live), and
the ratio to the reference implementation's speed on one H100 (semantics.md).
Without a dataset it trains on generated puzzles of the preset's task: speed depends on the shapes and on how
often examples halt, not on which puzzles they are.
"""

from __future__ import annotations

import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from .progress import bar as tqdm  # plain lines when stderr is not a terminal

from . import flops
from .config import build_config
from .dataset import Dataset
from .matmul import cpu_matmul
from .runtime import set_threads, setup, teardown
from .train import Trainer

# Reference implementation on one H100 (torch.compile, bf16), from semantics.md: (steps/s, global batch).
REFERENCE = {"sudoku-mlp": (6.6, 768), "sudoku-att": (9.2, 768), "sudoku-hrm": (11.4, 768), "maze-att": (6.7, 128)}


def _generated(preset: str, out: Path) -> Dataset:
    """A small generated training set of the preset's task: mazes for maze presets, else Sudoku puzzles."""
    from .config import GenerateConfig
    from .errors import ConfigError
    from .tasks import generate_dataset

    if preset.startswith("arc"):
        raise ConfigError(f"{preset} has no puzzle generator: pass --data (a dataset from `recursia data build arc`)")
    task = "maze" if preset.startswith("maze") else "sudoku"
    gen = GenerateConfig(task=task, train_count=256 if task == "maze" else 1024, test_count=0, blanks=45,
                         min_rounds=1, seed=0)
    generate_dataset(gen, out)
    return Dataset(out)


def run(preset: str = "sudoku-mlp", steps: int = 50, warmup: int = 10, data: str | None = None,
        overrides: list[str] | None = None, peak_tflops: float | None = None,
        progress: bool = True) -> dict[str, Any]:
    overrides = list(overrides or [])
    if data:
        overrides.append(f"data.dir={data}")
    cfg = build_config(preset, overrides + [f"train.steps={warmup + steps}"])
    rt = setup(cfg.train.device)
    set_threads(cfg.train.threads)
    tmp = Path(tempfile.mkdtemp(prefix="recursia-bench-"))
    try:
        dataset = Dataset(cfg.data.dir) if cfg.data.dir is not None else _generated(preset, tmp / "data")
        trainer = Trainer(cfg, tmp / "run", rt, dataset)
        dtype = str(trainer.model.forward_dtype).removeprefix("torch.")  # what `auto` resolved to here
        cuda = rt.device.type == "cuda"
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        for _ in tqdm(range(warmup), desc="warm-up", disable=not progress, leave=False):
            trainer.train_step()
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in tqdm(range(steps), desc="timed", disable=not progress, leave=False):
            trainer.train_step()
        sync()
        seconds = time.perf_counter() - start
    finally:
        teardown()
        shutil.rmtree(tmp, ignore_errors=True)
    batch = cfg.train.global_batch_size
    m = dataset.manifest
    f = flops.count(cfg.model, m["seq_len"], m["vocab_size"])
    sps = steps / seconds
    flop_rate = sps * f.train_step(batch)
    name = torch.cuda.get_device_name(rt.device) if cuda else (platform.processor() or platform.machine())
    peak = peak_tflops if peak_tflops is not None else flops.peak_tflops(name) if cuda else None
    ref = REFERENCE.get(preset)
    ref_examples = ref[0] * ref[1] if ref else None
    return {
        "preset": preset, "device": str(rt.device), "device_name": name, "torch": torch.__version__,
        "compile": cfg.train.compile, "forward_dtype": cfg.model.forward_dtype, "dtype": dtype, "overrides": overrides,
        "cpu_matmul": cpu_matmul() if rt.device.type == "cpu" else None,  # CUDA and MPS use F.linear
        "global_batch_size": batch, "warmup_steps": warmup, "steps": steps, "seconds": round(seconds, 3),
        "steps_per_s": round(sps, 3), "examples_per_s": round(sps * batch, 1),
        "train_gflop_per_step": round(f.train_step(batch) / 1e9, 1), "achieved_tflops": round(flop_rate / 1e12, 3),
        "peak_tflops": peak, "mfu": None if peak is None else round(flops.mfu(flop_rate, peak), 4),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(rt.device) / 2**30, 2) if cuda else None,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),  # whole process
        "reference": None if ref is None else {"steps_per_s": ref[0], "global_batch_size": ref[1],
                                               "examples_per_s": ref_examples},
        "examples_per_s_vs_reference": round(sps * batch / ref_examples, 3) if ref_examples else None,
    }


def summary(r: dict[str, Any]) -> str:
    mfu = "n/a (unknown peak)" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
    products = f", {r['cpu_matmul']} products" if r.get("cpu_matmul") else ""
    lines = [f"{r['preset']} on {r['device_name']} ({r['device']}, {r['dtype']}{products}), batch "
             f"{r['global_batch_size']}: "
             f"{r['steps_per_s']:.3f} steps/s, {r['examples_per_s']:.1f} examples/s",
             f"  {r['train_gflop_per_step']:.1f} GFLOP per step, {r['achieved_tflops']:.3f} TFLOP/s, MFU {mfu}"]
    if r["peak_memory_gib"] is not None:
        lines.append(f"  peak GPU memory {r['peak_memory_gib']:.2f} GiB")
    lines.append(f"  peak process memory (RSS) {r['peak_rss_gib']:.2f} GiB")
    if r["reference"]:
        ref = r["reference"]
        lines.append(f"  reference (one H100): {ref['steps_per_s']} steps/s at batch {ref['global_batch_size']} = "
                     f"{ref['examples_per_s']:.0f} examples/s; ratio {r['examples_per_s_vs_reference']:.3f}")
    return "\n".join(lines)
