"""The `recursia` command line: train, eval, solve, presets, data."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from .errors import RecursiaError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Tiny recursive reasoning models: train, evaluate, solve.")
data_app = typer.Typer(add_completion=False, no_args_is_help=True,
                       help="Build, generate, hold out and download data sets.")
app.add_typer(data_app, name="data")

from .code.cli import code_app  # noqa: E402  (light: imports nothing heavy at module level)

app.add_typer(code_app, name="code")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def main() -> None:
    """Entry point: RecursiaError becomes a one-line message and exit status 2 (no traceback)."""
    from .errors import show_warnings_as_lines

    show_warnings_as_lines()
    try:
        app()
    except RecursiaError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)


# ----------------------------------------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def train(
    ctx: typer.Context,
    preset: str = typer.Option("demo", "--preset", "-p", help="Preset name (see `recursia presets`) or a YAML file."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset directory (from `recursia data build`)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/PRESET-TIME)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a model. Extra arguments are config overrides, e.g. `model.n=6 train.lr=3e-4`."""
    from .config import apply_overrides, build_config
    from .train import load_run_config
    from .train import train as run_training

    overrides = list(ctx.args)
    if resume is not None:
        saved = load_run_config(resume)
        extra = overrides + ([f"data.dir={data}"] if data is not None else [])
        new = apply_overrides(saved, extra) if extra else None
        cfg = new or saved
        run_dir = resume
        result = run_training(saved, resume, resume=True, progress=not quiet, overrides_on_resume=new)
    else:
        if data is not None:
            overrides = [f"data.dir={data}", "data.generate=null"] + overrides
        cfg = build_config(preset, overrides)
        run_dir = out or Path("runs") / f"{Path(preset).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = run_training(cfg, run_dir, progress=not quiet)
    if cfg.train.compare_one_pass and result.get("eval") and "stopped" not in result:
        from .compare import print_comparison, run_comparison
        from .evaluate import write_json

        comparison = run_comparison(cfg, Path(run_dir), result, progress=not quiet)
        write_json(comparison, Path(run_dir) / "comparison.json")
        if not quiet:
            print_comparison(comparison)
    if not quiet and "stopped" not in result:
        run_dir = result["run_dir"]
        typer.echo(f"\nnext: recursia eval {run_dir}    recursia solve {run_dir} PUZZLE")


