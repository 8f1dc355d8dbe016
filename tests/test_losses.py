"""Losses: fp32 stablemax against an fp64 literal implementation; softmax; masking of unlabelled cells."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recursia.losses import answer_loss, continue_target, log_stablemax, token_cross_entropy


def reference_log_stablemax_fp64(x: torch.Tensor) -> torch.Tensor:
    """The formula as written, in float64: s(x) = x + 1 (x >= 0), 1 / (1 - x) (x < 0); log(s / sum s)."""
    x = x.double()
    s = torch.where(x < 0, 1 / (1 - x), x + 1)
    return torch.log(s / s.sum(-1, keepdim=True))


def test_stablemax_fp32_matches_fp64():
    torch.manual_seed(0)
    for scale in (0.1, 1.0, 10.0, 100.0, 1000.0):
        x = torch.randn(64, 81, 11) * scale
        ours = log_stablemax(x.float())
        assert ours.dtype == torch.float32
        ref = reference_log_stablemax_fp64(x)
        err = (ours.double() - ref).abs().max().item()
        assert err < 1e-5, (scale, err)
    # bf16 logits (what the GPU produces) are upcast before the arithmetic
    x = (torch.randn(8, 81, 11) * 30).bfloat16()
    assert (log_stablemax(x).double() - reference_log_stablemax_fp64(x.float())).abs().max() < 1e-5


def test_cross_entropies_and_masking():
    torch.manual_seed(0)
    logits = torch.randn(4, 9, 11)
    labels = torch.randint(1, 11, (4, 9))
    labels[0, :3] = 0  # unlabelled cells
    soft = token_cross_entropy(logits, labels, "softmax")
    ref = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(4, 9)
    assert torch.allclose(soft[labels != 0], ref[labels != 0], atol=1e-6)
    assert torch.all(soft[labels == 0] == 0)
    stable = token_cross_entropy(logits, labels, "stablemax")
    ref_s = -reference_log_stablemax_fp64(logits).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(stable[labels != 0].double(), ref_s[labels != 0], atol=1e-5)
    per_example = answer_loss(logits, labels, "stablemax")
    assert torch.allclose(per_example[0], stable[0, 3:].mean(), atol=1e-6)  # mean over labelled cells only


def test_continue_target():
    qh, qc = torch.tensor([2.0, -1.0]), torch.tensor([0.0, 3.0])
    t = continue_target(qh, qc, last=torch.tensor([False, True]))
    assert torch.allclose(t, torch.sigmoid(torch.tensor([2.0, -1.0])))
    t = continue_target(qh, qc, last=torch.tensor([False, False]))
    assert torch.allclose(t, torch.sigmoid(torch.tensor([2.0, 3.0])))
