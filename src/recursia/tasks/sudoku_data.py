"""Sudoku data sets on disk: built from CSV files, generated, held out from the hard collections, downloaded.

- `build_sudoku_dataset`: the reference recipe. Every training puzzle plus `augmentations` symmetry-transformed
  copies forms one group (the sampler draws one member per epoch); the test split is left as is.
- `generate_sudoku_dataset`: puzzles from the built-in generator, so the demo needs no data at all.
- `build_heldout`: a test set from the tdoku collections with every puzzle equivalent to a training puzzle
  removed (under the full symmetry group) and multi-solution puzzles rejected.
- `download_sudoku_extreme`: the real Sudoku-Extreme CSVs from Hugging Face (optional extra `recursia[hf]`).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset import SplitArrays, file_digest, write_dataset
from ..errors import DataError
from ..progress import bar as progress_bar
from . import sudoku

HF_REPO = "sapientinc/sudoku-extreme"


def augmented_groups(questions: np.ndarray, answers: np.ndarray, augmentations: int,
                     rng: np.random.Generator) -> SplitArrays:
    """Each puzzle followed by `augmentations` random symmetry transforms of it (same transform on puzzle and
    answer); one group per original puzzle."""
    if augmentations < 0:
        raise DataError(f"augmentations={augmentations}: the augmented copies per puzzle must be at least 0")
    n, k = questions.shape[0], 1 + augmentations
    q = np.repeat(questions, k, axis=0)
    a = np.repeat(answers, k, axis=0)
    if augmentations:
        moved = np.ones(n * k, dtype=bool)
        moved[::k] = False  # the first member of each group stays the original
        t = sudoku.random_transforms(rng, int(moved.sum()))
        q[moved] = sudoku.apply_transforms(q[moved], t)
        a[moved] = sudoku.apply_transforms(a[moved], t)
    inputs, labels = sudoku.encode(q, a)
    groups = np.arange(0, n * k + 1, k, dtype=np.int64)
    puzzles = np.arange(n * k + 1, dtype=np.int64)  # every augmented copy is a puzzle of one example
    return SplitArrays(inputs, labels, np.zeros(n * k, dtype=np.int32), puzzles, groups)


def _test_split(questions: np.ndarray, answers: np.ndarray) -> SplitArrays:
    inputs, labels = sudoku.encode(questions, answers)
    return SplitArrays.ungrouped(inputs, labels)


def build_sudoku_dataset(source: str | Path, out: str | Path, *, augmentations: int = 1000, seed: int = 0,
                         test: str | Path | None = None, train_count: int = 0, test_count: int = 0,
                         skip_invalid: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """`source` is a folder with `train.csv` (and `heldout-1000.csv` or `test.csv` for the test split), or a
    single training CSV. `train_count`/`test_count` > 0 take a seeded random subset (the papers train on 1000
    puzzles drawn from Sudoku-Extreme's 3.8M)."""
    source = Path(source)
    if source.is_dir():
        train_path = source / "train.csv"
        if test is None:
            test = next((source / n for n in ("heldout-1000.csv", "test.csv") if (source / n).is_file()), None)
    else:
        train_path = source
    if not train_path.is_file():
        raise DataError(f"no training file {train_path}: --source should be a folder with train.csv "
                        "(e.g. ../shared/data/sudoku-extreme-1k) or a CSV file; "
                        "`recursia data download sudoku-extreme` fetches the real one")
    rng = np.random.default_rng(seed)
    train = sudoku.read_csv(train_path, skip_invalid=skip_invalid)
    q, a = _subset(train.questions, train.answers, train_count, rng)
    splits = {"train": augmented_groups(q, a, augmentations, rng)}
    sources = [file_digest(train_path)]
    rejected = {"train": [[line, why] for line, why in train.rejected]}
    if test is not None:
        test_records = sudoku.read_csv(test, skip_invalid=skip_invalid)
        tq, ta = _subset(test_records.questions, test_records.answers, test_count, rng)
        splits["test"] = _test_split(tq, ta)
        sources.append(file_digest(test))
        rejected["test"] = [[line, why] for line, why in test_records.rejected]
    build = {"command": "build", "sources": sources, "augmentations": augmentations, "seed": seed,
             "train_count": train_count, "test_count": test_count, "rejected_rows": rejected}
    return write_dataset(out, "sudoku", sudoku.SEQ_LEN, sudoku.VOCAB_SIZE, splits, build, overwrite=overwrite)


def _subset(q: np.ndarray, a: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if count <= 0 or count >= q.shape[0]:
        return q, a
    pick = np.sort(rng.choice(q.shape[0], size=count, replace=False))
    return q[pick], a[pick]


def generate_sudoku_dataset(out: str | Path, *, train_count: int, test_count: int, blanks: int,
                            min_rounds: int = 1, augmentations: int = 0, seed: int = 0, blanks_max: int = 0,
                            method: str = "singles", overwrite: bool = False) -> dict[str, Any]:
    """Generated puzzles with unique solutions; the test puzzles are disjoint from the training ones.

    With `blanks_max` > `blanks` the puzzles are spread evenly over every blank count in blanks..blanks_max (a
    range of difficulties in one set), each level drawn with its own seed; `method` is the generator's
    ("singles": solvable by singles alone, fast, at most ~54 blanks; "search": may need guessing, up to ~58).
    """
    levels = _levels(blanks, blanks_max)
    parts = [_generate_level(b, train_n, test_n, seed, method, min_rounds, len(levels) > 1)
             for b, train_n, test_n in zip(levels, _spread(train_count, len(levels)), _spread(test_count, len(levels)))]
    q = np.concatenate([p[0] for p in parts] + [p[2] for p in parts])
    a = np.concatenate([p[1] for p in parts] + [p[3] for p in parts])
    ratings = np.concatenate([p[4] for p in parts] + [p[5] for p in parts])
    rng = np.random.default_rng([seed, 1])
    splits = {"train": augmented_groups(q[:train_count], a[:train_count], augmentations, rng)}
    if test_count:
        splits["test"] = _test_split(q[train_count:], a[train_count:])
    build = {"command": "generate", "train_count": train_count, "test_count": test_count, "blanks": blanks,
             "blanks_max": max(blanks_max, blanks), "method": method,
             "min_rounds": min_rounds, "augmentations": augmentations, "seed": seed,
             "mean_rating": {"train": float(np.mean(ratings[:train_count])) if train_count else None,
                             "test": float(np.mean(ratings[train_count:])) if test_count else None},
             "rating_unit": "rounds of singles" if method == "singles" else "guesses of the solver"}
    return write_dataset(out, "sudoku", sudoku.SEQ_LEN, sudoku.VOCAB_SIZE, splits, build, overwrite=overwrite)


def _levels(blanks: int, blanks_max: int) -> list[int]:
    if blanks_max and blanks_max < blanks:
        raise DataError(f"blanks_max={blanks_max} is below blanks={blanks}: give a range low..high, "
                        "or blanks_max=0 for one level")
    return list(range(blanks, max(blanks, blanks_max) + 1))


def _spread(count: int, k: int) -> list[int]:
    """`count` split over k levels as evenly as possible (the first levels get the remainder)."""
    return [count // k + (i < count % k) for i in range(k)]


def _generate_level(blanks: int, train_n: int, test_n: int, seed: int, method: str, min_rounds: int,
                    ranged: bool) -> tuple[np.ndarray, ...]:
    """One blank count's training and test puzzles from one generator call (so the two never share a puzzle).
    A single level keeps the plain seed, so older datasets regenerate bit for bit."""
    level_seed = seed * 100 + blanks if ranged else seed
    r = sudoku.generate(train_n + test_n, seed=level_seed, blanks=blanks, method=method, min_rounds=min_rounds)
    return (r.questions[:train_n], r.answers[:train_n], r.questions[train_n:], r.answers[train_n:],
            r.ratings[:train_n], r.ratings[train_n:])


COLLECTIONS = {  # name in the --mix option -> file in the tdoku collections folder
    "forum": "puzzles5_forum_hardest_1905_11+",
    "17clue": "puzzles2_17_clue",
    "magictour": "puzzles3_magictour_top1465",
}


def build_heldout(collections: str | Path, train_csv: str | Path, out: str | Path,
                  mix: dict[str, int] | None = None, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Write `out` (CSV `source,question,answer,rating`) with puzzles drawn from the collections.

    Every collection puzzle equivalent to a training puzzle is removed first; then puzzles are drawn at random
    (seeded) per collection, solved, and kept only if their solution is unique, until each count is met.
    `rating` is the solver's number of guesses. Returns a report with the counts of everything removed.
    """
    collections = Path(collections)
    mix = mix or {"forum": 400, "17clue": 300, "magictour": 300}
    train = sudoku.read_csv(train_csv)
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, np.ndarray, np.ndarray, int]] = []
    report: dict[str, Any] = {"equivalent_removed": {}, "multi_solution_rejected": {}, "unsolvable_rejected": {},
                              "drawn": {}}
    started = time.time()
    for name, count in mix.items():
        if name not in COLLECTIONS:
            raise DataError(f"unknown collection {name!r} in --mix; known: {', '.join(COLLECTIONS)}")
        path = collections / COLLECTIONS[name]
        puzzles = sudoku.read_lines(path).questions
        equivalent = sudoku.find_equivalent(puzzles, train.questions)
        report["equivalent_removed"][name] = int(len(equivalent))
        keep = np.ones(puzzles.shape[0], dtype=bool)
        keep[equivalent] = False
        pool = puzzles[keep]
        if count > pool.shape[0]:
            raise DataError(f"--mix asks {count} puzzles from {name} but only {pool.shape[0]} remain")
        order = rng.permutation(pool.shape[0])
        multi = unsolvable = taken = 0
        bar = progress_bar(total=count, desc=f"solve {name}", disable=not progress, leave=False)
        for i in order:
            if taken == count:
                break
            result = sudoku.solve(pool[i], limit=2)
            if not result.solutions:
                unsolvable += 1
                continue
            if len(result.solutions) > 1:
                multi += 1
                continue
            rows.append((name, pool[i], result.solutions[0], result.guesses))
            taken += 1
            bar.update(1)
        bar.close()
        report["multi_solution_rejected"][name] = multi
        report["unsolvable_rejected"][name] = unsolvable
        report["drawn"][name] = taken
    _write_csv(out, rows)
    report.update(out=str(out), seconds=round(time.time() - started, 1), seed=seed)
    return report


def _write_csv(path: str | Path, rows: Iterable[tuple[str, np.ndarray, np.ndarray, int]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "question", "answer", "rating"])
        for source, q, a, rating in rows:
            w.writerow([source, sudoku.format_grid(q), sudoku.format_grid(a), rating])
    tmp.replace(path)


def download_sudoku_extreme(out: str | Path) -> list[Path]:
    """Fetch the Sudoku-Extreme CSVs from the Hugging Face Hub into `out` (needs `pip install recursia[hf]`)."""
    return hf_download(HF_REPO, ("train.csv", "test.csv"), out)


def hf_download(repo: str, files: tuple[str, ...], out: str | Path) -> list[Path]:
    """Download `files` of the Hugging Face dataset `repo` into `out`, with a clear message when offline."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise DataError("downloading needs the huggingface_hub package: pip install 'recursia[hf]'") from e
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in files:
        try:
            paths.append(Path(hf_hub_download(repo, name, repo_type="dataset", local_dir=out)))
        except Exception as e:  # the hub raises many types (offline, HTTP, auth); all end the same way
            raise DataError(f"could not download {name} from the Hugging Face dataset {repo}: "
                            f"{type(e).__name__}: {e}. Check the network (or HF_ENDPOINT / a proxy); offline, "
                            f"copy the CSV files into {out} by hand.") from e
    return paths
