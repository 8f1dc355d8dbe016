"""Recursia: tiny recursive reasoning models (TRM, HRM) that train, evaluate, solve and show their thinking.

Python API::

    import recursia
    model = recursia.load("runs/demo")              # a run directory, checkpoint folder, .safetensors or a
    result = model.solve("53..7....6..195....")    # bundled model's name; answer, valid, steps, trajectory
    results = model.solve_batch(grids)              # many puzzles at once

    from recursia import TRM, HRM, ModelConfig, TaskSpec, load_model
    net, cfg, meta = load_model("runs/demo")        # the bare network, its config and checkpoint metadata
"""

__version__ = "0.1.0"

# Names are imported on first use (PEP 562), so that `import recursia` and commands that need no network, such
# as `recursia code ...`, do not pay for importing torch (seconds on a busy machine).
_LAZY = {"Transformer": ".baseline", "load_model": ".checkpoint", "ModelConfig": ".config",
         "RunConfig": ".config", "build_config": ".config", "HRM": ".hrm", "TaskSpec": ".model",
         "build_model": ".model", "TRM": ".trm", "HaltRule": ".halting", "Solver": ".solve",
         "SolveResult": ".solve"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recursia' has no attribute {name!r}")


def load(model: str, device: str = "auto"):
    """A trained model ready to solve: a bundled model's name or a checkpoint path (see `checkpoint.resolve`)."""
    from .solve import Solver

    return Solver.load(model, device)


__all__ = ["HRM", "TRM", "HaltRule", "ModelConfig", "RunConfig", "SolveResult", "Solver", "TaskSpec",
           "Transformer", "build_config", "build_model", "load", "load_model", "__version__"]
