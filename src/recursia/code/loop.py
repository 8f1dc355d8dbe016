"""The refinement loop: TRM's recursion with a language model as the network and execution as the supervision.

State, in the papers' names:

- x, the task: prompt, signature and visible tests (fixed);
- y, the answer: the current program and its visible-test results;
- z, the reasoning record: attempts so far with their error signatures, the latest diagnosis and the
  approaches already ruled out, bounded so that prompts stay short.

One supervision step runs T cycles of `reason(x, y, z) -> z` (n times) and `refine(y, z) -> y`, then runs the
visible tests: N_sup steps of execution feedback, n reason updates per rewrite, exactly as T, n and N_sup
mean for the puzzle models. The step's calls are T * (n + 1). Depth 0 is the first program, from x alone.
With `restart`, a step where rewriting has stalled draws a fresh y from x instead (one call), as TRM
re-initialises y; the resampling baseline is the corner of that policy that always draws afresh.

The only success signal is running the code: a reply saying "done" or "fixed" counts for nothing. The
submitted program is the best seen so far (most visible tests passed, earliest on ties), so a later
regression is reverted rather than submitted. Hidden tests are never run here (see `evaluate.py`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace

from ..errors import ConfigError
from . import prompts
from .backends import Backend, BackendError
from .expected import ready
from .extract import extract_program, normalized
from .iotest import Test, defines_test
from .probes import behaviour, probe_tests, probes_for
from .sandbox import Limits, execute

UNUSABLE = "unusable reply"
RESTARTS = ("never", "stuck", "no-progress", "always", "fresh-first")
SKILLS_IN = ("z", "x")


@dataclass(frozen=True)
class CodeHaltRule:
    """When to stop refining a task, composable like the puzzle models' `--halt`: the first condition that
    holds stops the loop. `depth` is N_sup and always applies.

    - `pass`: every visible test passes (the only success signal);
    - `stuck=k`: the same error signature k times in a row, or a program already tried (normalised);
    - `tokens=N`, `seconds=S`: a budget for the task (checked before each step);
    - `agree=k`: k programs that pass every visible test behave identically on the probe calls (the entry
      point's calls in the visible tests and the prompt, and those calls with one argument varied: probes.py).
      With `agree`, a passing program does not end the loop by itself: the next step draws a fresh program
      to check it against, and the submission is the earliest program of the largest group of passing
      programs that agree (so with no two agreeing, the first passing one, as without `agree`). A task with
      no probe call halts at its first pass. Leave `pass` out to use it: `pass` halts first.
    """

    passed: bool = True
    stuck: int | None = None
    tokens: int | None = None
    seconds: float | None = None
    agree: int | None = None

    @staticmethod
    def parse(text: str) -> "CodeHaltRule":
        text = text.strip().lower()
        if text in ("", "depth", "none"):
            return CodeHaltRule(passed=False)
        kw: dict = {"passed": False}
        for part in text.split(","):
            key, _, value = part.strip().partition("=")
            try:
                if key == "pass" and not value:
                    kw["passed"] = True
                elif key in ("stuck", "agree", "tokens"):
                    kw[key] = int(value)
                    if kw[key] < 1:
                        raise ValueError
                elif key == "seconds":
                    kw[key] = float(value)
                    if not kw[key] > 0:
                        raise ValueError
                else:
                    raise KeyError
            except (KeyError, ValueError):
                raise ConfigError(f"halting rule {text!r}: cannot read {part.strip()!r}; use conditions like "
                                  "'pass', 'stuck=2', 'tokens=4000', 'seconds=60', 'agree=2' joined by commas, "
                                  "or 'depth' (always run N_sup steps)") from None
        return CodeHaltRule(**kw)

    def __str__(self) -> str:
        parts = ["pass"] if self.passed else []
        parts += [f"{k}={getattr(self, k):g}" for k in ("stuck", "tokens", "seconds", "agree")
                  if getattr(self, k) is not None]
        return ",".join(parts) or "depth"


@dataclass
class LoopConfig:
    N_sup: int = 4                # rewrites with execution feedback (the depth K)
    n: int = 1                    # reason updates per rewrite (0: z holds only the execution feedback)
    T: int = 1                    # reason/refine cycles per supervision step; tests run after the last
    refine_sees_x: bool = False   # TRM's y = net(y, z) does not see x
    refine_sees_y: bool = True    # False: the rewrite sees x and the failure, not the wrong program itself
    halt: CodeHaltRule = field(default_factory=lambda: CodeHaltRule(passed=True, stuck=2))
    temperature: float = 0.0      # of the first program (greedy: the usual pass@1)
    refine_temperature: float = 0.7
    z_attempts: int = 3           # attempts summarised in z
    # When refining makes no headway, draw a fresh y from x instead (TRM re-initialises y): "never" halts where
    # the `stuck` rule says so; "stuck" samples afresh there instead and goes on; "no-progress" also samples
    # afresh after any rewrite that passes no more visible tests than the best so far; "always" never rewrites
    # (pure resampling under the loop's halting rule: the baseline's policy, plus `agree`'s choice if set);
    # "fresh-first" draws afresh too, but rewrites where two programs drawn from x in a row failed alike (the
    # `stuck` rule): resampling is then repeating one misreading, and the rewrite is shown how it fails.
    restart: str = "never"
    sample_temperature: float = 0.8   # of a fresh draw
    prompt_style: str = "recursia"    # how a program is asked for from x alone: "recursia" or "evalplus"
    # Where a skill library's text goes: "z" (the rewrite prompts' memory) or "x" (every draw from the task,
    # depth 0, fresh draws and the baseline's: a loop that never rewrites, `restart="always"`, reads z nowhere)
    skills_in: str = "z"
    limits: Limits = field(default_factory=Limits)

    def validate(self) -> "LoopConfig":
        for name, low in (("N_sup", 0), ("n", 0), ("T", 1), ("z_attempts", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"code loop {name}={getattr(self, name)} must be >= {low}")
        if self.prompt_style not in prompts.PROMPT_STYLES:
            raise ConfigError(f"code loop prompt_style={self.prompt_style!r}: use one of "
                              f"{', '.join(prompts.PROMPT_STYLES)}")
        if self.skills_in not in SKILLS_IN:
            raise ConfigError(f"code loop skills_in={self.skills_in!r}: use one of {', '.join(SKILLS_IN)}")
        if self.skills_in == "x" and self.prompt_style != "recursia":
            raise ConfigError("code loop skills_in='x' adds the skills to Recursia's own prompt; with "
                              f"prompt_style={self.prompt_style!r} use skills_in='z'")
        if self.restart not in RESTARTS:
            raise ConfigError(f"code loop restart={self.restart!r}: use one of {', '.join(RESTARTS)}")
        for name in ("temperature", "refine_temperature", "sample_temperature"):
            if not 0.0 <= getattr(self, name) <= 2.0:
                raise ConfigError(f"code loop {name}={getattr(self, name)} must lie in [0, 2]")
        return self


@dataclass
class Attempt:
    """One y: the program after a supervision step, and what running its visible tests showed."""

    depth: int
    program: str | None
    signature: str
    visible_passed: int
    visible_total: int
    result: dict | None
    probes: list[str] | None = None  # behaviour on the probe calls (`agree`; passing programs only)
    diagnosis: str = ""
    calls: int = 0                  # model calls spent on the task when this program was produced
    fresh: bool = False             # drawn from x alone (a restart), not rewritten from an earlier y

    @property
    def fingerprint(self) -> str:
        """What the `stuck` rule compares: the signature plus every failing visible test with what it got, so
        two programs failing different tests, or the same test with different values, are told apart."""
        r = self.result
        if r is None or self.signature == "ok":
            return self.signature
        failed = [f"{t['index']}:{t.get('message') or t.get('error_type') or ''}" for t in r.get("tests", [])
                  if not t["passed"]]
        return self.signature + " | " + " | ".join(failed)

    @property
    def sha(self) -> str | None:
        return None if self.program is None else hashlib.sha256(normalized(self.program).encode()).hexdigest()[:16]

    @property
    def visible_ok(self) -> bool:
        return self.program is not None and self.visible_passed == self.visible_total

    def score(self) -> tuple[int, int]:
        """Best-so-far order: more visible tests passed, then a program that at least runs."""
        runs = self.result is not None and self.result["status"] == "ok"
        return (self.visible_passed if self.program is not None else -1, int(runs))


@dataclass
class Reasoning:
    """z: bounded memory of the attempts (signature, tests passed, diagnosis) and what is ruled out."""

    attempts: list[dict] = field(default_factory=list)
    diagnosis: str = ""
    ruled_out: list[str] = field(default_factory=list)
    skills: str = ""  # verified solutions and fixes of similar training tasks (skills.py), when a library is given

    def note(self, a: Attempt, keep: int) -> None:
        self.attempts.append({"depth": a.depth, "signature": a.signature,
                              "passed": f"{a.visible_passed}/{a.visible_total}", "diagnosis": a.diagnosis})
        self.attempts = self.attempts[-keep:]
        if a.program is not None and a.signature != "ok":
            first = next((ln.strip() for ln in (a.program.splitlines()) if ln.strip() and not ln.startswith(
                ("import", "from", "def ", "#", '"""', "'''")) and not ln.strip().startswith(('"""', "'''", "#"))), "")
            entry = f"{a.signature} (program starting {first[:60]!r})"
            if entry not in self.ruled_out:
                self.ruled_out = (self.ruled_out + [entry])[-keep:]

    def render(self) -> str:
        lines = [self.skills] if self.skills else []
        lines += [f"Diagnosis: {self.diagnosis}"] if self.diagnosis else []
        if len(self.attempts) > 1:
            lines.append("Earlier attempts: " + "; ".join(
                f"depth {a['depth']}: {a['signature']} ({a['passed']} visible tests)" for a in self.attempts[:-1]))
        if self.ruled_out:
            lines.append("Ruled out: " + "; ".join(self.ruled_out))
        return "\n".join(lines)


@dataclass
class LoopResult:
    attempts: list[Attempt]
    halt_reason: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    errors: list[str]                 # backend errors met (the task goes on or stops with "backend error")
    best: list[int]                   # best-so-far attempt index at each depth 0..N_sup (halted: repeated)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def submission(self, depth: int | None = None) -> Attempt:
        i = self.best[-1] if depth is None else self.best[min(depth, len(self.best) - 1)]
        return self.attempts[i]

    def to_dict(self) -> dict:
        return {"attempts": [asdict(a) | {"sha": a.sha} for a in self.attempts], "halt_reason": self.halt_reason,
                "calls": self.calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "seconds": round(self.seconds, 3),
                "errors": self.errors, "best": self.best}


def shown_tests(task) -> list[str]:
    """The loop's tests as a prompt shows them: "the entry point exists", then the task's visible tests."""
    return [t.source for t in visible_suite(task)]


def visible_suite(task) -> list[Test]:
    """The loop's tests as they run: "the entry point exists", then the task's visible tests (a failing one
    says what the call returned: the parent judges it from the values)."""
    return [defines_test(task.entry_point)] + list(task.visible_tests)


def draw_seed(seed: int, k: int) -> int:
    """The seed of the k-th fresh draw from x (k >= 1) for a task solved with `seed`. The loop's restarts and the
    equal-budget baseline's draws use the same seeds, so both arms meet the same candidates in the same order
    (common random numbers): where they differ, the policy made the difference, not the luck of the draw."""
    return (seed + 7919 * k) * 1000


def agreed(attempts: list[Attempt]) -> tuple[int, int]:
    """(index, size): the earliest program of the largest group of passing programs with the same behaviour on
    the probe calls (ties go to the group whose first program came first); (-1, 0) if none passes."""
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(attempts):
        if a.visible_ok and a.probes is not None:
            groups.setdefault(tuple(a.probes), []).append(i)
    if not groups:
        return -1, 0
    best = max(groups.values(), key=lambda g: (len(g), -g[0]))
    return best[0], len(best)


class Refiner:
    """Runs the loop for one task with one backend. Calls go through `_call`, which counts calls and tokens."""

    def __init__(self, backend: Backend, cfg: LoopConfig, depth_policy=None, skills=None):
        """`depth_policy` (depth.DepthPolicy) caps N_sup per task type; `skills` (skills.SkillLibrary) puts
        verified solutions of similar training tasks into z, or into x (`cfg.skills_in`). Both are learned from
        training splits only."""
        self.backend, self.cfg = backend, cfg.validate()
        self.depth_policy, self.skills = depth_policy, skills

    def _call(self, res: LoopResult, prompt, temperature: float, seed: int) -> str | None:
        try:
            reply = self.backend.generate(prompt, temperature=temperature, seed=seed)
        except BackendError as e:
            res.errors.append(str(e))
            return None
        res.calls += 1
        res.prompt_tokens += reply.prompt_tokens
        res.completion_tokens += reply.completion_tokens
        return reply.text

    def _run(self, task, program: str | None, depth: int, probes: list[str]) -> Attempt:
        suite = visible_suite(task)
        if program is None:
            return Attempt(depth, None, UNUSABLE, 0, len(suite), None)
        r = execute(program, suite, task.setup, self.cfg.limits)
        probe_out = None
        if self.cfg.halt.agree and r.passed == len(suite):  # no probe call: [], and `agree` halts at this pass
            probe_out = self._probe(task, program, probes) if probes else []
        return Attempt(depth, program, r.signature(), r.passed, len(suite), r.to_dict(), probe_out)

    def _probe(self, task, program: str, probes: list[str]) -> list[str]:
        """The program's behaviour on the probe calls, all in one run; if a varied input makes it hang or crash
        (the run is then failed whole), each probe in a run of its own, so that one bad input costs one probe."""
        lim = self.cfg.limits
        tests = probe_tests(probes)
        batch = replace(lim, timeout_s=min(lim.timeout_s, 5.0), cpu_s=min(lim.cpu_s, 5))
        pr = execute(program, tests, task.setup, batch)
        if pr.status == "ok":
            return [behaviour(t) for t in pr.tests]
        one = replace(lim, timeout_s=min(lim.timeout_s, 2.0), cpu_s=min(lim.cpu_s, 2))
        return [behaviour(execute(program, [t], task.setup, one).tests[0]) for t in tests]

    def _skills(self, task) -> str:
        """The library's text for this task ("" without a library or when nothing relevant is found)."""
        return self.skills.for_task(task) if self.skills is not None else ""

    def generate(self, task, res: LoopResult, temperature: float, seed: int) -> tuple[str | None, bool]:
        """One independent sample from x alone (depth 0, and the equal-budget baseline's draws): (program or
        None, whether the backend failed)."""
        context = self._skills(task) if self.cfg.skills_in == "x" else ""
        prompt, prefix = prompts.initial(task, self.backend.mode, self.cfg.prompt_style, context)
        text = self._call(res, prompt, temperature, seed)
        if text is None:
            return None, True
        return extract_program(prompt.reply_start + text, task.entry_point, prefix), False

    def solve(self, task, seed: int = 0) -> LoopResult:
        cfg, mode = self.cfg, self.backend.mode
        task = ready(task)  # protocol `all` shows tests whose expected values come from the reference
        start = time.perf_counter()
        res = LoopResult([], "", 0, 0, 0, 0.0, [], [])
        probes = probes_for(task) if cfg.halt.agree else []
        shown = shown_tests(task)
        call = 0
        program, failed = self.generate(task, res, cfg.temperature, seed * 1000 + call)
        call += 1
        y = self._run(task, program, 0, probes)
        y.calls = res.calls
        res.attempts.append(y)
        res.best.append(0)
        z = Reasoning(skills=self._skills(task) if cfg.skills_in == "z" else "")
        z.note(y, cfg.z_attempts)
        reason = "backend error" if failed else self._halt(res, start)
        max_depth = cfg.N_sup
        if self.depth_policy is not None:  # the type includes the first error's class: known only now
            max_depth = min(cfg.N_sup, self.depth_policy.depth_for(task, y.signature))
        reason, fresh = self._next(res, reason)  # fresh: the next step draws a new y from x instead of rewriting
        draws = 0  # fresh draws so far
        for depth in range(1, cfg.N_sup + 1):
            if not reason and depth > max_depth:
                reason = f"depth policy ({max_depth})"
            if reason:
                break
            before = res.attempts[res.best[-1]].score()
            if fresh:
                draws += 1
                new, failed = self.generate(task, res, cfg.sample_temperature, draw_seed(seed, draws))
                call += 1
                if failed:
                    reason = "backend error"
                    break
                reason = self._step(task, res, z, new, depth, probes, start, fresh=True)
                y = res.attempts[-1]
                reason, fresh = self._next(res, reason)
                continue
            current = res.submission() if res.submission().program is not None else y
            if cfg.restart != "never" and y.program is not None and y.score() >= current.score():
                current = y  # the latest of equally good programs: after a restart, the fresh one
            base, failed, new = current.program or "", False, None
            for _ in range(cfg.T):
                fb = prompts.feedback(current.result, shown)
                for _ in range(cfg.n):
                    text = self._call(res, prompts.reason(task, base, fb, z.render(), mode),
                                      cfg.refine_temperature, seed * 1000 + call)
                    call += 1
                    if text is not None:
                        z.diagnosis = " ".join(text.split())[:400]
                prompt, prefix = prompts.refine(task, base, fb, z.render(), mode, cfg.refine_sees_x,
                                                cfg.refine_sees_y)
                text = self._call(res, prompt, cfg.refine_temperature, seed * 1000 + call)
                call += 1
                failed = failed or text is None
                new = None if text is None else extract_program(text, task.entry_point, prefix)
                base = new or base
            if failed:  # retried by the backend already: record it and stop this task, the run goes on
                reason = "backend error"
                break
            reason = self._step(task, res, z, new, depth, probes, start, fresh=False)
            y = res.attempts[-1]
            reason, fresh = self._next(res, reason)
            if cfg.restart == "no-progress" and not reason and y.score() <= before:
                fresh = True
        res.halt_reason = reason or "depth"
        res.best += [res.best[-1]] * (cfg.N_sup + 1 - len(res.best))
        res.seconds = time.perf_counter() - start
        return res

    def _next(self, res: LoopResult, reason: str) -> tuple[str, bool]:
        """(halt reason, whether the next step draws afresh) after the latest attempt. Restarts turn `stuck` into
        a fresh draw, except that `fresh-first` rewrites where the two programs that got stuck were both drawn
        from x; under `agree`, a passing program that did not halt the loop is checked against a fresh draw,
        never rewritten."""
        restart, y = self.cfg.restart, res.attempts[-1]
        if reason:
            if restart == "never" or not reason.startswith("stuck"):
                return reason, False
            drawn = all(a.fresh or a.depth == 0 for a in res.attempts[-2:])
            return "", not (restart == "fresh-first" and drawn)
        return "", restart in ("always", "fresh-first") or bool(self.cfg.halt.agree) and y.visible_ok

    def _step(self, task, res: LoopResult, z: Reasoning, program: str | None, depth: int, probes: list[str],
              start: float, fresh: bool) -> str:
        """Run the step's program, record it as an attempt, update the best so far and z; the halt reason."""
        y = self._run(task, program, depth, probes)
        y.diagnosis, y.calls, y.fresh = ("" if fresh else z.diagnosis), res.calls, fresh
        res.attempts.append(y)
        best = res.best[-1]
        if y.score() > res.attempts[best].score():
            best = len(res.attempts) - 1
        if self.cfg.halt.agree and y.visible_ok:
            best = agreed(res.attempts)[0]
        res.best.append(best)
        z.note(y, self.cfg.z_attempts)
        return self._halt(res, start)

    def _halt(self, res: LoopResult, start: float) -> str:
        """Why to stop after the latest attempt ("" to go on). Execution decides; nothing the model says does."""
        rule, attempts = self.cfg.halt, res.attempts
        last = attempts[-1]
        if rule.passed and last.visible_ok:
            return "pass"
        if rule.agree and last.visible_ok and last.probes == []:
            return "pass"  # the task has no probe call to tell programs apart on
        if rule.agree and last.visible_ok and agreed(attempts)[1] >= rule.agree:
            return "agree"
        if rule.stuck:
            sigs = [a.fingerprint for a in attempts[-rule.stuck:]]
            if len(attempts) >= rule.stuck and len(set(sigs)) == 1 and sigs[0] != "ok":
                return "stuck: same error"
            if len(attempts) > 1 and last.sha is not None and last.sha in {a.sha for a in attempts[:-1]}:
                return "stuck: repeated program"
        if rule.tokens and res.tokens >= rule.tokens:
            return "tokens"
        if rule.seconds and time.perf_counter() - start >= rule.seconds:
            return "seconds"
        return ""
