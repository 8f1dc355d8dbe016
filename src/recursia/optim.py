"""Optimisers of the papers, in plain PyTorch (no CUDA extension to build).

- `AdamATan2`: Adam with `atan2(m, sqrt(v))` in place of `m / (sqrt(v) + eps)`: scale-invariant, bounded, and
  without epsilon. The update is exactly the reference's (a=b=1), which the `adam-atan2-pytorch` package is not.
- `SparseSignSGD`: sign descent with decoupled weight decay on the puzzle-embedding rows a step touched.
- `warmup_lr`: linear warm-up, then constant.
- `EMA`: exponential moving average of the weights, used for evaluation and saved models.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from .puzzle_embedding import PuzzleEmbedding


class AdamATan2(torch.optim.Optimizer):
    """p *= 1 - lr*wd;  m = lerp(m, g, 1-b1);  v = lerp(v, g^2, 1-b2);
    p -= lr / (1 - b1^t) * atan2(m, sqrt(v) / sqrt(1 - b2^t))"""

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.95),
                 weight_decay: float = 0.0):
        if lr < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid AdamATan2 settings: lr={lr}, betas={betas}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params, grads, ms, vs, steps = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.int64)  # on the CPU: no device sync to read
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                ms.append(state["exp_avg"])
                vs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            if not params:
                continue
            lr, wd = group["lr"], group["weight_decay"]
            b1, b2 = group["betas"]
            if wd:
                torch._foreach_mul_(params, 1.0 - lr * wd)
            torch._foreach_lerp_(ms, grads, 1.0 - b1)
            torch._foreach_mul_(vs, b2)
            torch._foreach_addcmul_(vs, grads, grads, value=1.0 - b2)
            for p, m, v, step in zip(params, ms, vs, steps):
                step += 1
                t = int(step)
                bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t  # Python floats: exact bias corrections
                p.sub_(torch.atan2(m, v.sqrt() / math.sqrt(bc2)), alpha=lr / bc1)
        return loss


class SparseSignSGD:
    """SignSGD on the rows of a `PuzzleEmbedding` that the last forward passes gathered.

    Gradients of duplicate identifiers are summed (and, under torch.distributed, gathered from every rank
    first) before the sign is taken: `row = row * (1 - lr * wd) - lr * sign(sum of grads)`.
    """

    def __init__(self, embedding: PuzzleEmbedding, lr: float, weight_decay: float,
                 generator: torch.Generator | None = None):
        self.embedding, self.lr, self.weight_decay = embedding, lr, weight_decay
        self.generator = generator  # stochastic rounding of a bf16 table

    @torch.no_grad()
    def step(self) -> None:
        captured, self.embedding.captured = self.embedding.captured, []
        pairs = [(ids, rows.grad) for ids, rows in captured if rows.grad is not None]
        if not pairs:
            return
        ids = torch.cat([i for i, _ in pairs])
        grads = torch.cat([g for _, g in pairs]).float()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            ids, grads = _all_gather_rows(ids, grads)
        unique, inverse = torch.unique(ids, return_inverse=True)
        summed = torch.zeros(unique.shape[0], grads.shape[1], device=grads.device, dtype=grads.dtype)
        summed.index_add_(0, inverse, grads)
        rows = self.embedding.table[unique].float()
        rows = rows * (1.0 - self.lr * self.weight_decay) - self.lr * summed.sign()
        self.embedding.write_rows(unique, rows, self.generator)

    def zero_grad(self) -> None:
        self.embedding.captured = []

    def state_dict(self) -> dict:
        return {"lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        self.lr = state.get("lr", self.lr)


def _all_gather_rows(ids: torch.Tensor, grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather (ids, grads) from every rank; ranks may hold different numbers of rows."""
    world = dist.get_world_size()
    n = torch.tensor([ids.shape[0]], device=ids.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    longest = int(max(s.item() for s in sizes))
    pad = longest - ids.shape[0]
    ids_p = torch.cat([ids, ids.new_zeros(pad)])
    grads_p = torch.cat([grads, grads.new_zeros(pad, grads.shape[1])])
    all_ids = [torch.empty_like(ids_p) for _ in range(world)]
    all_grads = [torch.empty_like(grads_p) for _ in range(world)]
    dist.all_gather(all_ids, ids_p)
    dist.all_gather(all_grads, grads_p)
    keep = [int(s.item()) for s in sizes]
    return (torch.cat([t[:k] for t, k in zip(all_ids, keep)]),
            torch.cat([t[:k] for t, k in zip(all_grads, keep)]))


def warmup_lr(base_lr: float, step: int, warmup_steps: int, total_steps: int = 0, schedule: str = "constant",
              min_ratio: float = 0.0) -> float:
    """Learning rate for optimizer step `step` (counted from 1): linear warm-up, then constant (the papers) or
    a cosine decay that reaches `min_ratio * base_lr` at `total_steps`."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * step / warmup_steps
    if schedule == "constant" or total_steps <= warmup_steps:
        return base_lr
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class EMA:
    """ema = rate * ema + (1 - rate) * weight, after every optimizer step (float parameters only)."""

    def __init__(self, model: nn.Module, rate: float):
        self.rate = rate
        self.shadow = {k: p.detach().clone() for k, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        names = list(self.shadow)
        params = dict(model.named_parameters())
        torch._foreach_lerp_([self.shadow[k] for k in names], [params[k].detach() for k in names], 1.0 - self.rate)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:3]}")
        for k in self.shadow:
            self.shadow[k].copy_(state[k])

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        for k, v in self.shadow.items():
            params[k].copy_(v)
