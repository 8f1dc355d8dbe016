"""On-disk dataset format, shared by every task, and the resumable sampler that feeds training.

A dataset directory holds a `manifest.json` and one folder per split (`train`, `test`, ...) of memory-mapped
NumPy arrays:

    inputs.npy       (N, L) uint8   input tokens (0 = PAD)
    labels.npy       (N, L) uint8   target tokens (0 = no loss)
    puzzle_ids.npy   (N,)   int32   row of the puzzle-embedding table
    puzzles.npy      (P+1,) int64   examples puzzles[p]:puzzles[p+1] are the pairs of one puzzle (ARC: one task
                                    version's demonstration pairs; Sudoku and Maze: one example each)
    groups.npy       (G+1,) int64   puzzles groups[g]:groups[g+1] are one original puzzle and its augmented versions
    extra_*.npy                     task-specific per-example facts (ARC: which task, test input and version)

The manifest records the task, sequence length, vocabulary, counts, how the data was built (source files with
their SHA-256, seed, arguments) and a fingerprint: the SHA-256 of the arrays. Checkpoints store the fingerprint,
so resuming or evaluating on different data is caught instead of silently mixing runs. `Dataset.verify` (run by
training, resuming and `recursia eval`) re-hashes the arrays against the manifest, so an array edited in place
is caught too; the hashes are cached in `.verified.json` by each file's size and modification time, so only a
changed file is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, RecursiaWarning

FORMAT_VERSION = 2
ARRAYS = ("inputs", "labels", "puzzle_ids", "puzzles", "groups")
VERIFIED = ".verified.json"  # {file: {"bytes", "mtime_ns", "sha256"}} as last hashed


@dataclass
class SplitArrays:
    inputs: np.ndarray
    labels: np.ndarray
    puzzle_ids: np.ndarray
    puzzles: np.ndarray
    groups: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @staticmethod
    def ungrouped(inputs: np.ndarray, labels: np.ndarray, puzzle_ids: np.ndarray | None = None,
                  extras: dict[str, np.ndarray] | None = None) -> "SplitArrays":
        """Every example its own puzzle and group (a test split, or training data without augmentation)."""
        n = inputs.shape[0]
        pids = np.zeros(n, dtype=np.int32) if puzzle_ids is None else puzzle_ids.astype(np.int32)
        steps = np.arange(n + 1, dtype=np.int64)
        return SplitArrays(inputs.astype(np.uint8), labels.astype(np.uint8), pids, steps, steps.copy(),
                           dict(extras or {}))

    def check(self, name: str) -> None:
        n = self.inputs.shape[0]
        if self.inputs.ndim != 2 or self.labels.shape != self.inputs.shape:
            raise DataError(f"split {name}: inputs {self.inputs.shape} and labels {self.labels.shape} differ")
        if self.puzzle_ids.shape != (n,):
            raise DataError(f"split {name}: puzzle_ids has shape {self.puzzle_ids.shape}, expected ({n},)")
        for what, idx, end in (("puzzles", self.puzzles, n), ("groups", self.groups, self.puzzles.shape[0] - 1)):
            if idx.ndim != 1 or idx[0] != 0 or idx[-1] != end or np.any(np.diff(idx) <= 0):
                raise DataError(f"split {name}: {what} must rise strictly from 0 to {end}")
        for key, arr in self.extras.items():
            if arr.shape[0] != n:
                raise DataError(f"split {name}: extra {key} has {arr.shape[0]} rows, expected {n}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_hash_cache(root: Path) -> dict[str, dict[str, Any]]:
    try:
        cache = json.loads((root / VERIFIED).read_text())
    except (OSError, json.JSONDecodeError):  # missing or torn: it only costs hashing the files again
        return {}
    return cache if isinstance(cache, dict) else {}


def _write_hash_cache(root: Path, cache: dict[str, dict[str, Any]]) -> None:
    tmp = root / f"{VERIFIED}.{os.getpid()}.tmp"  # per process: ranks of one run may write at once
    try:
        tmp.write_text(json.dumps(cache, indent=1) + "\n")
        os.replace(tmp, root / VERIFIED)
    except OSError as e:
        warnings.warn(f"cannot write {root / VERIFIED} ({e.strerror}); the dataset's arrays will be hashed "
                      "again at every start", RecursiaWarning, stacklevel=3)


def file_digest(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    return {"path": str(p), "sha256": _sha256(p), "bytes": p.stat().st_size}


class DatasetWriter:
    """Writes a dataset into a temporary folder and renames it into place when complete, so an interrupted
    build never leaves a half-written dataset behind. Large arrays can be filled in place (`allocate`), which
    keeps ARC's millions of examples out of memory."""

    def __init__(self, out: str | Path, overwrite: bool = False):
        self.out = Path(out)
        if self.out.exists() and not overwrite:
            if (self.out / "manifest.json").exists():
                raise DataError(f"{self.out} already holds a dataset; pass --overwrite to replace it or choose "
                                "another --out")
            if any(self.out.iterdir()):
                raise DataError(f"{self.out} exists and is not empty; choose an empty or new --out directory")
        self.tmp = self.out.with_name(self.out.name + ".tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.extras: dict[str, list[str]] = {}

    def _path(self, split: str, key: str) -> Path:
        (self.tmp / split).mkdir(exist_ok=True)
        if key not in ARRAYS:
            self.extras.setdefault(split, []).append(key)
            key = f"extra_{key}"
        return self.tmp / split / f"{key}.npy"

    def allocate(self, split: str, key: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A writable memory-mapped array that becomes `split/key.npy`."""
        return np.lib.format.open_memmap(self._path(split, key), mode="w+", dtype=dtype, shape=shape)

    def save(self, split: str, key: str, array: np.ndarray) -> None:
        np.save(self._path(split, key), np.ascontiguousarray(array))

    def save_split(self, split: str, arrays: SplitArrays) -> None:
        arrays.check(split)
        for key in ARRAYS:
            self.save(split, key, getattr(arrays, key))
        for key, value in arrays.extras.items():
            self.save(split, key, value)

    def finish(self, task: str, seq_len: int, vocab_size: int, build: dict[str, Any], num_puzzle_ids: int = 1,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
        files: dict[str, dict[str, Any]] = {}
        info: dict[str, Any] = {}
        for split_dir in sorted(p for p in self.tmp.iterdir() if p.is_dir()):
            name = split_dir.name
            loaded = {k: np.load(split_dir / f"{k}.npy", mmap_mode="r") for k in ARRAYS}
            extras = {k: np.load(split_dir / f"extra_{k}.npy", mmap_mode="r") for k in self.extras.get(name, [])}
            arrays = SplitArrays(**loaded, extras=extras)
            arrays.check(name)
            for f in sorted(split_dir.iterdir()):
                files[f"{name}/{f.name}"] = {"sha256": _sha256(f), "bytes": f.stat().st_size}
            info[name] = {"examples": int(arrays.inputs.shape[0]), "puzzles": int(arrays.puzzles.shape[0] - 1),
                          "groups": int(arrays.groups.shape[0] - 1), "extras": sorted(extras)}
        fingerprint = hashlib.sha256(json.dumps(
            {k: v["sha256"] for k, v in sorted(files.items())}, sort_keys=True).encode()).hexdigest()
        manifest = {
            "format_version": FORMAT_VERSION, "task": task, "seq_len": seq_len, "vocab_size": vocab_size,
            "num_puzzle_ids": num_puzzle_ids, "splits": info, "files": files, "fingerprint": fingerprint,
            "build": build, **(extra or {}),
        }
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if self.out.exists():
            shutil.rmtree(self.out)
        os.replace(self.tmp, self.out)
        _write_hash_cache(self.out, {rel: {**_stat_key(self.out / rel), "sha256": v["sha256"]}
                                     for rel, v in files.items()})  # the first verify() need not re-hash
        return manifest


def write_dataset(out: str | Path, task: str, seq_len: int, vocab_size: int, splits: dict[str, SplitArrays],
                  build: dict[str, Any], num_puzzle_ids: int = 1, extra: dict[str, Any] | None = None,
                  overwrite: bool = False) -> dict[str, Any]:
    """Write in-memory splits and the manifest into `out` atomically."""
    writer = DatasetWriter(out, overwrite)
    for name, arrays in splits.items():
        writer.save_split(name, arrays)
    return writer.finish(task, seq_len, vocab_size, build, num_puzzle_ids, extra)


class Split:
    """A split opened with memory maps; rows are read on demand."""

    def __init__(self, root: Path, name: str, extras: list[str] | None = None):
        self.name, self.root = name, root
        self.extra_names = list(extras or [])
        arrays = {k: self._load(k) for k in ARRAYS}
        self.inputs, self.labels = arrays["inputs"], arrays["labels"]
        self.puzzle_ids, self.puzzles, self.groups = arrays["puzzle_ids"], arrays["puzzles"], arrays["groups"]

    def _load(self, key: str) -> np.ndarray:
        try:
            return np.load(self.root / self.name / f"{key}.npy", mmap_mode="r")
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read {key} of split {self.name!r} in {self.root}: {e}. "
                            "Rebuild it with `recursia data build` or `recursia data generate`.") from e

    def extra(self, key: str) -> np.ndarray:
        if key not in self.extra_names:
            raise DataError(f"split {self.name!r} of {self.root} has no {key!r} array (it has: "
                            f"{', '.join(self.extra_names) or 'none'}); was it built for another task?")
        return self._load(f"extra_{key}")

    def __len__(self) -> int:
        return self.inputs.shape[0]

    @property
    def num_groups(self) -> int:
        return self.groups.shape[0] - 1

    def rows(self, index: np.ndarray) -> dict[str, np.ndarray]:
        order = np.argsort(index, kind="stable")  # sorted reads are faster on memory maps
        sorted_idx = index[order]
        back = np.empty_like(order)
        back[order] = np.arange(order.shape[0])
        return {"inputs": np.asarray(self.inputs[sorted_idx])[back],
                "labels": np.asarray(self.labels[sorted_idx])[back],
                "puzzle_ids": np.asarray(self.puzzle_ids[sorted_idx])[back],
                "index": index.astype(np.int64)}


class Dataset:
    """A dataset directory: manifest plus splits. Errors say which file is wrong and how to rebuild."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / "manifest.json"
        if not self.root.is_dir():
            what = "is a file, not a data directory" if self.root.exists() else "does not exist"
            raise DataError(f"data directory {self.root} {what}. Build one with `recursia data build TASK "
                            "--source DIR --out DIR` or `recursia data generate TASK --out DIR` (TASK: sudoku, "
                            "maze, arc or deepcoder; generate: sudoku, maze or deepcoder).")
        if not path.is_file():
            raise DataError(f"{self.root} has no manifest.json, so it is not a Recursia dataset. Build one with "
                            f"`recursia data build` (raw files such as CSVs go to --source, not --data).")
        try:
            self.manifest = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{path} is not valid JSON ({e}); rebuild the dataset") from e
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{path} has format version {self.manifest.get('format_version')}, this Recursia "
                            f"reads version {FORMAT_VERSION}; rebuild the dataset")
        for rel, meta in self.manifest["files"].items():
            f = self.root / rel
            if not f.is_file() or f.stat().st_size != meta["bytes"]:
                raise DataError(f"{f} is missing or has the wrong size (expected {meta['bytes']} bytes): the "
                                "dataset is incomplete or was changed; rebuild it")
        self.splits = {name: Split(self.root, name, info.get("extras"))
                       for name, info in self.manifest["splits"].items()}

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def task(self) -> str:
        return self.manifest["task"]

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise DataError(f"dataset {self.root} has no {name!r} split (it has: {', '.join(self.splits)})")
        return self.splits[name]

    def verify(self) -> None:
        """Compare every array's SHA-256 with the manifest; raise DataError naming the first file that differs.
        A file whose size and modification time match the cache in `.verified.json` is not hashed again."""
        cache = _read_hash_cache(self.root)
        seen: dict[str, dict[str, Any]] = {}
        for rel, meta in self.manifest["files"].items():
            key = _stat_key(self.root / rel)
            hit = cache.get(rel)
            digest = hit["sha256"] if isinstance(hit, dict) and {k: hit.get(k) for k in key} == key \
                else _sha256(self.root / rel)
            if digest != meta["sha256"]:
                raise DataError(f"{self.root / rel} does not match its SHA-256 in {self.root / 'manifest.json'}: "
                                "the array was changed after the build; rebuild the dataset (or restore the file)")
            seen[rel] = {**key, "sha256": digest}
        if seen != cache:
            _write_hash_cache(self.root, seen)


class Sampler:
    """Endless, seeded, resumable stream of training example indices for one rank.

    Epoch e visits every group once in the order of a permutation seeded by (seed, e), taking one random puzzle
    of each (one augmented version: the reference's epoch) and all of that puzzle's examples, shuffled. Rank r
    of W takes positions r, r+W, r+2W, ... of each epoch. The whole state is (epoch, offset): saving it in a
    checkpoint makes resuming exact.
    """

    def __init__(self, groups: np.ndarray, puzzles: np.ndarray, seed: int, rank: int = 0, world: int = 1):
        self.groups, self.puzzles = np.asarray(groups), np.asarray(puzzles)
        self.single = bool(np.all(np.diff(self.puzzles) == 1))  # one example per puzzle (Sudoku, Maze)
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch, self.offset = 0, 0
        self._order: np.ndarray | None = None

    def _epoch_order(self) -> np.ndarray:
        if self._order is None:
            rng = np.random.default_rng([self.seed, self.epoch])
            g = self.groups
            order = rng.permutation(g.shape[0] - 1)
            sizes = g[order + 1] - g[order]
            picked = g[order] + (rng.random(order.shape[0]) * sizes).astype(np.int64)
            if self.single:
                examples = self.puzzles[picked]
            else:
                starts, ends = self.puzzles[picked], self.puzzles[picked + 1]
                lengths = ends - starts
                segment = np.repeat(np.arange(picked.shape[0]), lengths)
                examples = np.repeat(starts, lengths) + (np.arange(lengths.sum()) - np.repeat(
                    np.cumsum(lengths) - lengths, lengths))
                examples = examples[np.lexsort((rng.random(examples.shape[0]), segment))]
            self._order = examples[self.rank::self.world]
            if self._order.shape[0] == 0:
                if g.shape[0] <= 1:
                    raise DataError("the training split is empty; build or generate data with training puzzles")
                raise DataError(f"the training split has {g.shape[0] - 1} groups, fewer than the "
                                f"{self.world} ranks; use fewer processes or more data")
        return self._order

    def take(self, k: int) -> np.ndarray:
        out = []
        while k > 0:
            order = self._epoch_order()
            chunk = order[self.offset:self.offset + k]
            out.append(chunk)
            k -= chunk.shape[0]
            self.offset += chunk.shape[0]
            if self.offset >= order.shape[0]:
                self.epoch, self.offset, self._order = self.epoch + 1, 0, None
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset, "seed": self.seed, "rank": self.rank,
                "world": self.world}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.offset, self._order = int(state["epoch"]), int(state["offset"]), None
