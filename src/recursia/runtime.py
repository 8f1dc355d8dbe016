"""Where the work runs: device choice (CUDA, Apple MPS, CPU) and torch.distributed set-up under torchrun."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import ConfigError


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto` takes CUDA if present, then Apple's MPS, then the CPU. An explicit device that is not there is an
    error rather than a silent fallback."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"train.device={name!r} is not a device name (auto, cpu, cuda, cuda:N, mps)") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but this machine has no usable CUDA GPU; use train.device=auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device=mps but Apple's Metal backend is not available; use train.device=auto")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def setup(device_name: str = "auto") -> Runtime:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return Runtime(device, rank, world, local_rank)


def set_threads(threads: int) -> None:
    """train.threads (also used by `eval`, `solve` and `viz` of a run): 0 leaves torch's own choice. Torch's
    threads wait for each other at every operation, so one busy core elsewhere stalls all of them; for these
    small networks one thread is faster as soon as the machine is shared (docs/benchmarks.md, threads)."""
    if threads:
        torch.set_num_threads(threads)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Sum a dict of scalar tensors over ranks (one collective); identity in a single process."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].float() for k in keys])
    dist.all_reduce(stacked)
    return dict(zip(keys, stacked.unbind()))
