"""Losses of one supervision step: cross-entropy on the answer cells and the halting losses.

Stablemax (Prieto et al., 2025) replaces exp with s(x) = x + 1 for x >= 0 and 1 / (1 - x) for x < 0, which
avoids the softmax collapse that plain cross-entropy shows on these tiny data sets. The reference computes it in
fp64; we compute it in fp32 through log s(x) = log1p(x) or -log1p(-x), which is exact enough
(tests/test_losses.py checks it against fp64) and runs on every accelerator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = 0  # label token 0 (PAD) carries no loss


def log_stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    x = logits.float()
    log_s = torch.where(x >= 0, torch.log1p(x.clamp(min=0)), -torch.log1p(-x.clamp(max=0)))
    return log_s - torch.logsumexp(log_s, dim=dim, keepdim=True)


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, kind: str = "stablemax") -> torch.Tensor:
    """Per-cell loss (batch, seq) in fp32; cells whose label is IGNORE get 0."""
    valid = labels != IGNORE
    target = torch.where(valid, labels, 0).long()
    if kind == "stablemax":
        logp = log_stablemax(logits)
        loss = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    else:
        loss = F.cross_entropy(logits.float().flatten(0, 1), target.flatten(), reduction="none").view_as(target)
    return torch.where(valid, loss, torch.zeros_like(loss))


def answer_loss(logits: torch.Tensor, labels: torch.Tensor, kind: str = "stablemax") -> torch.Tensor:
    """Per-example mean over labelled cells (batch,), so that long and short answers weigh the same."""
    count = (labels != IGNORE).sum(-1).clamp(min=1)
    return token_cross_entropy(logits, labels, kind).sum(-1) / count


def halt_loss(q_halt: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """BCE teaching q_halt to predict "the whole answer is already right" (batch,)."""
    return F.binary_cross_entropy_with_logits(q_halt, exact.to(q_halt.dtype), reduction="none")


def continue_target(next_q_halt: torch.Tensor, next_q_continue: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Q-learning target for q_continue (HRM): the value of the best action one step later, or of halting
    when the next step is the last allowed one."""
    return torch.sigmoid(torch.where(last, next_q_halt, torch.maximum(next_q_halt, next_q_continue)))
