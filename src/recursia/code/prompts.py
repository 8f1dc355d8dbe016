"""The prompts of the refinement loop, for base models (completion: a Python file to continue) and instruct
models (chat messages).

Three prompts, named after the loop's steps:

- `initial(x)`: the first program y0 from the task alone;
- `reason(x, y, z)`: a short diagnosis of why y fails its visible tests, with the task in view; it becomes z;
- `refine(y, z[, x])`: a rewrite of y given the diagnosis (TRM's y = net(y, z): by default without x).

What a prompt may contain is fixed here and nowhere else: the task, the program, the *visible* test results
and the reasoning record. Hidden tests never reach a prompt.
"""

from __future__ import annotations

import ast
import textwrap

from .backends import Prompt

SYSTEM = ("You are an expert Python programmer. Answer with one complete Python program in a single ```python "
          "code block: imports, helper functions and the requested function. Do not write tests or examples.")
# EvalPlus's instruction and the start of the reply it writes for the model (evalplus 0.3.1, codegen.py).
EVALPLUS_ASK = ("Please provide a self-contained Python script that solves the following problem in a markdown "
                "code block:")
EVALPLUS_REPLY = ("Below is a Python script with a self-contained function that solves the problem and passes "
                  "corresponding tests:\n```python\n")
PROMPT_STYLES = ("recursia", "evalplus")
# Where a base model's continuation of a function should stop (the human-eval convention, plus a new fence).
STOP = ("\nclass ", "\ndef ", "\nif __name__", "\nprint(", "\nassert ", "\n#", "\n```")


def is_code_prompt(task) -> bool:
    """HumanEval-style prompts are code (a signature and docstring to complete); MBPP-style ones are text."""
    try:
        ast.parse(task.prompt)
    except (SyntaxError, ValueError):
        return False
    return f"def {task.entry_point}" in task.prompt


def _comment(text: str) -> str:
    return "\n".join("# " + line if line.strip() else "#" for line in text.strip().splitlines())


def _task_text(task) -> str:
    return task.prompt.strip()


def head_of(program: str, entry_point: str) -> str:
    """The program up to the end of the entry point's signature and docstring: what a base model continues
    when it rewrites the body. Derived from y itself, so refine needs no x."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError):
        return f"def {entry_point}("
    lines = program.splitlines()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            first = node.body[0]
            doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                first.value.value, str)
            end = first.end_lineno if doc else first.lineno - 1
            imports = [ln for ln in lines[: node.lineno - 1] if ln.startswith(("import ", "from "))]
            return "\n".join(imports + [""] * bool(imports) + lines[node.lineno - 1 - len(node.decorator_list):end]) + "\n"
    return f"def {entry_point}("


def initial(task, mode: str, style: str = "recursia", context: str = "") -> tuple[Prompt, str]:
    """(prompt, prefix): the prefix is the code the reply continues (completion mode), for `extract_program`.

    `style="evalplus"` asks an instruct model as EvalPlus's `codegen` does (no system message; the task as
    given, in a fence; the reply started for the model, up to an opening ```python), so that depth 0 can be
    set beside published EvalPlus figures. It shows the tests only as far as the task's own text does. A base
    model (completion mode) is asked the same way in both styles.

    `context` (a skill library's text, when it goes into x) comes before the task: in the user message, or as
    comment lines ahead of a completion prompt."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"prompt style {style!r}: use one of {', '.join(PROMPT_STYLES)}")
    if context and style != "recursia":
        raise ValueError(f"prompt style {style!r} asks as published figures were made and takes no context; "
                         "use the recursia style")
    lead = f"{context}\n\n" if context else ""
    if mode == "chat" and style == "evalplus":
        user = f"{EVALPLUS_ASK}\n```\n{task.prompt.strip()}\n```\n"
        return Prompt(messages=({"role": "user", "content": user},), reply_start=EVALPLUS_REPLY,
                      stop=("\n```",)), ""
    if mode == "chat":
        tests = "\n".join(t.source for t in task.visible_tests)
        user = f"{lead}{_task_text(task)}\n" + (f"\nYour code should pass these tests:\n{tests}\n" if tests else "")
        return Prompt(messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})), ""
    lead = f"{_comment(context)}\n\n" if context else ""
    if is_code_prompt(task):
        return Prompt(text=lead + task.prompt, stop=STOP), task.prompt
    prefix = f"def {task.entry_point}("
    tests = "\n".join(t.source for t in task.visible_tests)
    text = lead + f'"""\n{_task_text(task)}\n"""\n' + (f"# It must pass:\n{_comment(tests)}\n" if tests else "") + prefix
    return Prompt(text=text, stop=STOP), prefix


