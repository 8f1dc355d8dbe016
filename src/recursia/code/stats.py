"""The statistics every code benchmark report carries: Wilson intervals for a pass rate, McNemar's exact test
for two arms scored on the same tasks, and a mean with a normal interval for per-task fractions (S > 1).

SciPy does the arithmetic (`binomtest`); it comes with the `code` extra.
"""

from __future__ import annotations

import math


def _binomtest():
    try:
        from scipy.stats import binomtest
    except ImportError:
        from ..errors import RecursiaError

        raise RecursiaError("code benchmark statistics need SciPy: pip install 'recursia[code]'") from None
    return binomtest


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n (sensible at 0 and n, unlike the normal interval)."""
    if n == 0:
        return (0.0, 1.0)
    ci = _binomtest()(k, n).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


def mean_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of per-task values in [0, 1], normal approximation, clipped to [0, 1]."""
    n = len(values)
    if n == 0:
        return (0.0, 0.0, 1.0)
    m = sum(values) / n
    if n == 1:
        return (m, 0.0, 1.0)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    from statistics import NormalDist

    half = NormalDist().inv_cdf(0.5 + level / 2) * sd / math.sqrt(n)
    return (m, max(0.0, m - half), min(1.0, m + half))


def mcnemar(a: list[bool], b: list[bool]) -> dict:
    """McNemar's exact test on paired outcomes: only the discordant pairs count (a right and b wrong: `a_only`,
    the reverse: `b_only`); under "no difference" each is Binomial(a_only + b_only, 1/2)."""
    if len(a) != len(b):
        raise ValueError("paired outcomes must have the same length")
    a_only = sum(x and not y for x, y in zip(a, b))
    b_only = sum(y and not x for x, y in zip(a, b))
    d = a_only + b_only
    p = 1.0 if d == 0 else float(_binomtest()(a_only, d, 0.5).pvalue)
    return {"pairs": len(a), "both": sum(x and y for x, y in zip(a, b)), "a_only": a_only, "b_only": b_only,
            "neither": sum(not x and not y for x, y in zip(a, b)), "p_value": p}
