#!/usr/bin/env bash
# Demo training steps/s with 1 and 2 torch threads, first as the machine is, then beside one busy-loop process
# (another user's job on a shared machine). Prints one line per case with the 1-minute load average.
# Usage: bash benchmarks/threads.sh [STEPS]   (default 300 timed steps after 20 untimed ones)
set -euo pipefail
steps="${1:-300}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# the demo's puzzles (at least 4 rounds of deductions), fewer of them: generating 20000 would dominate
recursia data generate sudoku --out "$tmp/data" --count 2000 --test-count 0 --blanks 40 --min-rounds 4 >/dev/null
measure() {
    for threads in 1 2; do
        rate=$(recursia bench --quiet --preset demo --data "$tmp/data" --steps "$steps" --warmup 20 \
               "train.threads=$threads" --json "$tmp/r.json" >/dev/null && python -c \
               "import json; print(round(json.load(open('$tmp/r.json'))['steps_per_s'], 2))")
        echo "$1 threads=$threads steps/s=$rate load=$(cut -d' ' -f1 /proc/loadavg)"
    done
}
measure "as is:"
python -c 'while 1: pass' &
hog=$!
trap 'kill $hog 2>/dev/null; rm -rf "$tmp"' EXIT
sleep 2
measure "with a busy loop:"
