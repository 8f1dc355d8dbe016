"""Shared test helpers: tiny configs, the real-data location, and a fixed seed per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from recursia.config import ModelConfig

REPO = Path(__file__).resolve().parents[1]
# One torch thread, as `recursia train` uses by default: on a shared 2-core machine two threads stall whenever
# anything else runs (docs/benchmarks.md, threads), which made the suite several times slower.
torch.set_num_threads(1)


def data_root() -> Path | None:
    """The shared public data (RECURSIA_DATA_DIR, else ../shared/data beside the repository), or None."""
    env = os.environ.get("RECURSIA_DATA_DIR")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate
    return None


def need_data(*parts: str) -> Path:
    root = data_root()
    path = root.joinpath(*parts) if root else None
    if path is None or not path.exists():
        pytest.skip(f"needs the public data ({'/'.join(parts)}); set RECURSIA_DATA_DIR or place ../shared/data")
    return path


def tiny_model_config(**overrides) -> ModelConfig:
    base = dict(hidden_size=32, num_heads=2, expansion=2.0, layers=2, T=2, n=2, N_sup=4, puzzle_emb_len=2,
                puzzle_emb_dim=32, halting="halt")
    base.update(overrides)
    return ModelConfig(**base)


def pytest_collection_modifyitems(items) -> None:
    """The tests marked slow first, the demo's training at their head: pytest-xdist hands tests to its workers
    in this order, so the longest ones start at once and run beside the rest."""
    def key(item):
        return (item.get_closest_marker("slow") is None, "demo_preset" not in item.name)
    items.sort(key=key)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def processes_with(marker: str) -> list[int]:
    """Pids whose command line holds `marker` (to find processes a sandboxed program left behind)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue  # the process ended while we looked
    return found
