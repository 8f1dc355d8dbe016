"""Build a fine-tuning set of hard generated Sudoku puzzles with many distinct solution grids.

    python benchmarks/sudoku_finetune_data.py --out DATA [--count 16900 --blanks 46 --blanks-max 58 --augment 9]
    recursia train --preset sudoku-cpu --data DATA train.init_from=sudoku ...   # see docs/models.md

`recursia data generate` draws a level's solution grids from a pool of count/64 base grids (cheap, and fine
for training from scratch on 60,000 puzzles), so a small set repeats each base grid many times. A network
fine-tuned on such a set memorises the grids: trained on 20,000 puzzles of 50-58 blanks (about 300 base grids)
the bundled model's accuracy on fresh 58-blank puzzles fell from 75% to 25% within 4000 steps. Here every
`--chunk` puzzles get their own generator call and seed, so base grids repeat only a few times; each puzzle
also gets `--augment` symmetry-transformed copies (one group: the sampler draws one copy per epoch).
The test split is 200 fresh 58-blank puzzles. No file of `../shared/data` is read.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recursia.dataset import SplitArrays, write_dataset
from recursia.progress import bar
from recursia.tasks import sudoku
from recursia.tasks.sudoku_data import augmented_groups


def generate(count: int, blanks: range, chunk: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` puzzles spread over the blank counts, `chunk` per generator call, each call its own seed."""
    qs, ans = [], []
    per_level = [count // len(blanks) + (i < count % len(blanks)) for i in range(len(blanks))]
    jobs = [(b, k, min(chunk, n - k)) for b, n in zip(blanks, per_level) for k in range(0, n, chunk)]
    for b, k, n in bar(jobs, desc="generate", unit="call"):
        r = sudoku.generate(n, seed=seed * 1_000_003 + b * 10_007 + k, blanks=b, method="search")
        qs.append(r.questions)
        ans.append(r.answers)
    return np.concatenate(qs), np.concatenate(ans)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=16900)
    ap.add_argument("--blanks", type=int, default=46)
    ap.add_argument("--blanks-max", type=int, default=58)
    ap.add_argument("--chunk", type=int, default=16, help="puzzles per generator call (its pool: 8 base grids)")
    ap.add_argument("--augment", type=int, default=9, help="symmetry copies per puzzle")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.time()
    q, a = generate(args.count, range(args.blanks, args.blanks_max + 1), args.chunk, args.seed)
    tq, ta = generate(200, range(58, 59), args.chunk, args.seed + 7919)
    print(f"generated {len(q)} + {len(tq)} puzzles in {time.time() - t0:.0f} s")
    train = augmented_groups(q, a, args.augment, np.random.default_rng(args.seed))
    ti, tl = sudoku.encode(tq, ta)
    build = {"command": "benchmarks/sudoku_finetune_data.py", "count": args.count,
             "blanks": [args.blanks, args.blanks_max], "chunk": args.chunk, "augment": args.augment,
             "seed": args.seed, "method": "search", "test": "200 puzzles of 58 blanks"}
    write_dataset(args.out, "sudoku", sudoku.SEQ_LEN, sudoku.VOCAB_SIZE,
                  {"train": train, "test": SplitArrays.ungrouped(ti, tl)}, build)
    print(f"{args.out}: {len(q)} puzzles x {1 + args.augment} versions, 200 test puzzles")


if __name__ == "__main__":
    main()
