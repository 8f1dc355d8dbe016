"""Optimisers: AdamATan2 against a literal implementation of the formula; SignSGD rows; warm-up; EMA."""

from __future__ import annotations

import math

import torch

from recursia.optim import EMA, AdamATan2, SparseSignSGD, warmup_lr
from recursia.puzzle_embedding import PuzzleEmbedding


def literal_adam_atan2(p, grads, lr, b1, b2, wd):
    """Element by element, in Python floats, exactly as semantics.md writes it."""
    p = [float(v) for v in p]
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for t, g in enumerate(grads, start=1):
        for i in range(len(p)):
            p[i] *= 1 - lr * wd
            m[i] = m[i] + (g[i] - m[i]) * (1 - b1)
            v[i] = v[i] + (g[i] ** 2 - v[i]) * (1 - b2)
            bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
            p[i] -= (lr / bc1) * math.atan2(m[i], math.sqrt(v[i]) / math.sqrt(bc2))
    return p


def test_adam_atan2_matches_literal_formula():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(12, dtype=torch.float64))
    start = w.detach().clone()
    grads = [torch.randn(12, dtype=torch.float64) * (0.1 * (k + 1)) for k in range(6)]
    grads[2][3] = 0.0  # a zero gradient (atan2(0, 0) = 0, no epsilon needed)
    opt = AdamATan2([w], lr=1e-2, betas=(0.9, 0.95), weight_decay=0.5)
    for g in grads:
        w.grad = g.clone()
        opt.step()
    expected = literal_adam_atan2(start.tolist(), [g.tolist() for g in grads], 1e-2, 0.9, 0.95, 0.5)
    assert torch.allclose(w.detach(), torch.tensor(expected, dtype=torch.float64), atol=1e-12, rtol=0)


def test_adam_atan2_is_scale_invariant_and_bounded():
    a = torch.nn.Parameter(torch.zeros(5))
    b = torch.nn.Parameter(torch.zeros(5))
    oa, ob = AdamATan2([a], lr=0.1), AdamATan2([b], lr=0.1)
    g = torch.tensor([1e-6, -2.0, 3.0, 0.5, -1e3])
    a.grad, b.grad = g.clone(), g * 1000
    oa.step()
    ob.step()
    assert torch.allclose(a, b)
    assert a.abs().max() <= 0.1 * math.pi / 2 + 1e-6


def test_sparse_sign_sgd_updates_only_touched_rows_and_sums_duplicates():
    emb = PuzzleEmbedding(5, 3)
    with torch.no_grad():
        emb.table.fill_(1.0)
    emb.train()
    rows = emb(torch.tensor([1, 1, 3]))
    # row 1 appears twice with gradients +1 and -3 (sum -2 -> sign -1); row 3 gets +0.5 (sign +1)
    weights = torch.tensor([[1.0, 1.0, 1.0], [-3.0, -3.0, -3.0], [0.5, 0.5, 0.5]])
    (rows * weights).sum().backward()
    SparseSignSGD(emb, lr=0.1, weight_decay=1.0).step()
    t = emb.table
    assert torch.allclose(t[1], torch.full((3,), 1.0 * 0.9 + 0.1))
    assert torch.allclose(t[3], torch.full((3,), 1.0 * 0.9 - 0.1))
    for untouched in (0, 2, 4):  # no decay on rows the step did not touch
        assert torch.equal(t[untouched], torch.ones(3))
    assert emb.captured == []


def test_warmup_and_ema():
    assert warmup_lr(1e-4, 1, 2000) == 1e-4 / 2000
    assert warmup_lr(1e-4, 1000, 2000) == 5e-5
    assert warmup_lr(1e-4, 5000, 2000) == 1e-4
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, 0.9)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.shadow["weight"], before + 0.1)


def test_bf16_table_rounds_stochastically_and_keeps_weight_decay():
    from recursia.puzzle_embedding import stochastic_bf16

    g = torch.Generator().manual_seed(0)
    x = torch.full((200_000,), 1.0 + 2 ** -10)  # a quarter of the way from 1.0 to the next bf16 value (1 + 2^-7)
    r = stochastic_bf16(x, g).float()
    assert set(r.unique().tolist()) == {1.0, 1.0 + 2 ** -7}
    assert abs(r.mean().item() - x[0].item()) < 2e-5  # unbiased (round-to-nearest would give exactly 1.0)
    assert torch.equal(stochastic_bf16(-x, torch.Generator().manual_seed(0)).float(), -r)
    # many tiny decays on a bf16 table add up instead of vanishing
    emb = PuzzleEmbedding(2, 4, dtype=torch.bfloat16)
    with torch.no_grad():
        emb.table.fill_(1.0)
    opt = SparseSignSGD(emb, lr=1e-3, weight_decay=1.0, generator=torch.Generator().manual_seed(1))
    emb.train()
    for _ in range(200):
        rows = emb(torch.tensor([0]))
        (rows * 0.0).sum().backward()  # zero gradient: only the decay acts (sign(0) = 0)
        opt.step()
    expected = (1 - 1e-3) ** 200  # about 0.819
    assert abs(emb.table[0].float().mean().item() - expected) < 0.02
    assert torch.equal(emb.table[1].float(), torch.ones(4))
