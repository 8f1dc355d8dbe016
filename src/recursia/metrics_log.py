"""Where metrics go: a JSON-lines file always, TensorBoard when installed, Weights & Biases when asked."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .config import LogConfig
from .errors import DataError


class MetricsLog:
    """One record per call: `{"step": ..., "time": ..., **values}` appended to RUN_DIR/metrics.jsonl."""

    def __init__(self, run_dir: Path, cfg: LogConfig, run_config: dict[str, Any] | None = None,
                 enabled: bool = True):
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.tb = None
        self.wandb = None
        if not enabled:
            return
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional: `pip install recursia[tensorboard]`
                SummaryWriter = None
            if SummaryWriter is not None:
                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        if cfg.wandb:
            import wandb  # an explicit opt-in: a missing package should fail loudly

            self.wandb = wandb.init(project=cfg.wandb_project, dir=str(run_dir), config=run_config)

    def write(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **values}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        scalars = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def _records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(line, record) pairs of metrics.jsonl. A final line that does not parse is a write torn by a kill and is
    left out; an unreadable line before the last one is real damage and raises DataError naming the line."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    out = []
    for i, line in enumerate(lines):
        try:
            out.append((line, json.loads(line)))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                break  # torn by a kill mid-write: the step is written again on resume
            raise DataError(f"{path}, line {i + 1}: not a JSON record ({e}); delete that line or the file "
                            "(it only holds the logged metrics)") from e
    return out


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [record for _, record in _records(path)]


def truncate_after(run_dir: Path, step: int) -> None:
    """On resume: drop records written after the checkpoint's step (the resumed run writes them again), and a
    torn final line."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return
    kept = [line for line, record in _records(path) if record["step"] <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(path)
