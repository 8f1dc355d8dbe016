"""Recursia's HumanEval+/MBPP+ verdicts against EvalPlus's own checker, on the same programs.

    python benchmarks/evalplus_crosscheck.py --bench humaneval+ --data ../shared/data/code RUN [RUN ...]

Every distinct program in the runs' records (each attempt of each task, as `recursia code eval` wrote them),
plus each task's canonical solution, is scored twice: by Recursia (`execute` on the task's hidden tests, the
parent judging the values under EvalPlus's rules) and by `evalplus.evaluate.check_correctness` from the
`evalplus` package (PyPI 0.3.1, with its ground truth computed by `get_groundtruth` from the same data file).
A program passes EvalPlus when both its base and plus statuses are "pass". Prints the agreement and every
disagreement with both verdicts; `--out FILE` writes them as JSON. Needs `pip install evalplus` (not a
dependency of Recursia: it is used here only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--bench", required=True, choices=["humaneval+", "mbpp+"])
    ap.add_argument("--data", required=True, type=Path, help="the folder holding evalplus/")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    name = "HumanEvalPlus.jsonl.gz" if args.bench == "humaneval+" else "MbppPlus.jsonl.gz"
    data_file = (args.data / "evalplus" / name).resolve()
    var = "HUMANEVAL_OVERRIDE_PATH" if args.bench == "humaneval+" else "MBPP_OVERRIDE_PATH"
    os.environ[var] = str(data_file)  # read before evalplus.data is imported: the same file, no download
    from evalplus.data import get_human_eval_plus, get_human_eval_plus_hash, get_mbpp_plus, get_mbpp_plus_hash
    from evalplus.eval import MBPP_OUTPUT_NOT_NONE_TASKS
    from evalplus.evaluate import check_correctness, get_groundtruth

    from recursia.code.expected import ready
    from recursia.code.sandbox import Limits, execute
    from recursia.code.tasks import hidden_limits, load_tasks

    if args.bench == "humaneval+":
        problems, dataset = get_human_eval_plus(), "humaneval"
        truth = get_groundtruth(problems, get_human_eval_plus_hash(), [])
    else:
        problems, dataset = get_mbpp_plus(), "mbpp"
        truth = get_groundtruth(problems, get_mbpp_plus_hash(), MBPP_OUTPUT_NOT_NONE_TASKS)
    tasks = {t.task_id: t for t in load_tasks(args.bench, args.data)}

    programs: dict[str, dict[str, str]] = {}  # task -> program -> where it came from
    for tid, p in problems.items():
        programs.setdefault(tid, {})[p["prompt"] + p["canonical_solution"]] = "canonical"
    for run in args.runs:
        for line in (run / "records.jsonl").read_text().splitlines():
            rec = json.loads(line)
            for a in rec["loop"]["attempts"]:
                if a.get("program"):
                    programs.setdefault(rec["task_id"], {}).setdefault(a["program"], f"{run.name} d{a['depth']}")
    pairs = [(tid, prog, src) for tid, progs in programs.items() for prog, src in progs.items()]
    print(f"{len(pairs)} (task, program) pairs over {len(programs)} tasks", file=sys.stderr)
    limits, rows, start = Limits(), [], time.time()
    for i, (tid, prog, src) in enumerate(pairs):
        task = ready(tasks[tid])
        ours = execute(prog, task.hidden_tests, task.setup, hidden_limits(task, limits)).all_passed
        r = check_correctness(dataset, i, problems[tid], prog, truth[tid], fast_check=True)
        theirs = r["base"][0] == "pass" and r["plus"][0] == "pass"
        rows.append({"task_id": tid, "source": src, "recursia": ours, "evalplus": theirs,
                     "evalplus_status": [r["base"][0], r["plus"][0]], "program": prog})
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{len(pairs)} in {time.time() - start:.0f} s", file=sys.stderr)
    agree = sum(r["recursia"] == r["evalplus"] for r in rows)
    print(f"{args.bench}: {agree}/{len(rows)} verdicts agree ({100 * agree / len(rows):.2f}%); recursia passes "
          f"{sum(r['recursia'] for r in rows)}, evalplus {sum(r['evalplus'] for r in rows)}; "
          f"{time.time() - start:.0f} s")
    for r in rows:
        if r["recursia"] != r["evalplus"]:
            print(f"  {r['task_id']} ({r['source']}): recursia {'pass' if r['recursia'] else 'fail'}, evalplus "
                  f"{r['evalplus_status']}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
