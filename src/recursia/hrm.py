"""Hierarchical Reasoning Model (Wang et al., 2025): two 4-layer stacks at two speeds.

The low-level stack L updates z_L from (z_H + x) n times (L cycles) for each update of the high-level stack H,
which reads z_L; this repeats T times (H cycles). HRM trains with a 1-step gradient: every call but the last L
call and the last H call runs without gradient, justified in the paper by a fixed-point argument. The answer
and the Q values are read from z_H. HRM halts with Q-learning (`model.halting=qlearn`, its preset default).
"""

from __future__ import annotations

import torch

from .config import ModelConfig
from .model import RecursiveModel, State, TaskSpec


class HRM(RecursiveModel):
    state_names = ("z_H", "z_L")

    def __init__(self, cfg: ModelConfig, spec: TaskSpec):
        super().__init__(cfg, spec)
        self.H = self.make_stack(cfg.layers)
        self.L = self.make_stack(cfg.layers)

    def recurse(self, state: State, x: torch.Tensor) -> tuple[State, torch.Tensor]:
        T, n, rope = self.cfg.T, self.cfg.n, self.rope()
        z_H, z_L = state["z_H"], state["z_L"]
        with torch.no_grad():
            for h in range(T):
                for l in range(n):
                    if h < T - 1 or l < n - 1:
                        z_L = self.L(z_L, z_H + x, rope)
                if h < T - 1:
                    z_H = self.H(z_H, z_L, rope)
        z_L = self.L(z_L, z_H + x, rope)  # the 1-step gradient: last L call ...
        z_H = self.H(z_H, z_L, rope)  # ... and last H call
        return {"z_H": z_H, "z_L": z_L}, z_H
