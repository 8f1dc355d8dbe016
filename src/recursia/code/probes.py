"""Probe calls that tell candidate programs apart, for the `agree` halting rule and the choice among candidates.

A program can pass every visible test and still be wrong: MBPP shows one assert, and half of HumanEval's
wrong programs pass the prompt's examples. Two programs that both pass but return different values on some
other input cannot both be right, so the loop runs every passing program on the same probe calls and keeps
the behaviour that most programs share (as AlphaCode clusters samples and CodeT ranks them by agreement).

The probes are the entry point's calls found in the visible tests and the prompt, then the same calls with
one literal argument changed in a way that keeps its type and mostly makes it smaller (an empty or shorter
list or string, 0, 1, x - 1, a reversed sequence): inputs a right program should take, with no expected
value needed. No model call is spent on them.
"""

from __future__ import annotations

import ast
import hashlib
import math
import re

from .iotest import Test, value_test


def probe_calls(task, limit: int = 6) -> list[str]:
    """Calls of the entry point found in the visible tests and the prompt, in order of appearance."""
    found: list[str] = []
    pattern = re.compile(rf"\b{re.escape(task.entry_point)}\s*\(")
    for text in [t.source for t in task.visible_tests] + [task.prompt]:
        for m in pattern.finditer(text):
            depth, end = 0, None
            for j in range(m.end() - 1, min(len(text), m.end() + 400)):
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                if depth == 0:
                    end = j + 1
                    break
            if end is None:
                continue
            call = text[m.start():end]
            try:
                ast.parse(call, mode="eval")
            except SyntaxError:
                continue
            if call not in found:
                found.append(call)
    return found[:limit]


def _variants(v) -> list:
    """Values of v's type near it, smaller ones first (so that a probe rarely runs long)."""
    if isinstance(v, bool):
        return [not v]
    if isinstance(v, int):
        return [0, 1, v - 1, -v] if v not in (0, 1) else [v + 1, v + 2]
    if isinstance(v, float):
        return [0.0, v / 2, -v] if v else [1.5, -2.0]
    if isinstance(v, (str, list, tuple)):
        out = [v[:0], v[:1], v[:-1], v[::-1]]
        if len(v) and all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in v):
            out.append(type(v)(sorted(v, reverse=True)))
        return out
    if isinstance(v, dict):
        return [{}, dict(list(v.items())[:1])]
    return []


def _literal_text(v) -> str | None:
    """repr(v) if it reads back as the same literal (not inf, nan or an object's repr), else None."""
    text = repr(v)
    try:
        return text if ast.literal_eval(text) == v else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def mutated_calls(calls: list[str], limit: int) -> list[str]:
    """Up to `limit` calls made from `calls` by changing one literal argument (see the module doc), taken
    round-robin over the original calls so that each contributes; originals and repeats are left out."""
    per_call: list[list[str]] = []
    for call in calls:
        node = ast.parse(call, mode="eval").body
        if not isinstance(node, ast.Call):
            continue
        args = [("", a) for a in node.args] + [(k.arg or "", k.value) for k in node.keywords]
        if any(isinstance(a, ast.Starred) for _, a in args) or any(not k for k, _ in args[len(node.args):]):
            continue
        try:
            values = [ast.literal_eval(a) for _, a in args]
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue  # an argument that is not a literal: nothing to vary
        texts = [_literal_text(v) for v in values]
        if any(t is None for t in texts):
            continue
        head, mine = ast.unparse(node.func), []
        for i, v in enumerate(values):
            for w in _variants(v):
                wt = _literal_text(w)
                if wt is None or wt == texts[i]:
                    continue
                parts = [wt if j == i else texts[j] for j in range(len(values))]
                parts = [p if not k else f"{k}={p}" for (k, _), p in zip(args, parts)]
                mine.append(f"{head}({', '.join(parts)})")
        per_call.append(mine)
    out: list[str] = []
    for rank in range(max((len(m) for m in per_call), default=0)):
        for mine in per_call:
            if rank < len(mine) and mine[rank] not in out and mine[rank] not in calls:
                out.append(mine[rank])
    return out[:limit]


def probes_for(task, limit: int = 16) -> list[str]:
    """The probe calls of a task: its visible calls, then mutations of them, `limit` in all."""
    calls = probe_calls(task)
    return (calls + mutated_calls(calls, limit))[:limit]


def probe_tests(calls: list[str]) -> list[Test]:
    return [value_test(c) for c in calls]


def _canonical(v):
    """Floats to 9 significant digits (two right programs may sum in another order), containers inside out."""
    if isinstance(v, float):
        return v if not math.isfinite(v) else float(f"{v:.9g}")
    if isinstance(v, (list, tuple)):
        return type(v)(_canonical(e) for e in v)
    if isinstance(v, dict):
        return {k: _canonical(e) for k, e in v.items()}
    return v


def behaviour(t) -> str:
    """One probe's outcome as programs are compared on it: the value (short text and a hash of all of it), or
    the error type."""
    if t.passed and t.values:
        text = repr(_canonical(t.values[0][0]))
        return f"{text[:80]}#{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    return t.error_type or "?"
