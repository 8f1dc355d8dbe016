"""Building blocks shared by every model (see `semantics.md`, "Shared building blocks").

Weights are kept in fp32 and cast to the activation dtype on use (bf16 on GPU), RMSNorm and RoPE run in fp32,
there are no biases, and blocks are post-norm with a parameter-free RMSNorm: `h = norm(h + mix(h));
h = norm(h + SwiGLU(h))`. The token mixer is attention with RoPE, or (TRM-MLP) a SwiGLU across the sequence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .matmul import linear


def trunc_normal_(tensor: torch.Tensor, std: float = 1.0, bound: float = 2.0) -> torch.Tensor:
    """Normal truncated at +-`bound` standard deviations, rescaled so the result really has std `std`.

    `nn.init.trunc_normal_` keeps the std of the untruncated normal, which makes the weights ~12% too small at
    2 sigma; the reference implementation corrects for that, and so do we.
    """
    with torch.no_grad():
        # Variance of a standard normal truncated to [-b, b]: 1 - 2 b phi(b) / (2 Phi(b) - 1).
        phi = math.exp(-0.5 * bound * bound) / math.sqrt(2 * math.pi)
        mass = math.erf(bound / math.sqrt(2))
        truncated_std = math.sqrt(1 - 2 * bound * phi / mass)
        nn.init.trunc_normal_(tensor, mean=0.0, std=1.0, a=-bound, b=bound)
        tensor.mul_(std / truncated_std)
    return tensor


def rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Parameter-free RMSNorm over the last axis, computed in fp32 and returned in x's dtype."""
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return h.to(x.dtype)


def rms_norm_(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """`rms_norm` in place, for a fresh fp32 tensor outside autograd: the same arithmetic bit for bit, without
    the two full-size temporaries (at batch 32 on a CPU, allocating and filling them cost more than the norm)."""
    if x.dtype != torch.float32:
        return rms_norm(x, eps)
    return x.mul_(torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def swiglu_width(dim: int, expansion: float, multiple: int = 256) -> int:
    """Intermediate size of a SwiGLU: round(expansion * dim * 2/3) rounded up to a multiple of `multiple`
    (the papers use 256, which is generous for the tiny CPU models)."""
    inter = round(expansion * dim * 2 / 3)
    return -(-inter // multiple) * multiple


class CastedLinear(nn.Module):
    """Linear layer with fp32 master weights cast to the input dtype; truncated LeCun-normal init."""

    def __init__(self, fan_in: int, fan_out: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_(torch.empty(fan_out, fan_in), std=1.0 / math.sqrt(fan_in)))
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return linear(x, self.weight.to(x.dtype), bias)


class SwiGLU(nn.Module):
    def __init__(self, dim: int, expansion: float, multiple: int = 256):
        super().__init__()
        width = swiglu_width(dim, expansion, multiple)
        self.gate_up = CastedLinear(dim, 2 * width)
        self.down = CastedLinear(width, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        if torch.is_grad_enabled():
            return self.down(F.silu(gate) * up)
        # Outside autograd (solving, and the no-gradient cycles of training) the same arithmetic in place.
        return self.down(F.silu(gate, inplace=True).mul_(up))


class Rotary(nn.Module):
    """Rotary position tables (fp32, not saved): cos and sin of shape (seq_len, head_dim)."""

    def __init__(self, head_dim: int, seq_len: int, theta: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos, self.sin


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (batch, seq, heads, head_dim) queries or keys; the arithmetic runs in fp32."""
    h = x.float()
    half = h.shape[-1] // 2
    rotated = torch.cat([-h[..., half:], h[..., :half]], dim=-1)
    out = h * cos[:, None, :] + rotated * sin[:, None, :]
    return out.to(x.dtype)


class Attention(nn.Module):
    """Bidirectional multi-head self-attention (no mask: every position sees the whole puzzle)."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.qkv = CastedLinear(hidden, 3 * hidden)
        self.out = CastedLinear(hidden, hidden)

    def forward(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        b, s, _ = h.shape
        q, k, v = self.qkv(h).view(b, s, 3, self.heads, self.head_dim).unbind(2)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=False)
        return self.out(o.transpose(1, 2).reshape(b, s, -1))


class Block(nn.Module):
    """Post-norm block: token mixing (attention or sequence-axis SwiGLU), then a channel SwiGLU."""

    def __init__(self, hidden: int, heads: int, expansion: float, seq_len: int, mixer: str, eps: float,
                 reference_mlp_norm: bool = False, mlp_multiple: int = 256):
        super().__init__()
        self.mixer, self.eps, self.reference_mlp_norm = mixer, eps, reference_mlp_norm
        if mixer == "attention":
            self.attn = Attention(hidden, heads)
        else:
            self.token_mlp = SwiGLU(seq_len, expansion, mlp_multiple)
        self.mlp = SwiGLU(hidden, expansion, mlp_multiple)

    def forward(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        # Outside autograd the norms run in place on the fresh residual sums (`rms_norm_`: the same bits).
        norm = rms_norm if torch.is_grad_enabled() else rms_norm_
        if self.mixer == "attention":
            h = norm(h + self.attn(h, rope), self.eps)
        elif self.reference_mlp_norm:
            # Reference behaviour (a bug, kept only for parity): normalise over the sequence axis.
            t = h.transpose(1, 2)
            h = norm(t + self.token_mlp(t), self.eps).transpose(1, 2)
        else:
            h = norm(h + self.token_mlp(h.transpose(1, 2)).transpose(1, 2), self.eps)
        return norm(h + self.mlp(h), self.eps)


class Stack(nn.Module):
    """`layers` blocks applied after adding the injection: net(h, inj) = blocks(h + inj).

    With `checkpointing` on, a call that builds a graph keeps only its input and recomputes the blocks during
    backward (`torch.utils.checkpoint`): the gradients are the same, and memory per call drops from a dozen
    activations of the blocks to one."""

    def __init__(self, layers: int, **block_kwargs):
        super().__init__()
        self.blocks = nn.ModuleList(Block(**block_kwargs) for _ in range(layers))
        self.checkpointing = False

    def forward(self, h: torch.Tensor, injection: torch.Tensor | None,
                rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        if injection is not None:
            h = h + injection
        if self.checkpointing and torch.is_grad_enabled() and h.requires_grad:
            return checkpoint(self._blocks, h, rope, use_reentrant=False)
        return self._blocks(h, rope)

    def _blocks(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        for block in self.blocks:
            h = block(h, rope)
        return h
