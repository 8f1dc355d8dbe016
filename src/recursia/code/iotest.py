"""Tests as the sandbox runs them and the trusted parent judges them.

A benchmark test such as `assert set(f([1, 2], 3)) == {1, 2}` is split in two:

- the *leaves*, the parts that need the candidate's code (`f([1, 2], 3)`), run in the sandbox, which sends
  back the plain values it got (values.py);
- the *check*, everything else (`set(_v0) == {1, 2}`), evaluated here in the parent with real builtins.

Expected values therefore never enter the sandbox, and a forged result is only a claim about outputs: it
passes only if it holds the right outputs, which the candidate cannot see. `convert` makes the split from a
test's source; `Test`s built directly (EvalPlus inputs) carry their arguments as values and an `equal` check
whose expected value comes from the reference solution (`expected.py`).

Which names are the candidate's: those the task says (its entry point and what its reference defines), those
the test's own statements assign, and any name that is neither a builtin nor a module. A candidate's program
cannot move that line: it is drawn from the test and the task alone.
"""

from __future__ import annotations

import ast
import builtins
import functools
import sys
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

from ..errors import DataError
from .values import ValueRefused, check_collisions_deep, short

CAPTURE = "_recursia_capture"  # called by a test's sandbox code once per assert: CAPTURE(j, thunk, ...)
ARGS = "_recursia_args"        # a Test's `args`, bound in the test's namespace before its code runs
_BUILTINS = frozenset(dir(builtins))
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"math", "re", "collections", "itertools"}


class Unconvertible(DataError):
    """A test the parent cannot judge without trusting the sandbox (the message says why)."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # an expected value still to be computed from the reference solution


@dataclass(frozen=True)
class Check:
    """How the parent judges one assert from its leaves' values.

    Either `expr`, a Python expression over `_v(k)` (the k-th leaf's value; raises what the leaf raised),
    evaluated with real builtins and `imports`; or `equal`: leaf 0 compared with `expected` under EvalPlus's
    rules (`atol`, `rule`; evalplus.py), `group` naming the inputs that share its sticky float tolerance."""

    leaves: tuple[str, ...]
    expr: str = ""
    imports: tuple[str, ...] = ()
    equal: bool = False
    expected: Any = MISSING
    atol: float = 0.0
    rule: str = ""
    group: str = ""
    expected_text: str = ""  # `assert f(x) == 3` gives "3": a failure then reads "f(x) returned 2, expected 3"


@dataclass(frozen=True)
class Test:
    """One test: `source` is what users and models see; `code` runs in the sandbox after the program and the
    task's setup, calling CAPTURE once per check, in order; `args` (plain values) are bound to ARGS first."""

    source: str
    code: str
    checks: tuple[Check, ...]
    args: tuple | None = field(default=None, compare=False)
    # False: runs in the namespace the previous such test used (EvalPlus runs a split's inputs in one process,
    # and a fresh namespace per input would cost more than the call); True: a fresh copy of the program's.
    fresh: bool = True

    def __str__(self) -> str:
        return self.source


# ----------------------------------------------------------------------------------------------------------
def call_test(entry_point: str, args: Sequence, *, expected: Any = MISSING, atol: float = 0.0, rule: str = "",
              group: str = "", source: str | None = None) -> Test:
    """`entry_point(*args)` compared with `expected` (MISSING: from the reference), as EvalPlus scores."""
    shown = source or f"{entry_point}(*{short(list(args), 120)})"
    return Test(source=shown, code=f"{CAPTURE}(0, lambda: {entry_point}(*{ARGS}))\n",
                checks=(Check(leaves=(shown,), equal=True, expected=expected, atol=atol, rule=rule, group=group),),
                args=tuple(args), fresh=False)


def value_test(call: str, source: str | None = None) -> Test:
    """Runs `call` and reports its value, judging nothing (the `agree` rule's probes): always passes unless
    the call raises."""
    _parse(call, "eval")
    return Test(source=source or call, code=f"{CAPTURE}(0, lambda: ({call}))\n",
                checks=(Check(leaves=(call,), expr="_v(0) is not _NOTHING"),))


def defines_test(entry_point: str) -> Test:
    """'the program defines entry_point as a function': the loop's first visible test."""
    return Test(source=f"assert callable({entry_point}), 'the program does not define {entry_point}'",
                code=f"{CAPTURE}(0, lambda: callable({entry_point}))\n",
                checks=(Check(leaves=(f"callable({entry_point})",), expr="_v(0) is True"),))


def convert(source: str, names: Iterable[str] = (), setup: str = "") -> Test:
    """The Test for a snippet of asserts (`assert f(1) == 2`, with optional statements before), or
    Unconvertible. `names` are the candidate's names beyond the ones found by the rule in the module doc."""
    tree = _parse(source, "exec")
    setup_tree = _parse(setup, "exec") if setup.strip() else ast.Module(body=[], type_ignores=[])
    imports = [ast.unparse(s) for s in setup_tree.body + tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    modules = {(a.asname or a.name).split(".")[0] for s in setup_tree.body + tree.body
               if isinstance(s, (ast.Import, ast.ImportFrom)) for a in s.names}
    candidate = set(names) | _assigned(setup_tree.body) | _assigned(tree.body)
    body, checks = [], []
    for stmt in tree.body:
        if isinstance(stmt, ast.Assert):
            leaves, expr = _split(stmt.test, candidate, modules)
            if not leaves:
                raise Unconvertible(f"{ast.unparse(stmt)!r} does not use the program: nothing of the candidate's "
                                    "to check")
            auto = sorted(n for n in _names(expr) if n not in _BUILTINS and n not in modules and n in _STDLIB
                          and n not in ("_v",))
            checks.append(Check(leaves=tuple(ast.unparse(leaf) for leaf in leaves), expr=ast.unparse(expr),
                                imports=tuple(imports + [f"import {m}" for m in auto]),
                                expected_text=_expected_text(expr)))
            thunks = ", ".join(f"lambda: ({ast.unparse(leaf)})" for leaf in leaves)
            body.append(f"{CAPTURE}({len(checks) - 1}, {thunks})")
        else:
            if any(isinstance(n, ast.Assert) for n in ast.walk(stmt)):
                raise Unconvertible(f"an assert inside a {type(stmt).__name__.lower()} statement cannot be "
                                    "judged outside the sandbox; write each assert at the top level of the test")
            body.append(ast.unparse(stmt))
    if not checks:
        raise Unconvertible(f"the test {_clip(source)!r} asserts nothing: a test must assert something about the "
                            "function's results (e.g. assert f(1) == 2)")
    return Test(source=source.strip(), code="\n".join(body) + "\n", checks=tuple(checks))


def _expected_text(expr) -> str:
    """The other side of `leaf == something` (either way round), for messages; "" for any other check."""
    if not (isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], ast.Eq)):
        return ""
    sides = [expr.left, expr.comparators[0]]
    is_leaf = [isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and x.func.id == "_v" for x in sides]
    if is_leaf.count(True) != 1 or "_v" in _names(sides[is_leaf.index(False)]):
        return ""
    return _clip(ast.unparse(sides[is_leaf.index(False)]), 200)


