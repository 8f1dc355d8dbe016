"""FLOPs of a training step and of a solve, counted from the config, and model FLOPs utilisation (MFU).

A supervision step is a number of *network calls* (one call = `layers` blocks on every token), some without
gradient and some with: TRM runs T cycles of n latent updates and one answer update, the last cycle with
gradient (or, with `one_step_grad`, only its last two calls); HRM runs T x (n L calls + 1 H call) with gradient
on the last L and H calls only; the baseline transformer makes one call. A call with gradient costs three
times its forward (forward, gradient of the input, gradient of the weights). Q-learning halting adds a full
forward supervision step without gradient for the continue target.

Only matrix multiplications are counted (2 FLOPs per multiply-add), the convention for MFU; norms, rotary
embeddings and softmax are a few percent at these sizes and left out. `tests/test_flops.py` checks the count
against PyTorch's own FLOP counter.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ModelConfig
from .layers import swiglu_width

# Dense bf16 tensor-core peaks (no sparsity), from the vendors' data sheets, by a name fragment.
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "A10G": 70.0, "4090": 165.2}


def block_flops(cfg: ModelConfig, tokens: int) -> int:
    """Forward FLOPs of one block on one example of `tokens` tokens (puzzle prefix included)."""
    d = cfg.hidden_size
    channel = 6 * tokens * d * swiglu_width(d, cfg.expansion, cfg.mlp_multiple)  # gate_up (2w) and down (w)
    if cfg.mixer == "attention":
        mixer = 8 * tokens * d * d + 4 * tokens * tokens * d  # qkv + out projections; scores and weighted sum
    else:
        mixer = 6 * d * tokens * swiglu_width(tokens, cfg.expansion, cfg.mlp_multiple)
    return mixer + channel


@dataclass(frozen=True)
class StepCount:
    """Network calls in one supervision step, by whether they carry gradient."""

    no_grad_calls: int
    grad_calls: int
    layers_per_call: int
    target_calls: int = 0  # Q-learning's extra forward step for the continue target (no gradient)


def calls_per_step(cfg: ModelConfig) -> StepCount:
    T, n = cfg.T, cfg.n
    if cfg.arch == "transformer":
        return StepCount(0, 1, cfg.layers)
    total = T * (n + 1)  # TRM: n latent updates and one answer update per cycle; HRM: n L calls and one H call
    if cfg.arch == "hrm" or cfg.one_step_grad:
        grad = 2
    else:
        grad = n + 1
    target = total if cfg.halting == "qlearn" else 0
    return StepCount(total - grad, grad, cfg.layers, target)


@dataclass(frozen=True)
class Flops:
    forward_per_example: int  # one supervision step, inference (every call without gradient, heads included)
    train_per_example: int  # one supervision step in training: forward, backward, Q-learning target

    def train_step(self, batch: int) -> int:
        """FLOPs of one optimizer step (one supervision step for every slot of the batch)."""
        return self.train_per_example * batch


def count(cfg: ModelConfig, seq_len: int, vocab_size: int) -> Flops:
    tokens = seq_len + cfg.puzzle_emb_len
    call = cfg.layers * block_flops(cfg, tokens)
    heads = 2 * tokens * cfg.hidden_size * vocab_size  # the answer head runs on every token, prefix included
    if cfg.halting != "fixed":
        heads += 2 * cfg.hidden_size * 2  # Q head on the first token (halt, continue)
    c = calls_per_step(cfg)
    calls = c.no_grad_calls + c.grad_calls
    forward = calls * call + heads
    train = c.no_grad_calls * call + 3 * (c.grad_calls * call + heads) + c.target_calls * call + (
        heads if c.target_calls else 0)
    return Flops(forward, train)


def peak_tflops(device_name: str) -> float | None:
    """The bf16 dense peak of a known accelerator, or None (CPUs and unknown devices)."""
    for fragment, peak in PEAK_BF16_TFLOPS.items():
        if fragment.lower() in device_name.lower():
            return peak
    return None


def mfu(flops_per_s: float, peak: float | None) -> float | None:
    """Achieved FLOP/s as a fraction of the peak (None when the peak is unknown)."""
    return None if not peak else flops_per_s / (peak * 1e12)
