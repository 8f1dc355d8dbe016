"""Checkpoints: safetensors weights, a JSON description, and everything needed to resume exactly.

    RUN_DIR/checkpoints/step-000500/
        model.safetensors        weights to use (the EMA weights when EMA is on), no torch.compile prefixes
        meta.json                config, step, task spec, data fingerprint, versions
        train_state.safetensors  raw weights, optimizer moments, EMA, carry of every rank, RNG states
        train_state.json         data-sampler position of every rank, elapsed time
    RUN_DIR/checkpoints/latest   name of the newest complete checkpoint

A checkpoint is written into a temporary folder and renamed into place, and `latest` is replaced atomically,
so a run killed at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .config import ModelConfig, RunConfig, config_from_dict
from .errors import CheckpointError, RecursiaError, RecursiaWarning
from .model import RecursiveModel, TaskSpec, build_model

FORMAT_VERSION = 1
COMPILE_PREFIXES = ("_orig_mod.", "module.")


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the key prefixes that torch.compile (`_orig_mod.`) and DDP (`module.`) add."""
    out = {}
    for k, v in state.items():
        changed = True
        while changed:
            changed = False
            for p in COMPILE_PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p):], True
            k = k.replace("._orig_mod.", ".")
        out[k] = v
    return out


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() if v.device.type != "cpu" else v.detach().contiguous().clone()
            for k, v in tensors.items()}


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing; the checkpoint is incomplete")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint file {path} is corrupt or truncated ({e}); delete this checkpoint "
                              "folder and use an earlier one") from e


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing; the checkpoint is incomplete")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint file {path} is not valid JSON ({e}); the checkpoint is corrupt") from e


def write_checkpoint(run_dir: Path, step: int, model_weights: dict[str, torch.Tensor], meta: dict[str, Any],
                     train_tensors: dict[str, torch.Tensor], train_json: dict[str, Any], keep: int = 2) -> Path:
    """Write checkpoint `step` atomically and prune older ones beyond `keep`."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:07d}"
    final, tmp = root / name, root / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_contiguous(clean_state_dict(model_weights)), str(tmp / "model.safetensors"))
    save_file(_contiguous(train_tensors), str(tmp / "train_state.safetensors"))
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    (tmp / "train_state.json").write_text(json.dumps(train_json, indent=2) + "\n")
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    latest_tmp = root / "latest.tmp"
    latest_tmp.write_text(name + "\n")
    os.replace(latest_tmp, root / "latest")
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")
                  and not p.name.endswith(".tmp"))
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


PRETRAINED_DIR = Path(__file__).parent / "pretrained"  # bundled models: pretrained/<name>/{model.safetensors,meta.json}
PRETRAINED_PLANNED = ("sudoku-extreme", "maze-hard")


def pretrained_names() -> list[str]:
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "model.safetensors").is_file()) \
        if PRETRAINED_DIR.is_dir() else []


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder of a run directory, or None when it has none yet. A folder is
    renamed into place only when complete, so the newest one counts even if a kill came before `latest`."""
    root = Path(run_dir) / "checkpoints"
    latest = root / "latest"
    if latest.is_file():
        ck = root / latest.read_text().strip()
        if ck.is_dir():
            return ck
    found = sorted(c for c in root.iterdir() if c.is_dir() and c.name.startswith("step-")
                   and not c.name.endswith(".tmp")) if root.is_dir() else []
    return found[-1] if found else None


