"""Benchmark runs of the refinement loop, measured honestly.

A run directory holds `config.json` (the settings, the backend and the protocol), `records.jsonl` (one record
per task and sample, appended and fsynced when the task is finished, so Ctrl-C or a crash loses at most the
task in progress) and `summary.json`. `--resume RUN` reads the records, finishes the remaining tasks and never
redoes or duplicates one.

Each record scores, on the **hidden** tests and only after the loop has ended, the submission at every depth
0..K and the **equal-budget baseline**: independent samples from x alone with the same number of model calls
that the loop spent on that task (the first is the loop's own depth-0 program), picking the first that passes
the visible tests (else the one passing most). Gains from refinement must beat this plain resampling. The
baseline's k-th draw uses the seed of the loop's k-th fresh draw (common random numbers), so where both
arms draw afresh they meet the same programs, and a difference between them comes from the policy.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import RecursiaError
from .backends import Backend
from .loop import Attempt, LoopResult, Refiner, draw_seed
from .metrics import pass_at_k
from .expected import ready
from .tasks import hidden_limits
from .sandbox import execute
from .store import StoreError
from .stats import mcnemar, mean_interval, wilson


@dataclass
class EvalSettings:
    bench: str
    split: str | None
    protocol: str
    backend: str
    depth: int
    samples: int = 1
    n: int = 1
    T: int = 1
    halt: str = "pass,stuck=2"
    refine_sees_x: bool = False
    temperature: float = 0.0
    refine_temperature: float = 0.7
    sample_temperature: float = 0.8
    restart: str = "never"
    refine_sees_y: bool = True
    prompt_style: str = "recursia"
    baseline: bool = True
    seed: int = 0
    max_tokens: int = 384
    limit: int = 0
    task_ids: list[str] = field(default_factory=list)
    depth_policy: str | None = None   # depths.json (`recursia code depth`), learned on training splits
    skills: str | None = None         # skills.json (`recursia code skills`), from training splits
    skills_in: str = "z"              # where the skills go: z (rewrite prompts) or x (every draw from the task)

    # What must match for `--resume` to add records to the same run.
    IDENTITY = ("bench", "split", "protocol", "backend", "depth", "samples", "n", "T", "halt", "refine_sees_x",
                "temperature", "refine_temperature", "sample_temperature", "restart", "refine_sees_y",
                "prompt_style", "baseline", "seed", "max_tokens", "depth_policy", "skills", "skills_in")


def _append(path: Path, record: dict) -> None:
    """Append one record and fsync it. A file whose last line lacks its newline (a hand edit) gets one first,
    so the new record never joins a finished one on the same line. A full disk or a read-only file becomes a
    RecursiaError; a line torn by it is cut by the next `read_records(repair=True)`."""
    try:
        with open(path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            lead = b""
            if f.tell():
                f.seek(-1, os.SEEK_END)
                lead = b"" if f.read(1) == b"\n" else b"\n"
            f.write(lead + (json.dumps(record) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise RecursiaError(f"cannot write {path} ({e.strerror or e}); free space or fix its permissions, then "
                            f"continue with --resume {path.parent} (finished records are kept)") from None


# What every record holds, by type (evaluate_task writes them all). `read_records` checks the CORE keys of each
# record and the type of every key it has; `full=True` (summary, viewer, report, store) requires them all.
_NUM = (int, float)
CORE_FIELDS = {"task_id": str, "sample": int, "hidden_by_depth": list, "loop": dict}
FULL_FIELDS = {"visible_tests": int, "final_visible_ok": bool, "seconds": _NUM}
LOOP_FIELDS = {"attempts": list, "halt_reason": str, "calls": int, "prompt_tokens": int,
               "completion_tokens": int, "errors": list}
ATTEMPT_FIELDS = {"depth": int, "signature": str, "visible_passed": int, "visible_total": int}


def _shape_problem(rec, full: bool) -> str | None:
    """What is wrong with a record's shape (None if nothing): a missing key or a value of the wrong type."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"

    def bad(obj: dict, fields: dict, where: str, required: bool) -> str | None:
        for key, kind in fields.items():
            if key not in obj:
                if required:
                    return f"no {where}{key!r}"
                continue
            value = obj[key]
            # JSON's true/false are Python bools, which are ints too: a count given as true is still wrong.
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
                return f"{where}{key!r} is {json.dumps(value)[:40]}, not {getattr(kind, '__name__', 'a number')}"
        return None

    why = bad(rec, CORE_FIELDS, "", True) or bad(rec, FULL_FIELDS, "", full)
    if why:
        return why
    if not rec["hidden_by_depth"] or not all(isinstance(h, bool) for h in rec["hidden_by_depth"]):
        return "'hidden_by_depth' is not a non-empty list of true/false"
    why = bad(rec["loop"], {"attempts": list}, "loop.", True) or bad(rec["loop"], LOOP_FIELDS, "loop.", full)
    if why:
        return why
    for a in rec["loop"]["attempts"]:
        if not isinstance(a, dict):
            return "loop.attempts holds a non-object"
        why = bad(a, ATTEMPT_FIELDS, "attempt ", full)
        if why:
            return why
    if full and not rec["loop"]["attempts"]:
        return "loop.attempts is empty"
    if "baseline" in rec and (not isinstance(rec["baseline"], dict) or not isinstance(rec["baseline"].get("hidden"),
                                                                                     bool)):
        return "'baseline' has no true/false 'hidden'"
    return None


