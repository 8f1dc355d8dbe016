"""Activation checkpointing (train.activation_checkpointing): the same gradients, from recomputed blocks."""

from __future__ import annotations

import pytest
import torch

from recursia.layers import Block, Stack
from recursia.model import TaskSpec, build_model
from recursia.supervision import DeepSupervision, Examples

from conftest import tiny_model_config


@pytest.mark.parametrize("arch,mixer", [("trm", "attention"), ("trm", "mlp"), ("hrm", "attention")])
def test_same_gradients_with_recomputed_blocks(arch, mixer) -> None:
    spec = TaskSpec(81, 11, 3)
    cfg = tiny_model_config(arch=arch, mixer=mixer, halting="qlearn", T=2, n=2,
                            layers=4 if arch == "hrm" else 2)
    inputs = torch.randint(1, 11, (6, 81), dtype=torch.uint8)
    labels = torch.randint(1, 11, (6, 81), dtype=torch.uint8)
    ex = Examples(inputs, labels, torch.randint(1, 3, (6,), dtype=torch.int32), torch.arange(6))
    grads, calls = [], []
    for on in (False, True):
        torch.manual_seed(0)
        model = build_model(cfg, spec)
        for m in model.modules():
            if isinstance(m, Stack):
                m.checkpointing = on
        count = [0]
        for m in model.modules():
            if isinstance(m, Block):
                m.register_forward_pre_hook(lambda *_: count.__setitem__(0, count[0] + 1))  # starts
        sup = DeepSupervision(model, cfg, "softmax", generator=torch.Generator().manual_seed(1))
        carry = sup.empty_carry(6, 81, inputs.device)
        _, loss, _ = sup.train_step(carry, lambda k: ex)
        forward_only = count[0]
        loss.backward()
        calls.append((forward_only, count[0]))
        grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 5
    for k in grads[0]:
        assert torch.equal(grads[0][k], grads[1][k]), k
    (plain_fwd, plain_total), (ckpt_fwd, ckpt_total) = calls
    assert plain_fwd == plain_total == ckpt_fwd  # without checkpointing, backward runs no block
    layers = cfg.layers
    grad_calls = 2 if arch == "hrm" else cfg.n + 1
    assert ckpt_total - ckpt_fwd == grad_calls * layers  # each call with gradient is recomputed once
