"""Sudoku data sets on disk: augmented groups, the held-out set from the collections, generation, download."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from recursia.dataset import Dataset, Sampler
from recursia.errors import DataError
from recursia.tasks import sudoku
from recursia.tasks.sudoku_data import augmented_groups, build_heldout, generate_sudoku_dataset

from conftest import REPO, need_data


def test_augmented_groups_keep_puzzles_valid():
    records = sudoku.generate(20, seed=3, blanks=30)
    split = augmented_groups(records.questions, records.answers, 5, np.random.default_rng(0))
    assert split.inputs.shape == (120, 81) and list(split.groups[:3]) == [0, 6, 12]
    assert list(split.puzzles[:3]) == [0, 1, 2]  # one example per puzzle
    q, a = sudoku.decode(split.inputs), sudoku.decode(split.labels)
    assert sudoku.is_valid_solution_batch(a).all() and sudoku.consistent_batch(q, a).all()
    assert np.array_equal(q[::6], records.questions)  # the first member of each group is the original
    canon = {sudoku.canonical_form(g) for g in q[:6]}
    assert len(canon) == 1  # all members of a group are the same puzzle up to symmetry


def test_generated_dataset_and_resumable_sampler(tmp_path):
    m = generate_sudoku_dataset(tmp_path / "d", train_count=50, test_count=10, blanks=20, seed=1)
    ds = Dataset(tmp_path / "d")
    assert ds.fingerprint == m["fingerprint"] and len(ds.split("train")) == 50 and len(ds.split("test")) == 10
    train_q = {bytes(r) for r in ds.split("train").inputs}
    assert not train_q & {bytes(r) for r in ds.split("test").inputs}  # test puzzles are new
    sp = ds.split("train")
    a, b = Sampler(sp.groups, sp.puzzles, seed=0), Sampler(sp.groups, sp.puzzles, seed=0)
    first = a.take(70)  # crosses an epoch boundary
    assert sorted(first[:50]) == list(range(50))  # an epoch visits every group once
    b.take(30)
    c = Sampler(sp.groups, sp.puzzles, seed=0)
    c.load_state_dict(b.state_dict())
    assert np.array_equal(c.take(40), first[30:])


def test_generated_dataset_over_a_range_of_blanks(tmp_path):
    """blanks..blanks_max spreads the puzzles evenly over every level, train and test alike, seeded."""
    m = generate_sudoku_dataset(tmp_path / "d", train_count=9, test_count=6, blanks=30, blanks_max=32,
                                method="search", seed=2)
    ds = Dataset(tmp_path / "d")
    for split, per_level in (("train", 3), ("test", 2)):
        q = np.asarray(ds.split(split).inputs).astype(int) - 1
        assert sorted((q == 0).sum(1).tolist()) == sorted([30, 31, 32] * per_level)
    assert m["build"]["blanks_max"] == 32 and m["build"]["method"] == "search"
    again = generate_sudoku_dataset(tmp_path / "e", train_count=9, test_count=6, blanks=30, blanks_max=32,
                                    method="search", seed=2)
    assert again["fingerprint"] == m["fingerprint"]
    with pytest.raises(DataError, match="blanks_max=20 is below blanks=30"):
        generate_sudoku_dataset(tmp_path / "f", train_count=2, test_count=0, blanks=30, blanks_max=20)


def test_sampler_takes_whole_puzzles_one_version_per_group():
    """ARC-style data: puzzles of several examples, groups of several versions."""
    puzzles = np.array([0, 3, 5, 6, 10, 12])  # 5 puzzles with 3, 2, 1, 4, 2 examples
    groups = np.array([0, 2, 3, 5])  # group 0 = puzzles 0-1, group 1 = puzzle 2, group 2 = puzzles 3-4
    s = Sampler(groups, puzzles, seed=0)
    for _ in range(5):
        epoch = s._epoch_order()
        s.epoch, s._order = s.epoch + 1, None
        by_puzzle = np.searchsorted(puzzles, epoch, side="right") - 1
        runs = [p for i, p in enumerate(by_puzzle) if i == 0 or p != by_puzzle[i - 1]]
        assert len(runs) == 3 == len(set(runs))  # one puzzle per group, its examples contiguous
        for p in runs:  # all of a chosen puzzle's examples, each once
            assert sorted(epoch[by_puzzle == p]) == list(range(puzzles[p], puzzles[p + 1]))
    shards = [Sampler(groups, puzzles, seed=0, rank=r, world=2)._epoch_order() for r in (0, 1)]
    assert sorted(np.concatenate(shards)) == sorted(Sampler(groups, puzzles, seed=0)._epoch_order())


def test_heldout_from_collections_removes_the_27_equivalents(tmp_path):
    collections = need_data("sudoku-collections")
    train_csv = need_data("sudoku-extreme-1k", "train.csv")
    out = tmp_path / "heldout.csv"
    report = build_heldout(collections, train_csv, out, {"forum": 8, "17clue": 6, "magictour": 6}, seed=0,
                           progress=False)
    assert report["equivalent_removed"] == {"forum": 13, "17clue": 14, "magictour": 0}
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 20 and [r["source"] for r in rows].count("forum") == 8
    train = sudoku.read_csv(train_csv).questions
    held = np.stack([sudoku.parse_grid(r["question"]) for r in rows])
    assert len(sudoku.find_equivalent(held, train)) == 0
    for r in rows:
        q, a = sudoku.parse_grid(r["question"]), sudoku.parse_grid(r["answer"])
        assert sudoku.check_answer(q, a) == [] and sudoku.solve(q).unique


def test_download_fails_with_a_clear_message_when_it_cannot(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "recursia", "data", "download", "sudoku-extreme", "--out",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "recursia[hf]" in proc.stderr or "could not download" in proc.stderr
    assert "Traceback" not in proc.stderr