def read_records(run: Path, repair: bool = False, full: bool = False) -> list[dict]:
    """The run's finished records, in file order.

    A torn final line (a kill mid-write) is ignored, and cut off if `repair`; a valid final line without its
    newline (a hand edit) gets the newline if `repair`, so that the next append starts a line of its own. A
    line that is not JSON before the end, or a record of the wrong shape (see `_shape_problem`; `full`: every
    key a summary needs), is a RecursiaError naming the line."""
    path = Path(run) / "records.jsonl"
    if not path.is_file():
        if path.exists():
            raise RecursiaError(f"{path} is not a file; move it away or start a new run")
        return []
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecursiaError(f"cannot read {path} ({e.strerror or e})") from None
    lines = raw.split(b"\n")
    records, good = [], 0
    for i, line in enumerate(lines):
        if not line.strip():
            good += len(line) + 1
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if i < len(lines) - 1 and any(x.strip() for x in lines[i + 1:]):
                raise RecursiaError(f"{path}: line {i + 1} is not JSON ({_glued(line) or e}); "
                                    + ("split it into one record per line" if _glued(line) else
                                       "remove that line or start a new run")) from None
            if repair:
                with open(path, "r+b") as f:
                    f.truncate(min(good, len(raw)))
            break
        why = _shape_problem(rec, full)
        if why:
            raise RecursiaError(f"{path}: line {i + 1} is not a `recursia code eval` record ({why}); restore the "
                                "file or start a new run")
        records.append(rec)
        good += len(line) + 1
        if i == len(lines) - 1 and repair:  # the last line is whole but has no newline: add it
            with open(path, "ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
    return records


def _glued(line: bytes) -> str:
    """'two records joined on one line' when the line is JSON values written without a newline between."""
    try:
        text, dec, end, count = line.decode().strip(), json.JSONDecoder(), 0, 0
        while end < len(text):
            _, end = dec.raw_decode(text, end)
            count += 1
            while end < len(text) and text[end].isspace():
                end += 1
    except (ValueError, UnicodeDecodeError):
        return ""
    return f"{count} records joined on one line (a missing newline)" if count > 1 else ""


def scored(records: list[dict]) -> list[dict]:
    """The records that score the model: not those whose every model call failed (`backend_failed`)."""
    return [r for r in records if not r.get("backend_failed")]


REQUIRED_CONFIG = {"bench": str, "protocol": str, "depth": int, "samples": int}


def read_config(run: Path, need: tuple[str, ...] = tuple(REQUIRED_CONFIG)) -> dict:
    """RUN/config.json, checked: a RecursiaError (not a traceback) when it is missing, not JSON, or lacks
    (or has a wrong type of) one of the keys `need` that the command reads."""
    path = Path(run) / "config.json"
    if not Path(run).is_dir():
        raise RecursiaError(f"{run} is not a `recursia code eval` run directory"
                            + (" (it is a file)" if Path(run).exists() else " (it does not exist)"))
    if not path.is_file():
        raise RecursiaError(f"{run} is not a `recursia code eval` run (no config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecursiaError(f"{path} cannot be read ({e}); restore it from the run's backup or start a new "
                            "run") from None
    if not isinstance(config, dict):
        raise RecursiaError(f"{path} is not a run configuration (a JSON object); restore it or start a new run")
    wrong = [k for k, kind in REQUIRED_CONFIG.items() if k in need and (not isinstance(config.get(k), kind) or isinstance(config.get(k), bool))]
    if wrong:
        raise RecursiaError(f"{path} is incomplete or damaged ({', '.join(wrong)} missing or of the wrong type); "
                            "restore it or start a new run")
    return config


def _hidden(task, program: str | None, cache: dict, limits) -> bool:
    if program is None:
        return False
    if program not in cache:
        cache[program] = execute(program, task.hidden_tests, task.setup, hidden_limits(task, limits)).all_passed
    return cache[program]


class _Replay(Backend):
    """A task's model calls, each computed once. The baseline's draws use the loop's seeds for fresh draws
    (loop.draw_seed), so a draw the loop already made is asked again with the same prompt, temperature and
    seed; it gets the reply the loop got, which is what the model would answer again (a reply depends only on
    those three: tests/test_code_qwen.py). Both arms still count the call."""

    def __init__(self, inner: Backend):
        super().__init__(mode=inner.mode, gen=inner.gen)
        self.inner, self.seen, self.replayed = inner, {}, 0

    @property
    def name(self) -> str:
        return self.inner.name

    def generate(self, prompt, temperature=None, seed=None):
        key = (repr(prompt), temperature, seed)
        if key in self.seen:
            self.replayed += 1
        else:
            self.seen[key] = self.inner.generate(prompt, temperature=temperature, seed=seed)
        return self.seen[key]


def _baseline(refiner: Refiner, task, first: Attempt, budget: int, s: EvalSettings, sample: int) -> dict:
    """Independent draws from x with `budget` model calls in all; the pick is the first that passes the visible
    tests, else the earliest with most visible tests passed (the same order as the loop's best-so-far)."""
    res = LoopResult([], "", 0, 0, 0, 0.0, [], [])
    start = time.perf_counter()
    draws = [first]
    for j in range(1, budget):
        if draws[-1].visible_ok:
            break
        program, failed = refiner.generate(task, res, s.sample_temperature, draw_seed(s.seed * 100 + sample, j))
        if failed:
            break
        draws.append(refiner._run(task, program, 0, []))
    pick = next((i for i, d in enumerate(draws) if d.visible_ok), None)
    if pick is None:
        pick = max(range(len(draws)), key=lambda i: (draws[i].score(), -i))
    return {"calls": 1 + res.calls, "draws": len(draws), "pick": pick, "visible_ok": draws[pick].visible_ok,
            "program": draws[pick].program, "tokens": res.tokens, "seconds": round(time.perf_counter() - start, 3),
            "errors": res.errors}


def evaluate_task(refiner: Refiner, task, s: EvalSettings, sample: int) -> dict:
    start = time.perf_counter()
    task = ready(task)  # expected values for the loop's tests and the hidden ones, once for the whole task
    replay = _Replay(refiner.backend)
    refiner = Refiner(replay, refiner.cfg, refiner.depth_policy, refiner.skills)
    res = refiner.solve(task, seed=s.seed * 100 + sample)
    limits = refiner.cfg.limits
    cache: dict = {}
    hidden_by_depth = [_hidden(task, res.submission(d).program, cache, limits) for d in range(s.depth + 1)]
    rec = {"task_id": task.task_id, "sample": sample, "visible_tests": len(task.visible_tests),
           "hidden_by_depth": hidden_by_depth, "final_visible_ok": res.submission().visible_ok,
           "final_program": res.submission().program, "loop": res.to_dict()}
    if not res.calls and res.errors:  # no call answered: the backend failed, not the model (not scored)
        rec["backend_failed"] = True
    elif s.baseline:
        b = _baseline(refiner, task, res.attempts[0], max(res.calls, 1), s, sample)
        b["hidden"] = _hidden(task, b.pop("program"), cache, limits)
        b["replayed"] = replay.replayed  # draws the loop had made already (their seconds are not in b's)
        rec["baseline"] = b
    rec["seconds"] = round(time.perf_counter() - start, 3)
    return rec


def _check_config(run: Path, s: EvalSettings) -> dict:
    saved = read_config(run)
    # A key added since the run was made reads as its default (`restart`: older runs never restarted).
    diff = [k for k in EvalSettings.IDENTITY if saved.get(k, getattr(EvalSettings, k, None)) != getattr(s, k)]
    if diff:
        raise RecursiaError(f"--resume {run}: the run was made with different settings ("
                            + ", ".join(f"{k}: {saved.get(k)!r} there, {getattr(s, k)!r} now" for k in diff)
                            + "); pass the same options or use a new --out")
    return saved


def run_eval(tasks: list, refiner: Refiner, s: EvalSettings, run: Path, resume: bool = False,
             progress: bool = True, store: Path | None = None) -> dict:
    """Evaluate every (task, sample), appending a record per finished one; returns the summary. The run
    directory is locked for the whole run: a second writer would duplicate or interleave records."""
    from ..rundir import RunLock

    run = Path(run)
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RecursiaError(f"cannot make the run directory {run} ({e.strerror or e}); pick a writable --out") from None
    with RunLock(run, "code evaluation"):
        return _run_locked(tasks, refiner, s, run, resume, progress, store)


def _write_atomic(path: Path, text: str) -> None:
    """Replace a file with `text` through a temporary file and rename: a kill leaves the old or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise RecursiaError(f"cannot write {path} ({e.strerror or e}); free space or fix its permissions") from None


def _drop_backend_failed(run: Path) -> int:
    """Remove the records whose every model call failed from RUN/records.jsonl (they run again); returns how
    many. The file is rewritten atomically, so a kill here loses nothing."""
    records = read_records(run, repair=True)
    keep = scored(records)
    if len(keep) < len(records):
        _write_atomic(run / "records.jsonl", "".join(json.dumps(r) + "\n" for r in keep))
    return len(records) - len(keep)


def _run_locked(tasks: list, refiner: Refiner, s: EvalSettings, run: Path, resume: bool, progress: bool,
                store_path: Path | None) -> dict:
    if resume:
        if not (run / "config.json").is_file():
            raise RecursiaError(f"--resume {run}: no config.json there (not a `recursia code eval` run, or it "
                                "was stopped before it began); start it with --out")
        saved = _check_config(run, s)
        # A resume may cover more tasks than the start (a larger --limit, more --tasks): the run's task list
        # becomes both, so that `summary` counts what was planned ("finished: 4 of 4", not "4 of 2").
        ids = list(dict.fromkeys(list(saved.get("task_ids") or []) + list(s.task_ids)))
        if ids != saved.get("task_ids") or s.limit != saved.get("limit"):
            saved.update(task_ids=ids, limit=0 if not s.limit or not saved.get("limit") else max(s.limit, saved["limit"]))
            _write_atomic(run / "config.json", json.dumps(saved, indent=2) + "\n")
        # Records whose every model call failed are not finished: drop them, so that they run again (the
        # retried record replaces the failed one, never beside it).
        _drop_backend_failed(run)
    else:
        if (run / "records.jsonl").exists() or (run / "config.json").exists():
            raise RecursiaError(f"{run} already holds a code evaluation; continue it with --resume {run} or "
                                "pick another --out")
        _write_atomic(run / "config.json", json.dumps(asdict(s), indent=2) + "\n")
    done = {(r["task_id"], r["sample"]) for r in scored(read_records(run, repair=True))}
    todo = [(t, k) for t in tasks for k in range(s.samples) if (t.task_id, k) not in done]
    by_id = {t.task_id: t for t in tasks}
    from ..progress import bar as tqdm  # plain lines when stderr is not a terminal

    store = None
    if store_path is not None:
        from .store import Store

        store = Store(store_path)
        # Records finished before a kill (or a full disk) may be missing from the store: adding is idempotent.
        try:
            for rec in scored(read_records(run, full=True)):
                store.add_record(asdict(s), rec, by_id.get(rec["task_id"]), run=str(run.resolve()))
        except StoreError as e:
            store.close()
            raise RecursiaError(f"{e}; then continue with --resume {run}") from None
    bar = tqdm(todo, desc="tasks", unit="task", disable=not progress, dynamic_ncols=True)
    solved, failed, first_error = 0, 0, None
    for i, (task, k) in enumerate(bar):
        rec = evaluate_task(refiner, task, s, k)
        _append(run / "records.jsonl", rec)
        if rec.get("backend_failed"):
            failed += 1
            first_error = first_error or rec["loop"]["errors"][0]
        elif store is not None:
            try:
                store.add_record(asdict(s), rec, task, run=str(run.resolve()))
            except StoreError as e:
                store.close()
                raise RecursiaError(f"{e}; the {i + 1} record(s) finished in this session are kept in "
                                    f"{run}/records.jsonl (and go into the store then): continue with --resume "
                                    f"{run}") from None
        solved += rec["hidden_by_depth"][-1]
        bar.set_postfix(hidden_pass=f"{solved}/{i + 1}")
    if store is not None:
        store.close()
    summary = summarise(read_records(run), s, {t.task_id for t in tasks})
    # This session alone: every task it ran failed on the backend (the CLI exits non-zero on that).
    summary["session"] = {"ran": len(todo), "backend_failed": failed, "first_error": first_error}
    _write_atomic(run / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _rate(values: list[bool]) -> dict:
    k, n = sum(values), len(values)
    lo, hi = wilson(k, n)
    return {"pass": k, "n": n, "rate": k / n if n else 0.0, "ci95": [lo, hi]}


def summarise(records: list[dict], s: EvalSettings | dict, task_ids: set[str] | None = None) -> dict:
    """Everything a report carries, from the records alone (so `compare` can recompute it)."""
    s = asdict(s) if isinstance(s, EvalSettings) else s
    if task_ids is not None:
        records = [r for r in records if r["task_id"] in task_ids]
    # A task whose every model call failed says nothing about the model: it is counted apart, not scored.
    failed = [r for r in records if r.get("backend_failed")]
    records = scored(records)
    by_task: dict[str, list[dict]] = {}
    for r in records:
        by_task.setdefault(r["task_id"], []).append(r)
    depth = s["depth"]
    odd = next((r for r in records if len(r["hidden_by_depth"]) != depth + 1), None)
    if odd is not None:
        raise RecursiaError(f"the record of {odd['task_id']} has {len(odd['hidden_by_depth'])} hidden outcomes, but "
                            f"the run's depth {depth} needs {depth + 1}: records.jsonl and config.json do not match")
    out: dict = {"bench": s["bench"], "split": s["split"], "protocol": s["protocol"], "backend": s["backend"],
                 "tasks": len(by_task), "samples": s["samples"], "depth": depth,
                 "loop": {k: s.get(k) for k in ("n", "T", "halt", "refine_sees_x", "temperature", "refine_temperature",
                                                "depth_policy", "skills", "skills_in")}}
    if failed:
        out["backend_failed"] = {"tasks": len({r["task_id"] for r in failed}), "records": len(failed),
                                 "first_error": next((e for r in failed for e in r["loop"].get("errors", [])), "?")}
    out["backend_errors"] = sum(len(r["loop"].get("errors", [])) for r in records + failed)
    if not records:
        return out
    single = s["samples"] == 1
    out["pass_at_1_by_depth"] = []
    for d in range(depth + 1):
        if single:
            out["pass_at_1_by_depth"].append({"depth": d, **_rate([r["hidden_by_depth"][d] for r in records])})
        else:
            m, lo, hi = mean_interval([sum(r["hidden_by_depth"][d] for r in rs) / len(rs) for rs in by_task.values()])
            out["pass_at_1_by_depth"].append({"depth": d, "rate": m, "ci95": [lo, hi]})
    if all("baseline" in r for r in records):
        b = [r["baseline"]["hidden"] for r in records]
        out["baseline"] = {"calls_per_task": sum(r["baseline"]["calls"] for r in records) / len(records),
                           **(_rate(b) if single else dict(zip(("rate", "lo", "hi"), mean_interval(
                               [sum(r["baseline"]["hidden"] for r in rs) / len(rs) for rs in by_task.values()]))))}
        out["refine_vs_baseline"] = mcnemar([r["hidden_by_depth"][-1] for r in records], b)
    if not single:
        n = s["samples"]
        ks = [k for k in (1, 2, 5, 10, 20, 50, 100) if k <= n]
        out["pass_at_k"] = {f"pass@{k}": sum(pass_at_k(len(rs), sum(r["hidden_by_depth"][-1] for r in rs), k)
                                             for rs in by_task.values()) / len(by_task) for k in ks}
    reasons: dict[str, int] = {}
    for r in records:
        reasons[r["loop"]["halt_reason"]] = reasons.get(r["loop"]["halt_reason"], 0) + 1
    out["halt_reasons"] = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
    n = len(records)
    out["per_task"] = {"calls": sum(r["loop"]["calls"] for r in records) / n,
                       "tokens": sum(r["loop"]["prompt_tokens"] + r["loop"]["completion_tokens"] for r in records) / n,
                       "seconds": sum(r["seconds"] for r in records) / n,
                       "depth_used": sum(len(r["loop"]["attempts"]) - 1 for r in records) / n}
    # Only tasks with a visible test: with none, "visible tests pass" says nothing (counted apart).
    vis = [r for r in records if r["final_visible_ok"] and r["visible_tests"] > 0]
    out["visible_pass_hidden_fail"] = {"count": sum(not r["hidden_by_depth"][-1] for r in vis), "of": len(vis)}
    out["tasks_without_visible_tests"] = sum(1 for rs in by_task.values() if rs[0]["visible_tests"] == 0)
    return out


def run_label(config: dict) -> str:
    """'mbpp (test split, protocol visible)'; HumanEval and task files have no split, so none is named."""
    split = config.get("split") or ("test" if config["bench"] in ("mbpp", "mbpp-sanitized") else None)
    split = f"{split} split, " if config["bench"] in ("mbpp", "mbpp-sanitized") else ""
    return f"{config['bench']} ({split}protocol {config['protocol']})"


def summary_lines(summary: dict) -> list[str]:
    lines = [f"{run_label(summary)}, {summary['tasks']} tasks x {summary['samples']} samples, backend "
             f"{summary['backend']}"]
    if "backend_failed" in summary:
        f = summary["backend_failed"]
        lines.insert(0, f"{f['tasks']} task(s) not scored: the backend failed on every call (first error: "
                        f"{f['first_error']}); they run again with --resume")
    for row in summary.get("pass_at_1_by_depth", []):
        lo, hi = row["ci95"]
        lines.append(f"  pass@1 depth {row['depth']}: {100 * row['rate']:5.1f}%  (95% CI {100 * lo:.1f}-{100 * hi:.1f})")
    if "baseline" in summary:
        b = summary["baseline"]
        lo, hi = b.get("ci95", (b.get("lo", 0), b.get("hi", 1)))
        m = summary["refine_vs_baseline"]
        lines.append(f"  equal-budget baseline: {100 * b['rate']:5.1f}%  (95% CI {100 * lo:.1f}-{100 * hi:.1f}), "
                     f"{b['calls_per_task']:.2f} calls/task; loop-only {m['a_only']}, baseline-only "
                     f"{m['b_only']}, McNemar p = {m['p_value']:.3g}")
    for k, v in summary.get("pass_at_k", {}).items():
        lines.append(f"  {k}: {100 * v:.1f}%")
    if "per_task" in summary:
        p = summary["per_task"]
        lines.append(f"  per task: {p['calls']:.2f} calls, {p['tokens']:.0f} tokens, {p['seconds']:.1f} s, "
                     f"depth used {p['depth_used']:.2f}")
        lines.append("  halting: " + ", ".join(f"{k} {v}" for k, v in summary["halt_reasons"].items()))
        v = summary["visible_pass_hidden_fail"]
        lines.append(f"  visible tests passed but hidden failed: {v['count']} of {v['of']} (tasks with a visible "
                     f"test); tasks without "
                     f"visible tests: {summary['tasks_without_visible_tests']}; backend errors: "
                     f"{summary['backend_errors']}")
    return lines


def _arm_depths(records: list[dict], arm: str, tasks: list | None) -> dict[tuple[str, int], int] | None:
    """The depth each record is read at for 'depth=D' and 'policy=FILE' (None for 'final' and 'baseline').

    'policy=FILE' replays a depth policy (`recursia code depth`) on a fixed-depth run: the policy's depth for
    the task's type, whose first-error class is the depth-0 program's. The loop's steps do not depend on its
    maximum depth (every call has its own seed), so this is what `code eval --depth-policy FILE` would have
    submitted and spent, as a halting sweep reads every halting rule off one rollout."""
    if arm.startswith("depth="):
        d = arm_depth(arm)
        return {(r["task_id"], r["sample"]): d for r in records}
    if not arm.startswith("policy="):
        return None
    from .depth import load_policy

    policy = load_policy(arm[7:])
    by_id = {t.task_id: t for t in tasks or []}
    missing = sorted({r["task_id"] for r in records} - set(by_id))
    if missing:
        raise RecursiaError(f"arm {arm!r} needs the tasks' prompts (their types): pass --data, which lacks "
                            f"{len(missing)} of the run's tasks, e.g. {missing[0]}")
    return {(r["task_id"], r["sample"]): policy.depth_for(by_id[r["task_id"]], r["loop"]["attempts"][0]["signature"])
            for r in records}


def arm_depth(arm: str) -> int:
    """D of a 'depth=D' arm: a whole number >= 0 (a RecursiaError otherwise)."""
    try:
        d = int(arm[6:])
    except ValueError:
        d = -1
    if d < 0:
        raise RecursiaError(f"arm {arm!r}: D in depth=D must be a whole number >= 0, e.g. depth=2")
    return d


def check_arm(arm: str) -> None:
    """Refuse an arm that is none of 'final', 'depth=D', 'policy=FILE', 'baseline' before any record is read."""
    if arm.startswith("depth="):
        arm_depth(arm)
    elif arm.startswith("policy="):
        if not arm[7:]:
            raise RecursiaError(f"arm {arm!r}: name the policy file, e.g. policy=depths.json")
    elif arm not in ("final", "baseline"):
        raise RecursiaError(f"unknown arm {arm!r}: use 'final', 'depth=D', 'policy=FILE' or 'baseline'")


def arm_outcomes(records: list[dict], arm: str, tasks: list | None = None) -> dict[tuple[str, int], bool]:
    """Per (task, sample) hidden outcome of an arm: 'final', 'depth=D', 'policy=FILE' or 'baseline'."""
    depths = _arm_depths(records, arm, tasks)
    out = {}
    for r in records:
        key = (r["task_id"], r["sample"])
        if arm == "final":
            v = r["hidden_by_depth"][-1]
        elif arm == "baseline":
            if "baseline" not in r:
                raise RecursiaError("arm 'baseline': this run was made with --no-baseline")
            v = r["baseline"]["hidden"]
        elif depths is not None:
            d = depths[key]
            if d >= len(r["hidden_by_depth"]):
                raise RecursiaError(f"arm {arm!r}: depth {d} asked, but the run only has depths "
                                    f"0..{len(r['hidden_by_depth']) - 1}")
            v = r["hidden_by_depth"][d]
        else:
            raise RecursiaError(f"unknown arm {arm!r}: use 'final', 'depth=D', 'policy=FILE' or 'baseline'")
        out[key] = v
    return out


def _arm_calls(records: list[dict], arm: str, tasks: list | None = None) -> int:
    """Model calls an arm spent: the baseline's draws, or the loop's calls up to a depth (or to its end)."""
    if arm == "baseline":
        return sum(r["baseline"]["calls"] for r in records)
    depths = _arm_depths(records, arm, tasks)
    if depths is not None:
        at = [r["loop"]["attempts"][min(depths[(r["task_id"], r["sample"])], len(r["loop"]["attempts"]) - 1)]
              for r in records]
        return sum(a["calls"] for a in at)
    return sum(r["loop"]["calls"] for r in records)


def compare(run_a: Path, run_b: Path, arm_a: str = "final", arm_b: str = "final",
            tasks: list | None = None) -> dict:
    """Paired comparison on the (task, sample) pairs both runs finished: both rates, McNemar, total calls.
    `tasks` (the benchmark's) are needed only by a 'policy=FILE' arm."""
    check_arm(arm_a), check_arm(arm_b)
    sa, sb = read_config(run_a, ("bench", "protocol")), read_config(run_b, ("bench", "protocol"))
    ra, rb = scored(read_records(run_a)), scored(read_records(run_b))
    if not ra or not rb:
        raise RecursiaError(f"{run_a if not ra else run_b} has no finished (scored) records (records.jsonl)")
    oa, ob = arm_outcomes(ra, arm_a, tasks), arm_outcomes(rb, arm_b, tasks)
    keys = sorted(set(oa) & set(ob))
    if not keys:
        raise RecursiaError(f"{run_a} and {run_b} share no task: compare runs of the same benchmark")
    a, b = [oa[k] for k in keys], [ob[k] for k in keys]
    ka = {(r["task_id"], r["sample"]) for r in ra}
    kb = {(r["task_id"], r["sample"]) for r in rb}
    return {"a": {"run": str(run_a), "arm": arm_a, "protocol": sa["protocol"], **_rate(a),
                  "calls": _arm_calls([r for r in ra if (r["task_id"], r["sample"]) in set(keys)], arm_a, tasks)},
            "b": {"run": str(run_b), "arm": arm_b, "protocol": sb["protocol"], **_rate(b),
                  "calls": _arm_calls([r for r in rb if (r["task_id"], r["sample"]) in set(keys)], arm_b, tasks)},
            "mcnemar": mcnemar(a, b), "unpaired": {"only_a": len(ka - set(keys)), "only_b": len(kb - set(keys))},
            "same_protocol": sa["protocol"] == sb["protocol"] and sa["bench"] == sb["bench"]}
