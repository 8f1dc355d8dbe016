"""Deep supervision and halting: the outer loop, written once and shared by TRM, HRM and the baseline.

Training keeps a persistent *carry* of `batch` slots. Each slot holds one example, its recurrent state and how
many supervision steps it has had. One optimizer step is one supervision step for every slot:

1. slots whose example halted are reset to the initial state and refilled with the *next* examples of the
   stream; slots still working keep their example and continue from their detached state. New examples go only
   to free slots, so none is ever dropped (the reference loads a whole new batch each step and silently drops
   the rows that land in busy slots);
2. the model runs one step; its loss is the answer cross-entropy of every slot plus the halting losses;
3. a slot halts after N_sup steps, or earlier when its halting head says the answer is right (`halt`:
   q_halt > 0; `qlearn`: q_halt > q_continue). With probability `halt_exploration_prob` a slot must first reach
   a minimum number of steps drawn uniformly from 2..N_sup.

Evaluation and solving use `rollout`, which runs a batch for all N_sup steps and reports every step, from which
both the all-steps answer and the early-halting answer are read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch

from .config import ModelConfig
from .losses import IGNORE, answer_loss, continue_target, halt_loss
from .model import RecursiveModel, State, StepOutput


@dataclass
class Examples:
    """A block of examples on the model's device. `index` is the example's row in its split (-1: none)."""

    inputs: torch.Tensor  # (B, L)
    labels: torch.Tensor  # (B, L), 0 = no label
    puzzle_ids: torch.Tensor  # (B,)
    index: torch.Tensor  # (B,) int64

    def where(self, mask: torch.Tensor, other: "Examples") -> "Examples":
        """Rows of `other` where mask is true, of self elsewhere."""
        out = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            m = mask.view(-1, *([1] * (a.dim() - 1)))
            out[f.name] = torch.where(m, b, a)
        return Examples(**out)


@dataclass
class Carry:
    state: State
    steps: torch.Tensor  # (B,) int32 supervision steps taken by the slot's example
    halted: torch.Tensor  # (B,) bool: the slot is free for a new example
    examples: Examples

    def tensors(self) -> dict[str, torch.Tensor]:
        """Flat name -> tensor view, for checkpoints."""
        out = {f"state.{k}": v for k, v in self.state.items()}
        out.update(steps=self.steps, halted=self.halted)
        out.update({f"examples.{f.name}": getattr(self.examples, f.name) for f in fields(self.examples)})
        return out

    @staticmethod
    def from_tensors(t: dict[str, torch.Tensor]) -> "Carry":
        state = {k[len("state."):]: v for k, v in t.items() if k.startswith("state.")}
        ex = Examples(**{f.name: t[f"examples.{f.name}"] for f in fields(Examples)})
        return Carry(state, t["steps"], t["halted"], ex)


def halt_decision(cfg: ModelConfig, out: StepOutput) -> torch.Tensor | None:
    """The learned halting rule (None when halting is fixed): q_halt > 0, or q_halt > q_continue."""
    if cfg.halting == "halt":
        return out.q_halt > 0
    if cfg.halting == "qlearn":
        return out.q_halt > out.q_continue
    return None


def cell_stats(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(predictions, per-example cell accuracy, per-example exact match) over labelled cells."""
    pred = logits.argmax(-1)
    valid = labels != IGNORE
    right = (pred == labels) & valid
    count = valid.sum(-1)
    accuracy = right.sum(-1).float() / count.clamp(min=1)
    exact = right.sum(-1) == count
    return pred, accuracy, exact


