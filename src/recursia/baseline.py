"""Plain transformer baseline: direct prediction, one pass, no recursion (the papers' "direct pred").

It has no recurrent state; with `N_sup=1` the shared loop runs it exactly once per example. Give it as many
layers as the recursive model evaluates per step (`model.layers`) to compare depth in space with depth in time.
"""

from __future__ import annotations

import torch

from .config import ModelConfig
from .model import RecursiveModel, State, TaskSpec


class Transformer(RecursiveModel):
    state_names = ()

    def __init__(self, cfg: ModelConfig, spec: TaskSpec):
        super().__init__(cfg, spec)
        self.net = self.make_stack(cfg.layers)

    def recurse(self, state: State, x: torch.Tensor) -> tuple[State, torch.Tensor]:
        return state, self.net(x, None, self.rope())
