"""CPU products through oneDNN (recursia.matmul) compute what ATen's F.linear computes, to fp32 rounding, in
the forward pass and both gradients, and a trained model answers the same through either."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recursia import matmul
from recursia.errors import ConfigError
from recursia.model import TaskSpec, build_model

from conftest import tiny_model_config

REASON = matmul._WHY_NOT
needs_onednn = pytest.mark.skipif(REASON is not None, reason=f"oneDNN not usable: {REASON}")


@pytest.fixture
def backend():
    """Set a backend for one test, then restore the process's own choice."""
    before = matmul._active
    yield matmul.set_cpu_matmul
    matmul._active = before


VIEWS = {"contiguous": (lambda b: b, (3, 97, 128)),
         "transposed": (lambda b: b.transpose(1, 2), (3, 97, 128)),  # the token MLP's (batch, hidden, seq)
         "strided": (lambda b: b.chunk(2, dim=-1)[1], (200, 256))}  # a SwiGLU half


@needs_onednn
@pytest.mark.parametrize("kind", list(VIEWS))
def test_forward_and_both_gradients_are_fp32_accurate(kind, backend):
    """Against float64, oneDNN's error is of the size of ATen's own fp32 error (and both are tiny)."""
    view, shape = VIEWS[kind]
    g = torch.Generator().manual_seed(0)
    base = torch.randn(*shape, generator=g)
    k = view(base).shape[-1]
    w = torch.randn(256, k, generator=g) / k ** 0.5
    grad_out = torch.randn(*view(base).shape[:-1], 256, generator=g)
    b64, w64 = base.double().requires_grad_(), w.double().requires_grad_()
    y64 = F.linear(view(b64), w64)
    y64.backward(grad_out.double())
    errors = {}
    for name in ("aten", "onednn"):
        backend(name)
        bs, ws = base.clone().requires_grad_(), w.clone().requires_grad_()
        y = matmul.linear(view(bs), ws)
        y.backward(grad_out)
        errors[name] = [float((a.detach().double() - b.detach()).abs().max() / b.detach().abs().max())
                        for a, b in ((y, y64), (bs.grad, b64.grad), (ws.grad, w64.grad))]
    assert all(e < 2e-6 for e in errors["onednn"]), errors
    assert all(e < 4 * max(a, 1e-7) for e, a in zip(errors["onednn"], errors["aten"])), errors


@needs_onednn
def test_a_packed_weight_follows_in_place_updates_and_new_weights(backend):
    """Outside autograd the weight is packed once and reused: an optimizer step (in place), a loaded state
    dict and a new tensor must all be seen, never a stale packed copy."""
    backend("onednn")
    lin = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(10, 64)
    with torch.no_grad():
        first = matmul.linear(x, lin.weight)
        assert torch.allclose(first, F.linear(x, lin.weight), atol=1e-5)
        lin.weight.add_(1.0)  # what an optimizer step does
        assert torch.allclose(matmul.linear(x, lin.weight), F.linear(x, lin.weight), atol=1e-4)
        lin.load_state_dict({"weight": torch.zeros(32, 64)})
        assert torch.equal(matmul.linear(x, lin.weight), torch.zeros(10, 32))
        other = torch.randn(32, 64)
        assert torch.allclose(matmul.linear(x, other), F.linear(x, other), atol=1e-5)
        assert torch.allclose(matmul.linear(x[:3], other), F.linear(x[:3], other), atol=1e-5)  # other rows


@needs_onednn
@pytest.mark.parametrize("mixer", ["mlp", "attention"])
def test_a_model_gives_the_same_logits_and_gradients_through_either_backend(mixer, backend):
    """One application (T=1, n=1: deeper random recursions amplify any rounding, see benchmarks/cpu_speed.py)."""
    cfg = tiny_model_config(T=1, n=1, N_sup=1, mixer=mixer, pos_encoding="none" if mixer == "mlp" else "rope")
    torch.manual_seed(0)
    model = build_model(cfg, TaskSpec(seq_len=81, vocab_size=11))
    inputs, labels = torch.randint(1, 11, (4, 81)), torch.randint(1, 11, (4, 81))
    got = {}
    for name in ("aten", "onednn"):
        backend(name)
        model.zero_grad(set_to_none=True)
        out = model(model.initial_state(4), inputs, torch.zeros(4, dtype=torch.int32))
        F.cross_entropy(out.logits.reshape(-1, 11), labels.reshape(-1)).backward()
        got[name] = (out.logits.detach(),
                     {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    assert torch.allclose(got["onednn"][0], got["aten"][0], rtol=1e-4, atol=1e-5)
    assert got["onednn"][1].keys() == got["aten"][1].keys() and len(got["aten"][1]) > 4
    # fp32 sums in another order: on AVX-512 the gradients agreed within 1e-6 of their largest entry; oneDNN's
    # AVX2 kernels (a CPU without AVX-512) differ by up to 3e-6 of it (one entry of 42,496 past 1e-6).
    for k, ref in got["aten"][1].items():
        assert torch.allclose(got["onednn"][1][k], ref, rtol=1e-3, atol=1e-5 * ref.abs().max()), k


@needs_onednn
def test_the_bundled_sudoku_model_answers_the_same_through_either_backend(backend):
    import recursia
    from recursia.halting import HaltRule
    from recursia.tasks import sudoku

    solver = recursia.load("sudoku")
    grids = list(sudoku.generate(12, seed=5, blanks=54).questions)
    answers = {}
    for name in ("aten", "onednn"):
        backend(name)
        answers[name] = [np.asarray(r.answer) for r in solver.solve_batch(grids, HaltRule())]
    assert all(np.array_equal(a, b) for a, b in zip(answers["aten"], answers["onednn"]))


def test_a_bad_backend_name_says_which_names_exist(backend):
    with pytest.raises(ConfigError, match="'mkl' is not one of auto, aten, onednn"):
        backend("mkl")


def test_the_environment_variable_picks_the_backend():
    code = "from recursia.matmul import cpu_matmul; print(cpu_matmul())"
    env = {**os.environ, "RECURSIA_CPU_MATMUL": "aten"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "aten", proc.stderr
    env["RECURSIA_CPU_MATMUL"] = "fast"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "'fast' is not one of auto, aten, onednn" in proc.stderr


def test_auto_trains_in_bf16_only_where_the_cpu_has_native_bf16_products(backend):
    """`model.forward_dtype=auto` on a CPU: bf16 for training where bf16 products are native (AVX512_BF16 or AMX)
    and oneDNN is the backend; fp32 under RECURSIA_CPU_MATMUL=aten and for solving and evaluating."""
    from recursia.model import resolve_dtype

    cpu = torch.device("cpu")
    native = any(getattr(torch.cpu, n, lambda: False)() for n in ("_is_avx512_bf16_supported",
                                                                  "_is_amx_tile_supported"))
    backend("aten")
    assert not matmul.cpu_bf16() and resolve_dtype("auto", cpu, training=True) == torch.float32
    if REASON is None:
        backend("onednn")
        assert matmul.cpu_bf16() == native
        assert resolve_dtype("auto", cpu, training=True) == (torch.bfloat16 if native else torch.float32)
    assert resolve_dtype("auto", cpu) == torch.float32  # inference stays fp32
    assert resolve_dtype("float32", cpu, training=True) == torch.float32  # an explicit choice wins
    assert resolve_dtype("bfloat16", cpu) == torch.bfloat16
