"""Training: one function, `train`, from a config to a run directory with checkpoints, metrics and a final
evaluation. Single process on CPU, CUDA or MPS, or several processes under `torchrun` (DDP).

The loop is: refill free carry slots -> one supervision step -> loss / local batch -> backward -> AdamATan2
on the weights and SignSGD on the puzzle-embedding rows -> EMA. Checkpoints hold everything that state depends
on (weights, moments, EMA, carry, RNG, sampler position), so `--resume` continues bit-for-bit on the same
hardware. Ctrl-C or SIGTERM finishes the current step, writes a checkpoint and exits.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel

from . import checkpoint as ckpt_io
from .config import RunConfig, config_from_dict
from .dataset import Dataset, Sampler
from .errors import CheckpointError, ConfigError, RecursiaError
from .evaluate import evaluate_dataset, summary_lines, write_json
from .layers import Stack
from .metrics_log import MetricsLog, truncate_after
from .model import RecursiveModel, TaskSpec, build_model, resolve_dtype
from .optim import EMA, AdamATan2, SparseSignSGD, warmup_lr
from .progress import bar as progress_bar
from .rundir import RunLock
from .runtime import Runtime, all_reduce_sum, set_threads, setup, teardown
from .supervision import Carry, DeepSupervision, Examples

# Settings that may change when resuming (they do not change what a step computes).
# data.dir may move: the checkpoint's data fingerprint still has to match.
RESUMABLE_CHANGES = {"data.dir", "train.steps", "train.log_every", "train.eval_every", "train.eval_batch_size",
                     "train.eval_max_examples", "train.checkpoint_every", "train.keep_checkpoints",
                     "train.time_limit_s", "train.compare_one_pass", "train.adapt_steps", "train.adapt_batch_size",
                     "train.device", "train.compile", "train.activation_checkpointing", "train.threads",
                     "log.tensorboard",
                     "log.wandb", "log.wandb_project", "description"}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def prepare_data(cfg: RunConfig, run_dir: Path, rt: Runtime) -> Dataset:
    """The dataset named by `data.dir`, or puzzles generated once into RUN_DIR/data."""
    if cfg.data.dir is not None:
        return Dataset(cfg.data.dir)
    if cfg.data.generate is None:
        raise ConfigError("no data: pass --data DIR (a dataset built with `recursia data build`) or use a "
                          "preset that generates its puzzles (`--preset demo`)")
    from .tasks import generate_dataset

    out = run_dir / "data"
    if rt.is_main and not (out / "manifest.json").exists():
        generate_dataset(cfg.data.generate, out)
    if rt.distributed:
        dist.barrier()
    return Dataset(out)


class TrainingDiverged(RecursiaError):
    """The loss stopped being a finite number; nothing after the last good checkpoint is saved."""


class Trainer:
    """Holds the live objects of a run so that checkpointing and evaluation can reach them."""

    def __init__(self, cfg: RunConfig, run_dir: Path, rt: Runtime, data: Dataset):
        self.cfg, self.run_dir, self.rt, self.data = cfg, run_dir, rt, data
        t = cfg.train
        if t.global_batch_size % rt.world:
            raise ConfigError(f"train.global_batch_size={t.global_batch_size} is not divisible by the "
                              f"{rt.world} processes")
        self.local_batch = t.global_batch_size // rt.world
        m = data.manifest
        self.spec = TaskSpec(m["seq_len"], m["vocab_size"], m.get("num_puzzle_ids", 1))
        self.train_split = data.split("train")
        if len(self.train_split) == 0:
            raise ConfigError(f"the train split of {data.root} is empty; build or generate a dataset with "
                              "training puzzles (e.g. `recursia data generate sudoku --count 1000`)")

        torch.manual_seed(t.seed)  # identical initial weights on every rank
        self.model = build_model(cfg.model, self.spec).to(rt.device)
        self.model.set_forward_dtype(resolve_dtype(cfg.model.forward_dtype, rt.device, training=True))
        self.optimizer = AdamATan2(self.model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2),
                                   weight_decay=t.weight_decay)
        self.ema = EMA(self.model, t.ema_rate) if t.ema else None
        self.generator = torch.Generator(device=rt.device)  # exploration: its own stream on every rank
        self.generator.manual_seed(t.seed * 1000 + rt.rank + 1)
        self.rounding = torch.Generator(device=rt.device)  # bf16 table rounding: the same stream on every rank,
        self.rounding.manual_seed(t.seed * 1000)  # so that the replicated tables stay identical
        self.sign_sgd = (SparseSignSGD(self.model.puzzle_emb, t.puzzle_emb_lr, t.puzzle_emb_weight_decay,
                                       self.rounding) if self.model.puzzle_emb is not None else None)
        self.sampler = Sampler(self.train_split.groups, self.train_split.puzzles, t.seed, rt.rank, rt.world)
        self.step = 0
        self.saved_step = -1
        self.elapsed = 0.0  # training seconds over every launch of this run (resumes included)
        # The log window: metric sums since the last metrics.jsonl record and (step, elapsed) where it began.
        # Checkpoints carry it, so a record after a resume averages the same steps as an unbroken run's.
        self.log_sums: dict[str, torch.Tensor] = {}
        self.log_start = (0, 0.0)
        self.first_bad = torch.tensor(-1, device=rt.device)  # first step with a non-finite loss (-1: none)

        forward = self.model
        for module in self.model.modules():
            if isinstance(module, Stack):
                module.checkpointing = t.activation_checkpointing
        if t.compile and rt.device.type == "cuda":
            for module in self.model.modules():
                if type(module).__name__ == "Stack":
                    module.compile()
        if rt.distributed:
            forward = DistributedDataParallel(self.model, device_ids=[rt.device.index] if rt.device.type == "cuda"
                                              else None, broadcast_buffers=False)
        self.sup = DeepSupervision(self.model, cfg.model, t.loss, forward=forward, generator=self.generator)
        self.carry: Carry = self.sup.empty_carry(self.local_batch, self.spec.seq_len, rt.device)

    # -- data ----------------------------------------------------------------------------------------------
    def fetch(self, k: int) -> Examples:
        rows = self.train_split.rows(self.sampler.take(k))
        dev = self.rt.device
        return Examples(torch.from_numpy(rows["inputs"]).to(dev), torch.from_numpy(rows["labels"]).to(dev),
                        torch.from_numpy(rows["puzzle_ids"]).to(dev), torch.from_numpy(rows["index"]).to(dev))

    # -- one optimizer step --------------------------------------------------------------------------------
    def train_step(self) -> dict[str, torch.Tensor]:
        t = self.cfg.train
        self.step += 1
        schedule = dict(warmup_steps=t.lr_warmup_steps, total_steps=t.steps, schedule=t.lr_schedule,
                        min_ratio=t.lr_min_ratio)
        lr = warmup_lr(t.lr, self.step, **schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.sign_sgd is not None:
            self.sign_sgd.lr = warmup_lr(t.puzzle_emb_lr, self.step, **schedule)
        self.model.train()
        self.carry, loss, metrics = self.sup.train_step(self.carry, self.fetch)
        # Each rank divides by its own batch; DDP averages over ranks: the gradient of sum / global batch.
        (loss / self.local_batch).backward()
        self.optimizer.step()
        if self.sign_sgd is not None:
            self.sign_sgd.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        metrics["loss"] = loss.detach() / self.local_batch
        metrics["lr"] = torch.tensor(lr, device=self.rt.device)
        # Recorded on the device, read only when logging or saving: no synchronisation per step.
        bad = (self.first_bad < 0) & ~torch.isfinite(metrics["loss"])
        self.first_bad = torch.where(bad, torch.full_like(self.first_bad, self.step), self.first_bad)
        return metrics

    def check_finite(self) -> None:
        """Raise TrainingDiverged if a step since the start had a non-finite loss (on any rank)."""
        if not _any_rank(bool(self.first_bad >= 0), self.rt):
            return
        step = int(self.first_bad) if self.first_bad >= 0 else self.step
        last = ckpt_io.latest_checkpoint(self.run_dir)
        kept = (f"the last good checkpoint, {last}, is kept" if last is not None
                else "no checkpoint was written")
        raise TrainingDiverged(f"training diverged: the loss was not a finite number at step {step}; stopped "
                               f"without saving ({kept}). Start a new run with a lower train.lr (now "
                               f"{self.cfg.train.lr:g}) or a longer train.lr_warmup_steps")

    # -- evaluation with the EMA weights ------------------------------------------------------------------
    def eval_model(self) -> RecursiveModel:
        """A copy of the model holding the weights to evaluate and save (EMA when enabled)."""
        with torch.random.fork_rng(devices=[]):  # building re-runs the initialisers: keep the RNG untouched
            model = build_model(self.cfg.model, self.spec).to(self.rt.device)
        model.set_forward_dtype(self.model.forward_dtype)
        model.load_state_dict(self.model.state_dict())
        if self.ema is not None:
            self.ema.copy_to(model)
        return model.eval()

    def evaluate(self, progress: bool) -> dict[str, Any] | None:
        if "test" not in self.data.splits:
            return None
        t = self.cfg.train
        return evaluate_dataset(self.eval_model(), self.data, "test", t.eval_batch_size, t.eval_max_examples,
                                progress=progress, out_dir=self.run_dir, cfg=self.cfg)

    # -- checkpoints ---------------------------------------------------------------------------------------
    def _local_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"carry.{k}": v for k, v in self.carry.tensors().items()}
        tensors.update({f"log.{k}": v for k, v in self.log_sums.items()})
        tensors["rng.explore"] = self.generator.get_state()
        return ({k: v.detach().cpu() for k, v in tensors.items()},
                {"sampler": self.sampler.state_dict()})

    def save(self) -> Path | None:
        self.check_finite()  # never replace a good checkpoint with diverged weights
        self.saved_step = self.step
        local = self._local_state()
        if self.rt.distributed:
            gathered: list[Any] = [None] * self.rt.world
            dist.all_gather_object(gathered, local)
        else:
            gathered = [local]
        if not self.rt.is_main:
            return None
        tensors: dict[str, torch.Tensor] = {}
        samplers = []
        for rank, (t_rank, j_rank) in enumerate(gathered):
            tensors.update({f"rank{rank}.{k}": v for k, v in t_rank.items()})
            samplers.append(j_rank["sampler"])
        tensors.update({f"weights.{k}": v for k, v in self.model.state_dict().items()})
        names = {id(p): n for n, p in self.model.named_parameters()}
        for p, st in self.optimizer.state.items():
            for key, value in st.items():
                tensors[f"optim.{names[id(p)]}.{key}"] = value
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        tensors["rng.torch_cpu"] = torch.get_rng_state()
        tensors["rng.rounding"] = self.rounding.get_state()
        weights = self.eval_model().state_dict()
        meta = ckpt_io.make_meta(self.cfg, self.spec, self.step, self.data.fingerprint, self.data.task,
                                 self.ema is not None)
        train_json = {"step": self.step, "elapsed_s": self.elapsed, "world": self.rt.world, "samplers": samplers,
                      "log_window": {"step": self.log_start[0], "elapsed_s": self.log_start[1]}}
        return ckpt_io.write_checkpoint(self.run_dir, self.step, weights, meta, tensors, train_json,
                                        keep=self.cfg.train.keep_checkpoints)

    def init_weights(self, source: str) -> None:
        """Fine-tuning: start from another checkpoint's model weights. The network's shape must match; what only
        changes the loop (T, n, N_sup, halting) may differ. Optimizer moments and the carry start fresh."""
        weights, saved, path = ckpt_io.read_model_weights(source)
        differ = [k for k in SHAPE_FIELDS if getattr(saved, k) != getattr(self.cfg.model, k)]
        if differ:
            k = differ[0]
            raise ConfigError(f"train.init_from={source}: that model has model.{k}={getattr(saved, k)!r} and this run "
                              f"model.{k}={getattr(self.cfg.model, k)!r}; fine-tuning needs the same network "
                              f"(set {', '.join(f'model.{d}={getattr(saved, d)!r}' for d in differ)})")
        ckpt_io.load_weights(self.model, weights, path)
        if self.ema is not None:
            self.ema = EMA(self.model, self.cfg.train.ema_rate)

    def load(self, path: Path) -> None:
        tensors, info = ckpt_io.read_train_state(path)
        meta = ckpt_io.read_meta(path)
        if meta["data_fingerprint"] != self.data.fingerprint:
            raise CheckpointError(
                f"{path} was trained on data with fingerprint {meta['data_fingerprint'][:12]}..., but the data "
                f"in {self.data.root} has {self.data.fingerprint[:12]}...; resume with the original data "
                "(or start a new run)")
        if info["world"] != self.rt.world:
            raise CheckpointError(f"{path} was written by {info['world']} processes and this run has "
                                  f"{self.rt.world}; an exact resume needs the same number (the carry and data "
                                  "position are per process)")
        weights = {k[len("weights."):]: v for k, v in tensors.items() if k.startswith("weights.")}
        ckpt_io.load_weights(self.model, weights, path / "train_state.safetensors")
        names = dict(self.model.named_parameters())
        for key, value in tensors.items():
            if key.startswith("optim."):
                pname, skey = key[len("optim."):].rsplit(".", 1)
                on_cpu = skey == "step"  # AdamATan2 keeps its step counter on the CPU
                self.optimizer.state[names[pname]][skey] = value if on_cpu else value.to(self.rt.device)
        if self.ema is not None:
            self.ema.load_state_dict({k[len("ema."):]: v.to(self.rt.device)
                                      for k, v in tensors.items() if k.startswith("ema.")})
        prefix = f"rank{self.rt.rank}."
        local = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        carry = {k[len("carry."):]: v.to(self.rt.device) for k, v in local.items() if k.startswith("carry.")}
        self.carry = Carry.from_tensors(carry)
        self.generator.set_state(local["rng.explore"])
        torch.set_rng_state(tensors["rng.torch_cpu"])
        self.rounding.set_state(tensors["rng.rounding"])
        self.sampler.load_state_dict(info["samplers"][self.rt.rank])
        self.step, self.elapsed = info["step"], info["elapsed_s"]
        self.saved_step = self.step
        self.log_sums = {k[len("log."):]: v.to(self.rt.device) for k, v in local.items() if k.startswith("log.")}
        window = info.get("log_window", {"step": self.step, "elapsed_s": self.elapsed})  # older checkpoints
        self.log_start = (window["step"], window["elapsed_s"])


# Model fields that decide the network's weights and what they mean; the rest (T, n, N_sup, halting) only run it.
SHAPE_FIELDS = ("arch", "hidden_size", "num_heads", "expansion", "mlp_multiple", "layers", "mixer", "pos_encoding",
                "features", "separate_nets", "puzzle_emb_len", "puzzle_emb_dim", "reference_mlp_norm")


def _check_resume_config(saved: RunConfig, new: RunConfig) -> None:
    if saved.train.lr_schedule == "cosine" and new.train.steps != saved.train.steps:
        raise ConfigError(f"cannot change train.steps when resuming a run with train.lr_schedule=cosine: the "
                          f"schedule decays to its end at step {saved.train.steps}; start a new run instead")
    a, b = _flat(saved.to_dict()), _flat(new.to_dict())
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES)
    if changed:
        k = changed[0]
        raise ConfigError(f"cannot change {k} when resuming (run has {a.get(k)!r}, asked {b.get(k)!r}); "
                          f"only these may change: {', '.join(sorted(RESUMABLE_CHANGES))}")


def load_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (no config.yaml); pass the --out of a run")
    return config_from_dict(yaml.safe_load(path.read_text()))


def train(cfg: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
          overrides_on_resume: RunConfig | None = None) -> dict[str, Any]:
    """Train `cfg` into `run_dir`; with `resume`, continue the run saved there. Returns a summary dict.

    The run directory is locked for the whole run (`rundir.RunLock`): a second writer is refused, naming the
    holder's pid, before it changes any file there."""
    run_dir = Path(run_dir)
    if resume:
        saved = load_run_config(run_dir)
        if overrides_on_resume is not None:
            overrides_on_resume = absolute_data_dir(overrides_on_resume)
            _check_resume_config(saved, overrides_on_resume)
            cfg = overrides_on_resume
        else:
            cfg = saved
    else:
        cfg = absolute_data_dir(cfg)
    rt = setup(cfg.train.device)
    set_threads(cfg.train.threads)
    data = _open_data(cfg, run_dir, resume)  # bad --data: fail before making run_dir
    lock = RunLock(run_dir).acquire() if rt.is_main else None
    try:
        if resume:
            ckpt = latest_or_fail(run_dir)
        elif ckpt_io.latest_checkpoint(run_dir) is not None:
            raise ConfigError(f"{run_dir} already holds a run; continue it with `recursia train --resume "
                              f"{run_dir}` or choose a new --out")
        else:
            ckpt = None
        if rt.is_main:
            (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            if ckpt is None:
                truncate_after(run_dir, -1)  # records of an earlier attempt that never reached a checkpoint
        data = data or prepare_data(cfg, run_dir, rt)
        data.verify()
        return _train_locked(cfg, run_dir, rt, data, ckpt, progress)
    finally:
        if lock is not None:
            lock.release()


def _open_data(cfg: RunConfig, run_dir: Path, resume: bool) -> Dataset | None:
    """The dataset named by data.dir (None for generated data); a missing one says which path was tried."""
    if cfg.data.dir is None:
        return None
    path = Path(cfg.data.dir)
    if not path.exists() and resume:
        raise ConfigError(f"the data of run {run_dir} is gone: data.dir={cfg.data.dir} (looked for "
                          f"{path.absolute()}) does not exist; resume with --data DIR pointing at the same "
                          "dataset (its fingerprint is checked)")
    return Dataset(path)


def absolute_data_dir(cfg: RunConfig) -> RunConfig:
    """`cfg` with data.dir (and an init_from path) made absolute, so that the saved run finds them from any
    working directory."""
    if cfg.data.dir is not None and not Path(cfg.data.dir).is_absolute():
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dir=str(Path(cfg.data.dir).absolute())))
    init = cfg.train.init_from
    if init and Path(init).exists() and not Path(init).is_absolute():
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init_from=str(Path(init).absolute())))
    return cfg