@app.command()
def presets() -> None:
    """List the presets and what each is for."""
    from .config import load_preset, preset_names

    for name in preset_names():
        cfg = load_preset(name)
        typer.echo(f"{name:14} {cfg.description}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def bench(
    ctx: typer.Context,
    preset: str = typer.Option("sudoku-mlp", "--preset", "-p", help="Preset to time."),
    steps: int = typer.Option(50, "--steps", help="Timed optimizer steps."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed steps first (compilation, allocator)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset directory (default: generated puzzles)."),
    peak_tflops: Optional[float] = typer.Option(None, "--peak-tflops", help="Device peak for MFU (default: "
                                                "known GPUs' bf16 dense peak; none on CPU)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Time training steps of a preset: steps/s, examples/s, FLOP rate and MFU, peak memory, and the ratio to
    the reference implementation. Extra arguments are config overrides, e.g. `train.global_batch_size=256`."""
    from .bench import run, summary

    if steps < 1 or warmup < 0:
        _fail("--steps must be >= 1 and --warmup >= 0")
    result = run(preset, steps, warmup, str(data) if data else None, list(ctx.args), peak_tflops, not quiet)
    typer.echo(summary(result))
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n")
        typer.echo(f"wrote {json_out}")


@app.command(name="eval")
def eval_cmd(
    checkpoint: Path = typer.Argument(..., help="Run directory, checkpoint folder or model.safetensors."),
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset directory (default: the run's data)."),
    split: str = typer.Option("test", "--split", help="Split to evaluate."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    batch_size: int = typer.Option(256, "--batch-size", help="Examples per forward pass."),
    limit: int = typer.Option(0, "--limit", help="Evaluate only the first N examples (0: all)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, mps."),
    halting_sweep: bool = typer.Option(False, "--halting-sweep", help="Also score inference-time halting "
                                       "rules (learned, confidence=p, stable=k): accuracy against mean steps."),
    steps: int = typer.Option(0, "--steps", help="Supervision steps to run (0: the model's N_sup). More than "
                              "it was trained with asks whether extra recursion at test time helps."),
    perturb: int = typer.Option(1, "--perturb", help="Score as `recursia solve` answers, with P copies of each "
                                "puzzle under the task's symmetries (see `solve --help`); reports exact and valid "
                                "accuracy and the compute spent."),
    ensemble: Optional[list[Path]] = typer.Option(None, "--model", help="More checkpoints of the same task, "
                                                  "tried in turn where nothing checked yet (as in solve)."),
    select: Optional[str] = typer.Option(None, "--select", help="'verified' or 'vote' (as in solve)."),
    halt: Optional[str] = typer.Option(None, "--halt", help="With --perturb, --model or --select: the halting "
                                       "rule (as in solve; default verified where the task checks answers)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --perturb transforms."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Score a checkpoint: exact and cell accuracy, steps, halting, accuracy per supervision step. With
    --perturb, --model or --select: the accuracy `recursia solve` reaches with that test-time scaling."""
    from .checkpoint import load_model, resolve
    from .dataset import Dataset
    from .evaluate import evaluate_dataset, summary_lines, write_json
    from .model import resolve_dtype
    from .runtime import pick_device

    if batch_size < 1 or limit < 0 or steps < 0:
        _fail("--batch-size must be at least 1, --limit and --steps at least 0 (0: every example, the model's "
              "N_sup)")
    _run_threads(checkpoint)
    dev = pick_device(device)
    model, cfg, meta = load_model(checkpoint, dev)
    if steps:
        import dataclasses

        model.cfg = dataclasses.replace(model.cfg, N_sup=steps)
    model.set_forward_dtype(resolve_dtype(cfg.model.forward_dtype, dev))
    data_dir = data or _run_data_dir(checkpoint, cfg, meta)
    ds = Dataset(data_dir)
    ds.verify()
    if ds.manifest["seq_len"] != meta["task_spec"]["seq_len"] or ds.task != meta.get("task", ds.task):
        raise RecursiaError(f"{data_dir} holds {ds.task} data of length {ds.manifest['seq_len']}, but the "
                            f"checkpoint is a {meta.get('task')} model of length {meta['task_spec']['seq_len']}")
    out_dir = json_out.parent if json_out is not None else None
    if perturb != 1 or ensemble or select or halt:
        if halting_sweep:
            raise RecursiaError("--halting-sweep scores one rollout per rule; drop it with --perturb, --model, "
                                "--select or --halt")
        _eval_scaled(checkpoint, model, ds, split, batch_size, limit, quiet, json_out, ensemble or [], dev,
                     halt, perturb, steps or None, select, seed)
        return
    if halting_sweep and ds.task == "arc":
        raise RecursiaError("--halting-sweep scores single answers; ARC votes over versions (not supported)")
    from .halting import default_rules
    from .tasks import get_task

    rules = default_rules(model.q_head is not None, get_task(ds.task).verify is not None) \
        if halting_sweep else None
    result = evaluate_dataset(model, ds, split, batch_size, limit, progress=not quiet, out_dir=out_dir, cfg=cfg,
                              halt_rules=rules)
    result.update(checkpoint=str(resolve(checkpoint)), step=meta["step"], data=str(data_dir), split=split,
                  data_fingerprint=ds.fingerprint, same_data_as_training=ds.fingerprint == meta["data_fingerprint"])
    for line in summary_lines(result):
        typer.echo(line)
    if json_out is not None:
        write_json(result, json_out)
        typer.echo(f"wrote {json_out}")


def _eval_scaled(checkpoint, model, ds, split, batch_size, limit, quiet, json_out, ensemble, dev, halt, perturb,
                 steps, select, seed) -> None:
    from .checkpoint import resolve
    from .evaluate import evaluate_scaled, scaled_lines, write_json
    from .halting import HaltRule
    from .solve import Solver
    from .tasks import get_task

    extra = Solver.load_many(ensemble, device=str(dev)) if ensemble else None
    if extra is not None and extra.task.name != ds.task:
        raise RecursiaError(f"--model gives {extra.task.name} models, and the data is {ds.task}")
    solver = Solver(model, get_task(ds.task), extra.models if extra is not None else ())
    result = evaluate_scaled(solver, ds.split(split), batch_size, limit, not quiet,
                             HaltRule.parse(halt) if halt is not None else None, perturb=perturb, steps=steps,
                             select=select, seed=seed)
    result.update(checkpoint=str(resolve(checkpoint)), ensemble=[str(resolve(e)) for e in ensemble],
                  data=str(ds.root), split=split)
    for line in scaled_lines(result):
        typer.echo(line)
    if json_out is not None:
        write_json(result, json_out)
        typer.echo(f"wrote {json_out}")


def _run_threads(checkpoint: Path) -> dict:
    """The run's train.threads applies to evaluating and solving with it too (runtime.set_threads says why).
    Returns the checkpoint's meta.json, which callers read next anyway."""
    from .checkpoint import read_meta, resolve
    from .runtime import set_threads

    meta = read_meta(resolve(checkpoint))
    set_threads(int(meta.get("config", {}).get("train", {}).get("threads", 1)))
    return meta


def _run_data_dir(checkpoint: Path, cfg, meta: dict) -> Path:
    """The data a run trained on: data.dir, or the puzzles it generated into RUN_DIR/data."""
    if cfg.data.dir is not None:
        path = Path(cfg.data.dir)
        if not path.is_dir():
            where = "" if path.is_absolute() else " (a relative path, saved by an older Recursia: it is read " \
                "from the directory you run in)"
            raise RecursiaError(f"cannot find the {meta.get('task', '?')} data that {checkpoint} was trained on: "
                                f"data.dir={cfg.data.dir}{where} was looked up as {path.absolute()}, which does "
                                "not exist; pass --data DIR")
        return path
    from .checkpoint import resolve

    run_dir = resolve(checkpoint).parent.parent
    if (run_dir / "data" / "manifest.json").is_file():
        return run_dir / "data"
    raise RecursiaError(f"cannot find the data of {checkpoint}; pass --data DIR")


@app.command()
def solve(
    checkpoint: Path = typer.Argument(..., help="Run directory, checkpoint folder or model.safetensors."),
    puzzles: list[str] = typer.Argument(None, help="Puzzles as text (Sudoku: 81 characters, '.' or 0 blank; "
                                        "Maze: 900 characters of '# SG')."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Read puzzles from a file (Sudoku: one per "
                                        "line; Maze: 30 lines of 30 characters per maze)."),
    halt: Optional[str] = typer.Option(None, "--halt", help="When to stop refining a puzzle: 'all' (N_sup "
                                       "steps), or conditions such as 'stable=2', 'confidence=0.9', 'learned', "
                                       "'verified' (the task's own check passes), joined by commas. Default: "
                                       "verified where the task checks answers (Sudoku, Maze, DeepCoder), "
                                       "else stable=2 (see docs/models.md)."),
    candidates: int = typer.Option(1, "--candidates", help="Tasks that check answers (DeepCoder, Sudoku, Maze): "
                                   "answers tried per step when the argmax fails, best-first over the cells' "
                                   "probabilities; the first that verifies is kept (1: the argmax only)."),
    perturb: Optional[int] = typer.Option(None, "--perturb", help="Sudoku, Maze: solve P copies of each puzzle "
                                          "under the task's symmetries (Sudoku: digits, bands, stacks, rows, "
                                          "columns, transpose; Maze: rotations and reflections, at most 8) and "
                                          "map each answer back; copy 1 is the puzzle as given. A puzzle stops as "
                                          "soon as one copy's answer verifies. More copies: more solved, more "
                                          "time. Default: the model's own (the bundled sudoku: 8; else 1)."),
    budget: Optional[float] = typer.Option(None, "--budget", help="Sudoku, Maze: seconds per puzzle to spend. "
                                           "After the first P copies, puzzles still without a checked answer get "
                                           "P fresh copies at a time while the time fits (a round starts only if "
                                           "it is expected to end within the budget). 0: the P copies only. "
                                           "Default: the model's own when --perturb is not given (the bundled "
                                           "sudoku: 1 s), else 0."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Supervision steps at most (default: the model's "
                                        "N_sup); more than it was trained with lets it think longer."),
    ensemble: Optional[list[Path]] = typer.Option(None, "--model", help="More checkpoints of the same task, "
                                                  "tried in turn on the puzzles still without a checked answer "
                                                  "(repeat the option for several)."),
    select: Optional[str] = typer.Option(None, "--select", help="How to pick among copies and models: 'verified' "
                                         "(the first answer that passes the task's check; the default where the "
                                         "task checks answers) or 'vote' (the answer most of them give)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --perturb transforms."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="DeepCoder with a function-prior model "
                                               "(the bundled deepcoder, or a deepcoder-prior run): seconds per task "
                                               "for the prior and the search it orders (default 1)."),
    versions: int = typer.Option(8, "--versions", help="ARC: versions of a new task to fit and vote over."),
    adapt_steps: Optional[int] = typer.Option(None, "--adapt-steps", help="ARC: steps fitting a new task's "
                                              "embeddings (default: the run's train.adapt_steps)."),
    adapt_batch_size: Optional[int] = typer.Option(None, "--adapt-batch-size", help="ARC: batch for that "
                                                   "fitting (default: train.adapt_batch_size, else "
                                                   "train.eval_batch_size, at most the task's examples)."),
    device: str = typer.Option("auto", "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per puzzle. DeepCoder with "
                                 "--file: `--json OUT.json` writes per-task records and the solve rate there."),
    watch: bool = typer.Option(False, "--watch", help="First show the first puzzle's grid being refined, "
                               "step by step, as the model runs (see docs/viz.md)."),
) -> None:
    """Solve puzzles with a trained model and check each answer (exit status 1 if one is not valid).
    ARC: pass a task file (--file task.json); its test inputs are answered with two attempts each."""
    from .solve import Solver

    if watch and as_json:
        raise RecursiaError("--watch draws in the terminal and cannot be combined with --json")
    if _run_threads(checkpoint).get("task") == "arc":
        if watch:
            raise RecursiaError("--watch shows Sudoku and Maze grids; for ARC, `recursia viz CHECKPOINT --file "
                                "task.json --out DIR` draws a task step by step")
        if file is None or puzzles:
            raise RecursiaError("an ARC model solves a task file: recursia solve CHECKPOINT --file task.json")
        _solve_arc(checkpoint, file, versions, device, as_json, adapt_steps, adapt_batch_size)
        return
    solver = Solver.load_many([checkpoint, *(ensemble or [])], device=device)
    if solver.task.name == "deepcoder-prior":
        if (file is None or ensemble or perturb is not None or budget is not None or steps is not None or select
                or halt is not None or candidates != 1):
            raise RecursiaError("a function-prior model orders search over a task file: recursia solve MODEL "
                                "--file TASKS.jsonl [--time-limit S] [--json OUT.json] (it takes no --candidates, "
                                "--halt, --steps, --perturb, --budget, --model or --select)")
        _solve_guided(solver, file, puzzles or [], as_json, 1.0 if time_limit is None else time_limit)
        return
    if time_limit is not None:
        raise RecursiaError("--time-limit is for a DeepCoder function-prior model (`recursia solve deepcoder "
                            "--file TASKS.jsonl --time-limit S`); Sudoku and Maze take --budget")
    if solver.task.name == "deepcoder" and (perturb is not None or steps is not None or ensemble or select
                                            or budget is not None):
        raise RecursiaError("--perturb, --budget, --steps, --model and --select apply to Sudoku and Maze; a "
                            "DeepCoder model scales with --candidates")
    if solver.task.name == "deepcoder" and file is not None:
        _solve_deepcoder(solver, file, puzzles or [], as_json, halt, candidates)
        return
    if budget is None:
        budget = solver.default_budget if perturb is None else 0.0
    if budget < 0:
        raise RecursiaError(f"--budget {budget:g}: give seconds per puzzle (0: no rounds beyond --perturb)")
    perturb = solver.default_perturb if perturb is None else perturb
    scaling = dict(perturb=perturb, steps=steps, seed=seed)
    grids = [solver.parse(t, where=f"puzzle {i + 1}") for i, t in enumerate(puzzles or [])]
    if file is not None:
        grids += solver.read_file(file)
    if not grids:
        raise RecursiaError("no puzzle given: pass puzzles as arguments or --file FILE")
    from .halting import HaltRule
    from .solve import default_halt

    rule = HaltRule.parse(halt) if halt is not None else default_halt(solver.task)
    if watch:
        _watch(solver, grids, rule)
    start = time.perf_counter()
    results = (solver.solve_within(grids, budget, rule, candidates, select=select, **scaling) if budget else
               solver.solve_batch(grids, rule, candidates, select=select, **scaling))
    seconds = time.perf_counter() - start
    failed = 0
    for i, r in enumerate(results):
        failed += not r.valid
        partial = _partial(solver.task.name, r)
        if as_json:
            record = r.to_json()
            if partial is not None:
                record["partial"] = "".join(str(int(v)) for v in partial.ravel())
            typer.echo(json.dumps(record))
            continue
        head = f"puzzle {i + 1}: {'solved' if r.valid else 'NOT SOLVED'} after {r.steps} step(s)"
        if len(solver.models) > 1 or perturb > 1 or budget:
            head += (f" of {'model ' + str(r.model + 1) + ', ' if len(solver.models) > 1 else ''}copy {r.copy + 1}"
                     f"; {r.applications} network applications in all")
        if r.halt_step is not None:
            head += f" (the halting head fired at step {r.halt_step})"
        if r.halt_confidence is not None:
            head += f", halting confidence {r.halt_confidence:.3f}"
        typer.echo(head)
        if r.valid:
            typer.echo(solver.task.format(r.answer))
            continue
        typer.echo(f"the model's answer breaks the puzzle's rules ({len(r.problems)} problem(s), first ones below)")
        for problem in r.problems[:5]:
            typer.echo(f"  - {problem}")
        if partial is not None:
            blanks = int((r.question == 0).sum())
            typer.echo(f"best partial grid (clues, then the model's digits that break no rule, most confident "
                       f"first; {int((partial != 0).sum()) - (r.question.size - blanks)} of {blanks} blanks "
                       f"filled):")
            typer.echo(solver.task.format(partial))
        else:
            typer.echo("the model's answer, which is NOT a solution:")
            typer.echo(solver.task.format(r.answer))
    if not as_json:
        apps = sum(r.applications for r in results)
        typer.echo(f"compute: {apps / len(results):.1f} network applications (supervision steps, all copies and "
                   f"models) per puzzle, {seconds:.2f} s for {len(results)} puzzle(s) on {_device_name(solver)}")
    if failed:
        if not as_json:
            typer.echo(f"{failed} of {len(results)} puzzles not solved")
        raise typer.Exit(1)


def _device_name(solver) -> str:
    import torch

    dev = solver.model.embed_tokens.device
    return f"{dev.type}, {torch.get_num_threads()} thread(s)" if dev.type == "cpu" else str(dev)


def _partial(task: str, r):
    """Sudoku: the best partial grid of an unsolved puzzle (`tasks/sudoku_partial.py`); None otherwise."""
    if r.valid or task != "sudoku":
        return None
    from .tasks.sudoku_partial import best_partial

    return best_partial(r.question, r.answer, r.confidence[-1] if r.confidence else None)


def _solve_deepcoder(solver, file: Path, rest: list[str], as_json: bool, halt: Optional[str],
                     candidates: int) -> None:
    """A DeepCoder task file: a summary on the terminal; `--json OUT.json` writes every task's record."""
    from .halting import HaltRule
    from .tasks.deepcoder_solve import VERIFIED, solve_file, summary_lines

    _check_task_file_args(rest, as_json, "[--json OUT.json]")
    rule = HaltRule.parse(halt) if halt is not None else VERIFIED
    _report_tasks(solve_file(solver, file, rule, candidates), summary_lines, file, rest, as_json)


def _check_task_file_args(rest: list[str], as_json: bool, options: str) -> None:
    """A task file takes no puzzle arguments, only `--json OUT.json` (the file's name lands among them)."""
    if len(rest) > (1 if as_json else 0) or (rest and not rest[0].endswith(".json")):
        raise RecursiaError(f"a DeepCoder task file is solved as: recursia solve MODEL --file TASKS.jsonl {options}; "
                            "no other arguments")


def _report_tasks(result: dict, summary_lines, file: Path, rest: list[str], as_json: bool) -> None:
    """A task file's summary on the terminal; with --json, every task's record written to OUT.json."""
    from .evaluate import write_json

    for line in summary_lines(result):
        typer.echo(line)
    if as_json:
        out = Path(rest[0]) if rest else file.with_suffix(".solved.json")
        write_json(result, out)
        typer.echo(f"wrote {out}")


def _solve_guided(solver, file: Path, rest: list[str], as_json: bool, time_limit: float) -> None:
    """Model-guided synthesis on a DeepCoder task file: the prior orders the search, every program is checked."""
    from .tasks import deepcoder
    from .tasks.deepcoder_prior import solve_tasks
    from .tasks.deepcoder_search import summary_lines

    if time_limit <= 0:
        raise RecursiaError(f"--time-limit {time_limit:g}: give the seconds per task, above 0")
    _check_task_file_args(rest, as_json, "[--time-limit S] [--json OUT.json]")
    result = solve_tasks(solver.model, deepcoder.read_tasks(file), time_limit, path=file, progress=not as_json)
    _report_tasks(result, summary_lines, file, rest, as_json)


def _solve_arc(checkpoint: Path, file: Path, versions: int, device: str, as_json: bool,
               adapt_steps: Optional[int], adapt_batch_size: Optional[int]) -> None:
    from .checkpoint import load_model
    from .model import resolve_dtype
    from .runtime import pick_device
    from .tasks.arc import grid_to_list
    from .tasks.arc_solve import solve_task_file

    dev = pick_device(device)
    model, cfg, _ = load_model(checkpoint, dev)
    model.set_forward_dtype(resolve_dtype(cfg.model.forward_dtype, dev))
    answers, how = solve_task_file(model, cfg, file, versions, progress=not as_json, adapt_steps=adapt_steps,
                                   adapt_batch_size=adapt_batch_size)
    if as_json:
        for a in answers:
            typer.echo(json.dumps({"test_index": a.test_index, "correct": a.correct,
                                   "attempts": [grid_to_list(g) for g in a.attempts]}))
    else:
        typer.echo(f"{file}: {how}")
        for a in answers:
            verdict = {True: "correct", False: "wrong", None: "no answer in the file to check"}[a.correct]
            typer.echo(f"test input {a.test_index + 1}: {verdict}")
            for k, grid in enumerate(a.attempts, start=1):
                typer.echo(f"  attempt {k} ({grid.shape[0]}x{grid.shape[1]}):")
                for row in grid:
                    typer.echo("    " + "".join(str(int(v)) for v in row))
            if not a.attempts:
                typer.echo("  (no readable answer)")
    if any(a.correct is False for a in answers):
        raise typer.Exit(1)


# ----------------------------------------------------------------------------------------------------------
@data_app.command("build")
def data_build(
    task: str = typer.Argument(..., help="Task: sudoku, maze, arc or deepcoder."),
    source: list[Path] = typer.Option(..., "--source", help="Raw data: a folder or file; repeat for ARC "
                                      "(e.g. arc-agi-1 and concept-arc)."),
    out: Path = typer.Option(..., "--out", help="Output dataset directory."),
    augment: Optional[int] = typer.Option(None, "--augment", help="Augmented versions per training puzzle "
                                          "(default: sudoku 1000, arc 1000)."),
    seed: int = typer.Option(0, "--seed"),
    test: Optional[Path] = typer.Option(None, "--test", help="Test CSV (default: from --source)."),
    train_count: int = typer.Option(0, "--train-count", help="Sudoku: random subset of N training puzzles."),
    test_count: int = typer.Option(0, "--test-count", help="Sudoku: random subset of N test puzzles."),
    generate_test: int = typer.Option(1000, "--generate-test", help="Maze: generated test mazes when the "
                                      "source has no test.csv (0: none)."),
    dihedral: bool = typer.Option(False, "--dihedral", help="Maze: add the 8 dihedral versions of each maze."),
    protocol: str = typer.Option("reference", "--protocol", help="ARC: reference (evaluation demonstrations "
                                 "are trained on) or heldout (evaluation tasks never seen in training)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip bad rows (listed in the manifest)."),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Build a memory-mapped dataset (with manifest and fingerprint) from raw files."""
    if task not in ("sudoku", "maze", "arc", "deepcoder"):
        _fail(f"unknown task {task!r}; `data build` knows: sudoku, maze, arc, deepcoder")
    if task == "deepcoder":
        if len(source) != 1:
            _fail("deepcoder takes one --source: a jsonl task file such as NONE.jsonl (it becomes a test split)")
        from .tasks.deepcoder import build_deepcoder_dataset

        _print_manifest(out, build_deepcoder_dataset(source[0], out, overwrite=overwrite))
        return
    if task != "arc" and len(source) != 1:
        _fail(f"{task} takes one --source (a folder with train.csv, or a CSV file)")
    if augment is not None and augment < 0 or train_count < 0 or test_count < 0 or generate_test < 0:
        _fail("--augment, --train-count, --test-count and --generate-test must be at least 0")
    if task == "sudoku":
        from .tasks.sudoku_data import build_sudoku_dataset

        m = build_sudoku_dataset(source[0], out, augmentations=1000 if augment is None else augment, seed=seed,
                                 test=test, train_count=train_count, test_count=test_count,
                                 skip_invalid=skip_invalid, overwrite=overwrite)
    elif task == "maze":
        from .tasks.maze_data import build_maze_dataset

        if augment:
            _fail("maze has no random augmentation; use --dihedral for the 8 symmetric versions")
        m = build_maze_dataset(source[0], out, test=test, generate_test=generate_test, dihedral=dihedral,
                               seed=seed, skip_invalid=skip_invalid, overwrite=overwrite, progress=True)
    else:
        from .tasks.arc_data import build_arc_dataset

        m = build_arc_dataset(source, out, protocol=protocol, versions=1000 if augment is None else augment,
                              seed=seed, overwrite=overwrite)
    _print_manifest(out, m)
    dropped = m.get("arc", {}).get("dropped_training_tasks", {})
    if dropped:
        typer.echo(f"note: left out {len(dropped)} training task(s) that copy evaluation tasks: "
                   + ", ".join(f"{k} (= {', '.join(v)})" for k, v in dropped.items())
                   + " (listed in the manifest as dropped_training_tasks)")


@data_app.command("generate")
def data_generate(
    task: str = typer.Argument(..., help="Task: sudoku, maze or deepcoder."),
    out: Path = typer.Option(..., "--out", help="Output dataset directory."),
    count: int = typer.Option(1000, "--count", help="Training puzzles."),
    test_count: int = typer.Option(1000, "--test-count", help="Held-out test puzzles."),
    blanks: int = typer.Option(40, "--blanks", help="Sudoku: empty cells per puzzle (difficulty)."),
    blanks_max: int = typer.Option(0, "--blanks-max", help="Sudoku: spread the puzzles evenly over "
                                   "--blanks..--blanks-max empty cells (0: all at --blanks)."),
    method: str = typer.Option("singles", "--method", help="Sudoku generator: singles (solvable by singles, "
                               "fast, up to ~54 blanks) or search (may need guessing, up to ~58)."),
    min_rounds: int = typer.Option(1, "--min-rounds", help="Sudoku: minimum rounds of single-cell deductions."),
    augment: int = typer.Option(0, "--augment", help="Sudoku: augmented copies per training puzzle."),
    min_path: int = typer.Option(110, "--min-path", help="Maze: shortest S-G path in cells (110: Maze-Hard's; "
                                 "2: easy mazes, median path 22)."),
    walls: str = typer.Option("249-405", "--walls", help="Maze: wall count range LOW-HIGH, drawn uniformly."),
    max_length: int = typer.Option(5, "--max-length", help="DeepCoder: longest program (statements, 1-5)."),
    split: Optional[str] = typer.Option(None, "--split", help="DeepCoder: draw an ExeDec split's training "
                                        "distribution (NONE, LENGTH_GENERALIZATION, COMPOSE_DIFFERENT_CONCEPTS, "
                                        "SWITCH_CONCEPT_ORDER, COMPOSE_NEW_OP, ADD_OP_FUNCTIONALITY)."),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Generate puzzles (Sudoku: unique solutions; Maze: the official look and labelling rule; DeepCoder: the
    reference's sampling rules), seeded."""
    if count < 0 or test_count < 0 or augment < 0:
        _fail("--count, --test-count and --augment must be at least 0")
    if count + test_count == 0:
        _fail("--count and --test-count are both 0, which would write an empty dataset; ask for some puzzles")
    if split is not None and task != "deepcoder":
        _fail(f"--split is for deepcoder (an ExeDec split's training distribution), not {task}")
    if task == "sudoku":
        from .tasks.sudoku_data import generate_sudoku_dataset

        m = generate_sudoku_dataset(out, train_count=count, test_count=test_count, blanks=blanks,
                                    blanks_max=blanks_max, method=method, min_rounds=min_rounds,
                                    augmentations=augment, seed=seed, overwrite=overwrite)
    elif task == "maze":
        from .tasks.maze_data import generate_maze_dataset

        m = generate_maze_dataset(out, train_count=count, test_count=test_count, seed=seed, min_path=min_path,
                                  wall_range=_wall_range(walls), overwrite=overwrite, progress=True)
    elif task == "deepcoder":
        from .tasks.deepcoder import generate_deepcoder_dataset

        m = generate_deepcoder_dataset(out, train_count=count, test_count=test_count, seed=seed,
                                       max_length=max_length, split=split, overwrite=overwrite)
    else:
        _fail(f"unknown task {task!r}; `data generate` knows: sudoku, maze, deepcoder")
        return
    _print_manifest(out, m)


def _wall_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    if not sep or not lo.strip().isdigit() or not hi.strip().isdigit():
        _fail(f"--walls {text!r}: give a range LOW-HIGH of wall counts, e.g. --walls 249-405")
    return int(lo), int(hi)


@data_app.command("heldout")
def data_heldout(
    task: str = typer.Argument(..., help="Task: sudoku."),
    collections: Path = typer.Option(..., "--collections", help="Folder of the tdoku puzzle collections."),
    train_csv: Path = typer.Option(..., "--train", help="Training CSV whose puzzles must not reappear."),
    out: Path = typer.Option(..., "--out", help="Output CSV (source,question,answer,rating)."),
    mix: str = typer.Option("forum=400,17clue=300,magictour=300", "--mix", help="Puzzles per collection."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Build a held-out Sudoku test CSV: no puzzle equivalent to a training one, unique solutions only."""
    if task != "sudoku":
        _fail(f"unknown task {task!r}; `data heldout` knows: sudoku")
    from .tasks.sudoku_data import build_heldout

    parsed = {}
    for part in mix.split(","):
        name, _, n = part.partition("=")
        if not n.strip().isdigit():
            raise RecursiaError(f"--mix entry {part!r} should look like name=COUNT, e.g. forum=400")
        parsed[name.strip()] = int(n)
    report = build_heldout(collections, train_csv, out, parsed, seed)
    typer.echo(json.dumps(report, indent=2))


DOWNLOADS = {"sudoku-extreme": ("sudoku_data", "download_sudoku_extreme", "sudoku", "--train-count 1000"),
             "maze-hard": ("maze_data", "download_maze_hard", "maze", "")}


@data_app.command("download")
def data_download(
    name: str = typer.Argument(..., help="Data set: sudoku-extreme or maze-hard."),
    out: Path = typer.Option(..., "--out", help="Folder for the downloaded files."),
) -> None:
    """Download a public data set from Hugging Face (needs `pip install 'recursia[hf]'` and network).
    ARC-AGI lives in git repositories: clone github.com/fchollet/ARC-AGI or github.com/arcprize/ARC-AGI-2."""
    if name not in DOWNLOADS:
        _fail(f"unknown data set {name!r}; downloadable: {', '.join(DOWNLOADS)} (ARC-AGI: git clone "
              "github.com/fchollet/ARC-AGI or github.com/arcprize/ARC-AGI-2)")
    import importlib

    module, function, task, extra = DOWNLOADS[name]
    paths = getattr(importlib.import_module(f"recursia.tasks.{module}"), function)(out)
    for p in paths:
        typer.echo(f"downloaded {p}")
    typer.echo(f"next: recursia data build {task} --source {out} --out data/{name} {extra}".rstrip())


@data_app.command("info")
def data_info(path: Path = typer.Argument(..., help="Dataset directory.")) -> None:
    """Show a dataset's manifest summary."""
    from .dataset import Dataset

    ds = Dataset(path)
    _print_manifest(path, ds.manifest)


def _print_manifest(path: Path, m: dict) -> None:
    splits = ", ".join(f"{k}: {v['examples']} examples, {v['puzzles']} puzzles in {v['groups']} groups"
                       for k, v in m["splits"].items())
    typer.echo(f"{path}: {m['task']} (length {m['seq_len']}, vocabulary {m['vocab_size']}); {splits}; "
               f"fingerprint {m['fingerprint'][:16]}")


# ----------------------------------------------------------------------------------------------------------
# Seeing the model think (docs/viz.md): viz, plot, and solve --watch
@app.command()
def viz(
    checkpoint: Path = typer.Argument(..., help="Run directory, checkpoint folder or model.safetensors."),
    puzzle: Optional[str] = typer.Argument(None, help="The puzzle as text, as for `recursia solve` (ARC: an "
                                           "evaluation task id of the model's data set)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for steps.png, steps.gif and viewer.html."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Read the puzzle from a file (ARC: a task "
                                        "file)."),
    index: int = typer.Option(1, "--index", help="Which puzzle of --file (ARC: which test input), from 1."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Supervision steps to run (default: N_sup)."),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Draw one puzzle's answer after every supervision step: a strip (steps.png), an animation (steps.gif)
    and a self-contained page with a step slider and the halting curve (viewer.html)."""
    from .viz import trace_checkpoint, write_visuals

    _run_threads(checkpoint)
    trace = trace_checkpoint(checkpoint, puzzle, file, index, steps, device)
    for path in write_visuals(trace, out):
        typer.echo(f"wrote {path}")


@app.command()
def plot(
    run_dir: Path = typer.Argument(..., help="Run directory (with metrics.jsonl)."),
    eval_json: Optional[Path] = typer.Option(None, "--eval", help="Evaluation JSON (default RUN_DIR/eval.json)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default RUN_DIR/plots)."),
) -> None:
    """Chart a run: training.png (loss and accuracy against the step) and, from its evaluation,
    accuracy_by_step.png (accuracy after each supervision step) and halting_steps.png (where halting fires)."""
    from .plot import plot_run

    written, notes = plot_run(run_dir, eval_json, out)
    for path in written:
        typer.echo(f"wrote {path}")
    for note in notes:
        typer.echo(f"note: {note}")


def _watch(solver, grids: list, rule) -> None:
    """solve --watch: the first puzzle's grid after every supervision step, drawn as the model computes it."""
    from .viz_watch import watch

    if len(grids) > 1:
        typer.echo(f"watching puzzle 1 of {len(grids)}")
    watch(solver.model, solver.task, grids[0], rule)
    typer.echo("")


if __name__ == "__main__":
    main()
