"""Configuration: presets load, overrides are typed and validated with messages that name the key."""

from __future__ import annotations

import pytest

from recursia.config import build_config, config_from_dict, load_preset, preset_names
from recursia.errors import ConfigError


def test_every_preset_loads():
    names = preset_names()
    for required in ("demo", "sudoku-mlp", "sudoku-att", "sudoku-hrm"):
        assert required in names
    for name in names:
        cfg = load_preset(name)
        assert cfg.description
        assert config_from_dict(cfg.to_dict()) == cfg  # round trip through a plain dict (checkpoints)


def test_paper_recipes():
    mlp, att, hrm = load_preset("sudoku-mlp"), load_preset("sudoku-att"), load_preset("sudoku-hrm")
    assert (mlp.model.mixer, mlp.model.T, mlp.model.n, mlp.model.N_sup) == ("mlp", 3, 6, 16)
    assert att.model.mixer == "attention" and att.model.pos_encoding == "rope"
    assert (hrm.model.arch, hrm.model.layers, hrm.model.halting) == ("hrm", 4, "qlearn")
    for cfg in (mlp, att, hrm):
        assert (cfg.train.global_batch_size, cfg.train.lr, cfg.train.weight_decay) == (768, 1e-4, 1.0)


def test_paper_presets_run_the_published_arithmetic():
    """The paper's numbers came from the published code, whose MLP mixer normalises over the sequence axis:
    every paper-named MLP preset must do the same; the corrected norm is its own preset, otherwise identical.
    The CPU presets (demo, sudoku-cpu) are Recursia's own recipes, with no published figure: corrected norm."""
    for name in preset_names():
        cfg = load_preset(name)
        if cfg.model.mixer == "mlp" and name not in ("demo", "sudoku-cpu") and not name.endswith("-fixed"):
            assert cfg.model.reference_mlp_norm, name
    fixed, paper = load_preset("sudoku-mlp-fixed"), load_preset("sudoku-mlp")
    assert not fixed.model.reference_mlp_norm
    assert fixed.model == paper.model.__class__(**{**paper.model.__dict__, "reference_mlp_norm": False})
    assert fixed.train == paper.train and fixed.data == paper.data


def test_overrides_are_typed():
    cfg = build_config("sudoku-mlp", ["model.n=4", "train.lr=3e-4", "train.ema=false", "data.dir=/x"])
    assert cfg.model.n == 4 and cfg.train.lr == 3e-4 and cfg.train.ema is False and cfg.data.dir == "/x"
    assert isinstance(build_config("demo", ["train.lr=1"]).train.lr, float)


@pytest.mark.parametrize("override,fragment", [
    ("model.nn=4", "did you mean model.n"),
    ("model.n=four", "model.n='four' should be of type int"),
    ("model.halting=maybe", "model.halting='maybe' is not one of fixed, halt, qlearn"),
    ("model.n=0", "model.n=0 must be at least 1"),
    ("model.hidden_size=100", "divisible by model.num_heads"),
    ("nonsense", "should look like key=value"),
    ("model.mixer=mlp", "pos_encoding=rope acts inside attention only"),
    ("train.steps.x=1", "is not a section"),
])
def test_bad_overrides_name_the_problem(override, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        build_config("sudoku-att", [override])
    assert fragment in str(info.value)


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError) as info:
        load_preset("sudoku-mpl")
    assert "sudoku-mlp" in str(info.value)


@pytest.mark.parametrize("preset", ["sudoku-mlp", "sudoku-att", "sudoku-hrm"])
def test_paper_presets_take_a_training_step(preset, tmp_path):
    """The full-size paper models run a real optimizer step (batch 2 on the CPU) and count their weights."""
    from recursia.dataset import Dataset
    from recursia.runtime import setup
    from recursia.tasks.sudoku_data import generate_sudoku_dataset
    from recursia.train import Trainer

    generate_sudoku_dataset(tmp_path / "d", train_count=8, test_count=0, blanks=20, augmentations=1)
    cfg = build_config(preset, [f"data.dir={tmp_path / 'd'}", "train.global_batch_size=2"])
    trainer = Trainer(cfg, tmp_path / "run", setup("cpu"), Dataset(tmp_path / "d"))
    before = trainer.model.lm_head.weight.detach().clone()
    metrics = trainer.train_step()
    assert float(metrics["loss"]) > 0 and not trainer.model.lm_head.weight.detach().equal(before)
    expected = {"sudoku-mlp": 5.0, "sudoku-att": 6.8, "sudoku-hrm": 27.3}[preset]
    assert round(trainer.model.count_parameters() / 1e6, 1) == expected


@pytest.mark.parametrize("override,fragment", [
    ("train.lr=nan", "train.lr=nan is not a finite number; it must be > 0"),
    ("train.lr=.inf", "train.lr=inf is not a finite number"),
    ("train.checkpoint_every=-1", "train.checkpoint_every=-1 must be at least 0"),
    ("train.eval_every=-3", "train.eval_every=-3 must be at least 0"),
    ("model.expansion=0", "model.expansion=0.0 must be > 0"),
    ("train.threads=-2", "train.threads=-2 must be at least 0"),
    ("train.time_limit_s=-5", "train.time_limit_s=-5.0 must be at least 0"),
    ("train.beta2=1", "train.beta2=1.0 must be in [0, 1)"),
    ("data.generate.blanks=70", "data.generate.blanks=70 must be in [0, 64]"),
])
def test_numeric_values_are_range_checked(override, fragment):
    with pytest.raises(ConfigError) as info:
        build_config("demo", [override])
    assert fragment in str(info.value)


def test_every_numeric_field_has_a_range():
    """A new int or float field cannot skip validation: it must be listed in config._RANGES."""
    from recursia.config import _RANGES, _flatten

    cfg = build_config("demo")  # data.generate is set, so its fields are present too
    numeric = {k for k, v in _flatten(cfg.to_dict()).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric and numeric == set(_RANGES)
