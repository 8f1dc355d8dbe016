"""Getting a program out of a model's reply, robustly.

Replies come in every shape: a fenced block after some prose, several blocks, a bare function with a sentence
before and after it, or (from a base model continuing a prompt) the rest of a function body. `extract_program`
tries each shape and keeps the first candidate that parses and defines the entry point; a reply with none is
`None`, which the loop records as the error signature "unusable reply" instead of crashing.
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


def extract_program(reply: str, entry_point: str, prefix: str = "") -> str | None:
    """The program in `reply`, or None if it holds no usable one.

    `prefix` is the code the reply continues (a base model's prompt that ends inside a function header or
    docstring); `prefix + reply` is then the first candidate. Fenced blocks come next (the one defining the
    entry point first, then the longest), then bare code after leading prose.
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
                return code if code.endswith("\n") else code + "\n"
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
