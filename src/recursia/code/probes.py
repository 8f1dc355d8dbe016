"""Probe calls that tell candidate programs apart, for the `agree` halting rule and the choice among candidates.

A program can pass every visible test and still be wrong: MBPP shows one assert, and most of a small model's
wrong HumanEval+ programs pass the prompt's examples (docs/benchmarks.md). Two programs that both pass but
return different values on some other input cannot both be right, so the loop runs every passing program on
the same probe calls and keeps the behaviour that most programs share (as AlphaCode clusters samples and
CodeT ranks them by agreement).

The probes are the entry point's calls found in the visible tests and the prompt, then the same calls with
one literal argument changed in a way that keeps its type and mostly makes it smaller (an empty or shorter
list or string, 0, 1, x - 1, a reversed sequence): inputs a right program should take, with no expected
value needed. No model call is spent on them.
"""

from __future__ import annotations

import ast
import builtins
import copy
import hashlib
import math
import re

from .iotest import Test, value_test


def probe_calls(task, limit: int = 6) -> list[str]:
    """What the visible tests and the prompt compute with the entry point, in order of appearance: from an
    `assert` the compared side that calls it (`set(f(x))` where the test reads `set(f(x)) == {...}`, so that
    programs are compared as the test compares them), else the entry point's calls found in the text. Calls
    of names that only the task's text defines (`f(arr)` in a signature) are left out."""
    found: list[str] = []

    def add(expr: str) -> None:
        try:
            node = ast.parse(expr.strip(), mode="eval")
        except SyntaxError:
            return
        free = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - {task.entry_point} - set(dir(builtins))
        text = ast.unparse(node)
        if not free and not any(text in f for f in found):  # `f(x)` again after `set(f(x))`: the same probe
            found.append(text)

    pattern = re.compile(rf"\b{re.escape(task.entry_point)}\s*\(")
    for text in [t.source for t in task.visible_tests] + [task.prompt]:
        compared = _compared(text, task.entry_point)
        if compared:
            for expr in compared:
                add(expr)
            continue
        for m in pattern.finditer(text):
            depth, end = 0, None
            for j in range(m.end() - 1, min(len(text), m.end() + 400)):
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                if depth == 0:
                    end = j + 1
                    break
            if end is not None:
                add(text[m.start():end])
    return found[:limit]


def _target(tree: ast.AST, entry_point: str | None) -> ast.Call | None:
    """The first call of the entry point in tree (of any function when entry_point is None), or None."""
    return next((n for n in ast.walk(tree) if isinstance(n, ast.Call) and (
        entry_point is None or isinstance(n.func, ast.Name) and n.func.id == entry_point)), None)


def _compared(source: str, entry_point: str) -> list[str]:
    """The sides of a test's asserts that call the entry point: `a` in `assert a == b` or in
    `assert math.isclose(a, b)`; [] when the text is no such Python."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out = []
    for st in ast.walk(tree):
        if not isinstance(st, ast.Assert):
            continue
        t = st.test
        parts = [t.left, *t.comparators] if isinstance(t, ast.Compare) else list(t.args) if isinstance(
            t, ast.Call) else [t]
        out += [ast.unparse(p) for p in parts if _target(p, entry_point) is not None][:1]
    return out


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


def mutated_calls(calls: list[str], limit: int, entry_point: str | None = None) -> list[str]:
    """Up to `limit` probes made from `calls` by changing one literal argument of the entry point's call in
    each (the outermost call when no entry point is named; see the module doc), taken round-robin over the
    calls so that each contributes; originals and repeats are left out."""
    per_call: list[list[str]] = []
    for call in calls:
        tree = ast.parse(call, mode="eval")
        node = _target(tree, entry_point)
        if node is None or any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords):
            continue
        try:
            values = [ast.literal_eval(a) for a in [*node.args, *(k.value for k in node.keywords)]]
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue  # an argument that is not a literal: nothing to vary
        mine = []
        for i, v in enumerate(values):
            for w in _variants(v):
                text = _literal_text(w)
                if text is None or w == v:
                    continue
                varied = copy.deepcopy(tree)
                target, new = _target(varied, entry_point), ast.parse(text, mode="eval").body
                if i < len(target.args):
                    target.args[i] = new
                else:
                    target.keywords[i - len(target.args)].value = new
                mine.append(ast.unparse(varied))
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
    return (calls + mutated_calls(calls, limit, task.entry_point))[:limit]


def probe_tests(calls: list[str]) -> list[Test]:
    return [value_test(c) for c in calls]


def _canonical(v) -> str:
    """A value as text that equal values share: floats to 9 significant digits (two right programs may sum in
    another order), sets and dicts sorted (their order follows string hashes, which differ between processes)."""
    if isinstance(v, float):
        return repr(v if not math.isfinite(v) else float(f"{v:.9g}"))
    if isinstance(v, (list, tuple)):
        inner = ", ".join(_canonical(e) for e in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner}{',' if len(v) == 1 else ''})"
    if isinstance(v, (set, frozenset)):
        return "{" + ", ".join(sorted(_canonical(e) for e in v)) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join(sorted(f"{_canonical(k)}: {_canonical(e)}" for k, e in v.items())) + "}"
    return repr(v)


def behaviour(t) -> str:
    """One probe's outcome as programs are compared on it: the value (short text and a hash of all of it), or
    "error" for any exception or time-out (two right programs may refuse an input they need not take in
    different ways)."""
    if t.passed and t.values:
        text = _canonical(t.values[0][0])
        return f"{text[:80]}#{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    return "error"
