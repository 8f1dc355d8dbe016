"""Matrix products on the CPU: oneDNN instead of MKL where that is faster.

PyTorch's fp32 `F.linear` on the CPU calls MKL, and MKL runs AVX2 code on AMD processors even where they have
AVX-512: on the 2-core AMD EPYC of docs/benchmarks.md it reached 70-100 GFLOP/s on TRM's shapes, against
160-230 through oneDNN, which PyTorch also ships (`torch.ops.mkldnn._linear_pointwise`, the kernel that
`torch.compile` itself uses for CPU linear layers). Both compute in fp32 with fp32 accumulation; only the
order of the additions inside a dot product differs, so results agree to fp32 rounding, not bit for bit.

The backend is chosen once per process: `auto` (the default) takes oneDNN on CPUs whose PyTorch build runs
AVX-512 kernels, else ATen's own `F.linear`. `RECURSIA_CPU_MATMUL=aten|onednn|auto` or `set_cpu_matmul`
overrides it; `aten` gives the bits of plain PyTorch (and of commit becd225). CUDA and MPS tensors, other
dtypes, and code being compiled by `torch.compile` always take `F.linear`.
"""

from __future__ import annotations

import math
import os
import warnings
import weakref

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import register_flop_formula

from .errors import ConfigError

BACKENDS = ("auto", "aten", "onednn")
_active: bool | None = None  # resolved on first use: True = oneDNN for fp32 CPU products
# Weights outside autograd, reordered once into oneDNN's blocked layout (6% of a 16-step solve):
# id(weight) -> (weak reference, (data_ptr, version, rows), packed). The entry goes when its weight does, and a
# changed data pointer or version (an optimizer step, load_state_dict, .to()) repacks, so a packed copy never
# outlives or outdates its weight. (A WeakKeyDictionary would compare tensors with ==, which is elementwise.)
_packed: dict[int, tuple] = {}


def _onednn_op():
    return getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def _onednn_works() -> str | None:
    """None if oneDNN's linear is present and agrees with F.linear on a probe; else the reason it is not used."""
    if not torch.backends.mkldnn.is_available():
        return "this PyTorch build has no oneDNN"
    op = _onednn_op()
    if op is None:
        return "this PyTorch build lacks torch.ops.mkldnn._linear_pointwise"
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(37, 19, generator=g), torch.randn(23, 19, generator=g)
    try:
        got = op(x, w, None, "none", [], "")
    except RuntimeError as e:  # an op that exists but refuses plain dense fp32 tensors: fall back, loudly
        return f"torch.ops.mkldnn._linear_pointwise failed on a probe ({e})"
    if not torch.allclose(got, F.linear(x, w), rtol=1e-5, atol=1e-5):
        return "torch.ops.mkldnn._linear_pointwise disagreed with F.linear on a probe"
    return None


# Probed once, at import: a lazy probe could run inside a caller's dispatch mode (a FLOP counter, a profiler)
# and be counted as the caller's work.
_WHY_NOT = _onednn_works()

if _onednn_op() is not None:
    @register_flop_formula(torch.ops.mkldnn._linear_pointwise)
    def _linear_flops(a_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        """So that torch.utils.flop_counter (and tests/test_flops.py) counts these products as it counts mm."""
        return 2 * math.prod(a_shape[:-1]) * a_shape[-1] * w_shape[0]


def set_cpu_matmul(backend: str) -> bool:
    """Choose the CPU backend: `auto`, `aten` or `onednn`. Returns whether oneDNN is now used."""
    global _active
    if backend not in BACKENDS:
        raise ConfigError(f"CPU matmul backend {backend!r} is not one of {', '.join(BACKENDS)} "
                          "(RECURSIA_CPU_MATMUL or recursia.matmul.set_cpu_matmul)")
    if backend == "aten":
        _active = False
        return False
    why_not = _WHY_NOT
    if backend == "onednn" and why_not:
        raise ConfigError(f"CPU matmul backend onednn is not usable: {why_not}; use aten")
    if backend == "auto":
        capability = torch.backends.cpu.get_cpu_capability()
        if why_not and capability.startswith("AVX512"):
            warnings.warn(f"recursia: CPU matrix products use MKL, the slower path here, because {why_not}",
                          stacklevel=2)
        _active = why_not is None and capability.startswith("AVX512")
    else:
        _active = True
    return _active


def cpu_matmul() -> str:
    """The backend in use for fp32 CPU products (`onednn` or `aten`), resolving `auto` on first call."""
    if _active is None:
        set_cpu_matmul(os.environ.get("RECURSIA_CPU_MATMUL", "auto"))
    return "onednn" if _active else "aten"


def cpu_bf16() -> bool:
    """Whether `model.forward_dtype=auto` trains in bf16 on this CPU: where it multiplies bf16 natively
    (AVX512_BF16 or AMX), PyTorch sends bf16 products to oneDNN's bf16 kernels, 1.3-1.5x the steps/s of the fp32
    path on the demo and sudoku-cpu recipes (docs/benchmarks.md). Never under RECURSIA_CPU_MATMUL=aten, which
    keeps plain PyTorch's fp32 bits."""
    if cpu_matmul() != "onednn":
        return False
    native = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(f is not None and f() for f in native)


def _mm(a: torch.Tensor, b_t: torch.Tensor) -> torch.Tensor:
    """a @ b_t.T through oneDNN, for 2-d (or, for a, n-d) fp32 tensors of any strides."""
    return torch.ops.mkldnn._linear_pointwise(a, b_t, None, "none", [], "")


class _Linear(torch.autograd.Function):
    """y = x W^T with all three products (forward, grad of x, grad of W) through oneDNN."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return _mm(x, w)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, w = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = _mm(g2, w.t()).view(x.shape)
        if ctx.needs_input_grad[1]:
            gw = _grad_weight(g2, x.reshape(-1, x.shape[-1]))
        return gx, gw


def _grad_weight(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """g^T x for 2-d g (rows, n) and x (rows, k). oneDNN is fastest with the short side of the (n, k) result
    as its rows (benchmarks/cpu_matmul.py)."""
    return _mm(g.t(), x.t()) if g.shape[1] <= x.shape[1] else _mm(x.t(), g.t()).t().contiguous()


def linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear(x, w, bias), through oneDNN for fp32 CPU tensors when that backend is active."""
    if (bias is not None or x.device.type != "cpu" or x.dtype != torch.float32 or w.dtype != torch.float32
            or x.numel() == 0 or torch.compiler.is_compiling() or cpu_matmul() != "onednn"):
        return F.linear(x, w, bias)
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return _Linear.apply(x, w)
    return _mm(x, _packed_weight(w, x.numel() // x.shape[-1]))


def _packed_weight(w: torch.Tensor, rows: int) -> torch.Tensor:
    key, ident = (w.data_ptr(), w._version, rows), id(w)
    hit = _packed.get(ident)
    if hit is None or hit[0]() is not w or hit[1] != key:
        ref = weakref.ref(w, lambda _, ident=ident: _packed.pop(ident, None))
        hit = _packed[ident] = (ref, key, torch.ops.mkldnn._reorder_linear_weight(w.detach(), rows))
    return hit[2]