class DeepSupervision:
    """Training step with a persistent carry. `forward` is the (possibly DDP-wrapped or compiled) callable
    that runs `model.forward`; `model` is the bare module (state handling)."""

    def __init__(self, model: RecursiveModel, cfg: ModelConfig, loss_kind: str = "stablemax",
                 forward: Callable[..., StepOutput] | None = None, generator: torch.Generator | None = None):
        self.model, self.cfg, self.loss_kind = model, cfg, loss_kind
        self.forward = forward or model
        self.generator = generator

    def empty_carry(self, batch: int, seq_len: int, device: torch.device) -> Carry:
        z = torch.zeros(batch, seq_len, dtype=torch.uint8, device=device)
        ex = Examples(z, z.clone(), torch.zeros(batch, dtype=torch.int32, device=device),
                      torch.full((batch,), -1, dtype=torch.int64, device=device))
        return Carry(self.model.initial_state(batch), torch.zeros(batch, dtype=torch.int32, device=device),
                     torch.ones(batch, dtype=torch.bool, device=device), ex)

    def refill(self, carry: Carry, fetch: Callable[[int], Examples]) -> Carry:
        """Reset the free slots and load the next examples into them, in slot order."""
        free = carry.halted
        n_free = int(free.sum())
        if n_free == 0:
            return carry
        new = fetch(n_free)
        slot_of = torch.cumsum(free.long(), 0) - 1  # k-th free slot takes the k-th new example
        gathered = Examples(*(getattr(new, f.name)[slot_of.clamp(min=0)] for f in fields(Examples)))
        return Carry(self.model.reset_state(carry.state, free),
                     torch.where(free, torch.zeros_like(carry.steps), carry.steps),
                     torch.zeros_like(free), carry.examples.where(free, gathered))

    def train_step(self, carry: Carry, fetch: Callable[[int], Examples]) -> tuple[Carry, torch.Tensor, dict]:
        """One supervision step. Returns the new carry, the summed loss (divide by the batch size before
        backward) and summed metrics over the examples that halted in this step."""
        cfg = self.cfg
        carry = self.refill(carry, fetch)
        ex = carry.examples
        out = self.forward(carry.state, ex.inputs, ex.puzzle_ids)
        steps = carry.steps + 1
        last = steps >= cfg.N_sup
        halted = last.clone()
        learned = halt_decision(cfg, out)
        if learned is not None and cfg.N_sup > 1:
            halted |= learned
            explore = torch.rand(steps.shape, device=steps.device, generator=self.generator) \
                < cfg.halt_exploration_prob
            min_steps = torch.randint(2, cfg.N_sup + 1, steps.shape, device=steps.device,
                                      generator=self.generator)
            halted &= steps >= torch.where(explore, min_steps, torch.zeros_like(min_steps))

        labels = ex.labels.long()
        lm = answer_loss(out.logits, labels, self.loss_kind)
        pred, accuracy, exact = cell_stats(out.logits.detach(), labels)
        loss = lm.sum()
        q_halt_l, q_cont_l = torch.zeros_like(lm), None
        if out.q_halt is not None:
            q_halt_l = halt_loss(out.q_halt, exact)
            q_loss = q_halt_l
            if cfg.halting == "qlearn":
                with torch.no_grad():
                    nxt = self.forward(out.state, ex.inputs, ex.puzzle_ids)
                target = continue_target(nxt.q_halt, nxt.q_continue, last)
                q_cont_l = torch.nn.functional.binary_cross_entropy_with_logits(
                    out.q_continue, target, reduction="none")
                q_loss = q_loss + q_cont_l
            loss = loss + 0.5 * q_loss.sum()

        done = halted & (ex.index >= 0) & ((labels != IGNORE).sum(-1) > 0)
        d = done.float()
        metrics = {
            "count": d.sum(),
            "cell_accuracy": (accuracy * d).sum(),
            "exact_accuracy": (exact.float() * d).sum(),
            "steps": (steps.float() * d).sum(),
            "lm_loss": (lm.detach() * d).sum(),
            "q_halt_loss": (q_halt_l.detach() * d).sum(),
            # What the reference logs as lm_loss / q_halt_loss: sums over every slot, halted or not, divided
            # by the batch (per step, so curves compare with published logs). `train.py` logs them per step.
            "ref_lm_loss": lm.detach().sum() / len(lm),
            "ref_q_halt_loss": q_halt_l.detach().sum() / len(lm),
        }
        if out.q_halt is not None:
            metrics["q_halt_accuracy"] = (((out.q_halt >= 0) == exact).float() * d).sum()
        if q_cont_l is not None:
            metrics["ref_q_continue_loss"] = q_cont_l.detach().sum() / len(lm)
        new = Carry(out.state, steps, halted, ex)
        return new, loss, metrics


@dataclass
class Rollout:
    """Per-step record of running a batch for N_sup steps (evaluation, solving, visualisation)."""

    predictions: list[torch.Tensor]  # N_sup x (B, L) argmax tokens
    confidence: list[torch.Tensor]  # N_sup x (B, L) probability of the predicted token
    q_halt: list[torch.Tensor | None]
    q_continue: list[torch.Tensor | None]
    halt: list[torch.Tensor | None]  # N_sup x (B,) the learned rule's decision after each step
    # filled only where the task's answer check ran (`halting.run` with a Verifier, `evaluate` with verify):
    verified: list[torch.Tensor] = field(default_factory=list)  # N_sup x (B,) bool: the answer verifies
    tried: list[torch.Tensor] = field(default_factory=list)  # N_sup x (B,) answers checked (candidates)


@torch.no_grad()
def rollout(model: RecursiveModel, inputs: torch.Tensor, puzzle_ids: torch.Tensor, n_steps: int | None = None,
            on_step: Callable[[Rollout], None] | None = None) -> Rollout:
    """Run every example from the initial state for `n_steps` (default N_sup) supervision steps.

    Every example runs every step (evaluation reads all steps); `halting.run` stops examples early instead.
    `on_step` sees the record after each step (`solve --watch` redraws the grid there, while the model runs).
    """
    cfg = model.cfg
    n_steps = n_steps or cfg.N_sup
    state = model.initial_state(inputs.shape[0])
    rec = Rollout([], [], [], [], [])
    for _ in range(n_steps):
        out = model(state, inputs, puzzle_ids)
        state = out.state
        probs = torch.softmax(out.logits.float(), -1)
        conf, pred = probs.max(-1)
        rec.predictions.append(pred)
        rec.confidence.append(conf)
        rec.q_halt.append(out.q_halt)
        rec.q_continue.append(out.q_continue)
        rec.halt.append(halt_decision(cfg, out))
        if on_step is not None:
            on_step(rec)
    return rec