def feedback(result: dict | None, tests: list[str], limit: int = 1200) -> str:
    """The visible test results of one program as plain lines: which tests failed, how, and where."""
    if result is None:
        return "The reply contained no usable Python program defining the function."
    if result["status"] not in ("ok",) and result.get("error_type"):
        msg = f"The program fails before the tests: {result['error_type']}: {result.get('message') or ''}".strip()
        if result.get("line"):
            msg += f"\n  at: {result['line'].strip()}"
        return msg[:limit]
    if result["status"] in ("timeout", "memory", "crash"):
        return {"timeout": "The program ran out of time (an infinite loop or a far too slow algorithm).",
                "memory": "The program ran out of memory.",
                "crash": "The program crashed the interpreter."}[result["status"]]
    out = []
    for t in result["tests"]:
        if t["passed"]:
            continue
        src = tests[t["index"]].strip() if t["index"] < len(tests) else ""
        message, etype = t.get("message") or "", t.get("error_type") or "failed"
        # "f(1) returned 3, expected 2" and "f(1) raised E: ..." say it all; other errors get their type first
        plain = etype == "AssertionError" and message or f" raised {etype}" in message
        line = f"Test failed: {src}\n  " + (message if plain else f"{etype}: {message}" if message else etype)
        if t.get("line") and t.get("part") == "program":  # where in the program (the test is shown above)
            line += f"\n  at: {t['line'].strip()}"
        out.append(line)
    if not out:
        return "All visible tests pass."
    return "\n".join(out)[:limit]


def reason(task, program: str, fb: str, z_text: str, mode: str) -> Prompt:
    """Ask for a one- or two-sentence diagnosis (the new z), with the task, the program and its results."""
    if mode == "chat":
        user = (f"Task:\n{_task_text(task)}\n\nProgram:\n```python\n{program}```\n\nTest results:\n{fb}\n"
                + (f"\nNotes from earlier attempts:\n{z_text}\n" if z_text else "")
                + "\nIn one or two sentences, say what is wrong with the program and how to fix it. No code.")
        return Prompt(messages=({"role": "system", "content": "You are an expert Python programmer who finds bugs."},
                                {"role": "user", "content": user}))
    text = (f"# Task:\n{_comment(_task_text(task))}\n\n{program}\n# Test results:\n{_comment(fb)}\n"
            + (f"# Notes from earlier attempts:\n{_comment(z_text)}\n" if z_text else "")
            + "# Diagnosis (what is wrong and how to fix it): the bug is that")
    return Prompt(text=text, stop=("\n",))  # one line: a diagnosis, not a program


def refine(task, program: str, fb: str, z_text: str, mode: str, sees_x: bool, sees_y: bool = True
           ) -> tuple[Prompt, str]:
    """Ask for a rewrite of y given z (and x when `sees_x`). Returns (prompt, prefix) like `initial`.

    `sees_y=False` shows the task and what went wrong but not the wrong program itself: a small model shown
    its program tends to copy it back (Qwen2.5-Coder-0.5B returned it unchanged, bug and all, in most MBPP+
    rewrites), while one shown only the failure writes a new program that avoids it."""
    if not sees_y:
        notes = f"An earlier attempt was wrong. Its test results:\n{fb}\n" + (f"{z_text}\n" if z_text else "")
        first, prefix = initial(task, mode)
        if mode == "chat":
            system, user = first.messages
            user = dict(user, content=f"{user['content']}\n{notes}\nWrite a new, correct program that avoids "
                                      "that mistake.")
            return Prompt(messages=(system, user)), prefix
        return Prompt(text=f"{_comment(notes)}\n{first.text}", stop=first.stop), prefix
    if mode == "chat":
        user = ((f"Task:\n{_task_text(task)}\n\n" if sees_x else "")
                + f"This program is wrong:\n```python\n{program}```\n\nTest results:\n{fb}\n"
                + (f"\nDiagnosis and notes:\n{z_text}\n" if z_text else "")
                + "\nWrite the corrected complete program.")
        return Prompt(messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})), ""
    head = head_of(program, task.entry_point)
    text = ((f"# Task:\n{_comment(_task_text(task))}\n\n" if sees_x else "")
            + f"# A previous attempt, which is wrong:\n{textwrap.indent(program.rstrip(), '# ')}\n"
            + f"# Test results:\n{_comment(fb)}\n"
            + (f"# Diagnosis and notes:\n{_comment(z_text)}\n" if z_text else "")
            + "# The corrected program:\n" + head)
    return Prompt(text=text, stop=STOP), head