def resolve(path: str | Path) -> Path:
    """A bundled model's name, a run directory, a checkpoint folder, or a model.safetensors file -> the
    checkpoint folder. A path that exists wins over a bundled name."""
    p = Path(path)
    name = str(path)
    if not p.exists() and len(p.parts) == 1:
        if name in pretrained_names():
            return PRETRAINED_DIR / name
        if name in PRETRAINED_PLANNED:
            raise CheckpointError(f"{name!r} names a pretrained model that this release does not ship yet "
                                  f"(bundled: {', '.join(pretrained_names()) or 'none'}); train one with "
                                  "`recursia train` and pass its run directory instead")
    if p.is_file() and p.suffix == ".safetensors":
        return p.parent
    if p.is_file():
        other = (" (a PyTorch pickle from other code: Recursia loads only its own safetensors checkpoints)"
                 if p.suffix in (".pt", ".pth", ".ckpt", ".bin") else "")
        raise CheckpointError(f"{p} is not a Recursia checkpoint{other}; pass a run directory, a checkpoint "
                              "folder or its model.safetensors")
    if (p / "model.safetensors").is_file() or (p / "meta.json").is_file():
        return p
    latest = p / "checkpoints" / "latest"
    if latest.is_file():
        ck = p / "checkpoints" / latest.read_text().strip()
        if not ck.is_dir():
            raise CheckpointError(f"{latest} points to {ck.name}, which does not exist; "
                                  "point at a checkpoint folder under checkpoints/ directly")
        return ck
    if (p / "checkpoints").is_dir():
        found = sorted(c for c in (p / "checkpoints").iterdir() if c.is_dir() and not c.name.endswith(".tmp"))
        if found:
            return found[-1]
    if not p.exists():
        raise CheckpointError(f"{p} does not exist (expected a run directory, a checkpoint folder or a "
                              "model.safetensors file)")
    raise CheckpointError(f"{p} holds no checkpoint (no model.safetensors, no checkpoints/latest); "
                          "was the run stopped before its first checkpoint?")


def read_meta(ckpt: Path) -> dict[str, Any]:
    meta = _read_json(ckpt / "meta.json")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{ckpt / 'meta.json'} has checkpoint format {meta.get('format_version')}; "
                              f"this Recursia reads format {FORMAT_VERSION}")
    return meta


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load with exact key and shape checks; the error names the first mismatches and the file."""
    weights = clean_state_dict(weights)
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{source} does not match the model: missing {missing[:4]}, unexpected "
                              f"{unexpected[:4]} (was it saved by a different architecture or config?)")
    for k, v in weights.items():
        if own[k].shape != v.shape:
            raise CheckpointError(f"{source}: {k} has shape {tuple(v.shape)} but the model expects "
                                  f"{tuple(own[k].shape)} (config mismatch, e.g. hidden_size or data)")
    bad = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        warnings.warn(f"{source}: {len(bad)} weight tensor(s) hold NaN or infinite values ({', '.join(bad[:3])}); "
                      "the model's answers will be meaningless (did the run diverge? use an earlier checkpoint)",
                      RecursiaWarning, stacklevel=3)
    model.load_state_dict(weights)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[RecursiveModel, RunConfig, dict]:
    """Build the model a checkpoint describes and load its (EMA) weights. Returns (model, config, meta)."""
    ckpt = resolve(path)
    meta = read_meta(ckpt)
    try:
        cfg = config_from_dict(meta["config"])
        spec = TaskSpec(**meta["task_spec"])
    except (KeyError, TypeError, RecursiaError) as e:
        raise CheckpointError(f"{ckpt / 'meta.json'} does not describe a valid model: {e}") from e
    model = build_model(cfg.model, spec)
    load_weights(model, _read_safetensors(ckpt / "model.safetensors"), ckpt / "model.safetensors")
    model.eval()
    return model.to(device), cfg, meta


def read_model_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelConfig, Path]:
    """A checkpoint's model weights and the model config that made them, without building the model
    (fine-tuning loads them into a run's own model)."""
    ckpt = resolve(path)
    meta = read_meta(ckpt)
    try:
        cfg = config_from_dict(meta["config"])
    except (KeyError, TypeError, RecursiaError) as e:
        raise CheckpointError(f"{ckpt / 'meta.json'} does not describe a valid model: {e}") from e
    return _read_safetensors(ckpt / "model.safetensors"), cfg.model, ckpt / "model.safetensors"


def make_meta(cfg: RunConfig, spec: TaskSpec, step: int, fingerprint: str, task: str, ema: bool) -> dict:
    return {
        "format_version": FORMAT_VERSION, "recursia_version": __version__, "torch_version": torch.__version__,
        "step": step, "task": task, "task_spec": {"seq_len": spec.seq_len, "vocab_size": spec.vocab_size,
                                                  "num_puzzle_ids": spec.num_puzzle_ids},
        "data_fingerprint": fingerprint, "weights": "ema" if ema else "raw",
        "config": cfg.to_dict(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def read_train_state(ckpt: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    return _read_safetensors(ckpt / "train_state.safetensors"), _read_json(ckpt / "train_state.json")
