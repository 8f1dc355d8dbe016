"""Solving puzzles with a trained model: parse and check the input, run the recursion, check the answer.

Each puzzle is refined until the `HaltRule` stops it (see `halting.py`): the default of `recursia solve` is
`default_halt(task)`; `HaltRule()` ("all") runs all N_sup steps, the papers' evaluation protocol. The result says
where the model's own halting rule first fired, and the task's own checker, never the model, says whether the
answer is a valid solution of the given puzzle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_model
from .errors import DataError, PuzzleError
from .halting import HaltRule, run
from .model import RecursiveModel, resolve_dtype
from .runtime import pick_device
from .tasks import Task, get_task
from .verify import Verifier

STABLE = HaltRule(stable=2)  # measured best trade-off without an answer check on the demo model: docs/models.md
VERIFIED = HaltRule(verified=True)


def default_halt(task: Task) -> HaltRule:
    """`verified` for a task that can check its answers (Sudoku, Maze, DeepCoder): stop at the first step
    whose answer passes; it kept the all-steps accuracy in fewer than half the steps (docs/models.md).
    Otherwise `stable=2`, the best rule without a check."""
    return VERIFIED if task.verify is not None else STABLE


@dataclass
class SolveResult:
    question: np.ndarray
    answer: np.ndarray
    valid: bool
    problems: list[str]
    steps: int  # supervision steps run for this puzzle; the answer is the last one's
    halt_step: int | None  # first step at which the learned halting rule fired (None: it never did / fixed)
    halt_confidence: float | None  # sigmoid(q_halt) at `steps`
    trajectory: list[np.ndarray] = field(default_factory=list)  # decoded answer after each of the `steps`
    confidence: list[np.ndarray] = field(default_factory=list)  # per-cell probability of that answer, per step
    halt_confidences: list[float] = field(default_factory=list)  # sigmoid(q_halt) after each step
    tried: int | None = None  # answers checked by the task's verify over all steps (None: no verifier ran)

    def to_json(self) -> dict[str, Any]:
        return {"answer": "".join(str(int(v)) for v in self.answer.ravel()), "valid": self.valid,
                "problems": self.problems, "steps": self.steps, "halt_step": self.halt_step,
                "halt_confidence": self.halt_confidence, "tried": self.tried}


class Solver:
    def __init__(self, model: RecursiveModel, task: Task):
        self.model, self.task = model, task

    @staticmethod
    def load(checkpoint: str | Path, device: str = "auto") -> "Solver":
        dev = pick_device(device)
        model, cfg, meta = load_model(checkpoint, dev)
        model.set_forward_dtype(resolve_dtype(cfg.model.forward_dtype, dev))
        return Solver(model, get_task(meta["task"]))

    def _checked(self, make, value, where: str) -> np.ndarray:
        """`make(value)` as a question grid, with the task's own checks; every failure names `where`."""
        try:
            grid = make(value)
        except PuzzleError as e:
            raise PuzzleError(f"{where}: {e}") from e
        problems = self.task.problems(grid)
        if problems:
            raise PuzzleError(f"{where}: {'; '.join(problems)}")
        return grid

    def parse(self, text: str, where: str = "puzzle") -> np.ndarray:
        """Parse user text into a question grid; malformed or contradictory input raises PuzzleError."""
        return self._checked(self.task.parse, text, where)

    def read_file(self, path: str | Path) -> list[np.ndarray]:
        """The puzzles of a file (format per task); each is checked like a puzzle given as text."""
        p = Path(path)
        if not p.is_file():
            raise DataError(f"puzzle file {p} is a directory; pass a file" if p.is_dir()
                            else f"puzzle file {p} does not exist")
        grids = self.task.read_file(p)
        for i, grid in enumerate(grids):
            problems = self.task.problems(grid)
            if problems:
                raise PuzzleError(f"{p}, puzzle {i + 1}: {'; '.join(problems)}")
        return grids

    def check_grid(self, grid: np.ndarray, where: str = "puzzle") -> np.ndarray:
        """A question given as an array, checked like text: wrong size, values or clues raise PuzzleError."""
        return self._checked(self.task.as_question or np.asarray, grid, where)

    @torch.no_grad()
    def solve_batch(self, grids: list[np.ndarray | str], halt: HaltRule | None = None,
                    candidates: int = 1) -> list[SolveResult]:
        """Solve many puzzles (question grids, or text that is parsed and checked) at once; each stops by
        `halt` (default `default_halt(task)`), and puzzles that have stopped leave the batch, so the rest run faster.
        A `verified` rule or `candidates` > 1 runs the task's answer check every step (`recursia.verify`):
        up to `candidates` answers per step, the argmax first, keeping the first that verifies."""
        halt = default_halt(self.task) if halt is None else halt
        verifier = Verifier.for_task(self.task, candidates) if halt.verified or candidates > 1 else None
        grids = [self.parse(g, f"puzzle {i + 1}") if isinstance(g, str) else self.check_grid(g, f"puzzle {i + 1}")
                 for i, g in enumerate(grids)]
        if not grids:
            raise PuzzleError("no puzzle given")
        device = self.model.embed_tokens.device
        inputs = torch.from_numpy(self.task.encode(np.stack(grids))).to(device)
        pids = torch.zeros(inputs.shape[0], dtype=torch.int32, device=device)
        rec, stopped = run(self.model, inputs, pids, halt, verifier=verifier)
        tried = torch.stack(rec.tried).sum(0).cpu().numpy() if rec.tried else None
        preds = torch.stack(rec.predictions).cpu().numpy()  # (S, B, L)
        outside = np.ones(preds.shape[-1], dtype=bool)
        outside[self.task.answer_cells] = False  # DeepCoder's spec cells: the question's, not the model's guess
        preds = np.where(outside, inputs.cpu().numpy()[None], preds)
        confs = torch.stack(rec.confidence).cpu().numpy()
        q = torch.sigmoid(torch.stack(rec.q_halt).float()).cpu().numpy() if rec.q_halt[0] is not None else None
        fired = torch.stack(rec.halt).cpu().numpy() if rec.halt[0] is not None else None
        out = []
        for b, grid in enumerate(grids):
            step = int(stopped[b])
            first = np.nonzero(fired[: step + 1, b])[0] if fired is not None else []
            answer = self.task.decode(preds[step, b][None])[0]
            problems = self.task.check(grid, answer)
            shape = answer.shape
            out.append(SolveResult(
                grid, answer, not problems, problems, step + 1, int(first[0]) + 1 if len(first) else None,
                float(q[step, b]) if q is not None else None,
                [self.task.decode(preds[s, b][None])[0] for s in range(step + 1)],
                [confs[s, b].reshape(shape) if confs[s, b].size == answer.size else confs[s, b]
                 for s in range(step + 1)],
                [float(q[s, b]) for s in range(step + 1)] if q is not None else [],
                int(tried[b]) if tried is not None else None))
        return out

    def solve(self, puzzle: str | np.ndarray, halt: HaltRule | None = None, candidates: int = 1) -> SolveResult:
        """One puzzle, as text (parsed and checked) or as a question grid."""
        return self.solve_batch([puzzle], halt, candidates)[0]
