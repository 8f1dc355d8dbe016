"""The enumerative baseline for DeepCoder: bottom-up search with observational-equivalence pruning.

This is the classic baseline of the DeepCoder paper (Balog et al., 2017), without its learned op ranking: the
yardstick that says whether a network is worth having at equal time per task. Values are grown by cost (the
number of statements needed to compute them): cost 1 applies every operation and lambda to the inputs, cost c
to values whose costs add up to c - 1. Two programs that give the same value on every example are
interchangeable inside any larger program, so only the first (cheapest) program per tuple of values is kept;
that pruning is what makes the search feasible. The search stops when a value equals the expected outputs or
the time limit runs out.

Statements may share a sub-result (``x2 = Sort x0 | x3 = Map (*2) x2 | x4 = ZipWith (+) x2 x3``): besides cost
sums, a two-argument operation also pairs a value with one of the values it was built from, at the cost of the
bigger one plus 1, so such "diamonds" are found at their true length.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from itertools import repeat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recursia.tasks import deepcoder as dc

__all__ = ["SearchResult", "search", "guided_search", "search_task", "evaluate_file", "summary_lines"]

_CHECK_EVERY = 512  # candidate programs between looks at the clock


@dataclass
class SearchResult:
    program: dc.Program | None  # the first program found that reproduces every example
    solved: bool
    tried: int  # candidate statements executed (one program each)
    seconds: float
    values: int = 0  # distinct value tuples kept
    timed_out: bool = False


@dataclass
class _Node:
    op: str
    lam: str | None
    args: tuple[int, ...]  # node ids
    closure: frozenset[int] = field(default_factory=frozenset)  # statement nodes this value needs, itself included


class _Out(Exception):
    """Raised inside the enumeration when time runs out or the target is found (one exit for deep loops)."""


class _Enumerator:
    def __init__(self, inputs: Sequence[Sequence[dc.Value]], outputs: Sequence[dc.Value], time_limit: float,
                 functions: Sequence[str] | None = None, max_tried: int = 0,
                 extra: dict[str, int] | None = None, max_length: int = dc.MAX_STATEMENTS):
        self.num_inputs = len(inputs[0])
        self.target = tuple(outputs)
        self.deadline = time.perf_counter() + time_limit
        self.max_tried = max_tried  # 0: no cap on candidate statements (the clock alone stops the search)
        # The operations and lambdas this search may use, operations in the order given (all by default).
        allowed = set(dc.OPERATIONS + dc.LAMBDAS) if functions is None else set(functions)
        order = [f for f in (functions or dc.OPERATIONS) if f in dc.SIGNATURES]
        # A statement costs 1 plus the extra cost of its operation and lambda (0 unless a prior says otherwise):
        # values are grown by total cost, so with no extra costs the cost of a value is its statement count.
        extra = extra or {}
        self.ops: list[tuple[str, dict[int, list[str | None]]]] = []
        for op in order:
            lams = (tuple(lam for lam in dc.LAMBDAS_OF_KIND[dc.SIGNATURES[op][0]] if lam in allowed)
                    if dc.SIGNATURES[op][0] else (None,))
            by_weight: dict[int, list[str | None]] = {}
            for lam in lams:
                by_weight.setdefault(1 + extra.get(op, 0) + extra.get(lam, 0) if lam else 1 + extra.get(op, 0),
                                     []).append(lam)
            if by_weight:
                self.ops.append((op, by_weight))
        self.max_length = max_length
        self.columns: list[tuple] = [tuple(ex[i] for ex in inputs) for i in range(self.num_inputs)]
        self.nodes: list[_Node | None] = [None] * self.num_inputs  # inputs have no statement
        self.seen = {c: i for i, c in enumerate(self.columns)}
        self.types = [dc._type_of(c[0]) for c in self.columns]
        self.by_cost: dict[str, list[list[int]]] = {"I": [[]], "L": [[]]}
        for i, t in enumerate(self.types):
            self.by_cost[t][0].append(i)
        self.tried = 0
        self.found: int | None = None

    def _apply(self, op: str, lam: str | None, arg_tuples: Sequence[tuple[int, ...]], cost: int) -> None:
        """Run one operation (and lambda) on many argument choices; keep each result not seen before."""
        fn, f = dc._OP_FN[op], dc.LAMBDA_FN[lam] if lam else None
        cols, seen, n = self.columns, self.seen, len(self.target)
        for i, args in enumerate(arg_tuples):
            if not i % _CHECK_EVERY and (time.perf_counter() > self.deadline
                                         or (self.max_tried and self.tried + i >= self.max_tried)):
                self.tried += i
                raise _Out
            col = tuple(map(fn, repeat(f, n), *(cols[a] for a in args)))
            if None in col or col in seen:
                continue  # invalid on an example, or observationally equivalent to a cheaper value
            self._keep(op, lam, args, cost, col)
        self.tried += len(arg_tuples)

    def _keep(self, op: str, lam: str | None, args: tuple[int, ...], cost: int, col: tuple) -> None:
        closure = frozenset().union(*(self.nodes[a].closure for a in args if self.nodes[a] is not None))
        if len(closure) >= self.max_length:
            return  # more than max_length statements: only possible when statements cost more than 1
        node_id = len(self.columns)
        self.columns.append(col)
        self.nodes.append(_Node(op, lam, args, closure | {node_id}))
        self.seen[col] = node_id
        self.types.append(dc.SIGNATURES[op][2])
        self.by_cost[self.types[-1]][cost].append(node_id)
        if col == self.target:
            self.found = node_id
            raise _Out

    def _pairs(self, first: str, second: str, inner: int):
        """(a, b) of these types whose programs together cost `inner`: costs that add up, or (diamonds) a value
        of that cost with one of the statement results it was built from, itself included."""
        for ca in range(inner + 1):
            for a in self.by_cost[first][ca]:
                for b in self.by_cost[second][inner - ca]:
                    yield a, b
        if inner == 0:
            return
        for a in self.by_cost[first][inner]:
            for b in sorted(self.nodes[a].closure):
                if self.types[b] == second and (b != a or first == second):
                    yield a, b
        for b in self.by_cost[second][inner]:
            for a in sorted(self.nodes[b].closure):
                if a != b and self.types[a] == first:
                    yield a, b

    def level(self, cost: int) -> None:
        """Every value of this cost: one-list operations on values of cost - 1, two-argument ones on pairs."""
        for t in self.by_cost.values():
            t.append([])
        for op, by_weight in self.ops:
            arg_types = dc.SIGNATURES[op][1]
            for weight, lams in by_weight.items():
                inner = cost - weight
                if inner < 0:
                    continue
                if len(arg_types) == 1:
                    arg_tuples = [(a,) for a in self.by_cost["L"][inner]]
                else:
                    arg_tuples = list(self._pairs(arg_types[0], arg_types[1], inner))
                for lam in lams:
                    self._apply(op, lam, arg_tuples, cost)

    def program(self, node_id: int) -> dc.Program:
        order = sorted(self.nodes[node_id].closure)  # ids grow with creation, so arguments come first
        position = {n: self.num_inputs + k for k, n in enumerate(order)}
        position.update({i: i for i in range(self.num_inputs)})
        statements = tuple(dc.Statement(self.nodes[n].op, self.nodes[n].lam,
                                        tuple(position[a] for a in self.nodes[n].args)) for n in order)
        return dc.Program(self.num_inputs, statements)


def search(inputs: Sequence[Sequence[dc.Value]], outputs: Sequence[dc.Value], time_limit: float = 1.0,
           max_length: int = dc.MAX_STATEMENTS, functions: Sequence[str] | None = None,
           max_tried: int = 0, extra: dict[str, int] | None = None) -> SearchResult:
    """Bottom-up search for a program of at most `max_length` statements that maps every example's inputs to
    its output, within `time_limit` seconds (wall clock) and, if `max_tried` > 0, that many candidate statements.
    `functions` limits the operations and lambdas it may use (operations tried in the order given); `extra`
    makes a statement with that operation or lambda cost 1 + its extra cost, so values are grown cheapest first
    by that cost (a prior's unlikely functions come later) instead of by statement count."""
    start = time.perf_counter()
    e = _Enumerator(inputs, outputs, time_limit, functions, max_tried, extra, max_length)
    timed_out = False
    if e.target == e.columns[-1]:  # the last input already is the output: the empty program returns it
        return SearchResult(dc.Program(e.num_inputs, ()), True, 0, time.perf_counter() - start, len(e.columns))
    heaviest = max((w for _, by_weight in e.ops for w in by_weight), default=1)
    try:
        for cost in range(1, max_length * heaviest + 1):
            e.level(cost)
    except _Out:
        timed_out = e.found is None
    program = e.program(e.found) if e.found is not None else None
    solved = program is not None and dc.solves(program, inputs, outputs)
    return SearchResult(program, solved, e.tried, time.perf_counter() - start, len(e.columns), timed_out)


def prior_costs(prior: dict[str, float], step: float = 2.0, most: int = 3) -> dict[str, int]:
    """Extra statement costs from a prior: 0 for the likeliest function of each group (operations, lambdas of
    each kind) and for any within 2**step of it, then +1 per factor 2**step less likely, at most `most`."""
    costs = {}
    for group in (dc.OPERATIONS, *dc.LAMBDAS_OF_KIND.values()):
        top = max(prior.get(f, 0.0) for f in group)
        for f in group:
            p = prior.get(f, 0.0)
            costs[f] = most if p <= 0 else min(most, int(max(0.0, math.log2(top / p)) // step)) if top > 0 else 0
    return costs


def weighted_search(inputs: Sequence[Sequence[dc.Value]], outputs: Sequence[dc.Value], prior: dict[str, float],
                    time_limit: float = 1.0, max_tried: int = 0, step: float = 2.0,
                    max_length: int = dc.MAX_STATEMENTS) -> SearchResult:
    """One bottom-up search with statement costs from the prior (`prior_costs`): what the prior finds likely is
    built first, the rest stays reachable. A uniform prior gives every statement cost 1: plain search."""
    if set(prior) - set(FUNCTIONS):
        raise ValueError(f"prior names unknown functions: {sorted(set(prior) - set(FUNCTIONS))[:4]}")
    return search(inputs, outputs, time_limit, max_length, max_tried=max_tried, extra=prior_costs(prior, step))


FUNCTIONS = dc.OPERATIONS + dc.LAMBDAS  # the 34 attributes a prior ranks (DeepCoder's: 15 operations, 19 lambdas)
ROUNDS = ((8, 1 / 8), (14, 1 / 8), (22, 1 / 4))  # (top functions, share of the budget); a last round uses all


def guided_search(inputs: Sequence[Sequence[dc.Value]], outputs: Sequence[dc.Value], prior: dict[str, float],
                  time_limit: float = 1.0, max_tried: int = 0, rounds=ROUNDS,
                  max_length: int = dc.MAX_STATEMENTS) -> SearchResult:
    """Search ordered by a prior over the DSL's functions (DeepCoder's "sort and add"): first with the few the
    prior ranks highest, then more, last with all of them. Each round but the last may spend its share of the
    budget (time and `max_tried`) and ends early when its smaller space is exhausted; the last gets what is
    left. A function tied with the last one taken is taken too, so a uniform prior runs one round: plain search.
    Only a program that reproduces every example is returned (the search checks it by running it)."""
    if set(prior) - set(FUNCTIONS):
        raise ValueError(f"prior names unknown functions: {sorted(set(prior) - set(FUNCTIONS))[:4]}")
    start = time.perf_counter()
    ranked = sorted(FUNCTIONS, key=lambda f: -prior.get(f, 0.0))  # stable: ties keep the DSL's order
    tried, taken = 0, 0
    plan = [(size, share) for size, share in rounds if size < len(FUNCTIONS)] + [(len(FUNCTIONS), 1.0)]
    result = None
    for size, share in plan:
        cut = prior.get(ranked[size - 1], 0.0)
        active = [f for f in ranked if prior.get(f, 0.0) >= cut]
        if len(active) <= taken:
            continue
        taken = len(active)
        last = len(active) == len(FUNCTIONS)
        left = time_limit - (time.perf_counter() - start)
        nodes = 0 if not max_tried else max(1, max_tried - tried) if last else max(1, int(max_tried * share))
        result = search(inputs, outputs, left if last else min(left, time_limit * share), max_length,
                        active, nodes)
        tried += result.tried
        if result.solved or last or left <= 0:
            break
    result.tried, result.seconds = tried, time.perf_counter() - start
    return result


def search_task(task: dc.DeepCoderTask, time_limit: float = 1.0) -> SearchResult:
    return search(task.inputs, task.outputs, time_limit)


def evaluate_file(path: str | Path, time_limit: float = 1.0, limit: int = 0,
                  progress: bool = False) -> dict[str, Any]:
    """Run the search on every task of a jsonl file (the first `limit` when > 0) with `time_limit` seconds per
    task: per-task records and the solve rate overall and by the reference program's length."""
    tasks = dc.read_tasks(path)
    if limit > 0:
        tasks = tasks[:limit]
    records = []
    iterator = tasks
    if progress:
        from ..progress import bar as progress_bar

        iterator = progress_bar(tasks, desc=f"search {Path(path).name}", unit="task")
    for t in iterator:
        records.append(record(t, search_task(t, time_limit)))
    return summarise(records, path, time_limit)


def record(task: dc.DeepCoderTask, r: SearchResult) -> dict[str, Any]:
    """One task's line in a result: solved, the program found, candidates tried, seconds."""
    return {"index": task.index, "length": len(task.program) if task.program else None, "solved": r.solved,
            "program": dc.format_program(r.program) if r.program else None,
            "found_length": len(r.program) if r.program else None, "tried": r.tried, "seconds": round(r.seconds, 4)}


def summarise(records: list[dict[str, Any]], path: str | Path, time_limit: float) -> dict[str, Any]:
    """The solve rate overall and by the reference program's length, mean seconds and candidates per task."""
    by_length: dict[str, dict[str, float]] = {}
    for n in sorted({r["length"] for r in records if r["length"] is not None}):
        group = [r for r in records if r["length"] == n]
        by_length[str(n)] = {"tasks": len(group), "solve_rate": sum(r["solved"] for r in group) / len(group)}
    n = max(len(records), 1)
    return {"file": str(path), "time_limit": time_limit, "tasks": len(records),
            "solve_rate": sum(r["solved"] for r in records) / n, "by_length": by_length,
            "mean_seconds": sum(r["seconds"] for r in records) / n,
            "mean_tried": sum(r["tried"] for r in records) / n, "records": records}


def length_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Named results (`summarise`'s, or `deepcoder_solve`'s) as a plain-text table: solve rate overall and by
    program length, and seconds per task; one header from the first result's lengths."""
    width = max(len(name) for name, _ in rows)
    lengths = " ".join(f"{'L' + n:>5}" for n in rows[0][1]["by_length"])
    lines = [f"{'':<{width}} {'all %':>5}   {lengths}   s/task"]
    for name, r in rows:
        by_length = " ".join(f"{100 * g['solve_rate']:5.1f}" for g in r["by_length"].values())
        lines.append(f"{name:<{width}} {100 * r['solve_rate']:5.1f}   {by_length}   {r['mean_seconds']:.4f}")
    return lines


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['file']}: {result['tasks']} tasks, {result['time_limit']:g} s per task: solve rate "
             f"{100 * result['solve_rate']:.1f} %, mean {result['mean_seconds']:.3f} s and "
             f"{result['mean_tried']:.0f} programs tried per task"]
    lines += [f"  length {n}: {100 * g['solve_rate']:.1f} % of {g['tasks']}" for n, g in result["by_length"].items()]
    return lines
