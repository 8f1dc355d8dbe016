"""Model structure: parameter counts of the paper models, and where gradients flow (checked with autograd)."""

from __future__ import annotations

import pytest
import torch

from recursia.config import ModelConfig
from recursia.layers import swiglu_width
from recursia.model import TaskSpec, build_model

from conftest import tiny_model_config

SUDOKU = TaskSpec(seq_len=81, vocab_size=11, num_puzzle_ids=1)


def test_paper_parameter_counts():
    mlp = build_model(ModelConfig(mixer="mlp", pos_encoding="none"), SUDOKU)
    att = build_model(ModelConfig(), SUDOKU)
    hrm = build_model(ModelConfig(arch="hrm", layers=4, T=2, n=2, puzzle_emb_len=1, halting="qlearn"), SUDOKU)
    assert round(mlp.count_parameters() / 1e6, 1) == 5.0
    assert round(att.count_parameters() / 1e6, 1) == 6.8
    assert round(hrm.count_parameters() / 1e6, 1) == 27.3
    assert swiglu_width(512, 4) == 1536 and swiglu_width(97, 4) == 512


def _record_calls(stack, log: list, name: str):
    """Wrap a Stack so every call's output is recorded with whether it is on the gradient path."""
    original = stack.forward

    def wrapped(h, injection, rope):
        out = original(h, injection, rope)
        if out.requires_grad:
            out.retain_grad()
        log.append((name, out))
        return out

    stack.forward = wrapped


def _step_and_backward(model, batch=3):
    inputs = torch.randint(1, 11, (batch, 81))
    state = {k: v.requires_grad_() for k, v in model.initial_state(batch).items()}
    out = model(state, inputs, torch.zeros(batch, dtype=torch.int32))
    out.logits.float().square().mean().backward()
    return state


@pytest.mark.parametrize("T,n", [(3, 2), (2, 3)])
def test_trm_gradient_reaches_only_last_cycle(T, n):
    model = build_model(tiny_model_config(T=T, n=n), SUDOKU)
    calls: list = []
    _record_calls(model.net, calls, "net")
    state = _step_and_backward(model)
    assert len(calls) == T * (n + 1)
    with_grad = [out.requires_grad for _, out in calls]
    assert with_grad == [False] * ((T - 1) * (n + 1)) + [True] * (n + 1)
    for _, out in calls[-(n + 1):]:  # gradient really flows through each of the last n + 1 calls
        assert out.grad is not None and out.grad.abs().sum() > 0
    assert all(v.grad is None for v in state.values())  # nothing flows into the carried state
    assert model.net.blocks[0].mlp.down.weight.grad.abs().sum() > 0


def test_trm_one_step_gradient():
    model = build_model(tiny_model_config(T=2, n=3, one_step_grad=True), SUDOKU)
    calls: list = []
    _record_calls(model.net, calls, "net")
    _step_and_backward(model)
    # 2 cycles x (3 z updates + 1 y update): only the last z update and the y update are on the gradient path
    assert [o.requires_grad for _, o in calls] == [False] * 6 + [True] * 2
    assert all(o.grad is not None and o.grad.abs().sum() > 0 for _, o in calls[-2:])


def test_trm_separate_nets_and_features():
    for kw in [dict(separate_nets=True), dict(features="z"), dict(features="multiscale")]:
        model = build_model(tiny_model_config(**kw), SUDOKU)
        state = model.initial_state(2)
        expected = {"yz": {"y", "z"}, "z": {"z"}, "multiscale": {"y", "z0", "z1"}}[model.cfg.features]
        assert set(state) == expected
        out = model(state, torch.randint(1, 11, (2, 81)), torch.zeros(2, dtype=torch.int32))
        assert out.logits.shape == (2, 81, 11)
    sep = build_model(tiny_model_config(separate_nets=True), SUDOKU)
    shared = build_model(tiny_model_config(), SUDOKU)
    assert sep.count_parameters() > shared.count_parameters()


