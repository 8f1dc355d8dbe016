"""Solving puzzles with a trained model: parse and check the input, run the recursion, check the answer.

By default every puzzle runs all N_sup supervision steps (the most accurate reading, and the papers'
evaluation protocol); `early_halt=True` reads each answer at the step where the model's halting rule fires.
Either way the result says where halting would fire, and the task's own checker, never the model, says whether
the answer is a valid solution of the given puzzle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_model
from .errors import DataError, PuzzleError
from .model import RecursiveModel, resolve_dtype
from .runtime import pick_device
from .supervision import halting_step, rollout
from .tasks import Task, get_task


@dataclass
class SolveResult:
    question: np.ndarray
    answer: np.ndarray
    valid: bool
    problems: list[str]
    steps: int  # supervision steps whose answer this is
    halt_step: int | None  # first step at which the learned halting rule fired (None: it never did / fixed)
    halt_confidence: float | None  # sigmoid(q_halt) at `steps`
    trajectory: list[np.ndarray] = field(default_factory=list)  # decoded answer after each of the `steps`

    def to_json(self) -> dict[str, Any]:
        return {"answer": "".join(str(int(v)) for v in self.answer.ravel()), "valid": self.valid,
                "problems": self.problems, "steps": self.steps, "halt_step": self.halt_step,
                "halt_confidence": self.halt_confidence}


class Solver:
    def __init__(self, model: RecursiveModel, task: Task):
        self.model, self.task = model, task

    @staticmethod
    def load(checkpoint: str | Path, device: str = "auto") -> "Solver":
        dev = pick_device(device)
        model, cfg, meta = load_model(checkpoint, dev)
        model.set_forward_dtype(resolve_dtype(cfg.model.forward_dtype, dev))
        return Solver(model, get_task(meta["task"]))

    def parse(self, text: str, where: str = "puzzle") -> np.ndarray:
        """Parse user text into a question grid; malformed or contradictory input raises PuzzleError."""
        try:
            grid = self.task.parse(text)
        except PuzzleError as e:
            raise PuzzleError(f"{where}: {e}") from e
        problems = self.task.problems(grid)
        if problems:
            raise PuzzleError(f"{where}: {'; '.join(problems)}")
        return grid

    def read_file(self, path: str | Path) -> list[np.ndarray]:
        """The puzzles of a file (format per task); each is checked like a puzzle given as text."""
        p = Path(path)
        if not p.is_file():
            raise DataError(f"puzzle file {p} does not exist")
        grids = self.task.read_file(p)
        for i, grid in enumerate(grids):
            problems = self.task.problems(grid)
            if problems:
                raise PuzzleError(f"{p}, puzzle {i + 1}: {'; '.join(problems)}")
        return grids

    @torch.no_grad()
    def solve_batch(self, grids: list[np.ndarray], early_halt: bool = False) -> list[SolveResult]:
        device = self.model.embed_tokens.device
        inputs = torch.from_numpy(self.task.encode(np.stack(grids))).to(device)
        pids = torch.zeros(inputs.shape[0], dtype=torch.int32, device=device)
        rec = rollout(self.model, inputs, pids, until_halt=early_halt)
        last = len(rec.predictions) - 1
        first = halting_step(rec).cpu()
        fired = torch.stack(rec.halt).any(0).cpu() if rec.halt[0] is not None else None
        preds = torch.stack(rec.predictions).cpu().numpy()  # (S, B, L)
        q = torch.stack(rec.q_halt).float().cpu() if rec.q_halt[0] is not None else None
        out = []
        for b, grid in enumerate(grids):
            halt = int(first[b]) if fired is not None and bool(fired[b]) else None
            step = halt if early_halt and halt is not None else last
            answer = self.task.decode(preds[step, b][None])[0]
            problems = self.task.check(grid, answer)
            conf = float(torch.sigmoid(q[step, b])) if q is not None else None
            trajectory = [self.task.decode(preds[s, b][None])[0] for s in range(step + 1)]
            out.append(SolveResult(grid, answer, not problems, problems, step + 1,
                                   None if halt is None else halt + 1, conf, trajectory))
        return out
