"""Tiny Recursive Model (Jolicoeur-Martineau, 2025): one small network, applied to its own answer.

One supervision step, with x the embedded puzzle, y the answer feature and z the latent reasoning feature:

    repeat T-1 times without gradient:   repeat n times: z = net(z + y + x);   y = net(y + z)
    once with gradient:                  repeat n times: z = net(z + y + x);   y = net(y + z)

The same 2-layer `net` serves both updates: the presence of x tells it whether it is reasoning (z) or
answering (y). The paper's ablations are options of this one class rather than copies of it:

- `features="z"`: a single feature; z = net(z + x) n times, then z = net(z) in place of the y update, and the
  answer is read from z.
- `features="multiscale"`: n latent features z_1..z_n, latent step i updates its own z_i from x, y and all
  latents; y is updated from their sum.
- `separate_nets`: one network for the z updates, another for the y updates.
- `one_step_grad`: only the last z update and the last y update get gradient (HRM's approximation).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from .config import ModelConfig
from .model import RecursiveModel, State, TaskSpec


class TRM(RecursiveModel):
    def __init__(self, cfg: ModelConfig, spec: TaskSpec):
        if cfg.features == "yz":
            self.state_names = ("y", "z")
        elif cfg.features == "z":
            self.state_names = ("z",)
        else:
            self.state_names = ("y",) + tuple(f"z{i}" for i in range(cfg.n))
        super().__init__(cfg, spec)
        self.net = self.make_stack(cfg.layers)
        self.net_y = self.make_stack(cfg.layers) if cfg.separate_nets else None  # None: `net` does both

    def recurse(self, state: State, x: torch.Tensor) -> tuple[State, torch.Tensor]:
        with torch.no_grad():
            for _ in range(self.cfg.T - 1):
                state = self.cycle(state, x, last=False)
        state = self.cycle(state, x, last=True)
        return state, state["z" if self.cfg.features == "z" else "y"]

    def cycle(self, state: State, x: torch.Tensor, last: bool) -> State:
        """n latent updates then one answer update. In the last cycle with `one_step_grad`, all but the final
        latent update run without gradient."""
        n, rope = self.cfg.n, self.rope()
        net_y = self.net_y if self.net_y is not None else self.net
        truncate = last and self.cfg.one_step_grad

        def grad_for(i: int):
            return torch.no_grad() if truncate and i < n - 1 else nullcontext()

        s = dict(state)
        if self.cfg.features == "yz":
            yx = s["y"] + x  # y is fixed during the n latent updates: one sum per cycle, the same values
            for i in range(n):
                with grad_for(i):
                    s["z"] = self.net(s["z"], yx, rope)
            s["y"] = net_y(s["y"], s["z"], rope)
        elif self.cfg.features == "z":
            for i in range(n):
                with grad_for(i):
                    s["z"] = self.net(s["z"], x, rope)
            s["z"] = net_y(s["z"], None, rope)
        else:  # multiscale
            names = [f"z{i}" for i in range(n)]
            for i, name in enumerate(names):
                with grad_for(i):
                    others = sum(s[m] for m in names if m != name)
                    s[name] = self.net(s[name], x + s["y"] + others, rope)
            s["y"] = net_y(s["y"], sum(s[m] for m in names), rope)
        return s