def latest_or_fail(run_dir: Path) -> Path:
    """The checkpoint to resume from; a run stopped before its first checkpoint gets the command to restart."""
    ckpt = ckpt_io.latest_checkpoint(run_dir)
    if ckpt is None:
        raise CheckpointError(f"{run_dir} has no checkpoint to resume from: the run stopped before its first "
                              "one (train.checkpoint_every sets how often they are written). Start it again from "
                              f"step 0 with `recursia train --preset {run_dir / 'config.yaml'} --out {run_dir}`")
    return ckpt


def _train_locked(cfg: RunConfig, run_dir: Path, rt: Runtime, data: Dataset, ckpt: Path | None,
                  progress: bool) -> dict[str, Any]:
    trainer = Trainer(cfg, run_dir, rt, data)
    if ckpt is None and cfg.train.init_from:
        trainer.init_weights(cfg.train.init_from)
    if ckpt is not None:
        trainer.load(ckpt)
        if rt.is_main:
            truncate_after(run_dir, trainer.step)
    log = MetricsLog(run_dir, cfg.log, cfg.to_dict(), enabled=rt.is_main)
    t = cfg.train
    show = progress and rt.is_main
    if rt.is_main and show:
        n_params = trainer.model.count_parameters()
        print(f"recursia: {cfg.model.arch} ({n_params / 1e6:.2f}M parameters) on {rt.device}"
              f"{f' x{rt.world}' if rt.distributed else ''}, {len(trainer.train_split)} training examples, "
              f"batch {t.global_batch_size}, {t.steps} steps -> {run_dir}")

    stop = {"signal": None}

    def on_signal(signum, frame):  # finish the step, checkpoint, exit
        stop["signal"] = signum

    old_handlers = {}
    for s in (signal.SIGINT, signal.SIGTERM):
        try:
            old_handlers[s] = signal.signal(s, on_signal)
        except ValueError:  # not in the main thread (e.g. called from a worker thread): keep the defaults
            pass

    sums = trainer.log_sums
    bar = progress_bar(total=t.steps, initial=min(trainer.step, t.steps), desc="train", unit="step",
                       disable=not show, dynamic_ncols=True)
    session_start = time.time()
    elapsed_at_start = trainer.elapsed
    eval_result = None
    try:
        while trainer.step < t.steps:
            metrics = trainer.train_step()
            for k, v in metrics.items():
                sums[k] = sums[k] + v if k in sums else v.float()
            trainer.elapsed = elapsed_at_start + (time.time() - session_start)
            bar.update(1)
            if trainer.step % t.log_every == 0 or trainer.step == t.steps:
                start_step, start_elapsed = trainer.log_start
                record = _reduce(sums, trainer.step - start_step, rt.world)
                record["steps_per_s"] = (trainer.step - start_step) / max(trainer.elapsed - start_elapsed, 1e-9)
                record["elapsed_s"] = trainer.elapsed
                sums = trainer.log_sums = {}
                trainer.log_start = (trainer.step, trainer.elapsed)
                log.write(trainer.step, {f"train/{k}": v for k, v in record.items()})
                trainer.check_finite()
                bar.set_postfix(loss=f"{record['loss']:.3f}", exact=f"{record.get('exact_accuracy', 0):.3f}",
                                steps=f"{record.get('steps', 0):.1f}", it_s=f"{record['steps_per_s']:.2f}")
            signalled = _any_rank(stop["signal"] is not None, rt)
            over_time = t.time_limit_s > 0 and trainer.elapsed >= t.time_limit_s
            if t.eval_every and trainer.step % t.eval_every == 0 and trainer.step < t.steps and rt.is_main:
                result = trainer.evaluate(progress=show)
                if result is not None:
                    log.write(trainer.step, _eval_scalars(result))
            if (t.checkpoint_every and trainer.step % t.checkpoint_every == 0) or signalled or over_time:
                trainer.save()
            if signalled or over_time:
                bar.close()
                why = "interrupted" if signalled else f"time limit {t.time_limit_s:.0f}s reached"
                if rt.is_main and progress:
                    print(f"recursia: {why} at step {trainer.step}; checkpoint written. Continue with "
                          f"`recursia train --resume {run_dir}`")
                return {"step": trainer.step, "stopped": why, "run_dir": str(run_dir)}
        bar.close()
        trainer.check_finite()
        if trainer.saved_step != trainer.step:
            trainer.save()
        if rt.is_main:
            eval_result = trainer.evaluate(progress=show)
            if eval_result is not None:
                eval_result.update(checkpoint=str(ckpt_io.resolve(run_dir)), step=trainer.step,
                                   data=str(data.root), data_fingerprint=data.fingerprint,
                                   train_seconds=round(trainer.elapsed, 1))
                write_json(eval_result, run_dir / "eval.json")
                log.write(trainer.step, _eval_scalars(eval_result))
                if progress:
                    print(f"recursia: trained {trainer.step} steps in {trainer.elapsed:.0f}s; test set:")
                    for line in summary_lines(eval_result):
                        print("  " + line)
                    print(recursion_line(cfg, eval_result))
        return {"step": trainer.step, "run_dir": str(run_dir), "eval": eval_result,
                "train_seconds": trainer.elapsed}
    finally:
        bar.close()
        log.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if rt.distributed:
            teardown()


