"""The FLOP count from the config against PyTorch's own counter, for every paper preset's network."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from recursia import flops
from recursia.config import build_config
from recursia.model import TaskSpec, build_model
from recursia.supervision import DeepSupervision, Examples

SHAPES = {"sudoku": (81, 11), "maze": (900, 6)}


def counted(preset: str, overrides: list[str], train: bool) -> tuple[int, flops.Flops]:
    cfg = build_config(preset, overrides).model
    seq_len, vocab = SHAPES["maze" if preset.startswith("maze") else "sudoku"]
    model = build_model(cfg, TaskSpec(seq_len, vocab, 2))
    inputs = torch.randint(1, vocab, (1, seq_len), dtype=torch.uint8)
    ex = Examples(inputs, inputs.clone(), torch.ones(1, dtype=torch.int32), torch.zeros(1, dtype=torch.int64))
    # the math kernel spells attention out as matrix products, which the counter sees (the fused CPU kernel
    # is not counted)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        if train:
            sup = DeepSupervision(model, cfg, "softmax")
            carry = sup.empty_carry(1, seq_len, inputs.device)
            _, loss, _ = sup.train_step(carry, lambda k: ex)
            loss.backward()
        else:
            with torch.no_grad():
                model(model.initial_state(1), inputs, ex.puzzle_ids)
    return counter.get_total_flops(), flops.count(cfg, seq_len, vocab)


CASES = [("sudoku-mlp", []), ("sudoku-att", []), ("sudoku-hrm", []), ("sudoku-att", ["model.one_step_grad=true"]),
         ("sudoku-att", ["model.features=multiscale", "model.n=3"]), ("sudoku-att", ["model.arch=transformer", "model.N_sup=1", "model.halting=fixed"]),
         ("sudoku-mlp", ["model.halting=qlearn", "model.features=z"]), ("maze-att", ["model.T=1", "model.n=1"])]


@pytest.mark.parametrize("preset,overrides", CASES)
def test_forward_and_training_flops_match_the_counter(preset, overrides) -> None:
    seen, predicted = counted(preset, overrides, train=False)
    assert seen == predicted.forward_per_example
    seen, predicted = counted(preset, overrides, train=True)
    assert seen == predicted.train_per_example


def test_step_counts_and_mfu() -> None:
    cfg = build_config("sudoku-mlp", []).model  # T=3, n=6: 21 calls, the last 7 with gradient
    c = flops.calls_per_step(cfg)
    assert (c.no_grad_calls, c.grad_calls, c.target_calls) == (14, 7, 0)
    hrm = flops.calls_per_step(build_config("sudoku-hrm", []).model)  # T=2, n=2: 6 calls, 2 with gradient
    assert (hrm.no_grad_calls, hrm.grad_calls, hrm.target_calls) == (4, 2, 6)
    assert flops.peak_tflops("NVIDIA H100 80GB HBM3") == 989.4 and flops.peak_tflops("cpu") is None
    assert flops.mfu(494.7e12, 989.4) == pytest.approx(0.5) and flops.mfu(1e12, None) is None
