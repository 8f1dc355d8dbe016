#!/usr/bin/env bash
# Inference-time halting trade-off (docs/models.md): train the demo model (or reuse RUN if it holds one), then
# score every halting rule on its 1000 held-out puzzles and time `solve` with the default rule and with all steps.
#   bash benchmarks/halting_sweep.sh RUN_DIR
set -euo pipefail
run="${1:?usage: bash benchmarks/halting_sweep.sh RUN_DIR}"
[ -d "$run/checkpoints" ] || python -m recursia train --quiet --out "$run"
python -m recursia eval "$run" --quiet --halting-sweep --json "$run/halting.json"
python - "$run" <<'PY'
import sys
import numpy as np
from recursia.dataset import Dataset
from recursia.tasks import sudoku
q = sudoku.decode(np.asarray(Dataset(f"{sys.argv[1]}/data").split("test").inputs))
open(f"{sys.argv[1]}/test-puzzles.txt", "w").write(
    "\n".join("".join(str(int(v)) if v else "." for v in g.ravel()) for g in q) + "\n")
PY
python "$(dirname "$0")/solve_speed.py" --checkpoint "$run" --file "$run/test-puzzles.txt" --halt all stable=2 --repeats 3