# Logged as means per step; the rest as means over halted examples. `loss` and the `ref_` losses are sums over
# all slots divided by the batch: what the reference logs as loss, lm_loss, q_halt_loss, q_continue_loss.
PER_STEP = ("loss", "lr", "ref_lm_loss", "ref_q_halt_loss", "ref_q_continue_loss")


def _reduce(sums: dict[str, torch.Tensor], steps: int, world: int) -> dict[str, float]:
    """Means since the last log, over all ranks: halting metrics per halted example, loss and lr per step."""
    total = all_reduce_sum(dict(sums))
    count = float(total.pop("count"))
    steps = max(steps, 1)
    out = {k: float(v) / (steps * world) if k in PER_STEP else (float(v) / count if count else math.nan)
           for k, v in total.items()}
    out["halted_per_step"] = count / steps
    return out


def recursion_line(cfg: RunConfig, result: dict[str, Any]) -> str:
    """One sentence on what recursion bought: the answer after the first supervision step against the last."""
    by_step = result["all_steps"]["exact_accuracy_by_step"]
    m = cfg.model
    once = " (the network applied once: N_sup=1, T=1, n=1)" if m.T == 1 and m.n == 1 else ""
    return (f"recursion: exact accuracy {by_step[0]:.1%} after 1 supervision step{once}, "
            f"{by_step[-1]:.1%} after {len(by_step)}")


def _eval_scalars(result: dict[str, Any]) -> dict[str, float]:
    out = {}
    for mode in ("all_steps", "early_halting"):
        for k in ("exact_accuracy", "cell_accuracy", "mean_steps", "q_halt_accuracy"):
            v = result[mode][k]
            if v is not None:
                out[f"eval/{mode}/{k}"] = v
    return out


def _any_rank(flag: bool, rt: Runtime) -> bool:
    if not rt.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=rt.device)
    dist.all_reduce(t)
    return bool(t.item() > 0)

