"""Typed run configuration: dataclasses, YAML presets and dotted `key=value` overrides.

A run is described by one `RunConfig` (model, data, train, log). Presets are YAML files in
`recursia/presets/`; the command line applies overrides such as `model.n=6 train.lr=3e-4` on top. Every value is
checked against the dataclass field's type and the validation rules below, so a typo fails at once with a
message that names the key and what it accepts, instead of hours later.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


@dataclass
class ModelConfig:
    """The network and its recursion. Names follow the papers: T outer cycles, n latent steps, N_sup supervision
    steps. For HRM, T and n are the H and L cycles and `layers` is the depth of each of the two stacks."""

    arch: str = "trm"  # trm | hrm | transformer (plain direct-prediction baseline)
    hidden_size: int = 512
    num_heads: int = 8
    expansion: float = 4.0
    mlp_multiple: int = 256  # SwiGLU widths are rounded up to a multiple of this (paper: 256)
    layers: int = 2
    mixer: str = "attention"  # attention | mlp (SwiGLU across the sequence axis, TRM-MLP)
    pos_encoding: str = "rope"  # rope | learned | none
    T: int = 3
    n: int = 6
    N_sup: int = 16
    features: str = "yz"  # yz (TRM) | z (single feature) | multiscale (y and n latents z_1..z_n)
    separate_nets: bool = False  # TRM ablation: one network for z updates, another for y updates
    one_step_grad: bool = False  # TRM ablation: gradient through the last z and y updates only (HRM-style)
    halting: str = "halt"  # fixed (always N_sup) | halt (q_halt > 0) | qlearn (q_halt > q_continue)
    halt_exploration_prob: float = 0.1
    puzzle_emb_len: int = 16  # prefix tokens; the first carries the per-puzzle vector
    puzzle_emb_dim: int = 512  # 0 disables the learned per-puzzle vector (prefix stays, zeros)
    puzzle_emb_dtype: str = "float32"  # float32 | bfloat16 (half the memory; stochastic rounding on update)
    forward_dtype: str = "auto"  # auto (bf16 on CUDA; on CPUs with native bf16, bf16 training) | bfloat16 | float32
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    reference_mlp_norm: bool = False  # reproduce the reference bug: MLP-mixer norm over the sequence axis


@dataclass
class GenerateConfig:
    """Puzzles generated on the fly when no data directory is given (the `demo` preset)."""

    task: str = "sudoku"
    train_count: int = 2000
    test_count: int = 500
    blanks: int = 40
    blanks_max: int = 0  # sudoku: > blanks spreads the puzzles evenly over blanks..blanks_max (0: one level)
    method: str = "singles"  # sudoku generator: singles (fast, <= ~54 blanks) | search (may need guessing)
    min_rounds: int = 1
    augmentations: int = 0  # extra symmetry-transformed copies per training puzzle
    seed: int = 0
    min_path: int = 110  # maze: shortest S-G path, cells (110: Maze-Hard; 2: easy mazes, median path 22)
    walls_min: int = 249  # maze: wall count drawn uniformly in walls_min..walls_max
    walls_max: int = 405
    min_length: int = 1  # deepcoder: program lengths drawn, min_length..max_length statements
    max_length: int = 5
    split: str = ""  # deepcoder: an ExeDec split's training distribution (NONE, LENGTH_GENERALIZATION, ...)


@dataclass
class DataConfig:
    dir: str | None = None  # a dataset built by `recursia data build` / `recursia data generate`
    generate: GenerateConfig | None = None  # used when dir is None


@dataclass
class TrainConfig:
    steps: int = 1000
    global_batch_size: int = 768
    lr: float = 1e-4
    lr_warmup_steps: int = 2000
    lr_schedule: str = "constant"  # constant (the papers) | cosine (decay to lr_min_ratio * lr at the last step)
    lr_min_ratio: float = 0.0
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.95
    puzzle_emb_lr: float = 1e-4
    puzzle_emb_weight_decay: float = 1.0
    ema: bool = True
    ema_rate: float = 0.999
    loss: str = "stablemax"  # stablemax | softmax
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    compile: bool = False  # torch.compile the recursion network (CUDA only)
    # Recompute each network call with gradient during backward instead of storing its activations: same
    # gradients, far less memory for long sequences (maze-att at batch 768), about one more forward per call.
    activation_checkpointing: bool = False
    # CPU threads for torch (0: torch's default, one per core). One by default: with any other load on a 2-core
    # CPU, two threads fell to a few steps/s of the demo against ~20 with one (docs/benchmarks.md, threads).
    threads: int = 1
    log_every: int = 10
    eval_every: int = 0  # 0: only at the end
    eval_batch_size: int = 256
    eval_max_examples: int = 0  # 0: the whole test split
    checkpoint_every: int = 0  # 0: only at the end
    keep_checkpoints: int = 2
    time_limit_s: float = 0.0  # stop (and checkpoint) after this much training time; 0: no limit
    # Start from these weights instead of random ones (fine-tuning): a bundled model's name, a run directory or a
    # checkpoint folder whose network has the same shape (T, n, N_sup and halting may differ). "": random init.
    init_from: str = ""
    compare_one_pass: bool = False  # afterwards, train the same network run once (N_sup=T=n=1) to compare
    adapt_steps: int = 300  # ARC heldout protocol: steps fitting the unseen tasks' embeddings before testing
    adapt_batch_size: int = 0  # 0: eval_batch_size


@dataclass
class LogConfig:
    tensorboard: bool = True  # used when the tensorboard package is installed
    wandb: bool = False
    wandb_project: str = "recursia"


@dataclass
class RunConfig:
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------------------
# Validation: the rules a type alone cannot express.

_CHOICES = {
    "model.arch": ("trm", "hrm", "transformer"),
    "model.mixer": ("attention", "mlp"),
    "model.pos_encoding": ("rope", "learned", "none"),
    "model.features": ("yz", "z", "multiscale"),
    "model.halting": ("fixed", "halt", "qlearn"),
    "model.forward_dtype": ("auto", "bfloat16", "float32"),
    "model.puzzle_emb_dtype": ("float32", "bfloat16"),
    "train.loss": ("stablemax", "softmax"),
    "train.lr_schedule": ("constant", "cosine"),
    "data.generate.task": ("sudoku", "maze", "deepcoder", "deepcoder-prior"),
    "data.generate.method": ("singles", "search"),
    "data.generate.split": ("", "NONE", "LENGTH_GENERALIZATION", "COMPOSE_DIFFERENT_CONCEPTS", "SWITCH_CONCEPT_ORDER",
                            "COMPOSE_NEW_OP", "ADD_OP_FUNCTIONALITY"),
}


# The range of every numeric field: (lowest, highest, lowest excluded, highest excluded); None: no bound.
# tests/test_config.py checks that every int and float field is listed here.
_AT_LEAST_1, _AT_LEAST_0, _ABOVE_0 = (1, None, False, False), (0, None, False, False), (0, None, True, False)
_UNIT, _UNIT_OPEN = (0, 1, False, False), (0, 1, False, True)
_RANGES = {
    **{f"model.{k}": _AT_LEAST_1 for k in ("hidden_size", "num_heads", "mlp_multiple", "layers", "T", "n",
                                            "N_sup")},
    "model.expansion": _ABOVE_0, "model.halt_exploration_prob": _UNIT, "model.puzzle_emb_len": _AT_LEAST_0,
    "model.puzzle_emb_dim": _AT_LEAST_0, "model.rms_norm_eps": _ABOVE_0, "model.rope_theta": _ABOVE_0,
    "data.generate.train_count": _AT_LEAST_1, "data.generate.test_count": _AT_LEAST_0,
    "data.generate.blanks": (0, 64, False, False),
    "data.generate.blanks_max": (0, 64, False, False), "data.generate.min_rounds": _AT_LEAST_0,
    "data.generate.augmentations": _AT_LEAST_0, "data.generate.seed": _AT_LEAST_0,
    "data.generate.min_path": (2, 900, False, False), "data.generate.walls_min": (0, 898, False, False),
    "data.generate.walls_max": (0, 898, False, False),
    "data.generate.min_length": (1, 5, False, False), "data.generate.max_length": (1, 5, False, False),
    **{f"train.{k}": _AT_LEAST_1 for k in ("steps", "global_batch_size", "log_every", "eval_batch_size",
                                            "keep_checkpoints")},
    **{f"train.{k}": _AT_LEAST_0 for k in ("lr_warmup_steps", "weight_decay", "puzzle_emb_lr",
                                            "puzzle_emb_weight_decay", "seed", "threads", "eval_every",
                                            "eval_max_examples", "checkpoint_every", "time_limit_s",
                                            "adapt_steps", "adapt_batch_size")},
    "train.lr": _ABOVE_0, "train.lr_min_ratio": _UNIT, "train.beta1": _UNIT_OPEN, "train.beta2": _UNIT_OPEN,
    "train.ema_rate": _UNIT_OPEN,
}


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if hi is None:
        return f"at least {lo}" if not lo_open else f"> {lo}"
    return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def _check_ranges(flat: dict[str, Any]) -> None:
    for key, (lo, hi, lo_open, hi_open) in _RANGES.items():
        if key not in flat:  # data.generate.* when nothing is generated
            continue
        v = flat[key]
        rule = _range_text(lo, hi, lo_open, hi_open)
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key}={v} is not a finite number; it must be {rule}")
        below = v <= lo if lo_open else v < lo
        above = hi is not None and (v >= hi if hi_open else v > hi)
        if below or above:
            raise ConfigError(f"{key}={v} must be {rule}")


def validate(cfg: RunConfig) -> RunConfig:
    """Raise ConfigError for values outside their allowed range; return cfg for chaining."""
    flat = _flatten(cfg.to_dict())
    for key, choices in _CHOICES.items():
        if key in flat and flat[key] not in choices:
            raise ConfigError(f"{key}={flat[key]!r} is not one of {', '.join(choices)}")
    _check_ranges(flat)
    m = cfg.model
    if m.hidden_size % m.num_heads:
        raise ConfigError(f"model.hidden_size={m.hidden_size} must be divisible by model.num_heads={m.num_heads}")
    if m.pos_encoding == "rope" and (m.hidden_size // m.num_heads) % 2:
        raise ConfigError("rope needs an even head size (model.hidden_size / model.num_heads)")
    if m.puzzle_emb_dim > m.puzzle_emb_len * m.hidden_size:
        raise ConfigError(
            f"model.puzzle_emb_dim={m.puzzle_emb_dim} does not fit in model.puzzle_emb_len={m.puzzle_emb_len} "
            f"prefix tokens of model.hidden_size={m.hidden_size}; raise puzzle_emb_len or set puzzle_emb_dim=0")
    if m.arch == "hrm" and (m.features != "yz" or m.separate_nets or m.one_step_grad):
        raise ConfigError("model.features, model.separate_nets and model.one_step_grad are TRM options; "
                          "HRM always has two stacks (H, L) and a 1-step gradient")
    if m.arch == "transformer" and (m.N_sup != 1 or m.halting != "fixed"):
        raise ConfigError("model.arch=transformer predicts directly: set model.N_sup=1 model.halting=fixed")
    if m.mixer == "mlp" and m.pos_encoding == "rope":
        raise ConfigError("model.pos_encoding=rope acts inside attention only; with model.mixer=mlp use "
                          "model.pos_encoding=none (the paper's TRM-MLP) or learned")
    return cfg


# ----------------------------------------------------------------------------------------------------------
# Building configs from dicts (YAML) and dotted overrides, with type checks.


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass inside an annotation such as `GenerateConfig | None`, or None."""
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check `value` against annotation `tp`; accept ints for floats. Raise ConfigError naming the key."""
    args = typing.get_args(tp)
    optional = type(None) in args or tp is type(None)
    base = tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        base = non_none[0] if len(non_none) == 1 else tp
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} cannot be null")
    if base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # 1e3
            return int(value)
    elif base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as text
            try:
                return float(value)
            except ValueError:
                pass
    elif base is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        return value
    raise ConfigError(f"{key}={value!r} should be of type {getattr(base, '__name__', base)}")


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a nested dict, rejecting unknown keys with a suggestion."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} should be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ConfigError(f"unknown config key {full}{hint}; valid keys here: {', '.join(names)}")
        sub = _dataclass_of(hints[key])
        if sub is not None and value is not None:
            kwargs[key] = from_dict(sub, value, full + ".")
        else:
            kwargs[key] = _coerce(full, value, hints[key])
    return cls(**kwargs)


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply `a.b.c=value` strings (values parsed as YAML scalars: 3, 1e-4, true, null, text)."""
    data = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} should look like key=value, e.g. model.n=6")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"cannot parse the value of {key}: {e}") from e
        node = data
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            if node.get(part) is None and part == "generate":
                node[part] = asdict(GenerateConfig())  # `data.generate.x=...` switches generation on
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown config key {key}: {'.'.join(parts[: i + 1])} is not a section")
            node = node[part]
        node[parts[-1]] = value  # unknown leaf keys are rejected by from_dict below
    return validate(from_dict(RunConfig, data))


def preset_names() -> list[str]:
    root = resources.files("recursia") / "presets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    return data


def load_preset(name: str) -> RunConfig:
    """A preset by name (see `recursia presets`) or a path to a YAML file of the same shape."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return validate(from_dict(RunConfig, load_yaml(name)))
    root = resources.files("recursia") / "presets"
    path = root / f"{name}.yaml"
    if not path.is_file():
        known = preset_names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(f"unknown preset {name!r}.{hint} Presets: {', '.join(known)}")
    return validate(from_dict(RunConfig, yaml.safe_load(path.read_text()) or {}))


def build_config(preset: str, overrides: list[str] | None = None) -> RunConfig:
    return apply_overrides(load_preset(preset), list(overrides or []))


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a saved config (checkpoint meta, config.yaml)."""
    return validate(from_dict(RunConfig, data))
