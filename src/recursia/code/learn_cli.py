"""`recursia code store import | stats | depth | skills | viz | report`: the commands that learn from attempts
(docs/code.md, "Learning from attempts"), registered on the `recursia code` group by importing this module."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli import _at_least, _fail, _in_file, _out_dir, _out_file, code_app

# The attempt store and what is learned from it (docs/code.md, "Learning from attempts").
store_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The attempt store (SQLite).")
code_app.add_typer(store_app, name="store")


def _tasks_for(config: dict, data: Optional[Path]) -> list:
    """The run's tasks (for prompt features) when the data is given or $RECURSIA_CODE_DATA is set, else []."""
    import os

    from .tasks import ENV_VAR, load_tasks

    if data is None and not os.environ.get(ENV_VAR):
        typer.echo(f"note: no --data (or ${ENV_VAR}): prompts not loaded, task types get topic '*'", err=True)
        return []
    split = None if config["bench"] == "humaneval" or Path(config["bench"]).exists() else "all"
    return load_tasks(config["bench"], data, split=split, protocol=config.get("protocol", "visible"))


def _store_in(store: Path) -> None:
    """A store to read must exist (a folder is named as one)."""
    if not store.exists():
        _fail(f"store {store} does not exist; fill one with `recursia code store import RUN --store {store}`")
    _in_file(store, "store")


@store_app.command("import")
def store_import_cmd(
    runs: list[Path] = typer.Argument(..., metavar="RUN...", help="`recursia code eval` run directories."),
    store: Path = typer.Option(..., "--store", help="The store file (created if missing)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder holding humaneval/ and mbpp/ (prompts give "
                                        "the task types their topic)."),
) -> None:
    """Ingest every finished record of the runs, each in one transaction; importing again adds nothing."""
    from .evaluate import read_config, read_records
    from .store import Store

    configs = [read_config(run) for run in runs]  # every run is checked before the store is touched
    for run in runs:
        read_records(run, full=True)
    with Store(store) as s:
        for run, config in zip(runs, configs):
            added, seen = s.import_run(run, _tasks_for(config, data))
            typer.echo(f"{run}: {added} record(s) added, {seen} already in {store}"
                       + (f"; {s.not_scored} left out (the backend failed on every call: not results)"
                          if s.not_scored else ""))


