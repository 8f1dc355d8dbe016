"""Inference-time halting: when to stop refining each puzzle, instead of always running N_sup steps.

A `HaltRule` stops a puzzle at the first step where any of its conditions holds:

- `learned`: the model's own rule from training (q_halt > 0, or q_halt > q_continue under Q-learning);
- `confidence=p`: the halting head's confidence sigmoid(q_halt) is at least p;
- `stable=k`: the answer has not changed for k consecutive steps (needs no halting head at all);
- `verified`: the answer passes the task's own check (`Task.verify`, see `verify.py`): a program that
  reproduces every example, a valid Sudoku keeping the clues, a shortest maze path. Needs no head either.

With no condition the rule is "all": every puzzle runs N_sup steps (the papers' evaluation protocol). The
answer read at a step does not depend on when the puzzle stops, so one full rollout scores every rule at once
(`tradeoff`); `run` is the fast path for solving, dropping finished puzzles from the batch as it goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import ConfigError
from .model import RecursiveModel
from .supervision import Rollout, halt_decision
from .verify import Verifier


@dataclass(frozen=True)
class HaltRule:
    learned: bool = False
    confidence: float | None = None
    stable: int | None = None
    verified: bool = False

    @staticmethod
    def parse(text: str) -> "HaltRule":
        """"all", or comma-separated conditions: "learned", "confidence=0.9", "stable=2", "verified"."""
        text = text.strip().lower()
        if text in ("all", ""):
            return HaltRule()
        learned, confidence, stable, verified = False, None, None, False
        for part in text.split(","):
            key, _, value = part.strip().partition("=")
            try:
                if key == "learned" and not value:
                    learned = True
                elif key == "verified" and not value:
                    verified = True
                elif key == "confidence":
                    confidence = float(value)
                    if not 0.0 < confidence < 1.0:
                        raise ValueError
                elif key == "stable":
                    stable = int(value)
                    if stable < 1:
                        raise ValueError
                else:
                    raise KeyError
            except (KeyError, ValueError):
                raise ConfigError(f"halting rule {text!r}: cannot read {part.strip()!r}; use 'all' or conditions "
                                  "like 'learned', 'confidence=0.9' (0 < p < 1), 'stable=2' (k >= 1), "
                                  "'verified', joined by commas") from None
        return HaltRule(learned, confidence, stable, verified)

    def __str__(self) -> str:
        parts = (["learned"] if self.learned else []) + (
            [f"confidence={self.confidence:g}"] if self.confidence is not None else []) + (
            [f"stable={self.stable}"] if self.stable is not None else []) + (["verified"] if self.verified else [])
        return ",".join(parts) or "all"

    def needs_q(self) -> bool:
        return self.learned or self.confidence is not None

    def fires(self, q_halt: torch.Tensor | None, learned: torch.Tensor | None,
              unchanged: torch.Tensor, verified: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) whether to stop now, given this step's halting logits, the learned rule's decision, for how
        many steps in a row the answer has not changed and whether it verifies."""
        stop = torch.zeros_like(unchanged, dtype=torch.bool)
        if self.learned and learned is not None:
            stop |= learned
        if self.confidence is not None and q_halt is not None:
            stop |= torch.sigmoid(q_halt.float()) >= self.confidence
        if self.stable is not None:
            stop |= unchanged >= self.stable
        if self.verified:
            if verified is None:
                raise ConfigError(f"halting rule {self} needs the task's answer check; pass a Verifier "
                                  "(recursia.verify) or drop 'verified' from the rule")
            stop |= verified
        return stop


def check_rule(rule: HaltRule, model: RecursiveModel, verifier: Verifier | None = None) -> None:
    if rule.needs_q() and model.q_head is None:
        raise ConfigError(f"halting rule {rule} needs a halting head, and this model was trained with "
                          "model.halting=fixed; use 'all' or 'stable=K'")
    if rule.verified and verifier is None:
        raise ConfigError(f"halting rule {rule} needs a task that checks its own answers (Task.verify); "
                          "use 'stable=2' or 'all' for this task")


def stop_steps(rule: HaltRule, rec: Rollout) -> torch.Tensor:
    """(B,) the 0-based step at which `rule` stops each example of a full rollout (the last step if never).
    A `verified` rule reads `rec.verified`, which the caller fills (`evaluate` does, from `Task.verify`)."""
    n = len(rec.predictions)
    b = rec.predictions[0].shape[0]
    device = rec.predictions[0].device
    stop = torch.full((b,), n - 1, dtype=torch.long, device=device)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    unchanged = torch.zeros(b, dtype=torch.long, device=device)
    if rule.verified and len(rec.verified) != n:
        raise ConfigError(f"halting rule {rule} needs whether each step's answer verifies, and this rollout "
                          "has no such record; score it with the task's verify (evaluate(..., verify=...))")
    for s in range(n):
        if s:
            same = (rec.predictions[s] == rec.predictions[s - 1]).all(-1)
            unchanged = torch.where(same, unchanged + 1, torch.zeros_like(unchanged))
        fire = rule.fires(rec.q_halt[s], rec.halt[s], unchanged,
                          rec.verified[s] if rule.verified else None) & ~done
        stop = torch.where(fire, torch.full_like(stop, s), stop)
        done |= fire
    return stop


