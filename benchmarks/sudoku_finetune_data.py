"""Build the data the bundled `sudoku` model was fine-tuned on: hard puzzles, nothing from a test file.

    python benchmarks/sudoku_finetune_data.py --extreme ../shared/data/sudoku-extreme-1k/train.csv --out DATA

- Sudoku-Extreme's 1000-puzzle training draw: 100 puzzles (seeded) are held back as the test split, so the run's
  own evaluation sees extreme puzzles it never trained on; the other 900 each get `--augment` symmetry-transformed
  copies. Every copy is its own group, so the sampler draws them as often as the generated puzzles.
- Generated puzzles of 50..58 blanks (`method=search`, the generator's hardest), a `--generated` share of them.

heldout-1000 is never read: it is the test set every reported number uses.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recursia.dataset import SplitArrays, file_digest, write_dataset
from recursia.tasks import sudoku
from recursia.tasks.sudoku_data import augmented_groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extreme", required=True, help="Sudoku-Extreme train.csv (1000 puzzles)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--augment", type=int, default=66, help="copies per extreme training puzzle")
    ap.add_argument("--holdout", type=int, default=100, help="extreme puzzles held back as the test split")
    ap.add_argument("--generated", type=int, default=20000, help="generated puzzles of 50..58 blanks")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    extreme = sudoku.read_csv(args.extreme)
    order = rng.permutation(extreme.questions.shape[0])
    held, kept = order[:args.holdout], np.sort(order[args.holdout:])
    ext = augmented_groups(extreme.questions[kept], extreme.answers[kept], args.augment, rng)

    t0 = time.time()
    levels = list(range(50, 59))
    parts = [sudoku.generate(args.generated // len(levels) + (i < args.generated % len(levels)),
                             seed=args.seed * 100 + b, blanks=b, method="search") for i, b in enumerate(levels)]
    gq = np.concatenate([p.questions for p in parts])
    ga = np.concatenate([p.answers for p in parts])
    print(f"generated {gq.shape[0]} puzzles of 50..58 blanks in {time.time() - t0:.0f} s")
    gin, glab = sudoku.encode(gq, ga)

    inputs = np.concatenate([ext.inputs, gin])
    labels = np.concatenate([ext.labels, glab])
    train = SplitArrays.ungrouped(inputs, labels)  # each example its own group: drawn uniformly
    tin, tlab = sudoku.encode(extreme.questions[np.sort(held)], extreme.answers[np.sort(held)])
    test = SplitArrays.ungrouped(tin, tlab)
    build = {"command": "benchmarks/sudoku_finetune_data.py", "sources": [file_digest(args.extreme)],
             "augment": args.augment, "holdout": args.holdout, "generated": args.generated,
             "generated_blanks": [50, 58], "seed": args.seed,
             "train": {"extreme_examples": int(ext.inputs.shape[0]), "generated": int(gq.shape[0])}}
    write_dataset(args.out, "sudoku", sudoku.SEQ_LEN, sudoku.VOCAB_SIZE, {"train": train, "test": test}, build)
    print(f"{args.out}: {inputs.shape[0]} training examples ({ext.inputs.shape[0]} extreme, {gq.shape[0]} "
          f"generated), {tin.shape[0]} test")


if __name__ == "__main__":
    main()
