"""Training speed of a preset: optimizer steps per second after warm-up, compared with the reference.

    python benchmarks/train_speed.py --preset sudoku-mlp --data data/sudoku-extreme-1k [--steps 200] [key=value ...]

Without --data it trains on generated puzzles (speed does not depend on which Sudoku puzzles are used, only
on the shapes and on how often examples halt). Prints one JSON line; docs/benchmarks.md records the results.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from recursia.config import build_config  # noqa: E402
from recursia.dataset import Dataset  # noqa: E402
from recursia.runtime import setup  # noqa: E402
from recursia.tasks import generate_dataset  # noqa: E402
from recursia.train import Trainer  # noqa: E402

# Reference implementation, one H100, torch.compile, bf16, global batch 768 (semantics.md).
REFERENCE_STEPS_PER_S = {"sudoku-mlp": 6.6, "sudoku-att": 9.2, "sudoku-hrm": 11.4}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="sudoku-mlp")
    ap.add_argument("--data", default=None, help="dataset directory (default: generated puzzles)")
    ap.add_argument("--steps", type=int, default=200, help="timed steps")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps first (compilation, allocator)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="recursia-bench-"))
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.dir={args.data}")
    else:
        overrides += ["data.generate.train_count=4000", "data.generate.test_count=0", "data.generate.blanks=45"]
    cfg = build_config(args.preset, overrides + [f"train.steps={args.warmup + args.steps}"])
    rt = setup(cfg.train.device)
    if cfg.data.dir is None:
        generate_dataset(cfg.data.generate, tmp / "data")
        data = Dataset(tmp / "data")
    else:
        data = Dataset(cfg.data.dir)
    trainer = Trainer(cfg, tmp / "run", rt, data)
    sync = torch.cuda.synchronize if rt.device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        trainer.train_step()
    sync()
    if rt.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    sync()
    seconds = time.perf_counter() - start
    sps = args.steps / seconds
    ref = REFERENCE_STEPS_PER_S.get(args.preset)
    result = {
        "preset": args.preset, "device": str(rt.device),
        "device_name": torch.cuda.get_device_name(rt.device) if rt.device.type == "cuda" else platform.processor(),
        "global_batch_size": cfg.train.global_batch_size, "steps": args.steps, "steps_per_s": round(sps, 3),
        "examples_per_s": round(sps * cfg.train.global_batch_size, 1),
        "reference_steps_per_s": ref, "ratio_to_reference": round(sps / ref, 3) if ref else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(rt.device) / 2**30, 2)
        if rt.device.type == "cuda" else None,
        "torch": torch.__version__, "compile": cfg.train.compile, "overrides": args.overrides,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
