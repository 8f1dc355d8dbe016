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

from .baseline import Transformer  # noqa: E402
from .checkpoint import load_model  # noqa: E402
from .config import ModelConfig, RunConfig, build_config  # noqa: E402
from .hrm import HRM  # noqa: E402
from .model import TaskSpec, build_model  # noqa: E402
from .trm import TRM  # noqa: E402
from .halting import HaltRule  # noqa: E402
from .solve import Solver, SolveResult  # noqa: E402


def load(model: str, device: str = "auto") -> Solver:
    """A trained model ready to solve: a bundled model's name or a checkpoint path (see `checkpoint.resolve`)."""
    return Solver.load(model, device)


__all__ = ["HRM", "TRM", "HaltRule", "ModelConfig", "RunConfig", "SolveResult", "Solver", "TaskSpec",
           "Transformer", "build_config", "build_model", "load", "load_model", "__version__"]