@torch.no_grad()
def run(model: RecursiveModel, inputs: torch.Tensor, puzzle_ids: torch.Tensor, rule: HaltRule,
        n_steps: int | None = None, verifier: Verifier | None = None,
        groups: torch.Tensor | None = None) -> tuple[Rollout, torch.Tensor]:
    """Refine every example until `rule` stops it (or `n_steps`, default N_sup), computing only the examples
    still running. Returns a rollout whose entries for a stopped example repeat its final values, and (B,) the
    0-based step at which each example stopped. With a `verifier`, every step's answer is checked (and, when
    it fails, up to `verifier.candidates` answers are tried: the first that verifies replaces the argmax);
    `rec.verified` and `rec.tried` (answers checked per step, 0 once stopped) record it. `groups` (B,) ids
    (the copies of one puzzle under `--perturb`): under a `verified` rule, a group stops as a whole at the first
    step where one of its examples verifies, since one checked answer is all the puzzle needs."""
    check_rule(rule, model, verifier)
    cfg = model.cfg
    n_steps = n_steps or cfg.N_sup
    b = inputs.shape[0]
    device = inputs.device
    state = model.initial_state(b)
    active = torch.arange(b, device=device)
    stopped = torch.full((b,), n_steps - 1, dtype=torch.long, device=device)
    unchanged = torch.zeros(b, dtype=torch.long, device=device)
    rec = Rollout([], [], [], [], [])
    pred = torch.zeros(inputs.shape, dtype=torch.long, device=device)
    conf = torch.zeros(inputs.shape, dtype=torch.float32, device=device)
    has_q = model.q_head is not None
    q_halt = torch.zeros(b, device=device) if has_q else None
    q_cont = torch.zeros(b, device=device) if has_q and cfg.halting == "qlearn" else None
    for s in range(n_steps):
        sub = {k: v[active] for k, v in state.items()} if len(active) < b else state
        out = model(sub, inputs[active], puzzle_ids[active])
        c, p = torch.softmax(out.logits.float(), -1).max(-1)
        if verifier is not None:
            p, ok, tried = verifier(inputs[active], out.logits, p)
            verified = (rec.verified[-1] if s else torch.zeros(b, dtype=torch.bool, device=device)).clone()
            verified[active] = ok
            rec.verified.append(verified)
            step_tried = torch.zeros(b, dtype=torch.long, device=device)
            step_tried[active] = tried
            rec.tried.append(step_tried)
        if s:
            same = (p == pred[active]).all(-1)
            unchanged[active] = torch.where(same, unchanged[active] + 1, torch.zeros_like(same, dtype=torch.long))
        pred, conf = pred.clone(), conf.clone()
        pred[active], conf[active] = p, c
        if has_q:
            q_halt = q_halt.clone()
            q_halt[active] = out.q_halt.float()
            if q_cont is not None:
                q_cont = q_cont.clone()
                q_cont[active] = out.q_continue.float()
        learned = halt_decision(cfg, out)
        rec.predictions.append(pred)
        rec.confidence.append(conf)
        rec.q_halt.append(q_halt)
        rec.q_continue.append(q_cont)
        full_learned = None
        if learned is not None:
            full_learned = torch.zeros(b, dtype=torch.bool, device=device)
            full_learned[active] = learned
        rec.halt.append(full_learned)
        fire = rule.fires(out.q_halt, learned, unchanged[active], ok if verifier is not None else None)
        if groups is not None and rule.verified and ok.any():
            g = groups[active]
            found = torch.zeros(int(groups.max()) + 1, dtype=torch.bool, device=device)
            found[g[ok]] = True
            fire = fire | found[g]
        stopped[active[fire]] = s
        if len(active) == b:
            state = out.state  # fresh tensors that nothing else holds: later steps update them in place
        else:
            for k, v in out.state.items():
                state[k][active] = v
        active = active[~fire]
        if len(active) == 0:
            break
    return rec, stopped


def tradeoff(rec: Rollout, correct: torch.Tensor, rules: Sequence[HaltRule]) -> list[dict[str, float | str]]:
    """For each rule: the fraction of examples right at the step where it stops them, and the mean number of
    steps. `correct` (S, B): whether each step's answer is right. With `rec.verified`, also how many answers
    verify where the rule stops (DeepCoder: the score that counts, since any program that works is right)."""
    cols = torch.arange(correct.shape[1], device=correct.device)
    verified = torch.stack(rec.verified) if rec.verified else None
    rows = []
    for rule in rules:
        stop = stop_steps(rule, rec)
        row = {"rule": str(rule), "right": float(correct[stop, cols].double().sum()),
               "steps": float((stop + 1).double().sum())}
        if verified is not None:
            row["verified"] = float(verified[stop, cols].double().sum())
        rows.append(row)
    return rows


def summarise(totals: list[dict[str, float | str]], examples: int) -> list[dict[str, float | str]]:
    n = max(examples, 1)
    return [{"rule": t["rule"], "exact_accuracy": float(t["right"]) / n, "mean_steps": float(t["steps"]) / n,
             **({"verified_accuracy": float(t["verified"]) / n} if "verified" in t else {})} for t in totals]


def default_rules(has_q: bool, has_verify: bool = False) -> list[HaltRule]:
    """The settings `recursia eval --halting-sweep` compares (`verified` ones when the task checks answers)."""
    rules = [HaltRule(), HaltRule(stable=1), HaltRule(stable=2), HaltRule(stable=3), HaltRule(stable=4)]
    if has_verify:
        rules += [HaltRule(verified=True), HaltRule(stable=2, verified=True)]
    if has_q:
        rules += [HaltRule(learned=True)] + [HaltRule(confidence=p) for p in (0.5, 0.9, 0.99)] + [
            HaltRule(confidence=0.9, stable=2), HaltRule(confidence=0.99, stable=3)]
    return rules

