"""EvalPlus benchmarks (HumanEval+ v0.1.10, MBPP+ v0.2.0): loaders and EvalPlus's way of comparing outputs.

EvalPlus scores a program by calling its entry point on stored inputs and comparing each return value with
what the canonical solution returned on the same input (differential testing). Here every input becomes one
`iotest.call_test`: the sandbox runs the candidate and reports the plain value it returned; the trusted parent
compares it with the reference's value (filled in by expected.py) through `outputs_match`, which reproduces
EvalPlus's per-input comparison (evalplus/eval/__init__.py `unsafe_execute`, master 26d6d00b):

1. exact match `out == exp`;
2. special oracles (`rule`), for tasks whose outputs have more than one right answer:
   - "set"            MBPP set-equality tasks: `set(out) == set(exp)` replaces the exact match;
   - "not_none"       MBPP regex tasks whose reference returns a re.Match: `out == exp` for a bool `out`,
                      else `exp == (out is not None)`; the test's sandbox code reduces the value to that bool
                      (a re.Match cannot cross the sandbox wall), for the reference and the candidate alike;
   - "surface_area"   Mbpp/581: also accept EvalPlus's rounded alternative reading of "height" (within atol);
   - "digit_distance" Mbpp/558: also accept EvalPlus's zero-padded-digits alternative;
   - "find_zero"      HumanEval/32: any root is right: pass iff |poly(xs, out)| <= atol, computed here;
3. floats: when the task's atol is 0 and `exp` is a float or a non-empty list/tuple of floats, the atol becomes
   1e-6; then, when the exact match failed and atol != 0, pass iff type(out) is type(exp), lists and tuples
   have the same length, and `np.allclose(out, exp, rtol=1e-07, atol=atol)`.

EvalPlus's atol assignment in 3 is sticky: it stays in force for the rest of the inputs of that call, and base
and plus inputs are two calls. `sticky_atols` and `finalize` compute the effective atol of each input from the
expected outputs, so that each check carries its own and `outputs_match` needs no state. (EvalPlus skips the
assignment on an input whose call raised; that input fails, and a failed input already fails the whole group,
so the verdicts are the same.)

Inputs: HumanEval+ inputs are JSON values as they are. MBPP+ inputs are stored as JSON, so tuples, sets and
complex numbers arrive as lists and strings; `mbpp_inputs` restores them per task as EvalPlus's
`evalplus.data.mbpp.mbpp_deserialize_inputs` does (a fixed table of task ids). Without that step both the
candidate and the reference see the wrong types.

Data: DATA/evalplus/HumanEvalPlus.jsonl.gz and DATA/evalplus/MbppPlus.jsonl.gz (the official release assets,
`URLS`), checked by the md5 of the uncompressed file, which is how EvalPlus itself identifies a dataset
version: another version has other inputs and other scores.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import DataError
from .iotest import ARGS, CAPTURE, MISSING, Test, Unconvertible, call_test, convert

if TYPE_CHECKING:
    from .tasks import CodeTask  # tasks.py imports this module lazily; the loaders import tasks lazily too

HUMANEVAL_PLUS_FILE = "HumanEvalPlus.jsonl.gz"
MBPP_PLUS_FILE = "MbppPlus.jsonl.gz"
FOLDER = "evalplus"
VERSIONS = {  # file: (name, release, md5 of the uncompressed file)
    HUMANEVAL_PLUS_FILE: ("HumanEval+", "v0.1.10", "fe585eb4df8c88d844eeb463ea4d0302"),
    MBPP_PLUS_FILE: ("MBPP+", "v0.2.0", "ee43ecabebf20deef4bb776a405ac5b1"),
}
URLS = {
    "humaneval+": {f"{FOLDER}/{HUMANEVAL_PLUS_FILE}":
                   "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/"
                   "HumanEvalPlus.jsonl.gz"},
    "mbpp+": {f"{FOLDER}/{MBPP_PLUS_FILE}":
              "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz"},
}

FLOAT_ATOL = 1e-6  # EvalPlus's tolerance for float outputs of tasks whose atol is 0
RTOL = 1e-07       # EvalPlus passes rtol explicitly (np.testing.assert_allclose's default)

RULES = ("set", "not_none", "surface_area", "digit_distance", "find_zero")
_KNOWN_RULES = frozenset(RULES) | {""}
_RULES_ON_ARGS = frozenset({"surface_area", "digit_distance", "find_zero"})  # oracles computed from the input
# MBPP+ special oracles, keyed by entry point as EvalPlus keys them (so a name shared by two tasks would share
# the rule; none of these is). Mbpp/249 `intersection_array` is in EvalPlus's set list but not in v0.2.0.
MBPP_RULES = {
    "similar_elements": "set",        # Mbpp/2
    "find_char_long": "set",          # Mbpp/7
    "common_in_nested_lists": "set",  # Mbpp/111
    "extract_singly": "set",          # Mbpp/140
    "larg_nnum": "set",               # Mbpp/232
    "intersection_array": "set",      # Mbpp/249 (not in v0.2.0)
    "find_dissimilar": "set",         # Mbpp/579
    "Diff": "set",                    # Mbpp/769
    "check_str": "not_none",          # Mbpp/737
    "text_match_three": "not_none",   # Mbpp/787
    "text_starta_endb": "not_none",   # Mbpp/794
    "surface_Area": "surface_area",   # Mbpp/581
    "digit_distance_nums": "digit_distance",  # Mbpp/558
}
HUMANEVAL_RULES = {"find_zero": "find_zero"}  # HumanEval/32


# ----------------------------------------------------------------------------------------------------------
# Comparison (trusted code on plain values)

def is_floats(x) -> bool:
    """EvalPlus's test for a float output: a float, or a non-empty list or tuple whose items are all floats
    (nested containers do not count)."""
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False


def outputs_match(out: Any, exp: Any, atol: float, rule: str = "", args=()) -> bool:
    """Whether the candidate's output `out` counts as the reference's `exp` on the input `args`, under
    EvalPlus's rules (module doc). `atol` is the input's effective tolerance (`finalize`); `out` is any plain
    value the sandbox reported and may be anything the candidate chose to return."""
    if rule not in _KNOWN_RULES:
        raise ValueError(f"unknown EvalPlus rule {rule!r}; known: {', '.join(RULES)}")
    if rule in _RULES_ON_ARGS and not args:
        raise ValueError(f"the EvalPlus rule {rule!r} needs the test's arguments (pass the Test's args)")
    if rule == "find_zero":
        return _is_root(args[0], out, atol)
    try:
        exact = _exact_match(out, exp, rule, atol, args)
    except Exception:  # noqa: BLE001 - EvalPlus fails an input on any exception its comparison raises
        return False
    if atol == 0 and is_floats(exp):
        atol = FLOAT_ATOL
    if exact:
        return True
    return atol != 0 and _all_close(out, exp, atol)


def _exact_match(out, exp, rule: str, atol: float, args) -> bool:
    """Step 1 and the MBPP oracles of step 2; may raise on odd outputs (the caller fails the input)."""
    if rule == "set":
        return set(out) == set(exp)
    if rule == "not_none":
        expected = exp if type(exp) is bool else exp is not None
        return out == expected if isinstance(out, bool) else expected == (out is not None)
    exact = bool(out == exp)
    if exact or not rule:
        return exact
    if rule == "surface_area":
        return bool(abs(out - _surface_area_alternative(*args)) <= atol)
    return bool(out == _digit_distance_alternative(*args))  # rule == "digit_distance"


def _all_close(out, exp, atol: float) -> bool:
    """Step 3's tolerant comparison, False on anything numpy cannot compare (ragged lists, strings, dicts,
    ints beyond 64 bits, None): EvalPlus fails those inputs, since np.allclose raises on them."""
    import numpy as np

    if type(out) is not type(exp):
        return False
    if isinstance(exp, (list, tuple)) and len(out) != len(exp):
        return False
    try:
        with np.errstate(all="ignore"):
            return bool(np.allclose(out, exp, rtol=RTOL, atol=atol))
    except Exception:  # noqa: BLE001 - numpy raises TypeError, ValueError, OverflowError... the input fails
        return False


def _is_root(xs, x, atol: float) -> bool:
    """HumanEval/32's oracle: x is a root of the polynomial with coefficients xs, within atol. Computed as
    EvalPlus computes it (math.pow, so an int x is a float power and a huge x overflows and fails)."""
    try:
        value = sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])
        return bool(abs(value) <= atol)
    except Exception:  # noqa: BLE001 - a non-number or overflowing x is not a root: the input fails
        return False


def _surface_area_alternative(base_edge, height):
    """Mbpp/581 read with "height" as the pyramid's perpendicular height, rounded (EvalPlus's alternative)."""
    slant = math.sqrt((base_edge / 2) ** 2 + height ** 2)
    return round(base_edge ** 2 + 2 * base_edge * slant)


def _digit_distance_alternative(a, b):
    """Mbpp/558 with the shorter number padded with leading zeros (EvalPlus's alternative)."""
    x, y = str(a), str(b)
    width = max(len(x), len(y))
    return sum(abs(int(p) - int(q)) for p, q in zip(x.zfill(width), y.zfill(width)))


# ----------------------------------------------------------------------------------------------------------
# EvalPlus's sticky float tolerance

def sticky_atols(expected: list, atol: float) -> list[float]:
    """The effective atol of each input of one group (base or plus), in order: the task's `atol` until the
    first input whose expected output is a float (or list/tuple of floats) when atol is 0; from that input on,
    1e-6, for the rest of the group (EvalPlus assigns the local variable once and never resets it)."""
    out, current = [], atol
    for exp in expected:
        if current == 0 and is_floats(exp):
            current = FLOAT_ATOL
        out.append(current)
    return out


def finalize(tests: list[Test]) -> list[Test]:
    """`tests` with each `equal` check's atol replaced by its effective one (`sticky_atols`), group by group in
    the order the tests come (one task's tests). Call it after the expected values are filled; other checks
    pass through. Idempotent: the first check of a group keeps the task's atol unless its own output is a
    float, and the tolerance only grows."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for i, test in enumerate(tests):
        for j, check in enumerate(test.checks):
            if not check.equal:
                continue
            if check.expected is MISSING:
                raise ValueError(f"the expected output of {test.source!r} is not filled in: fill the expected "
                                 "values (expected.py) before finalize, which reads them")
            groups.setdefault(check.group, []).append((i, j))
    atols: dict[tuple[int, int], float] = {}
    for places in groups.values():
        first = tests[places[0][0]].checks[places[0][1]]
        expected = [tests[i].checks[j].expected for i, j in places]
        atols.update(zip(places, sticky_atols(expected, first.atol)))
    out = []
    for i, test in enumerate(tests):
        if any((i, j) in atols for j in range(len(test.checks))):
            checks = tuple(replace(c, atol=atols[(i, j)]) if (i, j) in atols else c
                           for j, c in enumerate(test.checks))
            test = replace(test, checks=checks)
        out.append(test)
    return out


# ----------------------------------------------------------------------------------------------------------
# Data files

def find_file(data_dir: Path | None, filename: str) -> Path:
    """DATA/evalplus/<filename> (or DATA/<filename>) for DATA = --data or $RECURSIA_CODE_DATA, or DataError
    saying where it looked and how to get it."""
    from .tasks import ENV_VAR, data_locations

    name, version, _ = VERSIONS[filename]
    bench = "humaneval+" if filename == HUMANEVAL_PLUS_FILE else "mbpp+"
    roots = data_locations(data_dir)
    for root in roots:
        for candidate in (root / FOLDER / filename, root / filename):
            if candidate.is_file():
                return candidate
    where = (f"looked for {' and '.join(str(r / FOLDER / filename) for r in roots)}" if roots
             else f"no --data given and {ENV_VAR} is not set")
    raise DataError(f"{name} data not found ({where}); download the {version} release with `recursia code "
                    f"download {bench} --out DIR` and pass --data DIR (or set {ENV_VAR}=DIR), or fetch "
                    f"{next(iter(URLS[bench].values()))} into DIR/{FOLDER}/")


def read_rows(path: Path) -> list[dict]:
    """The records of an EvalPlus release file, after checking that it is the expected version (md5 of the
    uncompressed file, as EvalPlus identifies its datasets)."""
    name, version, md5 = VERSIONS.get(path.name, (None, None, None))
    if md5 is None:
        raise DataError(f"{path}: not an EvalPlus file this loader knows (expected {' or '.join(VERSIONS)})")
    bench = "humaneval+" if path.name == HUMANEVAL_PLUS_FILE else "mbpp+"
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    digest = hashlib.md5(data).hexdigest()
    if digest != md5:
        raise DataError(f"{path} is not {name} {version} (md5 of the uncompressed file is {digest}, expected "
                        f"{md5}): get the {version} release asset with `recursia code download {bench} --out DIR`"
                        f" or from {next(iter(URLS[bench].values()))}")
    rows = []
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))  # the md5 matched: the release's own JSON
    return rows


def _check_protocol(protocol: str) -> None:
    from .tasks import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")


# ----------------------------------------------------------------------------------------------------------
# HumanEval+

def _humaneval_hidden(row: dict, groups: tuple[str, ...] = ("base", "plus")) -> tuple[Test, ...]:
    entry, atol = row["entry_point"], float(row["atol"])
    rule = HUMANEVAL_RULES.get(entry, "")
    return tuple(call_test(entry, inputs, atol=atol, rule=rule, group=group)
                 for group in groups for inputs in row[f"{group}_input"])


def load_humaneval_plus(data_dir: Path | None = None, protocol: str = "visible") -> list[CodeTask]:
    """HumanEval+ v0.1.10 as CodeTasks ("humaneval+"): hidden = the base inputs then the plus inputs, each an
    EvalPlus comparison with the reference's output; visible = the prompt's docstring examples (as for
    HumanEval), or the hidden tests under protocol "all". The reference is EvalPlus's canonical solution, which
    is what its expected outputs come from."""
    from .tasks import CodeTask, doctest_asserts, examples_as_tests

    _check_protocol(protocol)
    rows = read_rows(find_file(data_dir, HUMANEVAL_PLUS_FILE))
    tasks = []
    for row in rows:
        task_id, prompt, entry = row["task_id"], row["prompt"], row["entry_point"]
        reference = prompt + row["canonical_solution"]
        hidden = _humaneval_hidden(row)
        visible = hidden if protocol == "all" else examples_as_tests(prompt, entry, task_id, reference)
        tasks.append(CodeTask(task_id=task_id, benchmark="humaneval+", prompt=prompt, entry_point=entry,
                              visible_tests=visible, hidden_tests=hidden, reference=reference, protocol=protocol,
                              skipped_examples=doctest_asserts(prompt, entry, task_id)[1]))
    return tasks


def humaneval_base_tests(data_dir: Path | None = None) -> dict[str, tuple[str, tuple[Test, ...]]]:
    """For the plain "humaneval" benchmark scored as EvalPlus scores it: task id -> (EvalPlus's reference
    program, the base-input tests). The expected outputs must be computed with that reference (EvalPlus's
    canonical solution), not OpenAI's."""
    out = {}
    for row in read_rows(find_file(data_dir, HUMANEVAL_PLUS_FILE)):
        out[row["task_id"]] = (row["prompt"] + row["canonical_solution"], _humaneval_hidden(row, ("base",)))
    return out


# ----------------------------------------------------------------------------------------------------------
# MBPP+

def _tuples(x):
    return tuple(x)


def _each(f: Callable) -> Callable:
    """Apply f to every argument."""
    return lambda args: [f(a) for a in args]


def _items_to_tuples(arg):
    return [tuple(x) for x in arg]


def _deep_tuples(x):
    return tuple(_deep_tuples(i) for i in x) if isinstance(x, list) else x


# Which MBPP+ tasks store tuples, sets, dicts of tuples or complex numbers as JSON lists and strings, and how
# each input's argument list is restored (the table of evalplus.data.mbpp.mbpp_deserialize_inputs; 52 of its 62
# ids are in v0.2.0). Each function takes one input's argument list and returns the arguments to call with.
_MBPP_RESTORE: dict[int, Callable[[list], Any]] = {}
for _ids, _f in [
    ((2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740, 744, 809),
     _each(_tuples)),                                                       # every argument a tuple
    ((63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
     _each(_items_to_tuples)),                                              # every argument a list of tuples
    ((75, 413, 444, 753), lambda a: [_items_to_tuples(a[0]), a[1]]),        # a list of tuples, then a value
    ((106, 750), lambda a: [a[0], tuple(a[1])]),                            # a value, then a tuple
    ((115,), lambda a: [[set(i) if isinstance(i, list) and i else {} for i in a[0]]]),  # sets ({} kept as dict)
    ((124,), lambda a: (float(a[0]), complex(a[1]))),                       # a float and a complex, from str
    ((250, 405, 446, 617, 720, 763, 808), lambda a: [tuple(a[0]), a[1]]),  # a tuple, then a value
    ((259, 401, 445), _each(lambda arg: tuple(tuple(x) for x in arg))),    # every argument a tuple of tuples
    ((278,), lambda a: [tuple(tuple(i) if isinstance(i, list) else i for i in a[0])]),  # a tuple, lists -> tuples
    ((307,), lambda a: [tuple(a[0]), a[1], a[2]]),                          # a tuple, then two values
    ((722,), lambda a: [{k: tuple(v) for k, v in a[0].items()}] + a[1:]),   # a dict of tuples, then the rest
    ((252,), lambda a: [complex(a[0])]),                                    # a complex, from int
    ((580, 615, 791), _deep_tuples),                                        # every list, at every depth
]:
    for _id in _ids:
        _MBPP_RESTORE[_id] = _f


def mbpp_inputs(task_id: str, inputs) -> list:
    """MBPP+ inputs (a list of argument lists, as stored) with their tuples, sets and complex numbers restored
    as EvalPlus restores them before running anything."""
    if isinstance(inputs, dict):
        if inputs:
            raise DataError(f"{task_id}: inputs must be a list of argument lists, not a non-empty dict")
        return []  # Mbpp/793's plus_input is {}: no inputs
    restore = _MBPP_RESTORE.get(int(task_id.split("/")[-1]))
    return [restore(inp) for inp in inputs] if restore else list(inputs)


def mbpp_rule(entry_point: str) -> str:
    return MBPP_RULES.get(entry_point, "")


# not_none tasks: the reference returns a re.Match, which is not a plain value. The sandbox reports the bool
# EvalPlus compares instead (a bool as it is, anything else as `is not None`), for reference and candidate
# alike; the prompt's example (`assert check_str("annie")`) reports the truth value it asserts.
_REPORT_NOT_NONE = "(lambda r: r if isinstance(r, bool) else r is not None)"


def _mbpp_test(entry: str, inputs, atol: float, rule: str, group: str) -> Test:
    test = call_test(entry, inputs, atol=atol, rule=rule, group=group)
    if rule == "not_none":
        test = replace(test, code=f"{CAPTURE}(0, lambda: {_REPORT_NOT_NONE}({entry}(*{ARGS})))\n")
    return test


def _truth_reported(test: Test) -> Test:
    """A converted assert whose leaves report their truth value (bool(leaf)) instead of the value itself (for
    a snippet of asserts only: other statements would be lost)."""
    if len(test.code.strip().splitlines()) != len(test.checks):
        raise DataError(f"the example {test.source!r} has statements besides its asserts; write it as asserts")
    lines = [f"{CAPTURE}({j}, " + ", ".join(f"lambda: bool({leaf})" for leaf in check.leaves) + ")"
             for j, check in enumerate(test.checks)]
    return replace(test, code="\n".join(lines) + "\n")


def mbpp_prompt_example(prompt: str) -> str:
    """The example assert the MBPP+ prompt shows (one line), with `import math` when it uses math."""
    lines = [line.strip() for line in prompt.splitlines() if line.strip().startswith("assert")]
    if len(lines) != 1:
        raise DataError(f"an MBPP+ prompt should show exactly one example assert, not {len(lines)}")
    return ("import math\n" if "math." in lines[0] else "") + lines[0]


def load_mbpp_plus(data_dir: Path | None = None, protocol: str = "visible") -> list[CodeTask]:
    """MBPP+ v0.2.0 as CodeTasks ("mbpp+").

    prompt: EvalPlus's `prompt` field as EvalPlus gives it to models (`prompt.strip() + "\\n"`: a docstring with
    the task text and one example assert; chat models get it inside their instruction). visible: that example
    assert, i.e. what the model is shown (EvalPlus rewrote it for several tasks to agree with its oracles, e.g.
    `set(similar_elements(...)) == set(...)` for Mbpp/2, where the first line of the `assertion` field demands
    one order); under protocol "all", the hidden tests. hidden: base then plus inputs, restored by
    `mbpp_inputs`. reference: the canonical solution, a whole program."""
    from .tasks import CodeTask, _defined_names

    _check_protocol(protocol)
    rows = read_rows(find_file(data_dir, MBPP_PLUS_FILE))
    tasks = []
    for row in rows:
        task_id, entry, atol = row["task_id"], row["entry_point"], float(row["atol"])
        rule = mbpp_rule(entry)
        hidden = tuple(_mbpp_test(entry, inputs, atol, rule, group)
                       for group in ("base", "plus") for inputs in mbpp_inputs(task_id, row[f"{group}_input"]))
        reference = row["canonical_solution"]
        try:
            example = convert(mbpp_prompt_example(row["prompt"]), _defined_names(reference))
            visible = (_truth_reported(example) if rule == "not_none" else example,)
        except (DataError, Unconvertible) as e:
            raise DataError(f"{task_id}: {e}") from None
        tasks.append(CodeTask(task_id=task_id, benchmark="mbpp+", prompt=row["prompt"].strip() + "\n",
                              entry_point=entry, visible_tests=hidden if protocol == "all" else visible,
                              hidden_tests=hidden, reference=reference, protocol=protocol))
    return tasks
