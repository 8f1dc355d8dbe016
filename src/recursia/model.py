"""What every recursive model shares: input embedding with the puzzle prefix, output and Q heads, the recurrent
state and its reset. A model only says how one supervision step updates its state (`recurse`); the
deep-supervision loop around it lives in `supervision.py` and is the same for TRM, HRM and the baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import CastedLinear, Rotary, Stack, trunc_normal_
from .puzzle_embedding import PuzzleEmbedding

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TaskSpec:
    """The data facts a model is built for (from the dataset manifest)."""

    seq_len: int
    vocab_size: int
    num_puzzle_ids: int = 1


@dataclass
class StepOutput:
    state: State  # detached: the carry for the next supervision step
    logits: torch.Tensor  # (batch, seq_len, vocab) over the puzzle cells (prefix removed)
    q_halt: torch.Tensor | None  # (batch,) fp32 halting logit, None when halting is fixed
    q_continue: torch.Tensor | None


def resolve_dtype(name: str, device: torch.device, training: bool = False) -> torch.dtype:
    """`auto`: bf16 on CUDA (as the reference); on a CPU, bf16 for training where bf16 products are native and
    go through oneDNN (`matmul.cpu_bf16`), else fp32. Solving and evaluating a checkpoint on a CPU stay fp32:
    the bundled models' figures are fp32's, and one puzzle's products are too small to gain. Weights, norms and
    losses are fp32 either way (layers.py, losses.py)."""
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16
        if device.type == "cpu" and training:
            from .matmul import cpu_bf16

            return torch.bfloat16 if cpu_bf16() else torch.float32
        return torch.float32
    return {"bfloat16": torch.bfloat16, "float32": torch.float32}[name]


class RecursiveModel(nn.Module):
    """Base class. Subclasses define `state_names` and `recurse(state, x) -> (state, y)`."""

    state_names: tuple[str, ...] = ()

    def __init__(self, cfg: ModelConfig, spec: TaskSpec):
        super().__init__()
        self.cfg, self.spec = cfg, spec
        h = cfg.hidden_size
        self.prefix_len = cfg.puzzle_emb_len
        self.total_len = spec.seq_len + self.prefix_len
        self.forward_dtype = torch.float32  # set by .to_runtime(); fp32 until then (CPU default)

        self.embed_scale = math.sqrt(h)
        self.embed_tokens = nn.Parameter(trunc_normal_(torch.empty(spec.vocab_size, h), std=1.0 / math.sqrt(h)))
        table_dtype = torch.bfloat16 if cfg.puzzle_emb_dtype == "bfloat16" else torch.float32
        self.puzzle_emb = (PuzzleEmbedding(spec.num_puzzle_ids, cfg.puzzle_emb_dim, table_dtype)
                           if cfg.puzzle_emb_dim > 0 and self.prefix_len > 0 else None)
        self.pos_emb = (nn.Parameter(trunc_normal_(torch.empty(self.total_len, h), std=1.0 / math.sqrt(h)))
                        if cfg.pos_encoding == "learned" else None)
        self.rotary = (Rotary(h // cfg.num_heads, self.total_len, cfg.rope_theta)
                       if cfg.pos_encoding == "rope" and cfg.mixer == "attention" else None)

        self.lm_head = CastedLinear(h, spec.vocab_size)
        self.q_head = None
        if cfg.halting != "fixed":
            self.q_head = CastedLinear(h, 2, bias=True)
            with torch.no_grad():  # start by never halting early: q_halt = -5
                self.q_head.weight.zero_()
                self.q_head.bias.fill_(-5.0)

        # Fixed random initial states (not learned), one vector per feature, broadcast on reset.
        for name in self.state_names:
            self.register_buffer(f"init_{name}", trunc_normal_(torch.empty(h), std=1.0))

    # -- construction helpers for subclasses ---------------------------------------------------------------
    def make_stack(self, layers: int) -> Stack:
        c = self.cfg
        return Stack(layers, hidden=c.hidden_size, heads=c.num_heads, expansion=c.expansion,
                     seq_len=self.total_len, mixer=c.mixer, eps=c.rms_norm_eps,
                     reference_mlp_norm=c.reference_mlp_norm, mlp_multiple=c.mlp_multiple)

    def set_forward_dtype(self, dtype: torch.dtype) -> "RecursiveModel":
        self.forward_dtype = dtype
        return self

    # -- the recurrent state -------------------------------------------------------------------------------
    def initial_state(self, batch: int) -> State:
        return {name: getattr(self, f"init_{name}").to(self.forward_dtype).expand(batch, self.total_len, -1).clone()
                for name in self.state_names}

    def reset_state(self, state: State, mask: torch.Tensor) -> State:
        """Put the slots where `mask` is true back to the initial vectors."""
        m = mask.view(-1, 1, 1)
        return {name: torch.where(m, getattr(self, f"init_{name}").to(t.dtype), t) for name, t in state.items()}

    # -- one supervision step ------------------------------------------------------------------------------
    def embed(self, inputs: torch.Tensor, puzzle_ids: torch.Tensor) -> torch.Tensor:
        """x: token embeddings behind a prefix whose first token carries the per-puzzle vector."""
        dt = self.forward_dtype
        x = F.embedding(inputs.long(), self.embed_tokens.to(dt))  # its CPU backward is deterministic
        if self.prefix_len:
            b, h = inputs.shape[0], self.cfg.hidden_size
            prefix = torch.zeros(b, self.prefix_len * h, dtype=dt, device=x.device)
            if self.puzzle_emb is not None:
                rows = self.puzzle_emb(puzzle_ids)
                prefix = torch.cat([rows.to(dt), prefix[:, rows.shape[1]:]], dim=1)
            x = torch.cat([prefix.view(b, self.prefix_len, h), x], dim=1)
        if self.pos_emb is not None:
            x = 0.707106781 * (x + self.pos_emb.to(dt))  # keeps the variance of a sum of two unit terms
        return self.embed_scale * x

    def rope(self):
        return self.rotary() if self.rotary is not None else None

    def recurse(self, state: State, x: torch.Tensor) -> tuple[State, torch.Tensor]:
        raise NotImplementedError

    def heads(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        logits = self.lm_head(y)[:, self.prefix_len:]
        if self.q_head is None:
            return logits, None, None
        q = self.q_head(y[:, 0]).float()
        return logits, q[:, 0], q[:, 1]

    def forward(self, state: State, inputs: torch.Tensor, puzzle_ids: torch.Tensor) -> StepOutput:
        x = self.embed(inputs, puzzle_ids)
        state, y = self.recurse(state, x)
        logits, q_halt, q_continue = self.heads(y)
        return StepOutput({k: v.detach() for k, v in state.items()}, logits, q_halt, q_continue)

    def count_parameters(self) -> int:
        """Trainable weights, leaving out the puzzle-embedding table (as the papers do)."""
        return sum(p.numel() for p in self.parameters())


def build_model(cfg: ModelConfig, spec: TaskSpec) -> RecursiveModel:
    from .baseline import Transformer
    from .hrm import HRM
    from .trm import TRM

    return {"trm": TRM, "hrm": HRM, "transformer": Transformer}[cfg.arch](cfg, spec)