def test_hrm_gradient_reaches_only_last_L_and_H():
    model = build_model(tiny_model_config(arch="hrm", T=2, n=3, halting="qlearn"), SUDOKU)
    calls: list = []
    _record_calls(model.L, calls, "L")
    _record_calls(model.H, calls, "H")
    state = _step_and_backward(model)
    names = [n for n, _ in calls]
    assert names == ["L", "L", "L", "H", "L", "L", "L", "H"]
    grads = [o.requires_grad for _, o in calls]
    assert grads == [False] * 6 + [True, True]
    assert all(o.grad is not None and o.grad.abs().sum() > 0 for _, o in calls[-2:])
    assert all(v.grad is None for v in state.values())


def test_positions_and_mixers_run():
    for kw in [dict(pos_encoding="learned"), dict(pos_encoding="none"), dict(mixer="mlp", pos_encoding="none"),
               dict(puzzle_emb_len=0, puzzle_emb_dim=0), dict(arch="transformer", N_sup=1, halting="fixed")]:
        model = build_model(tiny_model_config(**kw), SUDOKU)
        out = model(model.initial_state(2), torch.randint(1, 11, (2, 81)), torch.zeros(2, dtype=torch.int32))
        assert out.logits.shape == (2, 81, 11)
        assert torch.isfinite(out.logits).all()


def test_q_head_starts_at_minus_five_and_reset_restores_initial_state():
    model = build_model(tiny_model_config(), SUDOKU)
    out = model(model.initial_state(2), torch.randint(1, 11, (2, 81)), torch.zeros(2, dtype=torch.int32))
    assert torch.allclose(out.q_halt, torch.full((2,), -5.0))
    reset = model.reset_state(out.state, torch.tensor([True, False]))
    init = model.initial_state(2)
    assert torch.equal(reset["y"][0], init["y"][0]) and not torch.equal(reset["y"][1], init["y"][1])


def test_mlp_norm_fix_differs_from_reference_bug():
    torch.manual_seed(1)
    fixed = build_model(tiny_model_config(mixer="mlp", pos_encoding="none"), SUDOKU)
    buggy = build_model(tiny_model_config(mixer="mlp", pos_encoding="none", reference_mlp_norm=True), SUDOKU)
    buggy.load_state_dict(fixed.state_dict())
    x = torch.randn(2, 83, 32)
    h_fixed = fixed.net.blocks[0](x, None)
    h_buggy = buggy.net.blocks[0](x, None)
    assert not torch.allclose(h_fixed, h_buggy)


def test_reference_mlp_norm_normalises_over_the_sequence_axis():
    """What the published code computes (and `sudoku-mlp` now runs): the token mixer's residual sum is
    normalised over positions, the channel block's over the hidden axis."""
    model = build_model(tiny_model_config(mixer="mlp", pos_encoding="none", reference_mlp_norm=True), SUDOKU)
    block = model.net.blocks[0]
    x = torch.randn(2, 83, 32)

    def norm(t, dim):
        return t * torch.rsqrt(t.pow(2).mean(dim, keepdim=True) + 1e-5)

    h = norm(x + block.token_mlp(x.transpose(1, 2)).transpose(1, 2), dim=1)
    expected = norm(h + block.mlp(h), dim=-1)
    assert torch.allclose(block(x, None), expected, atol=1e-5)


def test_bfloat16_forward_trains():
    """The GPU path (fp32 weights cast to bf16 on use, fp32 norms and losses) also runs on the CPU."""
    from recursia.supervision import DeepSupervision, Examples

    cfg = tiny_model_config(forward_dtype="bfloat16")
    model = build_model(cfg, SUDOKU).set_forward_dtype(torch.bfloat16)
    sup = DeepSupervision(model, cfg)
    carry = sup.empty_carry(4, 81, torch.device("cpu"))
    assert carry.state["y"].dtype == torch.bfloat16

    def fetch(k):
        return Examples(torch.randint(1, 11, (k, 81)), torch.randint(2, 11, (k, 81)),
                        torch.zeros(k, dtype=torch.int32), torch.arange(k))

    carry, loss, _ = sup.train_step(carry, fetch)
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert model.lm_head.weight.dtype == torch.float32 and model.lm_head.weight.grad.abs().sum() > 0
    assert carry.state["y"].dtype == torch.bfloat16