def _parse(source: str, mode: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
            return ast.parse(source, mode=mode)
    except (SyntaxError, ValueError) as e:
        raise Unconvertible(f"the test {_clip(source)!r} is not valid Python: {getattr(e, 'msg', e)}") from None


def _clip(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _assigned(stmts: list) -> set[str]:
    """Names bound by statements (not imports: those are the parent's too)."""
    out = set()
    for s in stmts:
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            continue
        for n in ast.walk(s):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                out.add(n.id)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(n.name)
    return out


def _names(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _root(node):
    """The Name at the root of an attribute/subscript/call chain, and whether a call lies on the way."""
    called = False
    while True:
        if isinstance(node, ast.Call):
            called, node = True, node.func
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        else:
            return (node if isinstance(node, ast.Name) else None), called


def _split(expr, candidate: set[str], modules: set[str]):
    """(leaves, check expression): the smallest parts of `expr` that need the candidate's code, replaced by
    _v(k). A leaf is a call of a candidate's name (through attributes, not through another call's result:
    `f(x).startswith('a')` keeps `.startswith` in the parent) or a candidate's name or attribute read."""
    leaves: list = []
    bound: list[set[str]] = []

    def is_candidate(name: str) -> bool:
        if any(name in b for b in bound):
            return False
        return name in candidate or (name not in _BUILTINS and name not in modules and name not in _STDLIB)

    class Splitter(ast.NodeTransformer):
        def visit(self, node):
            if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                return self._scope(node)
            if isinstance(node, (ast.Call, ast.Attribute, ast.Subscript, ast.Name)) \
                    and isinstance(getattr(node, "ctx", ast.Load()), ast.Load):
                root, called = _root(node)
                direct = isinstance(node, ast.Call) and _root(node.func)[1] is False
                chain_ok = direct or (not called and not isinstance(node, ast.Call))
                if root is not None and is_candidate(root.id) and chain_ok:
                    used = _names(node)
                    inner = [n for n in used if any(n in b for b in bound)]
                    if inner:
                        raise Unconvertible(f"{ast.unparse(node)!r} depends on {inner[0]!r}, a variable of the "
                                            "test's own loop or lambda, which the sandbox cannot see")
                    leaves.append(node)
                    return ast.Call(func=ast.Name(id="_v", ctx=ast.Load()),
                                    args=[ast.Constant(value=len(leaves) - 1)], keywords=[])
            return self.generic_visit(node)

        def _scope(self, node):
            names = set()
            if isinstance(node, ast.Lambda):
                names = {a.arg for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs}
            else:
                for gen in node.generators:
                    names |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
            bound.append(names)
            try:
                return self.generic_visit(node)
            finally:
                bound.pop()

    new = Splitter().visit(ast.parse(ast.unparse(expr), mode="eval").body)
    return leaves, ast.fix_missing_locations(new)


# ----------------------------------------------------------------------------------------------------------
class _Raised(Exception):
    """A leaf's exception, raised again when the check uses that leaf."""


class _Nothing:
    pass


@functools.lru_cache(maxsize=512)
def _namespace(imports: tuple[str, ...]) -> dict:
    ns: dict = {"__builtins__": builtins.__dict__}
    for stmt in imports:
        exec(compile(stmt, "<check imports>", "exec"), ns)  # the benchmark's own import lines, never the candidate's
    return ns


@functools.lru_cache(maxsize=4096)
def _compiled(expr: str):
    return compile(expr, "<check>", "eval")


def judge(check: Check, leaves: list, args: tuple | None = None) -> tuple[bool, str | None, str | None]:
    """(passed, error type, message) of one check, from its leaves as the sandbox reported them: each
    ("v", value) or ("e", type name, message). Runs only trusted code on plain values."""
    def value(k: int):
        if not 0 <= k < len(leaves):
            raise _Raised(f"leaf {k} was not reported")
        leaf = leaves[k]
        if leaf[0] == "e":
            raise _Raised(f"{check.leaves[k]} raised {leaf[1]}" + (f": {leaf[2]}" if leaf[2] else ""))
        return leaf[1]

    try:
        for leaf in leaves:
            if leaf[0] == "v":
                check_collisions_deep(leaf[1])
        if check.equal:
            if check.expected is MISSING:
                raise RuntimeError("expected values were not computed (call expected.ready(task) first)")
            out = value(0)
            if check.atol or check.rule:
                from .evalplus import outputs_match

                ok = outputs_match(out, check.expected, check.atol, check.rule, args)
            else:
                ok = bool(out == check.expected)
            if ok:
                return True, None, None
            return False, "AssertionError", (f"{check.leaves[0]} returned {_shown(out)}, expected "
                                             f"{_shown(check.expected)}")
        ns = dict(_namespace(check.imports))
        ns["_v"], ns["_NOTHING"] = value, _Nothing
        if bool(eval(_compiled(check.expr), ns)):  # noqa: S307 - the benchmark's check over plain values
            return True, None, None
        got = [f"{check.leaves[k]} returned {_shown(leaf[1])}" for k, leaf in enumerate(leaves) if leaf[0] == "v"]
        if check.expected_text and len(got) == 1:
            got[0] += f", expected {check.expected_text}"
        return False, "AssertionError", "; ".join(got) or None
    except _Raised as e:
        text = str(e)
        etype = text.split(" raised ", 1)[1].split(":", 1)[0] if " raised " in text else "Error"
        return False, etype, text
    except ValueRefused as e:
        return False, "ValueRefused", str(e)
    except Exception as e:  # noqa: BLE001 - the check failed on the candidate's values: that test fails
        return False, type(e).__name__, f"the check {check.expr or 'equal'} failed: {e}"[:500]


def _shown(value) -> str:
    try:
        return short(value)
    except ValueError:  # an int too long for str(): say what it is instead
        return f"<int of {value.bit_length()} bits>" if isinstance(value, int) else "<unprintable value>"


def with_expected(test: Test, expected: list) -> Test:
    """`test` with each `equal` check's expected value set."""
    checks = tuple(replace(c, expected=e) if c.equal else c for c, e in zip(test.checks, expected))
    return replace(test, checks=checks)
