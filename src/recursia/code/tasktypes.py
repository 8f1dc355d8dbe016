"""Task types: what is known about a task before refining it, so statistics and depth can be kept per kind.

A type has three fields, written `benchmark|first|topic`:

- `benchmark`: humaneval, mbpp, mbpp-sanitized or a task file's stem;
- `first`: the class of the depth-0 program's error signature (known after the first call, before any
  refinement): pass, assert (a visible test's assert failed), error (an exception), syntax, timeout (also
  memory and crash), unusable (no program in the reply), none (no tests ran);
- `topic`: the prompt's main subject by keyword counts: list, string, number or other (see `TOPICS`).

Two more prompt features are stored with every task but kept out of the key (more fields would leave most
types with a handful of tasks): `visible` (the task has visible tests) and `length` (the prompt's length
bucket: short < 300 characters, medium < 800, long). A field may be `*` (any): `candidates` lists the keys
from the most specific to `*|*|*`, so a sparse type backs off to a coarser one.
"""

from __future__ import annotations

import itertools
import re

from .tasks import MBPP_SPLITS

TOPICS = {
    "list": {"list", "lists", "array", "arrays", "element", "elements", "tuple", "tuples", "sequence", "items",
             "matrix", "sublist", "sublists", "dictionary", "set"},
    "string": {"string", "strings", "str", "character", "characters", "char", "chars", "word", "words", "letter",
               "letters", "substring", "text", "sentence", "vowels", "uppercase", "lowercase", "palindrome"},
    "number": {"number", "numbers", "integer", "integers", "int", "float", "digit", "digits", "sum", "prime",
               "even", "odd", "factorial", "square", "divisible", "decimal", "binary", "fibonacci"},
}
LENGTHS = ((300, "short"), (800, "medium"))
FIELDS = ("benchmark", "first", "topic")
ANY = "*"


def first_class(signature: str | None) -> str:
    """The class of an error signature as `Attempt.signature` / the sandbox write it."""
    if signature is None:
        return ANY
    if signature == "ok":
        return "pass"
    if signature == "unusable reply":
        return "unusable"
    if signature in ("timeout", "memory", "crash"):
        return "timeout"
    if signature == "no tests":
        return "none"
    if signature.startswith(("SyntaxError", "IndentationError", "TabError")):
        return "syntax"
    if signature.startswith("AssertionError"):
        return "assert"
    return "error"


def prompt_features(prompt: str) -> dict:
    """Topic and length bucket of a prompt (keyword counts over its lower-cased words)."""
    words = re.findall(r"[a-z]+", prompt.lower())
    counts = {name: sum(w in vocab for w in words) for name, vocab in TOPICS.items()}
    best = max(counts, key=lambda name: counts[name])  # ties: the first in TOPICS
    length = next((name for limit, name in LENGTHS if len(prompt) < limit), "long")
    return {"topic": best if counts[best] else "other", "length": length, "mentions": counts}


def task_features(task) -> dict:
    """Everything a type may use that is known before solving, from a `CodeTask`."""
    return {"benchmark": task.benchmark, "visible": bool(task.visible_tests), **prompt_features(task.prompt)}


def type_key(benchmark: str, first: str, topic: str) -> str:
    return "|".join((benchmark or ANY, first or ANY, topic or ANY))


def candidates(benchmark: str, first: str, topic: str) -> list[str]:
    """Keys to try for a task, most specific first. Ties in specificity keep `first` over `topic` over
    `benchmark` (the depth-0 error says most about whether refining helps)."""
    values = dict(zip(FIELDS, (benchmark, first, topic)))
    weight = {"first": 4, "topic": 2, "benchmark": 1}
    keys = []
    for kept in itertools.product((True, False), repeat=3):
        fields = [values[f] if keep else ANY for f, keep in zip(FIELDS, kept)]
        if all(keep is False or values[f] not in (None, ANY) for f, keep in zip(FIELDS, kept)):
            score = sum(weight[f] for f, keep in zip(FIELDS, kept) if keep)
            keys.append((-score, "|".join(fields)))
    return [k for _, k in sorted(set(keys))]


def task_split(benchmark: str, task_id: str, run_split: str | None = None) -> str:
    """The split a task belongs to: MBPP by its number (train/validation/test/prompt), HumanEval is test, a
    task file is whatever the run said (default `all`). EvalPlus's sets keep the numbers of the tasks they
    extend, and MBPP+ draws from every MBPP split (Mbpp/602 is MBPP train task 602), so they split the same."""
    if benchmark in ("mbpp", "mbpp-sanitized", "mbpp+"):
        number = int(task_id.rsplit("/", 1)[-1])
        for name in ("prompt", "test", "validation", "train"):
            lo, hi = MBPP_SPLITS[name]
            if lo <= number <= hi:
                return name
        return "unknown"
    if benchmark in ("humaneval", "humaneval+"):
        return "test"
    return run_split or "all"


def task_key(task_id: str) -> str:
    """One spelling per problem: MBPP+ writes MBPP's "mbpp/602" as "Mbpp/602"."""
    return task_id.lower()


def same_task(a: str, b: str) -> bool:
    """Whether two task ids name one problem (`task_key`)."""
    return task_key(a) == task_key(b)
