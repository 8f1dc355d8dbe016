"""How closely the maze generator matches the official Maze-Hard training set, and how long it takes.

    python benchmarks/maze_generator.py [--count 1000] [--goal matched far] [--official PATH/train.csv]

Prints one JSON line per rule (and one for the official mazes when their CSV is given): seconds, wall count
mean and standard deviation, shortest-path length mean and median, and the fraction of mazes per path-length
bin (110-111, 112-114, 115-119, 120-129, 130+ cells including S and G).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from recursia.tasks import maze as M

BINS = [110, 112, 115, 120, 130, 10_000]


def stats(questions: np.ndarray, lengths: np.ndarray) -> dict[str, float | list[float]]:
    walls = (questions == M.WALL).sum(axis=1)
    hist = np.histogram(lengths, bins=BINS)[0] / len(lengths)
    return {"mazes": len(lengths), "walls_mean": round(float(walls.mean()), 1),
            "walls_std": round(float(walls.std()), 1), "path_mean": round(float(lengths.mean()), 2),
            "path_median": float(np.median(lengths)), "path_bins": [round(float(h), 3) for h in hist]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--goal", nargs="+", default=["matched", "far"], choices=["matched", "far", "open"])
    ap.add_argument("--official", default=None, help="the official train.csv, for its statistics")
    args = ap.parse_args()
    if args.official:
        rec = M.read_csv(args.official)
        print(json.dumps({"set": "official", **stats(rec.questions, M.shortest_path_length_batch(rec.questions))}))
    for goal in args.goal:
        started = time.perf_counter()
        rec = M.generate(args.count, seed=args.seed, goal=goal, progress=True)
        seconds = time.perf_counter() - started
        print(json.dumps({"set": f"generated, goal={goal}", "seconds": round(seconds, 1),
                          **stats(rec.questions, rec.ratings)}), flush=True)


if __name__ == "__main__":
    main()
