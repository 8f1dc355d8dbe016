"""The inference fast path (in-place SwiGLU and norms outside autograd, packed oneDNN weights) computes the same
bits as the autograd path; with RECURSIA_CPU_MATMUL=aten that is the arithmetic of commit becd225
(benchmarks/cpu_speed.py checks the two commits against each other on its CPU workload)."""

from __future__ import annotations

import pytest
import torch

from recursia.halting import HaltRule, run
from recursia.layers import rms_norm, rms_norm_
from recursia.model import TaskSpec, build_model

from conftest import tiny_model_config

SPEC = TaskSpec(seq_len=81, vocab_size=11)


def test_in_place_norm_is_bitwise_the_norm():
    x = torch.randn(3, 97, 64)
    expected = rms_norm(x)
    assert torch.equal(rms_norm_(x.clone()), expected)
    t = torch.randn(3, 64, 97).transpose(1, 2)  # a strided sum, as in the reference MLP norm
    assert torch.equal(rms_norm_(t.clone()), rms_norm(t))


@pytest.mark.parametrize("kw", [dict(mixer="mlp", pos_encoding="none"),
                                dict(mixer="mlp", pos_encoding="none", reference_mlp_norm=True),
                                dict(mixer="attention", pos_encoding="rope")])
@pytest.mark.parametrize("batch", [1, 7])
def test_no_grad_forward_is_bitwise_the_autograd_forward(kw, batch):
    model = build_model(tiny_model_config(T=3, n=3, **kw), SPEC)
    inputs = torch.randint(1, 11, (batch, 81))
    pids = torch.zeros(batch, dtype=torch.int32)
    with_grad = model(model.initial_state(batch), inputs, pids)  # the unchanged, out-of-place arithmetic
    with torch.no_grad():
        fast = model(model.initial_state(batch), inputs, pids)
    assert torch.equal(with_grad.logits, fast.logits) and torch.equal(with_grad.q_halt, fast.q_halt)
    assert all(torch.equal(with_grad.state[k], fast.state[k]) for k in fast.state)


def test_solve_predictions_are_those_of_the_autograd_forward():
    model = build_model(tiny_model_config(mixer="mlp", pos_encoding="none", N_sup=3), SPEC).eval()
    inputs = torch.randint(1, 11, (2, 81))
    pids = torch.zeros(2, dtype=torch.int32)
    rec, _ = run(model, inputs, pids, HaltRule())
    state = model.initial_state(2)
    for s in range(3):
        out = model(state, inputs, pids)
        state = out.state
        assert torch.equal(rec.predictions[s], out.logits.argmax(-1))
        assert torch.equal(rec.confidence[s], torch.softmax(out.logits.detach().float(), -1).max(-1).values)
