#!/usr/bin/env bash
# The README's default job: wall time and held-out accuracy of `recursia train` (preset demo) on this machine.
set -euo pipefail
out="$(mktemp -d)/demo"
start=$(date +%s.%N)
recursia train --quiet --out "$out" "$@"
end=$(date +%s.%N)
python - "$out" "$start" "$end" <<'PY'
import json, sys
out, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
r = json.load(open(f"{out}/eval.json"))
print(json.dumps({"wall_s": round(end - start, 1), "train_s": r["train_seconds"], "test_examples": r["examples"],
                  "exact_accuracy": r["all_steps"]["exact_accuracy"],
                  "one_pass_exact_accuracy": r["all_steps"]["exact_accuracy_by_step"][0],
                  "exact_accuracy_by_step": [round(v, 3) for v in r["all_steps"]["exact_accuracy_by_step"]],
                  "early_halting_exact_accuracy": r["early_halting"]["exact_accuracy"],
                  "early_halting_mean_steps": round(r["early_halting"]["mean_steps"], 2)}))
PY
