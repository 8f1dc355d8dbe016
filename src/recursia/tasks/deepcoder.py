"""DeepCoder: synthesising a straight-line list program from three input/output examples (ExeDec's DSL).

The DSL, the test-file syntax and the sampling rules follow `../shared/reference/deepcoder-dsl.md` (ExeDec,
Shi et al., ICLR 2024): values are ints in [-50, 50] or lists of them; a program binds one or two inputs and then
runs 1-5 statements ``xK = Op [lambda] args``, each one of 15 operations (higher-order ones take one of 19
lambdas); an operation whose result is undefined or out of range makes that example's result invalid (None).
A program is right when it reproduces every example, whatever its text: correctness is execution, never string
equality with the reference program, so `verify` runs the decoded prediction.

Token layout (``SEQ_LEN = 83``, ``VOCAB_SIZE = 154``)
------------------------------------------------------
Ids 0-152 are the reference vocabulary: 0 PAD, 1 ``<BOS>``, 2 ``<EOS>``, 3 ``|``, 4 ``=``, 5 ``INPUT``, 6 ``[``,
7 ``]``, 8-22 the operations, 23-41 the lambdas, 42-51 ``x0``..``x9``, 52-152 the ints -50..50 (id = value + 102).
One token is ours: 153 ``<SLOT>``, the not-yet-written program cell in the input (Sudoku's blank).

* The spec, positions 0-62 (x): 3 examples of 21 tokens, each three value fields of 7 tokens: input 1,
  input 2 (all PAD when the task has one input), output. A value field is an int token, or ``[`` elements ``]``
  (up to 5 elements), left-aligned and padded with PAD. Labels are 0 (no loss) on the spec.
* The program, positions 63-82 (y): 5 statements of 4 cells: operation, then its arguments (lambda first for the
  higher-order ops, then variables), unused cells ``<EOS>``; a statement whose operation cell is ``<EOS>`` ends
  the program. In the input every program cell is ``<SLOT>``; the labels hold the program, so each of the 20
  cells carries a loss, ``<EOS>`` included (the model must learn where a program stops).
* Variables are named by slot, not by count: ``x0``/``x1`` are the inputs and statement i (from 0) defines
  ``x{2+i}``, whether the task has one input or two, so ``x3`` always means "the second statement". Only the
  text form (`format_program`) uses the files' canonical names (a one-input program's first statement is x1).

Generation (`generate`) follows the reference's searches: one search draws one input set (section 4.1), finds
all functionally distinct programs of lengths 1 and 2 by exhaustive depth-first search, samples longer ones by a
randomised depth-first search under the same rules (usage rule, invalid/redundant/sibling pruning, no dead code,
distinct and non-constant outputs), drops any longer program whose outputs a shorter one of the search already
gives, and deals the quota evenly over the lengths. Unlike the reference, lengths 3-5 are sampled rather than
enumerated (an exhaustive length-4 search costs minutes in Python), so a sampled length-4 or 5 program may still
have an unseen length-3 equivalent; the label is then longer than needed, never wrong. `generate(split=...)`
draws one of ExeDec's six training distributions (`SPLITS`: lengths, op pools by position, Scanl1's lambdas),
without the reference's cross-split filter.

Only numpy and the standard library are used here, so data preparation does not need torch.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from recursia.errors import DataError, PuzzleError

__all__ = [
    "MAX_INT", "MIN_INT", "MAX_LIST_LENGTH", "MAX_INPUTS", "NUM_EXAMPLES", "MAX_STATEMENTS",
    "OPERATIONS", "LAMBDAS", "TOKENS", "VOCAB_SIZE", "SEQ_LEN", "SPEC_LEN", "PROGRAM_START", "PROGRAM_LEN",
    "PAD", "EOS", "SLOT",
    "Value", "Statement", "Program", "DeepCoderTask",
    "parse_value", "format_value", "parse_state", "format_state", "parse_program", "format_program",
    "apply_op", "run_program", "solves", "program_problems",
    "parse_task", "task_to_json", "read_tasks", "write_tasks",
    "random_inputs", "generate", "Distribution", "SPLITS", "FO_MAP", "HO_MAP",
    "encode", "encode_task", "decode_spec", "as_question", "decode_program", "verify", "verify_batch", "check_answer",
    "format_row", "generate_deepcoder_dataset", "build_deepcoder_dataset",
]

MAX_INT, MIN_INT = 50, -50
MAX_LIST_LENGTH = 5
MAX_INPUTS = 2
NUM_EXAMPLES = 3
MAX_STATEMENTS = 5
MAX_VARIABLES = 10  # x0..x9 in the text form

Value = Union[int, tuple[int, ...]]

# ----------------------------------------------------------------------------------------------------------
# Lambdas and operations
# ----------------------------------------------------------------------------------------------------------

# (token, kind, function). Kinds: F1 int->int, P int->bool, F2 (int, int)->int. Python's // and % already are
# floor division and the mathematical modulo the reference uses.
_LAMBDA_TABLE: tuple[tuple[str, str, Callable[..., Any]], ...] = (
    ("(+1)", "F1", lambda x: x + 1), ("(-1)", "F1", lambda x: x - 1), ("(*2)", "F1", lambda x: x * 2),
    ("(/2)", "F1", lambda x: x // 2), ("(*(-1))", "F1", lambda x: -x), ("(**2)", "F1", lambda x: x * x),
    ("(*3)", "F1", lambda x: x * 3), ("(/3)", "F1", lambda x: x // 3), ("(*4)", "F1", lambda x: x * 4),
    ("(/4)", "F1", lambda x: x // 4),
    ("(>0)", "P", lambda x: x > 0), ("(<0)", "P", lambda x: x < 0), ("(%2==0)", "P", lambda x: x % 2 == 0),
    ("(%2==1)", "P", lambda x: x % 2 == 1),
    ("(+)", "F2", lambda x, y: x + y), ("(-)", "F2", lambda x, y: x - y), ("(*)", "F2", lambda x, y: x * y),
    ("(min)", "F2", min), ("(max)", "F2", max),
)
LAMBDAS = tuple(t for t, _, _ in _LAMBDA_TABLE)
LAMBDA_KIND = {t: k for t, k, _ in _LAMBDA_TABLE}
LAMBDA_FN = {t: f for t, _, f in _LAMBDA_TABLE}
LAMBDAS_OF_KIND = {k: tuple(t for t, kk, _ in _LAMBDA_TABLE if kk == k) for k in ("F1", "P", "F2")}

# op -> (lambda kind or None, argument types, result type); "I" int, "L" list. Ints come first for
# Take/Drop/Access, the lambda first for the higher-order ops, as in the files.
SIGNATURES: dict[str, tuple[str | None, tuple[str, ...], str]] = {
    "Head": (None, ("L",), "I"), "Last": (None, ("L",), "I"), "Take": (None, ("I", "L"), "L"),
    "Drop": (None, ("I", "L"), "L"), "Access": (None, ("I", "L"), "I"), "Minimum": (None, ("L",), "I"),
    "Maximum": (None, ("L",), "I"), "Reverse": (None, ("L",), "L"), "Sort": (None, ("L",), "L"),
    "Sum": (None, ("L",), "I"), "Map": ("F1", ("L",), "L"), "Filter": ("P", ("L",), "L"),
    "Count": ("P", ("L",), "I"), "ZipWith": ("F2", ("L", "L"), "L"), "Scanl1": ("F2", ("L",), "L"),
}
OPERATIONS = tuple(SIGNATURES)


def _int(v: int) -> int | None:
    return v if MIN_INT <= v <= MAX_INT else None


def _list(xs: tuple[int, ...]) -> tuple[int, ...] | None:
    """A list result is invalid as soon as one element leaves [-50, 50]; arithmetic inside is exact."""
    return xs if not xs or (MIN_INT <= min(xs) and max(xs) <= MAX_INT) else None


def _access(n: int, xs: tuple[int, ...]) -> int | None:
    return xs[n] if 0 <= n < len(xs) else None  # negative n does not count from the end


# Each takes (lambda function or None, *argument values) and returns the result or None (invalid).
_OP_FN: dict[str, Callable[..., Value | None]] = {
    "Head": lambda f, xs: xs[0] if xs else None,
    "Last": lambda f, xs: xs[-1] if xs else None,
    "Take": lambda f, n, xs: xs[:n],  # Python slicing is the reference rule, negative n included
    "Drop": lambda f, n, xs: xs[n:],
    "Access": lambda f, n, xs: _access(n, xs),
    "Minimum": lambda f, xs: min(xs) if xs else None,
    "Maximum": lambda f, xs: max(xs) if xs else None,
    "Reverse": lambda f, xs: xs[::-1],
    "Sort": lambda f, xs: tuple(sorted(xs)),
    "Sum": lambda f, xs: _int(sum(xs)),
    "Map": lambda f, xs: _list(tuple(map(f, xs))),
    "Filter": lambda f, xs: tuple(x for x in xs if f(x)),
    "Count": lambda f, xs: sum(1 for x in xs if f(x)),
    "ZipWith": lambda f, a, b: _list(tuple(map(f, a, b))),  # map stops at the shorter list
    "Scanl1": lambda f, xs: _list(tuple(itertools.accumulate(xs, f))),  # accumulator is the left operand
}


def apply_op(op: str, lam: str | None, args: Sequence[Value]) -> Value | None:
    """One well-typed operation on values; None when the result is undefined or out of range."""
    return _OP_FN[op](LAMBDA_FN[lam] if lam else None, *args)


# ----------------------------------------------------------------------------------------------------------
# Values: text form
# ----------------------------------------------------------------------------------------------------------

def _int_token(tok: str, what: str) -> int:
    try:
        v = int(tok)
    except ValueError:
        raise PuzzleError(f"{what}: {tok!r} is not an integer") from None
    if not MIN_INT <= v <= MAX_INT or tok != str(v):
        raise PuzzleError(f"{what}: {tok!r} is not an integer in [{MIN_INT}, {MAX_INT}] written plainly")
    return v


def parse_value(text: str, what: str = "value") -> Value:
    """``7`` -> 7, ``[ 1 -2 ]`` -> (1, -2), ``[ ]`` -> (). Lists hold at most 5 ints in [-50, 50]."""
    toks = text.split()
    if len(toks) == 1 and toks[0] not in ("[", "]"):
        return _int_token(toks[0], what)
    if len(toks) < 2 or toks[0] != "[" or toks[-1] != "]":
        raise PuzzleError(f"{what}: {text!r} is neither an int nor a list written '[ 1 2 3 ]'")
    items = tuple(_int_token(t, what) for t in toks[1:-1])
    if len(items) > MAX_LIST_LENGTH:
        raise PuzzleError(f"{what}: list of {len(items)} elements; DeepCoder lists hold at most {MAX_LIST_LENGTH}")
    return items


def format_value(v: Value) -> str:
    if isinstance(v, tuple):
        return "[ " + "".join(f"{x} " for x in v) + "]"
    return str(v)


def parse_state(text: str, what: str = "inputs") -> tuple[Value, ...]:
    """``x0 = [ 1 2 ] | x1 = 3`` -> ((1, 2), 3). Values bind to the program's inputs by position; names are
    only checked for form."""
    values = []
    for k, part in enumerate(text.split("|")):
        name, eq, rest = part.strip().partition(" = ")
        if not eq or not _is_variable(name):
            raise PuzzleError(f"{what}: piece {k + 1} {part.strip()!r} should look like 'x0 = [ 1 2 ]'")
        values.append(parse_value(rest, f"{what}, {name}"))
    return tuple(values)


def format_state(values: Sequence[Value], names: Sequence[str] | None = None) -> str:
    names = names or [f"x{i}" for i in range(len(values))]
    return " | ".join(f"{n} = {format_value(v)}" for n, v in zip(names, values))


def _is_variable(tok: str) -> bool:
    return len(tok) == 2 and tok[0] == "x" and tok[1].isdigit()


def _type_of(v: Value) -> str:
    return "L" if isinstance(v, tuple) else "I"


# ----------------------------------------------------------------------------------------------------------
# Programs
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Statement:
    op: str
    lam: str | None
    args: tuple[int, ...]  # variable indices: 0..num_inputs-1 are the inputs, then one per earlier statement


@dataclass(frozen=True)
class Program:
    num_inputs: int
    statements: tuple[Statement, ...]
    names: tuple[str, ...] | None = None  # variable names as written (None: canonical x0, x1, ...)

    def __len__(self) -> int:
        return len(self.statements)

    def variable_names(self) -> tuple[str, ...]:
        return self.names or tuple(f"x{i}" for i in range(self.num_inputs + len(self.statements)))


def parse_program(text: str) -> Program:
    """The files' program string: ``x0 = INPUT | x1 = Map (*2) x0``. Follows the reference parser (INPUT lines
    first, every variable assigned once, exact arity, a lambda exactly where a higher-order op wants one, a
    trailing ``|`` tolerated); a variable used before it is assigned is rejected here rather than at run time."""
    lines = [line.split() for line in text.split("|")]
    if lines and not lines[-1] and len(lines) > 1:
        lines.pop()  # trailing '|'
    names: list[str] = []
    statements: list[Statement] = []
    num_inputs = 0
    for k, toks in enumerate(lines, start=1):
        where = f"program line {k} {' '.join(toks)!r}"
        if len(toks) < 3 or toks[1] != "=" or not _is_variable(toks[0]):
            raise PuzzleError(f"{where}: a line reads 'xK = INPUT' or 'xK = Op args'")
        lhs = toks[0]
        if lhs in names:
            raise PuzzleError(f"{where}: {lhs} is assigned twice; every variable is assigned once")
        if toks[2] == "INPUT":
            if statements or len(toks) != 3:
                raise PuzzleError(f"{where}: INPUT lines come first and have 3 tokens")
            num_inputs += 1
            names.append(lhs)
            continue
        op = toks[2]
        if op not in SIGNATURES:
            raise PuzzleError(f"{where}: unknown operation {op!r} (known: {', '.join(OPERATIONS)})")
        kind, arg_types, _ = SIGNATURES[op]
        args = toks[3:]
        if len(args) != len(arg_types) + (kind is not None):
            raise PuzzleError(f"{where}: {op} takes {len(arg_types) + (kind is not None)} arguments, got {len(args)}")
        lam = None
        if kind is not None:
            lam = args.pop(0)
            if lam not in LAMBDA_KIND:
                raise PuzzleError(f"{where}: {op}'s first argument must be a lambda such as (+1), got {lam!r}")
        refs = []
        for a in args:
            if a in LAMBDA_KIND:
                raise PuzzleError(f"{where}: a lambda may only be the first argument of a higher-order op")
            if a == lhs or a not in names:
                raise PuzzleError(f"{where}: argument {a!r} is not a variable assigned on an earlier line")
            refs.append(names.index(a))
        statements.append(Statement(op, lam, tuple(refs)))
        names.append(lhs)
    if not names:
        raise PuzzleError("empty program: expected lines such as 'x0 = INPUT | x1 = Sort x0'")
    if len(names) > MAX_VARIABLES:
        raise PuzzleError(f"program has {len(names)} variables; the DSL names at most {MAX_VARIABLES} (x0..x9)")
    canonical = tuple(f"x{i}" for i in range(len(names)))
    return Program(num_inputs, tuple(statements), None if tuple(names) == canonical else tuple(names))


def format_program(program: Program) -> str:
    names = program.variable_names()
    lines = [f"{names[i]} = INPUT" for i in range(program.num_inputs)]
    for j, s in enumerate(program.statements):
        parts = [names[program.num_inputs + j], "=", s.op] + ([s.lam] if s.lam else []) + [names[a] for a in s.args]
        lines.append(" ".join(parts))
    return " | ".join(lines)


def program_problems(program: Program, input_types: Sequence[str]) -> list[str]:
    """Type errors of `program` for inputs of these types ("I"/"L"): wrong argument types, wrong lambda kinds,
    the wrong number of inputs. The reference only finds these when it runs, through duck typing; rejecting
    them up front can only differ on ill-typed predictions, never on a generated or test program."""
    if len(input_types) != program.num_inputs:
        return [f"the program takes {program.num_inputs} inputs, the example has {len(input_types)}"]
    types = list(input_types)
    found = []
    for j, s in enumerate(program.statements):
        kind, arg_types, result = SIGNATURES[s.op]
        if (s.lam is None) != (kind is None) or (kind is not None and LAMBDA_KIND[s.lam] != kind):
            found.append(f"statement {j + 1}: {s.op} needs a {kind} lambda, got {s.lam}")
        if len(s.args) != len(arg_types) or any(a >= len(types) for a in s.args):
            found.append(f"statement {j + 1}: {s.op} has arguments that are not earlier variables")
        elif any(types[a] != t for a, t in zip(s.args, arg_types)):
            found.append(f"statement {j + 1}: {s.op} wants arguments of types {'/'.join(arg_types)}")
        types.append(result)
    return found


def run_program(program: Program, inputs: Sequence[Value]) -> Value | None:
    """The value of the last line (the last input when there is no statement), or None when a statement is
    invalid on these inputs. Raises `PuzzleError` for a type error (`program_problems`)."""
    found = program_problems(program, [_type_of(v) for v in inputs])
    if found:
        raise PuzzleError(f"cannot run the program: {found[0]}")
    env = list(inputs)
    for s in program.statements:
        result = _OP_FN[s.op](LAMBDA_FN[s.lam] if s.lam else None, *(env[a] for a in s.args))
        if result is None:
            return None
        env.append(result)
    return env[-1]


def solves(program: Program, inputs: Sequence[Sequence[Value]], outputs: Sequence[Value]) -> bool:
    """True when `program` reproduces every example. An ill-typed program solves nothing (it would be a run
    error in the reference, which its evaluators count as a failed example)."""
    if any(program_problems(program, [_type_of(v) for v in ex]) for ex in inputs):
        return False
    return all(run_program(program, ex) == out for ex, out in zip(inputs, outputs, strict=True))


# ----------------------------------------------------------------------------------------------------------
# Tasks and task files
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeepCoderTask:
    inputs: tuple[tuple[Value, ...], ...]  # per example, the input values in order
    outputs: tuple[Value, ...]  # per example
    program: Program | None = None  # one program that solves it (None for a task given without)
    index: int | None = None

    @property
    def num_inputs(self) -> int:
        return len(self.inputs[0])


def parse_task(record: dict[str, Any] | str, where: str = "task") -> DeepCoderTask:
    """One task from a JSON object (or its text) with ``inputs`` and ``outputs`` (lists of strings, one per
    example) and optionally ``program`` and ``index``, as in ExeDec's jsonl test files."""
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except json.JSONDecodeError as e:
            raise PuzzleError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict):
        raise PuzzleError(f"{where}: expected a JSON object with 'inputs' and 'outputs'")
    ins, outs = record.get("inputs"), record.get("outputs")
    if not isinstance(ins, list) or not isinstance(outs, list) or not all(isinstance(s, str) for s in ins + outs):
        raise PuzzleError(f"{where}: 'inputs' and 'outputs' must be lists of strings, one per example")
    if not ins or len(ins) != len(outs):
        raise PuzzleError(f"{where}: {len(ins)} inputs and {len(outs)} outputs; give one of each per example")
    inputs = tuple(parse_state(s, f"{where}, example {k + 1} inputs") for k, s in enumerate(ins))
    outputs = tuple(parse_value(s, f"{where}, example {k + 1} output") for k, s in enumerate(outs))
    types = [tuple(_type_of(v) for v in ex) for ex in inputs]
    if len(set(types)) != 1:
        raise PuzzleError(f"{where}: the examples' inputs differ in number or type; every example needs the same")
    program = None
    if record.get("program") is not None:
        if not isinstance(record["program"], str):
            raise PuzzleError(f"{where}: 'program' must be a string")
        program = parse_program(record["program"])
        if program.num_inputs != len(inputs[0]):
            raise PuzzleError(f"{where}: the program takes {program.num_inputs} inputs, the examples give "
                              f"{len(inputs[0])}")
    index = record.get("index")
    return DeepCoderTask(inputs, outputs, program, index if isinstance(index, int) else None)


