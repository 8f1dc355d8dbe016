"""Records in the exact format `recursia code eval` writes (evaluate.evaluate_task), made without a model, for
the store, statistics, depth, skills, viewer and report tests. tests/data/code_*_records.jsonl are real ones."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

DATA = Path(__file__).parent / "data"


def attempt(depth: int, program: str | None, passed: list[bool], signature: str | None = None,
            diagnosis: str = "", calls: int = 1) -> dict:
    sig = signature or ("ok" if all(passed) else f"AssertionError in test {passed.index(False)}")
    tests = [{"index": i, "passed": p, "error_type": None if p else "AssertionError",
              "message": None if p else f"test {i} returned 1, expected 2", "line": None, "lineno": None,
              "part": "test"} for i, p in enumerate(passed)]
    result = None if program is None else {"tests": tests, "status": "ok", "error_type": None, "message": None,
                                            "seconds": 0.05, "passed": sum(passed), "all_passed": all(passed),
                                            "signature": sig}
    sha = None if program is None else hashlib.sha256(program.encode()).hexdigest()[:16]
    return {"depth": depth, "program": program, "signature": sig, "visible_passed": sum(passed),
            "visible_total": len(passed), "result": result, "probes": None, "diagnosis": diagnosis,
            "calls": calls, "sha": sha}


def record(task_id: str, attempts: list[dict], hidden: list[bool], halt: str, depth: int = 4,
           sample: int = 0) -> dict:
    """A record; `hidden` is the hidden outcome of each attempt, the submission is the best so far."""
    best, order = [], []
    for i, a in enumerate(attempts):
        score = (a["visible_passed"] if a["program"] is not None else -1, int(a["result"] is not None))
        if not best or score > order[best[-1]]:
            best.append(i)
        else:
            best.append(best[-1])
        order.append(score)
    best += [best[-1]] * (depth + 1 - len(best))
    calls = attempts[-1]["calls"]
    return {"task_id": task_id, "sample": sample, "visible_tests": 1,
            "hidden_by_depth": [hidden[best[d]] for d in range(depth + 1)],
            "final_visible_ok": attempts[best[-1]]["signature"] == "ok", "final_program": attempts[best[-1]]["program"],
            "loop": {"attempts": attempts, "halt_reason": halt, "calls": calls, "prompt_tokens": 100 * calls,
                     "completion_tokens": 40 * calls, "seconds": 1.0, "errors": [], "best": best},
            "baseline": {"calls": calls, "draws": calls, "pick": 0, "visible_ok": False, "tokens": 10,
                         "seconds": 0.5, "errors": [], "hidden": False},
            "seconds": 1.5}


def solved_at(task_id: str, k: int, depth: int = 4, fixed: str = "def f(x):\n    return x + 1\n") -> dict:
    """Fails its visible test until depth k, then passes (visible and hidden); k > depth: never solved."""
    atts = []
    for d in range(min(k, depth) + 1):
        ok = d == k
        atts.append(attempt(d, fixed if ok else f"def f(x):\n    return x + {d + 2}\n", [True, ok],
                            diagnosis=f"step {d}: off by {d + 1}", calls=1 + 2 * d))
    halt = "pass" if k <= depth else "depth"
    return record(task_id, atts, [a["signature"] == "ok" for a in atts], halt, depth)


def config(bench: str = "mbpp", split: str | None = "train", depth: int = 4) -> dict:
    return {"bench": bench, "split": split, "protocol": "visible", "backend": "gguf:Gemma 3 270m", "depth": depth,
            "samples": 1, "n": 1, "T": 1, "halt": "pass,stuck=2", "refine_sees_x": False, "temperature": 0.0,
            "refine_temperature": 0.7, "sample_temperature": 0.8, "baseline": True, "seed": 0, "max_tokens": 384,
            "limit": 0, "task_ids": []}


def write_run(run: Path, cfg: dict, records: list[dict]) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def real_run(tmp: Path, name: str) -> Path:
    """A copy of a real run (HumanEval or MBPP test split, Gemma 3 270M, depth 4) as a run directory."""
    run = tmp / name
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text((DATA / f"code_{name}_config.json").read_text())
    (run / "records.jsonl").write_text((DATA / f"code_{name}_records.jsonl").read_text())
    return run


class Task:
    """The fields of a CodeTask the store, types and skills read."""

    def __init__(self, task_id: str, prompt: str, benchmark: str = "mbpp", entry_point: str = "f",
                 visible_tests: tuple = ("assert f(1) == 2",)):
        self.task_id, self.prompt, self.benchmark = task_id, prompt, benchmark
        self.entry_point, self.visible_tests = entry_point, visible_tests
