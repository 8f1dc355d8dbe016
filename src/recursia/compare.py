"""Recursion against one pass: train the same network with N_sup = T = n = 1 and print both results.

`train.compare_one_pass=true` ends a run with this comparison, because it is the point of the whole method: the
same weights, applied to their own answer again and again, solve what one application cannot. (The default
demo leaves it off to stay within about two minutes; it prints the first-step accuracy instead.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import RunConfig, apply_overrides

ONE_PASS = ["model.N_sup=1", "model.T=1", "model.n=1", "model.halting=fixed", "train.compare_one_pass=false",
            "train.eval_every=0", "train.checkpoint_every=0"]


def one_pass_twin(cfg: RunConfig, data_dir: Path) -> RunConfig:
    """Same network and training budget (steps, batch, optimiser); one application per example."""
    return apply_overrides(cfg, ONE_PASS + [f"data.dir={data_dir}", "data.generate=null"])


def run_comparison(cfg: RunConfig, run_dir: Path, result: dict[str, Any], progress: bool) -> dict[str, Any]:
    from .train import train

    data_dir = Path(cfg.data.dir) if cfg.data.dir else run_dir / "data"
    twin = train(one_pass_twin(cfg, data_dir), run_dir / "one-pass", progress=progress)
    rec = result["eval"]
    one = twin["eval"]
    return {
        "recursive": {"N_sup": cfg.model.N_sup, "T": cfg.model.T, "n": cfg.model.n,
                      "exact_accuracy": rec["all_steps"]["exact_accuracy"],
                      "early_halting_exact_accuracy": rec["early_halting"]["exact_accuracy"],
                      "mean_steps": rec["early_halting"]["mean_steps"],
                      "cell_accuracy": rec["all_steps"]["cell_accuracy"], "train_seconds": result["train_seconds"]},
        "one_pass": {"N_sup": 1, "T": 1, "n": 1, "exact_accuracy": one["all_steps"]["exact_accuracy"],
                     "cell_accuracy": one["all_steps"]["cell_accuracy"], "train_seconds": twin["train_seconds"]},
    }


def print_comparison(c: dict[str, Any]) -> None:
    r, o = c["recursive"], c["one_pass"]
    print("\nsame network, same training steps, held-out puzzles:")
    print(f"  recursive (N_sup={r['N_sup']}, T={r['T']}, n={r['n']}): exact {r['exact_accuracy']:.1%}  "
          f"cells {r['cell_accuracy']:.1%}  (early halting: exact {r['early_halting_exact_accuracy']:.1%} "
          f"in {r['mean_steps']:.1f} steps)")
    print(f"  run once  (N_sup=1, T=1, n=1):  exact {o['exact_accuracy']:.1%}  cells {o['cell_accuracy']:.1%}")
