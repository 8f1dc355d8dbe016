"""Answers checked by the task itself: verified halting and candidates beyond the argmax.

A task with `Task.verify` can tell a solution from a wrong answer without the label (DeepCoder runs the
program on the examples, Sudoku checks the rules and the clues, Maze checks for a shortest S-G path). That
gives two things a label-free model cannot have otherwise:

- `--halt verified`: stop refining a puzzle at the first supervision step whose answer verifies;
- candidates: when the argmax answer fails, try the next most probable answers of the same step, best-first
  over the per-cell distributions (a k-best search over `Task.answer_cells`), and keep the first that verifies.
  `candidates = B` checks at most B answers per puzzle and step, the argmax included (B = 1: the argmax only).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import ConfigError

VerifyFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def k_best(logp: torch.Tensor, k: int) -> list[list[int]]:
    """The `k` most probable joint choices of independent cells, best first, as rank vectors: entry c is the
    rank of cell c's token (0 = its argmax). `logp` (C, V) log-probabilities, each row sorted descending.

    Best-first search with a heap: the children of a rank vector raise one cell at or after the last cell it
    raised, so every vector is generated once (its parent lowers its last nonzero cell) and a child never
    beats its parent, which makes the pop order the probability order."""
    c, v = logp.shape
    drop = (logp[:, :1] - logp).tolist()  # cost of choosing rank r in cell i, >= 0
    out: list[list[int]] = []
    heap: list[tuple[float, int, tuple[int, ...], int]] = [(0.0, 0, (0,) * c, 0)]
    order = 1  # tie-breaker: first pushed, first popped
    while heap and len(out) < k:
        cost, _, ranks, pivot = heapq.heappop(heap)
        out.append(list(ranks))
        for i in range(pivot, c):
            r = ranks[i] + 1
            if r < v:
                child = ranks[:i] + (r,) + ranks[i + 1:]
                heapq.heappush(heap, (cost + drop[i][r] - drop[i][r - 1], order, child, i))
                order += 1
    return out


@dataclass(frozen=True)
class Verifier:
    """A task's answer check plus the candidate budget B, applied to one supervision step of a batch."""

    check: VerifyFn
    cells: slice = field(default_factory=lambda: slice(None))  # slices are unhashable: no plain default
    candidates: int = 1

    @staticmethod
    def for_task(task, candidates: int = 1) -> "Verifier":
        if task.verify is None:
            raise ConfigError(f"task {task.name} has no answer check (verify), so it cannot halt on 'verified' "
                              "or try candidates; use --halt stable=2 or all, and --candidates 1")
        if candidates < 1:
            raise ConfigError(f"--candidates {candidates}: give at least 1 (1 = the argmax answer only)")
        return Verifier(task.verify, task.answer_cells, candidates)

    def __call__(self, inputs: torch.Tensor, logits: torch.Tensor,
                 pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(answers, verified (B,) bool, answers checked (B,) int) for one step: the argmax answer `pred`
        where it verifies, else the first verifying candidate, else `pred` unchanged."""
        x = inputs.cpu().numpy()
        p = pred.cpu().numpy()
        ok = np.asarray(self.check(x, p), dtype=bool).copy()
        tried = np.ones(len(p), dtype=np.int64)
        if self.candidates > 1 and not ok.all():
            p = p.copy()
            cells = np.arange(p.shape[1])[self.cells]
            k = min(self.candidates, logits.shape[-1])
            for b in np.nonzero(~ok)[0]:
                top_lp, top_tok = torch.log_softmax(logits[b, cells].float(), -1).topk(k, -1)
                ranks = k_best(top_lp.cpu(), self.candidates)[1:]  # the argmax is checked already
                if not ranks:
                    continue
                tok = top_tok.cpu().numpy()
                rows = np.repeat(p[b][None], len(ranks), 0)
                for j, r in enumerate(ranks):
                    changed = np.nonzero(r)[0]
                    rows[j, cells[changed]] = tok[changed, np.asarray(r)[changed]]
                good = np.nonzero(np.asarray(self.check(np.repeat(x[b][None], len(rows), 0), rows)))[0]
                if len(good):
                    p[b], ok[b], tried[b] = rows[good[0]], True, good[0] + 2
                else:
                    tried[b] = len(rows) + 1
        dev = pred.device
        return (torch.from_numpy(p).to(dev).to(pred.dtype), torch.from_numpy(ok).to(dev),
                torch.from_numpy(tried).to(dev))
