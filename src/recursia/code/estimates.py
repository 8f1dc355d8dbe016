"""Success-rate estimates a user can trust, and an alarm for when things get worse.

The seed proposes an exponential moving average that starts at 0.5 and decays at 0.999. After t outcomes it
is 0.5 * 0.999^t + (weighted mean of the outcomes) * (1 - 0.999^t): over the 164 HumanEval tasks the start
still carries 0.999^164 = 0.85 of the weight, so even 164 successes in a row leave it at 0.576 and 164
failures at 0.424 (`ema`, and tests/test_code_estimates.py). Dividing by (1 - decay^t), as Adam does, removes
the start (`ema_debiased`), but at this decay that is close to the plain mean with no statement of its noise.
So the estimate reported everywhere is the rate k/n with its Wilson 95% interval, and the Beta(1 + k, 1 + n - k)
posterior (uniform prior) beside it.

The divergence alarm compares the last `window` outcomes with all earlier ones (at least `window` of them):
with p the pooled rate, the noise of the difference is se = sqrt(p (1 - p) (1/window + 1/earlier)); the alarm
fires when earlier_rate - recent_rate > z * se (one-sided, z = 2: about 2% false alarms per check under no
change). A rise never fires it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .stats import wilson


def ema(outcomes: list[bool], start: float = 0.5, decay: float = 0.999) -> list[float]:
    """The seed's moving average after each outcome."""
    m, out = start, []
    for x in outcomes:
        m = decay * m + (1 - decay) * float(x)
        out.append(m)
    return out


def ema_debiased(outcomes: list[bool], decay: float = 0.999) -> list[float]:
    """The moving average started at 0 and divided by 1 - decay^t (the start no longer counts)."""
    m, out = 0.0, []
    for t, x in enumerate(outcomes, 1):
        m = decay * m + (1 - decay) * float(x)
        out.append(m / (1 - decay ** t))
    return out


def estimate(k: int, n: int) -> dict:
    """Rate, Wilson 95% interval, and the Beta posterior's mean and 95% interval (uniform prior)."""
    lo, hi = wilson(k, n)
    a, b = 1 + k, 1 + n - k
    from scipy.stats import beta

    return {"k": k, "n": n, "rate": k / n if n else None, "wilson95": [lo, hi],
            "beta_mean": a / (a + b), "beta95": [float(beta.ppf(0.025, a, b)), float(beta.ppf(0.975, a, b))]}


@dataclass(frozen=True)
class Divergence:
    fired: bool
    recent: float | None
    earlier: float | None
    gap: float | None   # earlier - recent
    noise: float | None  # z * se
    window: int
    earlier_n: int


def divergence(outcomes: list[bool], window: int = 30, z: float = 2.0) -> Divergence:
    """Whether the last `window` outcomes fall below the earlier ones by more than their noise (see above)."""
    n_early = len(outcomes) - window
    if window < 1 or n_early < window:
        return Divergence(False, None, None, None, None, window, max(n_early, 0))
    recent = sum(outcomes[-window:]) / window
    earlier = sum(outcomes[:n_early]) / n_early
    p = sum(outcomes) / len(outcomes)
    se = math.sqrt(p * (1 - p) * (1 / window + 1 / n_early))
    gap = earlier - recent
    return Divergence(se > 0 and gap > z * se, recent, earlier, gap, z * se, window, n_early)


def halting_summary(rows: list[dict]) -> dict:
    """Distribution of halting depth and halting reason over record rows (store rows or records)."""
    depths: dict[int, int] = {}
    reasons: dict[str, int] = {}
    for r in rows:
        depths[r["halt_depth"]] = depths.get(r["halt_depth"], 0) + 1
        reason = r["halt_reason"].split(":")[0]  # "stuck: same error" -> "stuck"
        reasons[reason] = reasons.get(reason, 0) + 1
    return {"depth": dict(sorted(depths.items())), "reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1]))}


def summarise_store(rows: list[dict], window: int = 30) -> dict:
    """Per benchmark and per task type: attempts, records, hidden pass rate with intervals, halting, alarm."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault(("benchmark", r["benchmark"]), []).append(r)
        groups.setdefault(("type", r["task_type"]), []).append(r)
    out: dict = {"records": len(rows), "benchmark": {}, "type": {}}
    for (kind, name), rs in sorted(groups.items()):
        outcomes = [bool(r["hidden_final"]) for r in rs]
        alarm = divergence(outcomes, window)
        out[kind][name] = {"records": len(rs), "attempts": sum(r["steps"] for r in rs),
                           "calls": sum(r["calls"] for r in rs), "hidden": estimate(sum(outcomes), len(outcomes)),
                           "depth0": estimate(sum(r["hidden_by_depth"][0] for r in rs if r["hidden_by_depth"]),
                                              len(rs)),
                           "ema": ema(outcomes)[-1], "halting": halting_summary(rs),
                           "alarm": alarm.__dict__}
    return out
