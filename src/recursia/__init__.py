"""Recursia: tiny recursive reasoning models (TRM, HRM) that train, evaluate, solve and show their thinking.

Python API::

    from recursia import TRM, HRM, ModelConfig, TaskSpec, load_model
    model, cfg, meta = load_model("runs/demo")      # a run directory, checkpoint folder or .safetensors file
"""

__version__ = "0.1.0"

from .baseline import Transformer  # noqa: E402
from .checkpoint import load_model  # noqa: E402
from .config import ModelConfig, RunConfig, build_config  # noqa: E402
from .hrm import HRM  # noqa: E402
from .model import TaskSpec, build_model  # noqa: E402
from .trm import TRM  # noqa: E402

__all__ = ["HRM", "TRM", "ModelConfig", "RunConfig", "TaskSpec", "Transformer", "build_config", "build_model",
           "load_model", "__version__"]