@code_app.command("stats")
def stats_cmd(
    store: Path = typer.Argument(..., help="An attempt store."),
    window: int = typer.Option(30, "--window", help="Recent outcomes the divergence alarm compares."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the summary here."),
) -> None:
    """Per benchmark and task type: records, attempts, hidden pass rate (Wilson and Beta 95%), halting depth and
    reasons, and the divergence alarm."""
    import json

    from .estimates import summarise_store
    from .store import Store

    _store_in(store)
    _at_least("--window", window, 1)
    _out_file(json_out, "--json")
    with Store(store, create=False) as s:
        summary = summarise_store(s.records(), window)
    typer.echo(f"{store}: {summary['records']} record(s)")
    for kind in ("benchmark", "type"):
        for name, g in summary[kind].items():
            h, (lo, hi) = g["hidden"], g["hidden"]["wilson95"]
            alarm = g["alarm"]
            typer.echo(f"{kind} {name}: {g['records']} tasks, {g['attempts']} attempts, {g['calls']} calls; hidden "
                       f"{h['k']}/{h['n']} = {100 * h['rate']:.1f}% (Wilson 95% {100 * lo:.1f}-{100 * hi:.1f}); "
                       f"depth {g['halting']['depth']}; halting {g['halting']['reason']}"
                       + ("; ALARM: recent {:.0%} < earlier {:.0%}".format(alarm['recent'], alarm['earlier'])
                          if alarm["fired"] else ""))
    if json_out:
        json_out.write_text(json.dumps(summary, indent=2) + "\n")


@code_app.command("depth")
def depth_cmd(
    store: Path = typer.Argument(..., help="An attempt store holding MBPP train/validation records."),
    out: Path = typer.Option(..., "--out", help="Where to write the policy (JSON)."),
    min_gain: float = typer.Option(0.02, "--min-gain", help="Least pass-rate gain a deeper step must buy."),
    min_n: int = typer.Option(10, "--min-n", help="Records a type needs for its own depth (else it backs off)."),
) -> None:
    """Learn the maximum depth per task type from MBPP train/validation records (test tasks are never used)."""
    import json

    from .depth import learn_from_store
    from .store import Store

    _store_in(store)
    _at_least("--min-n", min_n, 1)
    if not 0 <= min_gain <= 1:
        _fail(f"--min-gain {min_gain:g}: a pass-rate gain between 0 and 1, e.g. 0.02")
    _out_file(out, "--out")
    with Store(store, create=False) as s:
        policy, left_out = learn_from_store(s, min_gain, min_n)
    out.write_text(json.dumps(policy, indent=2) + "\n")
    for key, t in policy["types"].items():
        typer.echo(f"{key}: depth {t['depth']} ({t['n']} tasks, solved by depth {t['solved_by_depth']})")
    typer.echo(f"learned on {policy['records']} training record(s); {left_out} other record(s) not used")
    typer.echo(f"wrote {out}")


@code_app.command("skills")
def skills_cmd(
    store: Path = typer.Argument(..., help="An attempt store."),
    out: Path = typer.Option(..., "--out", help="Where to write the library (JSON)."),
    validation: bool = typer.Option(False, "--with-validation", help="Also take MBPP validation tasks."),
    references: bool = typer.Option(False, "--references", help="Also the published reference programs of "
                                    "those MBPP tasks, each kept only if it passes its tests in the sandbox."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder holding mbpp/ (for --references)."),
    query: Optional[str] = typer.Option(None, "--query", help="Show what a prompt would retrieve."),
) -> None:
    """Build the skill library (verified solutions and fixes) from training-split tasks of the store."""
    from .skills import SkillLibrary, render
    from .store import Store
    from .tasks import load_tasks

    _store_in(store)
    _out_file(out, "--out")
    with Store(store, create=False) as s:
        lib, no_prompt = SkillLibrary.from_store(s, ("train", "validation") if validation else ("train",))
    if references:
        tasks = [t for split in lib.splits for t in load_tasks("mbpp", data, split=split)]
        typer.echo(f"checking {len(tasks)} reference program(s) in the sandbox")
        lib.add_references(tasks, progress=True)
    lib.save(out)
    kinds = [sk.kind for sk in lib.skills]
    typer.echo(f"{kinds.count('solution')} solution(s), {kinds.count('fix')} fix(es), {kinds.count('reference')} "
               f"checked reference(s) from {'/'.join(lib.splits)} tasks; {no_prompt} solved record(s) left out "
               "(no prompt stored: import with --data)")
    if query:
        typer.echo(render([sk for sk, _ in lib.retrieve(query)]) or "(nothing retrieved)")
    typer.echo(f"wrote {out}")


@code_app.command("viz")
def code_viz_cmd(
    run: Path = typer.Argument(..., help="A `recursia code eval` run directory."),
    task: str = typer.Option(..., "--task", help="Task id, e.g. HumanEval/0 or mbpp/11."),
    out: Path = typer.Option(..., "--out", help="Folder for viewer.html."),
    sample: int = typer.Option(0, "--sample", help="Which sample of the task."),
) -> None:
    """One self-contained HTML page: per step the program's diff, visible tests, error, z and halting."""
    from .viz import write_viewer

    _at_least("--sample", sample, 0)
    _out_dir(out, "--out")
    typer.echo(f"wrote {write_viewer(run, task, out, sample)}")


@code_app.command("report")
def report_cmd(
    run: Path = typer.Argument(..., help="A `recursia code eval` run directory."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.html (default: the run)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder holding humaneval/ and mbpp/ (task types)."),
) -> None:
    """A page of plots: pass@1 by depth with the baseline, halting reasons, depth per task type, estimates."""
    from .evaluate import read_config
    from .report import write_report

    config = read_config(run)
    _out_dir(out, "--out")
    tasks = _tasks_for(config, data)
    typer.echo(f"wrote {write_report(run, out, tasks)}")
