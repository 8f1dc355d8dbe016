"""Evaluation: run every test example for all N_sup supervision steps and score it two ways.

- `all_steps`: the answer after the last step (the reference protocol), plus the accuracy after each step;
- `early_halting`: the answer at the step where the model's halting rule first fires (or the last step), the
  mean number of steps that takes, and the accuracy when halting is also capped at step k.

Both come from the same rollout, because an example's trajectory does not depend on when it is read out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .dataset import Split
from .errors import ConfigError
from .halting import HaltRule, stop_steps, summarise, tradeoff
from .losses import IGNORE
from .model import RecursiveModel
from .progress import bar as progress_bar
from .supervision import rollout


LEARNED = HaltRule(learned=True)  # the model's own halting rule: the early_halting reading

TaskMetrics = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]  # (inputs, predictions) -> per-example


# (example indices, all-steps predictions (B, L), sigmoid(q_halt) after the last step or None)
BatchHook = Callable[[np.ndarray, np.ndarray, np.ndarray | None], None]


@torch.no_grad()
def evaluate(model: RecursiveModel, split: Split, batch_size: int = 256, max_examples: int = 0,
             progress: bool = True, task_metrics: TaskMetrics | None = None,
             on_batch: BatchHook | None = None, halt_rules: list[HaltRule] | None = None,
             verify: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> dict[str, Any]:
    """Score `split`. `task_metrics` adds task-specific per-example checks of the answer (Maze:
    `valid_shortest_path`), reported for the all-steps answer and for the early-halting answer. `on_batch`
    sees every batch's all-steps predictions (ARC collects its votes there). `halt_rules` adds
    `halting_tradeoff`: exact accuracy and mean steps when each inference-time halting rule stops the puzzles.
    `verify` (the task's `Task.verify`) adds `verified_by_step`, the fraction of answers that pass the task's
    own check after each step, and lets `halt_rules` hold `verified` rules."""
    if verify is None and any(r.verified for r in halt_rules or []):
        raise ConfigError("the 'verified' halting rule needs the task's answer check: pass verify=task.verify "
                          "(this task has none if it is None)")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: evaluation needs at least 1 example per forward pass")
    model.eval()
    device = model.embed_tokens.device
    n_total = len(split) if max_examples <= 0 else min(max_examples, len(split))
    n_sup = model.cfg.N_sup
    exact_by_step = torch.zeros(n_sup, dtype=torch.float64)
    cell_by_step = torch.zeros(n_sup, dtype=torch.float64)
    early_exact_capped = torch.zeros(n_sup, dtype=torch.float64)
    sums = {k: 0.0 for k in ("early_exact", "early_cell", "early_steps", "q_all", "q_early", "q_count")}
    halt_hist = torch.zeros(n_sup, dtype=torch.float64)
    verified_by_step = torch.zeros(n_sup, dtype=torch.float64)
    sweep: list[dict[str, Any]] | None = None
    extra: dict[str, dict[str, float]] = {"all_steps": {}, "early_halting": {}}
    started = time.time()
    bar = progress_bar(total=n_total, desc="eval", unit="ex", disable=not progress, leave=False)
    for start in range(0, n_total, batch_size):
        idx = np.arange(start, min(start + batch_size, n_total))
        rows = split.rows(idx)
        inputs = torch.from_numpy(rows["inputs"]).to(device)
        labels = torch.from_numpy(rows["labels"]).to(device).long()
        pids = torch.from_numpy(rows["puzzle_ids"]).to(device)
        rec = rollout(model, inputs, pids, n_sup)
        if verify is not None:
            rec.verified = [torch.from_numpy(np.asarray(verify(rows["inputs"], p.cpu().numpy()), dtype=bool))
                            .to(p.device) for p in rec.predictions]
            verified_by_step += torch.stack(rec.verified).double().sum(1).cpu()
        valid = labels != IGNORE
        count = valid.sum(-1).clamp(min=1)
        right = torch.stack([((p == labels) & valid).sum(-1) for p in rec.predictions])  # (S, B)
        exact = right == count
        cell = right.float() / count
        exact_by_step += exact.double().sum(1).cpu()
        cell_by_step += cell.double().sum(1).cpu()
        h = stop_steps(LEARNED, rec)  # (B,) the step where the model's own rule halts each example
        cols = torch.arange(h.shape[0], device=h.device)
        sums["early_exact"] += exact[h, cols].double().sum().item()
        sums["early_cell"] += cell[h, cols].double().sum().item()
        sums["early_steps"] += (h + 1).double().sum().item()
        halt_hist += torch.bincount(h.cpu(), minlength=n_sup).double()
        for k in range(n_sup):
            early_exact_capped[k] += exact[torch.clamp(h, max=k), cols].double().sum().item()
        if rec.q_halt[0] is not None:
            sums["q_all"] += ((rec.q_halt[-1] >= 0) == exact[-1]).double().sum().item()
            qh = torch.stack(rec.q_halt)[h, cols]
            sums["q_early"] += ((qh >= 0) == exact[h, cols]).double().sum().item()
            sums["q_count"] += h.shape[0]
        if on_batch is not None:
            q_last = torch.sigmoid(rec.q_halt[-1]).cpu().numpy() if rec.q_halt[-1] is not None else None
            on_batch(idx, rec.predictions[-1].cpu().numpy(), q_last)
        if halt_rules:
            trade = tradeoff(rec, exact, halt_rules)  # not `rows`: task_metrics below still reads the batch
            if sweep is not None:
                trade = [{**a, **{k: a[k] + b[k] for k in a if k != "rule"}} for a, b in zip(sweep, trade)]
            sweep = trade
        if task_metrics is not None:
            final = rec.predictions[-1].cpu().numpy()
            early = torch.stack(rec.predictions)[h, cols].cpu().numpy()
            for mode, preds in (("all_steps", final), ("early_halting", early)):
                for name, ok in task_metrics(rows["inputs"], preds).items():
                    extra[mode][name] = extra[mode].get(name, 0.0) + float(np.sum(ok))
        bar.update(len(idx))
    bar.close()
    n = max(n_total, 1)
    has_q = sums["q_count"] > 0
    result = {
        "examples": n_total,
        "N_sup": n_sup,
        "halting": model.cfg.halting,
        "seconds": round(time.time() - started, 2),
        "all_steps": {
            "exact_accuracy": float(exact_by_step[-1] / n),
            "cell_accuracy": float(cell_by_step[-1] / n),
            "mean_steps": float(n_sup),
            "q_halt_accuracy": sums["q_all"] / n if has_q else None,
            "exact_accuracy_by_step": [float(v / n) for v in exact_by_step],
            "cell_accuracy_by_step": [float(v / n) for v in cell_by_step],
            **({"verified_by_step": [float(v / n) for v in verified_by_step]} if verify is not None else {}),
        },
        "early_halting": {
            "exact_accuracy": sums["early_exact"] / n,
            "cell_accuracy": sums["early_cell"] / n,
            "mean_steps": sums["early_steps"] / n,
            "q_halt_accuracy": sums["q_early"] / n if has_q else None,
            "exact_accuracy_by_step": [float(v / n) for v in early_exact_capped],
            "halting_step_histogram": [int(v) for v in halt_hist],
        },
    }
    for mode, values in extra.items():
        result[mode].update({name: total / n for name, total in values.items()})
    if sweep is not None:
        result["halting_tradeoff"] = summarise(sweep, n_total)
    return result


STANDARD = {"exact_accuracy", "cell_accuracy", "mean_steps", "q_halt_accuracy"}


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Human-readable lines for the terminal."""
    lines = [f"examples: {result['examples']}   N_sup: {result['N_sup']}   halting: {result['halting']}"]
    for mode in ("all_steps", "early_halting"):
        r = result[mode]
        q = "n/a" if r["q_halt_accuracy"] is None else f"{r['q_halt_accuracy']:.4f}"
        more = "".join(f"  {k} {r[k]:.4f}" for k in r if k not in STANDARD and isinstance(r[k], float))
        lines.append(f"{mode:>14}: exact_accuracy {r['exact_accuracy']:.4f}  cell_accuracy {r['cell_accuracy']:.4f}"
                     f"  mean_steps {r['mean_steps']:.2f}  q_halt_accuracy {q}{more}")
    by = result["all_steps"]["exact_accuracy_by_step"]
    lines.append("exact_accuracy_by_step: " + " ".join(f"{v:.3f}" for v in by))
    if "verified_by_step" in result["all_steps"]:
        lines.append("verified_by_step: " + " ".join(f"{v:.3f}" for v in result["all_steps"]["verified_by_step"]))
    if "halting_tradeoff" in result:
        lines.append("inference-time halting (rule: exact accuracy, mean steps):")
        lines += [f"  {r['rule']:>24}: {r['exact_accuracy']:.4f}  {r['mean_steps']:.2f}"
                  + (f"  verified {r['verified_accuracy']:.4f}" if "verified_accuracy" in r else "")
                  for r in result["halting_tradeoff"]]
    if "arc" in result:
        a = result["arc"]
        if "pass@2" in a:
            lines.append(f"ARC ({a['protocol']} protocol): pass@1 {a['pass@1']:.4f}  pass@2 {a['pass@2']:.4f}  "
                         f"pass@10 {a['pass@10']:.4f} over {a['tasks']} tasks / {a['test_inputs']} test inputs")
        if "submission" in a:
            lines.append(f"submission: {a['submission']}")
    return lines


def evaluate_dataset(model: RecursiveModel, data: Any, split: str = "test", batch_size: int = 256,
                     max_examples: int = 0, progress: bool = True, out_dir: Path | None = None,
                     cfg: Any = None, halt_rules: list[HaltRule] | None = None) -> dict[str, Any]:
    """`evaluate` plus what the data set's task adds: Maze's valid_shortest_path; ARC's voted pass@k, with
    its submission file written into `out_dir` (and, under the heldout protocol, test-time fitting of the
    unseen tasks' embeddings first, which needs the run config `cfg`)."""
    if data.task == "arc":
        from .tasks.arc_eval import evaluate_arc

        return evaluate_arc(model, data, split, batch_size, max_examples, progress, out_dir, cfg)
    from .tasks import get_task

    task = get_task(data.task)
    return evaluate(model, data.split(split), batch_size, max_examples, progress, task.metrics,
                    halt_rules=halt_rules, verify=task.verify)


def evaluate_scaled(solver: Any, split: Split, batch_size: int = 256, max_examples: int = 0, progress: bool = True,
                    halt: HaltRule | None = None, **scaling: Any) -> dict[str, Any]:
    """Score `split` the way `recursia solve` answers, with test-time scaling (`Solver.solve_batch`'s
    `perturb`, `steps`, `select`, `seed`, and the solver's ensemble): exact accuracy (the label's answer),
    valid accuracy (the task's own check: a Maze may have other shortest paths than the label's), and the
    compute spent, network applications per puzzle and wall time."""
    if solver.task.perturb is None:
        raise ConfigError(f"--perturb, --model and --select score Sudoku and Maze models; {solver.task.name} has "
                          "no symmetries (DeepCoder: `recursia solve --file` with --candidates)")
    n = len(split) if max_examples <= 0 else min(max_examples, len(split))
    right, valid, apps = [], [], []
    start = time.perf_counter()
    for lo in progress_bar(range(0, n, batch_size), total=(n + batch_size - 1) // batch_size, desc="eval",
                           disable=not progress):
        rows = split.rows(np.arange(lo, min(n, lo + batch_size)))
        labels = solver.task.decode(rows["labels"])
        for r, label in zip(solver.solve_batch(list(solver.task.decode(rows["inputs"])), halt, **scaling), labels):
            right.append(np.array_equal(np.asarray(r.answer).ravel(), np.asarray(label).ravel()))
            valid.append(r.valid)
            apps.append(r.applications)
    seconds = time.perf_counter() - start
    return {"examples": n, "N_sup": solver.model.cfg.N_sup, "models": len(solver.models),
            "halting": str(halt) if halt is not None else "default",
            "scaling": dict(scaling),
            "exact_accuracy": float(np.mean(right)) if n else 0.0,
            "valid_accuracy": float(np.mean(valid)) if n else 0.0,
            "applications_mean": float(np.mean(apps)) if n else 0.0,
            "applications_median": float(np.median(apps)) if n else 0.0,
            "seconds": seconds, "seconds_per_puzzle": seconds / max(n, 1)}


def scaled_lines(result: dict[str, Any]) -> list[str]:
    sc = result["scaling"]
    return [f"examples: {result['examples']}   N_sup: {result['N_sup']}   halting: {result['halting']}   "
            f"perturb: {sc.get('perturb', 1)}   steps: {sc.get('steps') or result['N_sup']}   models: "
            f"{result['models']}   select: {sc.get('select') or 'default'}",
            f"exact_accuracy {result['exact_accuracy']:.4f}  valid_accuracy {result['valid_accuracy']:.4f}",
            f"compute: {result['applications_mean']:.1f} network applications per puzzle (median "
            f"{result['applications_median']:.0f}), {result['seconds']:.1f} s in all, "
            f"{result['seconds_per_puzzle']:.3f} s per puzzle in batches"]


def write_json(result: dict[str, Any], path: str | Path) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(p)
