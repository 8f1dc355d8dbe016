#!/usr/bin/env bash
# Training speed of the paper presets, one JSON file per row of docs/benchmarks.md.
#   bash benchmarks/speed.sh [OUT_DIR] [extra overrides...]      e.g. bash benchmarks/speed.sh bench train.compile=true
# Needs a GPU for meaningful figures; on a CPU it runs, slowly. Uses generated puzzles and mazes (speed depends
# on shapes and halting, not on which puzzles).
set -euo pipefail
out="${1:-bench}"; shift || true
mkdir -p "$out"
run() { python -m recursia bench --quiet --json "$out/$1.json" "${@:2}"; }
run sudoku-mlp --preset sudoku-mlp --steps 100 --warmup 20 "$@"
run sudoku-att --preset sudoku-att --steps 100 --warmup 20 "$@"
run sudoku-hrm --preset sudoku-hrm --steps 100 --warmup 20 "$@"
run maze-att-128 --preset maze-att --steps 50 --warmup 10 train.global_batch_size=128 "$@"
run maze-att-768 --preset maze-att --steps 30 --warmup 5 "$@"
