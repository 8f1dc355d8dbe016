"""Solving puzzles with a trained model: parse and check the input, run the recursion, check the answer.

Each puzzle is refined until the `HaltRule` stops it (see `halting.py`): the default of `recursia solve` is
`default_halt(task)`; `HaltRule()` ("all") runs all N_sup steps, the papers' evaluation protocol. The result says
where the model's own halting rule first fired, and the task's own checker, never the model, says whether the
answer is a valid solution of the given puzzle.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_model
from .errors import ConfigError, DataError, PuzzleError
from .halting import HaltRule, run
from .model import RecursiveModel, resolve_dtype
from .runtime import pick_device
from .tasks import Task, get_task
from .verify import Verifier

STABLE = HaltRule(stable=2)  # measured best trade-off without an answer check on the demo model: docs/models.md
VERIFIED = HaltRule(verified=True)


def default_halt(task: Task) -> HaltRule:
    """`verified` for a task that can check its answers (Sudoku, Maze, DeepCoder): stop at the first step
    whose answer passes; it kept the all-steps accuracy in fewer than half the steps (docs/models.md).
    Otherwise `stable=2`, the best rule without a check."""
    return VERIFIED if task.verify is not None else STABLE


@dataclass
class SolveResult:
    question: np.ndarray
    answer: np.ndarray
    valid: bool
    problems: list[str]
    steps: int  # supervision steps run for the copy that gave the answer; the answer is the last one's
    halt_step: int | None  # first step at which the learned halting rule fired (None: it never did / fixed)
    halt_confidence: float | None  # sigmoid(q_halt) at `steps`
    trajectory: list[np.ndarray] = field(default_factory=list)  # decoded answer after each of the `steps`
    confidence: list[np.ndarray] = field(default_factory=list)  # per-cell probability of that answer, per step
    halt_confidences: list[float] = field(default_factory=list)  # sigmoid(q_halt) after each step
    tried: int | None = None  # answers checked by the task's verify, all steps, copies and models (None: none ran)
    applications: int = 0  # network applications spent on the puzzle: supervision steps, all copies and models
    copy: int = 0  # the perturbed copy whose answer this is (0: the puzzle as given)
    model: int = 0  # the ensemble member whose answer this is (0: the first --model)
    votes: int | None = None  # under voting: how many candidates gave this answer

    def to_json(self) -> dict[str, Any]:
        return {"answer": "".join(str(int(v)) for v in self.answer.ravel()), "valid": self.valid,
                "problems": self.problems, "steps": self.steps, "halt_step": self.halt_step,
                "halt_confidence": self.halt_confidence, "tried": self.tried, "applications": self.applications,
                "copy": self.copy, "model": self.model, "votes": self.votes}


SELECT = ("verified", "vote")


def choose(answers: list[np.ndarray], valid: list[bool], select: str) -> tuple[int, int]:
    """Which candidate answers a puzzle, and with how many votes. `verified`: the first candidate that passes
    the task's check, so a checked answer is never traded for an unchecked one; when none passes, the vote.
    `vote`: the answer most candidates gave, the earliest on ties (ARC's evaluator votes the same way)."""
    if select == "verified":
        for i, ok in enumerate(valid):
            if ok:
                return i, sum(np.array_equal(answers[i], a) for a in answers)
    keys = [a.tobytes() for a in answers]
    counts = {k: keys.count(k) for k in keys}
    best = max(range(len(keys)), key=lambda i: (counts[keys[i]], -i))
    return best, counts[keys[best]]


@dataclass
class _Candidate:
    model: int
    row: int  # row of the perturbed batch (copy = row % P)
    step: int  # 0-based step it stopped at
    answer: np.ndarray  # decoded and mapped back to the puzzle's frame
    valid: bool


@dataclass
class _Run:
    """One model's rollout over the rows it ran (sorted), as arrays: (S, B, L) answers and confidences,
    (S, B) halting confidences and learned-rule firings (None without a halting head)."""
    rows: np.ndarray
    preds: np.ndarray
    confs: np.ndarray
    q: np.ndarray | None
    fired: np.ndarray | None


class Solver:
    """A trained model (or several, `ensemble`) and its task. Test-time scaling spends more compute per puzzle
    on three axes: depth (`steps` beyond N_sup), perturbations (`perturb` transformed copies of each puzzle,
    answers mapped back) and checkpoint ensembles; every candidate is checked, and `choose` picks one."""

    def __init__(self, model: RecursiveModel, task: Task, ensemble: tuple[RecursiveModel, ...] = (),
                 default_perturb: int = 1, default_budget: float = 0.0):
        self.model, self.task, self.models = model, task, (model, *ensemble)
        # What `recursia solve` spends when --perturb is not given: a checkpoint's meta.json may name it
        # ("solve": {"perturb": P, "budget": seconds}, as the bundled `sudoku` does, measured to keep a typical
        # puzzle within the budget on one thread); else 1 copy and no further rounds.
        self.default_perturb, self.default_budget = default_perturb, default_budget

    @staticmethod
    def load(checkpoint: str | Path, device: str = "auto") -> "Solver":
        dev = pick_device(device)
        model, cfg, meta = load_model(checkpoint, dev)
        model.set_forward_dtype(resolve_dtype(cfg.model.forward_dtype, dev))
        task = get_task(meta["task"])
        defaults = meta.get("solve") or {}
        perturb, budget = defaults.get("perturb", 1), defaults.get("budget", 0.0)
        if not isinstance(perturb, int) or perturb < 1 or (perturb > 1 and task.perturb is None):
            why = f"1, as task {task.name} has no symmetries" if task.perturb is None else "an integer >= 1"
            raise ConfigError(f"{checkpoint}: meta.json's solve.perturb is {perturb!r}; it must be {why}")
        if not isinstance(budget, (int, float)) or isinstance(budget, bool) or budget < 0 or \
                (budget and task.verify is None):
            why = "0, as the task cannot check answers" if task.verify is None else "a number of seconds >= 0"
            raise ConfigError(f"{checkpoint}: meta.json's solve.budget is {budget!r}; it must be {why}")
        return Solver(model, task, default_perturb=perturb, default_budget=float(budget))

    @staticmethod
    def load_many(checkpoints: list[str | Path], device: str = "auto") -> "Solver":
        """An ensemble: several checkpoints of one task, tried in the order given."""
        if not checkpoints:
            raise ConfigError("no model given: pass at least one checkpoint")
        solvers = [Solver.load(c, device) for c in checkpoints]
        tasks = {s.task.name for s in solvers}
        if len(tasks) > 1:
            raise ConfigError(f"an ensemble needs models of one task; got {', '.join(sorted(tasks))} "
                              f"from {', '.join(map(str, checkpoints))}")
        return Solver(solvers[0].model, solvers[0].task, tuple(s.model for s in solvers[1:]),
                      solvers[0].default_perturb, solvers[0].default_budget)

    def _checked(self, make, value, where: str) -> np.ndarray:
        """`make(value)` as a question grid, with the task's own checks; every failure names `where`."""
        try:
            grid = make(value)
        except PuzzleError as e:
            raise PuzzleError(f"{where}: {e}") from e
        problems = self.task.problems(grid)
        if problems:
            raise PuzzleError(f"{where}: {'; '.join(problems)}")
        return grid

    def parse(self, text: str, where: str = "puzzle") -> np.ndarray:
        """Parse user text into a question grid; malformed or contradictory input raises PuzzleError."""
        return self._checked(self.task.parse, text, where)

    def read_file(self, path: str | Path) -> list[np.ndarray]:
        """The puzzles of a file (format per task); each is checked like a puzzle given as text."""
        p = Path(path)
        if not p.is_file():
            raise DataError(f"puzzle file {p} is a directory; pass a file" if p.is_dir()
                            else f"puzzle file {p} does not exist")
        grids = self.task.read_file(p)
        for i, grid in enumerate(grids):
            problems = self.task.problems(grid)
            if problems:
                raise PuzzleError(f"{p}, puzzle {i + 1}: {'; '.join(problems)}")
        return grids

    def check_grid(self, grid: np.ndarray, where: str = "puzzle") -> np.ndarray:
        """A question given as an array, checked like text: wrong size, values or clues raise PuzzleError."""
        return self._checked(self.task.as_question or np.asarray, grid, where)

    @torch.no_grad()
    def solve_batch(self, grids: list[np.ndarray | str], halt: HaltRule | None = None, candidates: int = 1, *,
                    perturb: int = 1, steps: int | None = None, select: str | None = None,
                    seed: int = 0, first_copy: int = 0) -> list[SolveResult]:
        """Solve many puzzles (question grids, or text that is parsed and checked) at once; each stops by
        `halt` (default `default_halt(task)`), and puzzles that have stopped leave the batch, so the rest run faster.
        A `verified` rule or `candidates` > 1 runs the task's answer check every step (`recursia.verify`):
        up to `candidates` answers per step, the argmax first, keeping the first that verifies.

        Test-time scaling: `steps` supervision steps instead of N_sup; `perturb` P copies of each puzzle under the
        task's symmetries (copy 0 the puzzle itself; copy k depends only on seed, puzzle and k), run as one batch,
        a puzzle's copies all stopping at the first step where one verifies; the ensemble's models in turn, each
        only on the puzzles still without a checked answer. `select` ("verified" where the task checks answers,
        else "vote") picks among the copies' and models' answers, mapped back to the puzzle (`choose`).
        `first_copy` skips copies 0..first_copy-1 (run already): `solve_within` asks for fresh copies this way."""
        halt = default_halt(self.task) if halt is None else halt
        select = select or ("verified" if self.task.verify is not None else "vote")
        if select not in SELECT:
            raise ConfigError(f"--select {select!r}: use 'verified' (the first answer that passes the task's "
                              "check) or 'vote' (the answer most copies give)")
        if perturb < 1:
            raise ConfigError(f"--perturb {perturb}: give at least 1 (1 = the puzzle as given, no copies)")
        if steps is not None and steps < 1:
            raise ConfigError(f"--steps {steps}: give at least 1 supervision step")
        total = first_copy + perturb  # copies made; the first `first_copy` of each puzzle are skipped
        if total > 1 and self.task.perturb is None:
            raise ConfigError(f"task {self.task.name} has no symmetries to perturb a puzzle by; use --perturb 1")
        verifier = Verifier.for_task(self.task, candidates) if halt.verified or candidates > 1 else None
        grids = [self.parse(g, f"puzzle {i + 1}") if isinstance(g, str) else self.check_grid(g, f"puzzle {i + 1}")
                 for i, g in enumerate(grids)]
        if not grids:
            raise PuzzleError("no puzzle given")
        if total > 1:
            copies, undo = self.task.perturb(np.stack(grids), total, seed)
        else:
            copies, undo = np.stack(grids), lambda v, rows=None, digits=True: np.asarray(v)
        owner = np.repeat(np.arange(len(grids)), total)
        fresh = np.arange(len(owner)) % total >= first_copy
        applications = np.zeros(len(grids), dtype=np.int64)
        tried = np.zeros(len(grids), dtype=np.int64)
        found = np.zeros(len(grids), dtype=bool)
        cands: list[list[_Candidate]] = [[] for _ in grids]
        runs = []
        for m, model in enumerate(self.models):
            rows = np.nonzero(fresh & ~found[owner])[0] if select == "verified" else np.nonzero(fresh)[0]
            if not len(rows):
                break
            device = model.embed_tokens.device
            inputs = torch.from_numpy(self.task.encode(copies[rows])).to(device)
            pids = torch.zeros(len(rows), dtype=torch.int32, device=device)
            groups = torch.from_numpy(owner[rows]).to(device) if perturb > 1 else None
            rec, stopped = run(model, inputs, pids, halt, n_steps=steps, verifier=verifier, groups=groups)
            stopped = stopped.cpu().numpy()
            preds = torch.stack(rec.predictions).cpu().numpy()  # (S, B, L)
            outside = np.ones(preds.shape[-1], dtype=bool)
            outside[self.task.answer_cells] = False  # DeepCoder's spec cells: the question's, not the model's guess
            preds = np.where(outside, inputs.cpu().numpy()[None], preds)
            final = undo(self.task.decode(preds[stopped, np.arange(len(rows))]), rows)
            np.add.at(applications, owner[rows], stopped + 1)
            if rec.tried:
                np.add.at(tried, owner[rows], torch.stack(rec.tried).sum(0).cpu().numpy())
            for b, row in enumerate(rows):
                p = owner[row]
                ok = not self.task.check(grids[p], final[b])
                cands[p].append(_Candidate(m, int(row), int(stopped[b]), final[b], ok))
                found[p] |= ok
            runs.append(_Run(rows, preds, torch.stack(rec.confidence).cpu().numpy(),
                             torch.sigmoid(torch.stack(rec.q_halt).float()).cpu().numpy()
                             if rec.q_halt[0] is not None else None,
                             torch.stack(rec.halt).cpu().numpy() if rec.halt[0] is not None else None))
        out = []
        for p, grid in enumerate(grids):
            i, votes = choose([c.answer for c in cands[p]], [c.valid for c in cands[p]], select)
            out.append(self._result(grid, cands[p][i], runs[cands[p][i].model], undo, total, int(applications[p]),
                                    int(tried[p]) if verifier is not None else None,
                                    votes if select == "vote" or len(cands[p]) > 1 else None))
        return out

    def solve_within(self, grids: list[np.ndarray | str], budget: float, halt: HaltRule | None = None,
                     candidates: int = 1, *, perturb: int = 1, steps: int | None = None, seed: int = 0,
                     select: str | None = None, clock=time.perf_counter) -> list[SolveResult]:
        """Spend up to `budget` seconds per puzzle (on average over `grids`): rounds of `perturb` fresh copies
        (copies P..2P-1, then 2P..3P-1, ...) for the puzzles still without a checked answer. A round starts only
        while the time spent plus the last round's time, scaled to the puzzles left, fits the budget, so a typical
        puzzle ends within it; the first round always runs. Rounds end at the task's last distinct copy.
        The copies tried are the first ones of `--perturb` with more copies, so the two scale on one curve."""
        if budget <= 0:
            raise ConfigError(f"--budget {budget:g}: give the seconds per puzzle to spend, above 0")
        if self.task.verify is None:
            raise ConfigError(f"--budget needs answers that can be checked, and task {self.task.name} cannot check "
                              "one; use --perturb P (and --select vote) instead")
        if select not in (None, "verified"):
            raise ConfigError(f"--select {select!r} with --budget: the rounds stop at an answer that checks, so "
                              "only 'verified' applies (or pass --budget 0)")
        start = clock()
        results = self.solve_batch(grids, halt, candidates, perturb=perturb, steps=steps, seed=seed)
        grids = [g if not isinstance(g, str) else r.question for g, r in zip(grids, results)]
        last, last_n, made = clock() - start, len(grids), perturb
        limit = self.task.max_copies or float("inf")
        while True:
            pending = [i for i, r in enumerate(results) if not r.valid]
            fresh = min(perturb, limit - made)
            spent = clock() - start
            if not pending or fresh < 1 or spent + last * len(pending) / last_n > budget * len(grids):
                return results
            t0 = clock()
            more = self.solve_batch([grids[i] for i in pending], halt, candidates, perturb=fresh, steps=steps,
                                    seed=seed, first_copy=made)
            last, last_n = clock() - t0, len(pending)
            made += fresh
            for i, r in zip(pending, more):
                r.applications += results[i].applications
                r.tried = None if r.tried is None else r.tried + (results[i].tried or 0)
                results[i] = r if r.valid else dataclasses.replace(
                    results[i], applications=r.applications, tried=r.tried)

    def _result(self, grid, cand: _Candidate, r: "_Run", undo, total: int, applications: int,
                tried: int | None, votes: int | None) -> SolveResult:
        """The chosen candidate's steps, mapped back to the puzzle's frame."""
        b = int(np.searchsorted(r.rows, cand.row))
        step, one, answer = cand.step, np.array([cand.row]), cand.answer
        problems = self.task.check(grid, answer)
        first = np.nonzero(r.fired[: step + 1, b])[0] if r.fired is not None else []
        trajectory = [undo(self.task.decode(r.preds[s, b][None]), one)[0] for s in range(step + 1)]
        confidence = [undo(r.confs[s, b][None], one, digits=False)[0].reshape(answer.shape)
                      if r.confs[s, b].size == answer.size else r.confs[s, b] for s in range(step + 1)]
        return SolveResult(grid, answer, not problems, problems, step + 1, int(first[0]) + 1 if len(first) else None,
                           float(r.q[step, b]) if r.q is not None else None, trajectory, confidence,
                           [float(r.q[s, b]) for s in range(step + 1)] if r.q is not None else [], tried,
                           applications, cand.row % total, cand.model, votes)

    def solve(self, puzzle: str | np.ndarray, halt: HaltRule | None = None, candidates: int = 1,
              **scaling: Any) -> SolveResult:
        """One puzzle, as text (parsed and checked) or as a question grid; `scaling` as in `solve_batch`."""
        return self.solve_batch([puzzle], halt, candidates, **scaling)[0]