def task_to_json(task: DeepCoderTask) -> dict[str, Any]:
    names = task.program.variable_names()[:task.num_inputs] if task.program else None
    record: dict[str, Any] = {} if task.index is None else {"index": task.index}
    record["inputs"] = [format_state(ex, names) for ex in task.inputs]
    record["outputs"] = [format_value(v) for v in task.outputs]
    if task.program is not None:
        record["program"] = format_program(task.program)
    return record


def read_tasks(path: str | Path) -> list[DeepCoderTask]:
    """A jsonl file of tasks; a malformed line raises `DataError` naming the file and line."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no task file {p}; expected a .jsonl file such as ../shared/data/exedec/deepcoder/NONE.jsonl")
    tasks = []
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                tasks.append(parse_task(line, "task"))
            except PuzzleError as e:
                raise DataError(f"{p}, line {n}: {e}; fix or remove that line") from None
    if not tasks:
        raise DataError(f"{p} holds no task; expected one JSON object per line")
    return tasks


def write_tasks(tasks: Iterable[DeepCoderTask], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps(task_to_json(t)) + "\n")


# ----------------------------------------------------------------------------------------------------------
# Generation (reference sections 4.1-4.3)
# ----------------------------------------------------------------------------------------------------------

ELEMENT_RANGES = ((0, 4), (0, 9), (-10, 10), (-50, 50))
LENGTH_RANGES = ((1, 3), (0, 5))
INT_INPUT_RANGE = (0, 5)
_SAMPLE_BUDGET = 4000  # statement executions per sampled program before giving up on it


def random_inputs(rng: random.Random, num_examples: int = NUM_EXAMPLES) -> tuple[tuple[Value, ...], ...]:
    """One or two inputs (at least one a list), element and length ranges drawn per input and kept for every
    example, ints in [0, 5]; examples are distinct."""
    types = ["L"] + (["I" if rng.random() < 0.5 else "L"] if rng.randint(1, 2) == 2 else [])
    rng.shuffle(types)
    ranges = [(rng.choice(ELEMENT_RANGES), rng.choice(LENGTH_RANGES)) for _ in types]
    examples: list[tuple[Value, ...]] = []
    while len(examples) < num_examples:
        ex: list[Value] = []
        for t, ((lo, hi), (nlo, nhi)) in zip(types, ranges):
            if t == "I":
                ex.append(rng.randint(*INT_INPUT_RANGE))
            else:
                ex.append(tuple(rng.randint(lo, hi) for _ in range(rng.randint(nlo, nhi))))
        if tuple(ex) not in examples:
            examples.append(tuple(ex))
    return tuple(examples)


def _candidates(types: list[str], unused: frozenset[int], last: bool,
                ops: Sequence[str] = OPERATIONS) -> list[tuple[str, str | None, tuple]]:
    """Every well-typed next statement allowed by the usage rule, in the order of `ops`: the last statement
    uses every statement result not used yet; with two unused, the next uses at least one (inputs are not
    tracked)."""
    by_type = {"I": [i for i, t in enumerate(types) if t == "I"], "L": [i for i, t in enumerate(types) if t == "L"]}
    out = []
    for op in ops:
        kind, arg_types, _ = SIGNATURES[op]
        pools = [by_type[t] for t in arg_types]
        if not all(pools):
            continue
        for lam in (LAMBDAS_OF_KIND[kind] if kind else (None,)):
            for args in itertools.product(*pools):
                if last and not unused.issubset(args):
                    continue
                if len(unused) == 2 and not last and unused.isdisjoint(args):
                    continue
                out.append((op, lam, args))
    return out


@functools.lru_cache(maxsize=None)
def _completions(num_int: int, num_list: int, unused: tuple[str, ...], remaining: int) -> int:
    """How many statement sequences of `remaining` more statements the usage rule allows from a state with
    these variable counts and unused results (by type). Only types matter, so states are few and cached."""
    if remaining == 0:
        return 1
    types = ["I"] * num_int + ["L"] * num_list
    free = {"I": list(range(num_int)), "L": list(range(num_int, num_int + num_list))}
    rep = frozenset(free[t].pop() for t in unused)
    return sum(_completions(*_next_state(types, rep, op, args), remaining - 1)
               for op, _, args in _candidates(types, rep, remaining == 1))


def _next_state(types: list[str], unused: frozenset[int], op: str, args: tuple) -> tuple[int, int, tuple[str, ...]]:
    result = SIGNATURES[op][2]
    left = sorted(types[a] for a in unused - set(args)) + [result]
    n_int = types.count("I") + (result == "I")
    return n_int, len(types) + 1 - n_int, tuple(sorted(left))


# ExeDec's two op pools (reference section 4.4); the compositional splits combine them.
FO_MAP = ("Head", "Last", "Take", "Drop", "Access", "Minimum", "Maximum", "Reverse", "Sort", "Sum", "Map")
HO_MAP = ("Filter", "Count", "ZipWith", "Scanl1")


@dataclass(frozen=True)
class Distribution:
    """Which programs a generator draws: their lengths, the ops allowed in the first floor(L/2) statements and in
    the rest (SWITCH_CONCEPT_ORDER's position rule; both all ops by default), the lambdas Scanl1 may take, and
    the programs per input set (None: the caller's `programs_per_search`)."""

    lengths: tuple[int, ...] = (1, 2, 3, 4, 5)
    first: tuple[str, ...] = OPERATIONS
    rest: tuple[str, ...] = OPERATIONS
    scanl1: tuple[str, ...] = LAMBDAS_OF_KIND["F2"]
    per_search: int | None = None

    def ops_at(self, position: int, length: int) -> list[str]:
        return list(self.first if position < length // 2 else self.rest)


_NO_SCANL1 = tuple(op for op in OPERATIONS if op != "Scanl1")

# Each split's training distribution (reference section 4.4) as (share of the tasks, distribution) parts. The
# test distributions are the files themselves; the generator never draws them.
SPLITS: dict[str, tuple[tuple[float, Distribution], ...]] = {
    "NONE": ((1.0, Distribution()),),
    "LENGTH_GENERALIZATION": ((1.0, Distribution((1, 2, 3, 4))),),
    "COMPOSE_DIFFERENT_CONCEPTS": ((0.5, Distribution((2, 3, 4), FO_MAP, FO_MAP)),
                                   (0.5, Distribution((2, 3, 4), HO_MAP, HO_MAP))),
    "SWITCH_CONCEPT_ORDER": ((1.0, Distribution((2, 3, 4), HO_MAP, FO_MAP)),),
    "COMPOSE_NEW_OP": ((0.75, Distribution((2, 3, 4), _NO_SCANL1, _NO_SCANL1)),
                       (0.25, Distribution((1,), ("Scanl1",), ("Scanl1",), per_search=1))),
    "ADD_OP_FUNCTIONALITY": ((1.0, Distribution((1, 2, 3, 4), scanl1=("(-)", "(min)"))),),
}


class _Search:
    """Depth-first search over statements on all examples at once. A node holds one column per variable (its
    value on every example); a candidate is pruned when invalid on an example, equal on every example to an
    existing variable (redundant), or equal to a sibling's column. Only programs of `dist` are visited."""

    def __init__(self, inputs: tuple[tuple[Value, ...], ...], rng: random.Random,
                 dist: Distribution = Distribution()):
        self.rng = rng
        self.dist = dist
        self.columns: list[tuple[Value, ...]] = [tuple(ex[i] for ex in inputs) for i in range(len(inputs[0]))]
        self.types = [_type_of(c[0]) for c in self.columns]
        self.num_inputs = len(self.columns)
        self.statements: list[Statement] = []
        self.executions = 0

    def _children(self, length: int, unused: frozenset[int], shuffle: bool):
        last = len(self.statements) + 1 == length
        ops = self.dist.ops_at(len(self.statements), length)
        if shuffle:  # sampling: a random walk, each candidate weighted by its number of completions
            cands = self._weighted_order(_candidates(self.types, unused, last, ops), unused, length)
        else:  # enumeration, as the reference: the op order is shuffled at each node
            self.rng.shuffle(ops)
            cands = _candidates(self.types, unused, last, ops)
        if len(self.dist.scanl1) < len(LAMBDAS_OF_KIND["F2"]):
            cands = [c for c in cands if c[0] != "Scanl1" or c[1] in self.dist.scanl1]
        seen = set(self.columns)
        for op, lam, args in cands:
            f = LAMBDA_FN[lam] if lam else None
            fn = _OP_FN[op]
            self.executions += 1
            col = []
            for k in range(len(self.columns[0])):
                r = fn(f, *(self.columns[a][k] for a in args))
                if r is None:
                    break
                col.append(r)
            else:
                col_t = tuple(col)
                if col_t not in seen:  # not redundant with a variable, not a sibling's twin
                    seen.add(col_t)
                    yield Statement(op, lam, args), col_t

    def _weighted_order(self, cands: list, unused: frozenset[int], length: int) -> list:
        """A random order in which a candidate comes early in proportion to how many programs complete it
        (Efraimidis-Spirakis keys u**(1/w)). A uniform walk over candidates would favour statements that few
        programs continue, such as an int that the last statement must then feed to Take or Drop; weighting
        by completions makes the walk near-uniform over whole programs, as the reference's enumeration is."""
        remaining = length - len(self.statements) - 1
        keyed = []
        for cand in cands:
            w = _completions(*_next_state(self.types, unused, cand[0], cand[2]), remaining)
            if w:
                keyed.append((self.rng.random() ** (1.0 / w), cand))
        keyed.sort(key=lambda kc: kc[0], reverse=True)
        return [c for _, c in keyed]

    def _program(self) -> Program:
        return Program(self.num_inputs, tuple(self.statements))

    def _acceptable(self, col: tuple[Value, ...]) -> bool:
        """Complete-program filters: no dead code (guaranteed by the usage rule, checked anyway), outputs
        distinct across examples (hence not constant)."""
        used = {a for s in self.statements for a in s.args}
        dead = any(self.num_inputs + j not in used for j in range(len(self.statements) - 1))
        return not dead and len(set(col)) == len(col)

    def _walk(self, length: int, unused: frozenset[int], visit, shuffle: bool) -> bool:
        """Extend the program; `visit(column)` is called on complete programs and returns True to stop."""
        for st, col in self._children(length, unused, shuffle):
            self.statements.append(st)
            self.columns.append(col)
            self.types.append(SIGNATURES[st.op][2])
            new = self.num_inputs + len(self.statements) - 1
            left = (unused - set(st.args)) | {new}
            if len(self.statements) == length:
                stop = self._acceptable(col) and visit(col)
            else:
                stop = self._walk(length, frozenset(left), visit, shuffle)
            self.statements.pop()
            self.columns.pop()
            self.types.pop()
            if stop:
                return True
            if shuffle and self.executions > self.budget:
                return True
        return False

    def enumerate(self, length: int, found: dict[tuple, Program]) -> None:
        """Every functionally distinct program of `length`; the first one per output column is kept."""
        self.budget = float("inf")

        def visit(col: tuple) -> bool:
            found.setdefault(col, self._program())
            return False

        self._walk(length, frozenset(), visit, shuffle=False)

    def sample(self, length: int, taken: dict[tuple, Program],
               budget: int = _SAMPLE_BUDGET) -> tuple[tuple, Program] | None:
        """One random program of `length` whose outputs no program in `taken` gives, or None within the budget."""
        self.executions, self.budget = 0, budget
        result: list = []

        def visit(col: tuple) -> bool:
            if col in taken:
                return False
            result.append((col, self._program()))
            return True

        self._walk(length, frozenset(), visit, shuffle=True)
        return result[0] if result else None


def _one_search(rng: random.Random, dist: Distribution, num_programs: int) -> list[DeepCoderTask] | None:
    """`num_programs` functionally distinct programs of `dist` on one input set, dealt evenly over its lengths (a
    length short of its quota passes the deficit on); None when the inputs do not allow that many."""
    inputs = random_inputs(rng)
    search = _Search(inputs, rng, dist)
    lengths = dist.lengths
    found: dict[int, dict[tuple, Program]] = {}
    taken: dict[tuple, Program] = {}  # shortest program seen per output column, all lengths
    for length in (1, 2):
        found[length] = {}
        search.enumerate(length, found[length])
        for col, prog in found[length].items():
            taken.setdefault(col, prog)
    found = {n: {c: p for c, p in d.items() if len(taken[c]) == n} for n, d in found.items()}
    chosen: list[tuple[tuple, Program]] = []
    remaining = num_programs
    for k, length in enumerate(sorted(lengths)):
        quota = remaining // (len(lengths) - k)
        if length <= 2:
            pool = list(found[length].items())
            picks = pool if len(pool) <= quota else rng.sample(pool, quota)
        else:
            picks = []
            for _ in range(2 * quota):
                if len(picks) == quota:
                    break
                got = search.sample(length, taken)
                if got is not None:
                    picks.append(got)
                    taken[got[0]] = got[1]
        chosen.extend(picks)
        remaining -= len(picks)
    if remaining:
        return None
    rng.shuffle(chosen)
    return [DeepCoderTask(inputs, col, prog) for col, prog in chosen]


def generate(count: int, seed: int = 0, *, min_length: int = 1, max_length: int = MAX_STATEMENTS,
             programs_per_search: int = 10, split: str | None = None) -> list[DeepCoderTask]:
    """`count` random tasks, deterministic per seed: searches of `programs_per_search` programs each (the
    reference's test data uses 10), program lengths dealt evenly over min_length..max_length. About 250 tasks
    per second on one core (1000 in 4.1 s), most of it the exhaustive length-2 search of each input set.
    `split` (a key of `SPLITS`) draws that ExeDec split's training distribution instead of the lengths."""
    if not 1 <= min_length <= max_length <= MAX_STATEMENTS:
        raise DataError(f"program lengths {min_length}..{max_length} are outside 1..{MAX_STATEMENTS}; "
                        "choose 1 <= min_length <= max_length <= 5")
    if count < 0 or programs_per_search < 1:
        raise DataError("count must be >= 0 and programs_per_search >= 1")
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; the ExeDec splits are: {', '.join(SPLITS)}")
    rng = random.Random(seed)
    parts = SPLITS[split] if split else ((1.0, Distribution(tuple(range(min_length, max_length + 1)))),)
    wanted = [round(count * share) for share, _ in parts]
    wanted[0] += count - sum(wanted)
    tasks: list[DeepCoderTask] = []
    for n, (_, dist) in zip(wanted, parts):
        mine: list[DeepCoderTask] = []
        while len(mine) < n:
            got = _one_search(rng, dist, min(dist.per_search or programs_per_search, n - len(mine)))
            if got is not None:
                mine.extend(got)
        tasks.extend(mine)
    if len(parts) > 1:  # mix the parts (one part keeps the plain generator's order)
        rng.shuffle(tasks)
    return [DeepCoderTask(t.inputs, t.outputs, t.program, i) for i, t in enumerate(tasks)]


# ----------------------------------------------------------------------------------------------------------
# Token encoding (layout in the module docstring)
# ----------------------------------------------------------------------------------------------------------

TOKENS = (("", "<BOS>", "<EOS>", "|", "=", "INPUT", "[", "]") + OPERATIONS + LAMBDAS
          + tuple(f"x{i}" for i in range(MAX_VARIABLES)) + tuple(str(v) for v in range(MIN_INT, MAX_INT + 1))
          + ("<SLOT>",))
TOKEN_ID = {t: i for i, t in enumerate(TOKENS)}
VOCAB_SIZE = len(TOKENS)
PAD, BOS, EOS, LBRACKET, RBRACKET, SLOT = 0, 1, 2, TOKEN_ID["["], TOKEN_ID["]"], TOKEN_ID["<SLOT>"]
_OP0, _LAM0, _VAR0, _INT0 = TOKEN_ID["Head"], TOKEN_ID["(+1)"], TOKEN_ID["x0"], TOKEN_ID["0"]
VALUE_LEN = MAX_LIST_LENGTH + 2
EXAMPLE_LEN = (MAX_INPUTS + 1) * VALUE_LEN
SPEC_LEN = NUM_EXAMPLES * EXAMPLE_LEN
STATEMENT_LEN = 4  # operation + at most 3 arguments (ZipWith: lambda and two lists)
PROGRAM_START = SPEC_LEN
PROGRAM_LEN = MAX_STATEMENTS * STATEMENT_LEN
SEQ_LEN = SPEC_LEN + PROGRAM_LEN
assert VOCAB_SIZE == 154 and TOKEN_ID["-50"] == 52 and TOKEN_ID["50"] == 152 and _OP0 == 8 and _LAM0 == 23


def _value_tokens(v: Value) -> list[int]:
    if isinstance(v, tuple):
        toks = [LBRACKET] + [x + _INT0 for x in v] + [RBRACKET]
    else:
        toks = [v + _INT0]
    return toks + [PAD] * (VALUE_LEN - len(toks))


def _slot_variable(var: int, num_inputs: int) -> int:
    """Variable index -> slot token: inputs keep x0/x1, statement j is x{2+j}."""
    return _VAR0 + (var if var < num_inputs else MAX_INPUTS + var - num_inputs)


def encode_task(task: DeepCoderTask) -> tuple[np.ndarray, np.ndarray | None]:
    """(inputs, labels), each (SEQ_LEN,) uint8; labels is None for a task without a program."""
    if len(task.inputs) != NUM_EXAMPLES:
        raise DataError(f"task {task.index}: {len(task.inputs)} examples; the encoding holds exactly {NUM_EXAMPLES}")
    if not 1 <= task.num_inputs <= MAX_INPUTS:
        raise DataError(f"task {task.index}: {task.num_inputs} inputs; the encoding holds 1 or {MAX_INPUTS}")
    x = []
    for ex, out in zip(task.inputs, task.outputs):
        fields = list(ex) + [None] * (MAX_INPUTS - len(ex)) + [out]
        for v in fields:
            x.extend([PAD] * VALUE_LEN if v is None else _value_tokens(v))
    inputs = np.array(x + [SLOT] * PROGRAM_LEN, dtype=np.uint8)
    if task.program is None:
        return inputs, None
    p = task.program
    if len(p) > MAX_STATEMENTS or len(p) == 0:
        raise DataError(f"task {task.index}: program of {len(p)} statements; the encoding holds 1..{MAX_STATEMENTS}")
    y = [PAD] * SPEC_LEN
    for s in p.statements:
        cells = [_OP0 + OPERATIONS.index(s.op)] + ([_LAM0 + LAMBDAS.index(s.lam)] if s.lam else [])
        cells += [_slot_variable(a, p.num_inputs) for a in s.args]
        y.extend(cells + [EOS] * (STATEMENT_LEN - len(cells)))
    y.extend([EOS] * (SEQ_LEN - len(y)))
    return inputs, np.array(y, dtype=np.uint8)


def encode(tasks: Sequence[DeepCoderTask]) -> tuple[np.ndarray, np.ndarray]:
    """Tasks -> (inputs, labels), each (N, SEQ_LEN) uint8. Every task needs a program (its label)."""
    rows = [encode_task(t) for t in tasks]
    if any(lab is None for _, lab in rows):
        raise DataError("a task without a program has no labels; encode_task gives its inputs alone")
    if not rows:
        return np.zeros((0, SEQ_LEN), np.uint8), np.zeros((0, SEQ_LEN), np.uint8)
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


def _decode_value(cells: np.ndarray) -> Value | None:
    c = [int(t) for t in cells]
    if c[0] == PAD:
        return None
    if c[0] != LBRACKET:
        if not _INT0 + MIN_INT <= c[0] <= _INT0 + MAX_INT or any(c[1:]):
            raise PuzzleError(f"value cells {c} are not an int followed by padding")
        return c[0] - _INT0
    end = c.index(RBRACKET) if RBRACKET in c else -1
    items = c[1:end] if end > 0 else None
    if items is None or any(not _INT0 + MIN_INT <= t <= _INT0 + MAX_INT for t in items) or any(c[end + 1:]):
        raise PuzzleError(f"value cells {c} are not a list '[ ... ]' followed by padding")
    return tuple(t - _INT0 for t in items)


def decode_spec(row: np.ndarray) -> DeepCoderTask:
    """The examples of an encoded input row (program None). Raises `PuzzleError` when the spec is malformed."""
    r = np.asarray(row).reshape(-1)
    if r.size != SEQ_LEN:
        raise PuzzleError(f"an encoded task has {SEQ_LEN} tokens, got {r.size}")
    inputs, outputs = [], []
    for k in range(NUM_EXAMPLES):
        vals = [_decode_value(r[k * EXAMPLE_LEN + f * VALUE_LEN:][:VALUE_LEN]) for f in range(MAX_INPUTS + 1)]
        ins = [v for v in vals[:-1] if v is not None]
        if vals[-1] is None or not ins or (vals[0] is None and vals[1] is not None):
            raise PuzzleError(f"example {k + 1} of the encoded task lacks an input or its output")
        inputs.append(tuple(ins))
        outputs.append(vals[-1])
    return DeepCoderTask(tuple(inputs), tuple(outputs))


def as_question(row: np.ndarray) -> np.ndarray:
    """An encoded task checked (`decode_spec` raises `PuzzleError` on a malformed spec), program cells reset to
    ``<SLOT>``: what the model is given."""
    spec = decode_spec(row)
    return encode_task(DeepCoderTask(spec.inputs, spec.outputs))[0]


def decode_program(tokens: np.ndarray, num_inputs: int) -> Program | None:
    """The program in a prediction's slots (a full SEQ_LEN row or just the PROGRAM_LEN cells), or None when the
    cells do not spell a program: an unknown or misplaced token, a lambda of the wrong kind, a variable not yet
    defined, or no statement at all. Cells past an op's arity and statements after an ``<EOS>`` op are
    ignored. Argument types are left to `run_program`, which knows the inputs."""
    t = np.asarray(tokens).reshape(-1)
    if t.size == SEQ_LEN:
        t = t[PROGRAM_START:]
    if t.size != PROGRAM_LEN or num_inputs not in (1, 2):
        return None
    cells = [int(v) for v in t]
    statements = []
    for i in range(MAX_STATEMENTS):
        op_cell = cells[i * STATEMENT_LEN]
        if op_cell == EOS:
            break
        if not _OP0 <= op_cell < _OP0 + len(OPERATIONS):
            return None
        op = OPERATIONS[op_cell - _OP0]
        kind, arg_types, _ = SIGNATURES[op]
        args = cells[i * STATEMENT_LEN + 1:(i + 1) * STATEMENT_LEN]
        lam = None
        if kind is not None:
            if not _LAM0 <= args[0] < _LAM0 + len(LAMBDAS) or LAMBDA_KIND[LAMBDAS[args[0] - _LAM0]] != kind:
                return None
            lam, args = LAMBDAS[args[0] - _LAM0], args[1:]
        refs = []
        for cell in args[:len(arg_types)]:
            slot = cell - _VAR0
            if 0 <= slot < num_inputs:
                refs.append(slot)
            elif MAX_INPUTS <= slot < MAX_INPUTS + i:
                refs.append(num_inputs + slot - MAX_INPUTS)
            else:
                return None
        statements.append(Statement(op, lam, tuple(refs)))
    return Program(num_inputs, tuple(statements)) if statements else None


def verify(task_inputs: np.ndarray, predicted_tokens: np.ndarray) -> bool:
    """True when the program decoded from `predicted_tokens` reproduces every example of the encoded task
    `task_inputs`. A malformed or ill-typed prediction is simply not verified."""
    spec = decode_spec(task_inputs)
    program = decode_program(predicted_tokens, spec.num_inputs)
    return program is not None and solves(program, spec.inputs, spec.outputs)


def verify_batch(inputs: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """(N,) bool: `verify` per row."""
    return np.array([verify(x, p) for x, p in zip(np.asarray(inputs), np.asarray(predictions))], dtype=bool)


def check_answer(question: np.ndarray, answer: np.ndarray) -> list[str]:
    """Why a predicted program is wrong for an encoded task: empty when it reproduces every example."""
    spec = decode_spec(question)
    program = decode_program(answer, spec.num_inputs)
    if program is None:
        return ["the answer's program cells do not spell a program"]
    found = program_problems(program, [_type_of(v) for v in spec.inputs[0]])
    if found:
        return found
    wrong = []
    for k, (ex, out) in enumerate(zip(spec.inputs, spec.outputs), start=1):
        got = run_program(program, ex)
        if got != out:
            wrong.append(f"example {k}: the program gives {'an invalid result' if got is None else format_value(got)}"
                         f", expected {format_value(out)}")
    return wrong


def format_row(row: np.ndarray, answer: np.ndarray | None = None) -> str:
    """An encoded task (and the program of `answer`, or of the row itself) as text for the terminal."""
    spec = decode_spec(row)
    lines = [f"example {k}: {format_state(ex)} -> {format_value(out)}"
             for k, (ex, out) in enumerate(zip(spec.inputs, spec.outputs), start=1)]
    program = decode_program(row if answer is None else answer, spec.num_inputs)
    if program is not None:
        lines.append(f"program: {format_program(program)}")
    elif answer is not None:
        lines.append("program: (unreadable)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Data sets on disk (dataset.py format)
# ----------------------------------------------------------------------------------------------------------

def _split(tasks: Sequence[DeepCoderTask]):
    from ..dataset import SplitArrays

    inputs, labels = encode(tasks)
    extras = {"length": np.array([len(t.program) for t in tasks], dtype=np.int8),
              "index": np.array([-1 if t.index is None else t.index for t in tasks], dtype=np.int32)}
    return SplitArrays.ungrouped(inputs, labels, extras=extras)


def _spec_key(t: DeepCoderTask) -> tuple:
    return t.inputs, t.outputs


def generate_deepcoder_dataset(out: str | Path, *, train_count: int, test_count: int, seed: int = 0,
                               min_length: int = 1, max_length: int = MAX_STATEMENTS, split: str | None = None,
                               overwrite: bool = False) -> dict[str, Any]:
    """Generated train and test tasks; the test split (seed + 1_000_003) shares no spec with the train split."""
    from ..dataset import write_dataset

    splits, build = generated_splits(train_count, test_count, seed, min_length, max_length, _split, split)
    return write_dataset(out, "deepcoder", SEQ_LEN, VOCAB_SIZE, splits, build, overwrite=overwrite)


def generated_splits(train_count: int, test_count: int, seed: int, min_length: int, max_length: int,
                     to_split: Callable[[Sequence[DeepCoderTask]], Any],
                     split: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Generated train and test tasks as splits (`to_split` encodes them) and the manifest's build record; the
    test split (seed + 1_000_003) shares no spec with the train split. With `split`, both are drawn from that
    ExeDec split's *training* distribution (the generated test split is a dev set; the split's own test
    distribution is its file)."""
    train = generate(train_count, seed, min_length=min_length, max_length=max_length, split=split)
    splits = {"train": to_split(train)} if train_count else {}
    if test_count:
        seen = {_spec_key(t) for t in train}
        pool = generate(test_count + test_count // 10 + 10, seed + 1_000_003, min_length=min_length,
                        max_length=max_length, split=split)
        test = [t for t in pool if _spec_key(t) not in seen][:test_count]
        if len(test) < test_count:
            raise DataError(f"could not generate {test_count} test tasks distinct from the training tasks")
        splits["test"] = to_split(test)
    if not splits:
        raise DataError("nothing to generate: pass --count and/or --test-count above 0")
    build = {"command": "generate", "train_count": train_count, "test_count": test_count, "seed": seed,
             "min_length": min_length, "max_length": max_length, **({"split": split} if split else {})}
    return splits, build


def build_deepcoder_dataset(source: str | Path, out: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """A test split from a jsonl task file (ExeDec's NONE.jsonl, ...). Those files are test data only: they
    become a `test` split and never a `train` one. Every task's program is checked to reproduce its examples."""
    from ..dataset import file_digest, write_dataset

    tasks = read_tasks(source)
    for n, t in enumerate(tasks, start=1):
        if t.program is None:
            raise DataError(f"{source}, task {n}: no 'program'; the labels need one (any program that solves it)")
        if not solves(t.program, t.inputs, t.outputs):
            raise DataError(f"{source}, task {n}: its program does not reproduce its outputs; check the line")
    build = {"command": "build", "sources": [file_digest(source)]}
    return write_dataset(out, "deepcoder", SEQ_LEN, VOCAB_SIZE, {"test": _split(tasks)}, build, overwrite=overwrite)
