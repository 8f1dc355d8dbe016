"""Getting a program out of a model's reply, robustly.

Replies come in every shape: a fenced block after some prose, several blocks, a bare function with a sentence
before and after it, or (from a base model continuing a prompt) the rest of a function body. `extract_program`
tries each shape and keeps the first candidate that parses and defines the entry point; a reply with none is
`None`, which the loop records as the error signature "unusable reply" instead of crashing. The program is
then sanitised (`sanitize`) as EvalPlus does before scoring, in every arm alike.
"""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_CODE_START = re.compile(r"^(def |async def |class |import |from |@)")


def defines(code: str, name: str) -> bool:
    """Whether `code` parses and binds `name` at module level (a def, class or assignment)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
    return False


def longest_parsing_prefix(code: str) -> str:
    """`code` cut at the last line after which it still parses: trailing prose or a half-written line (a
    reply that hit its token limit) is dropped rather than failing the whole program."""
    lines = code.rstrip().splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        try:
            ast.parse(candidate)
            return candidate.rstrip() + "\n"
        except (SyntaxError, ValueError):
            continue
    return ""


def _bare_code(text: str) -> str:
    """From the first line that starts code (def/class/import/decorator) to the end: leading prose dropped."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _CODE_START.match(line):
            return "\n".join(lines[i:])
    return ""


def _bound_names(node: ast.stmt) -> list[str]:
    """The module-level names a kept statement binds (a def, a class, or an assignment to plain names)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = []
    for t in targets:
        elts = t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]
        if not all(isinstance(e, ast.Name) for e in elts):
            return []
        names += [e.id for e in elts]
    return names


def sanitize(code: str, entry_point: str) -> str:
    """The reply as EvalPlus users expect it scored: imports, and the functions, classes and module-level
    assignments that the entry point reaches (through the names it uses, transitively); top-level tests,
    prints, loops and `if __name__ == "__main__":` blocks are dropped. A reply that ends with the model's own
    failing `assert f(...) == ...` would otherwise fail every test while the program is being defined.

    Unlike evalplus's sanitiser (tree-sitter), a function is kept even without a `return`, decorated
    definitions are kept, and where a name is bound twice both stay, so the program means what Python makes of
    it (the later binding wins). Code that does not parse comes back unchanged."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    lines = code.splitlines(keepends=True)
    kept: list[tuple[ast.stmt, list[str], set[str]]] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            kept.append((node, [], set()))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)):
            names = _bound_names(node)
            if names and not (isinstance(node, ast.AnnAssign) and node.value is None):
                kept.append((node, names, {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}))
    reach, todo = {entry_point}, [entry_point]
    while todo:
        name = todo.pop()
        for _, names, uses in kept:
            if name in names:
                for used in uses - reach:
                    reach.add(used)
                    todo.append(used)
    out = []
    for node, names, _ in kept:
        if names and not reach.intersection(names):
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        gap = "\n" if out and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else ""
        out.append(gap + "".join(lines[first - 1:node.end_lineno]).rstrip() + "\n")
    return "".join(out)


def extract_program(reply: str, entry_point: str, prefix: str = "") -> str | None:
    """The program in `reply`, or None if it holds no usable one.

    `prefix` is the code the reply continues (a base model's prompt that ends inside a function header or
    docstring); `prefix + reply` is then the first candidate. Fenced blocks come next (the one defining the
    entry point first, then the longest), then bare code after leading prose. The result is `sanitize`d.
    """
    candidates: list[str] = []
    if prefix:
        candidates.append(prefix + reply)
    blocks = [body for lang, body in _FENCE.findall(reply) if lang.lower() in ("", "python", "py", "python3")]
    blocks.sort(key=lambda b: (not re.search(rf"\bdef\s+{re.escape(entry_point)}\b", b), -len(b)))
    candidates += blocks
    candidates.append(_bare_code(reply))
    for candidate in candidates:
        if not candidate.strip():
            continue
        for code in (candidate, longest_parsing_prefix(candidate)):
            if code.strip() and defines(code, entry_point):
                return sanitize(code, entry_point)
    return None


def normalized(code: str) -> str:
    """A form of `code` that ignores comments, docstrings and formatting: equal for the same program."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code.strip()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)
