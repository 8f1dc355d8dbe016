"""Adaptive depth: the maximum depth per task type, learned from the attempt store on training tasks only.

For the records of a type, solved[d] counts the tasks whose submission at depth d passes the hidden tests
(hidden outcomes of MBPP train/validation tasks may be used to learn; test tasks never are). The chosen depth
is the smallest d after which more steps stopped paying: no later depth solves `need` more tasks than d,
where need = max(1, ceil(min_gain * n)). A type with fewer than `min_n` records gets no entry of its own and
backs off to a coarser key (`tasktypes.candidates`), down to `*|*|*`, which is always learned.

The policy is a JSON file (`recursia code depth STORE --out depths.json`); the loop reads it with
`load_policy(path).depth_for(task, first_signature)`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import RecursiaError
from .tasktypes import ANY, candidates, first_class, prompt_features

TRAIN_SPLITS = ("train", "validation")


class LeakError(RecursiaError):
    """Held-out (test-split) tasks offered where only training tasks may go: depth learning, the skill library."""


def _matches(pattern: str, key: str) -> bool:
    return all(p in (ANY, k) for p, k in zip(pattern.split("|"), key.split("|")))


def choose_depths(rows: list[dict], min_gain: float = 0.02, min_n: int = 10) -> dict:
    """The policy from record rows (`Store.records`): refuses any row that is not a training-split task."""
    held_out = sorted({f"{r['task_id']} ({r['split']})" for r in rows if r["split"] not in TRAIN_SPLITS})
    if held_out:
        raise LeakError(f"depth learning was given {len(held_out)} held-out task(s), e.g. {held_out[0]}; learn "
                        f"only on MBPP {'/'.join(TRAIN_SPLITS)} records (the default selection of `code depth`)")
    if len(rows) < min_n:
        raise RecursiaError(f"{len(rows)} training record(s) are too few to learn depths (need {min_n}); run "
                            "`recursia code eval --bench mbpp --split train` and import it into the store")
    patterns = {p for r in rows for p in candidates(*r["task_type"].split("|"))}
    types = {}
    for pattern in sorted(patterns):
        rs = [r for r in rows if _matches(pattern, r["task_type"])]
        if len(rs) < min_n and pattern != "|".join([ANY] * 3):
            continue
        k_max = min(len(r["hidden_by_depth"]) for r in rs) - 1
        solved = [sum(r["hidden_by_depth"][d] for r in rs) for d in range(k_max + 1)]
        need = max(1, math.ceil(min_gain * len(rs)))
        depth = next(d for d in range(k_max + 1) if all(solved[e] - solved[d] < need for e in range(d + 1, k_max + 1)))
        types[pattern] = {"depth": depth, "n": len(rs), "solved_by_depth": solved, "need": need}
    return {"version": 1, "min_gain": min_gain, "min_n": min_n, "records": len(rows),
            "max_depth": max(len(r["hidden_by_depth"]) for r in rows) - 1, "types": types}


def learn_from_store(store, min_gain: float = 0.02, min_n: int = 10) -> tuple[dict, int]:
    """(policy, records left out because they are not MBPP training/validation tasks)."""
    all_rows = store.records()
    rows = [r for r in all_rows if r["split"] in TRAIN_SPLITS and r["benchmark"] in ("mbpp", "mbpp-sanitized")]
    return choose_depths(rows, min_gain, min_n), len(all_rows) - len(rows)


@dataclass
class DepthPolicy:
    policy: dict

    def key_for(self, task, first_signature: str | None = None) -> str:
        """The most specific learned key that fits the task (`*|*|*` at worst)."""
        topic = prompt_features(task.prompt)["topic"]
        for key in candidates(task.benchmark, first_class(first_signature), topic):
            if key in self.policy["types"]:
                return key
        raise RecursiaError("the depth policy has no '*|*|*' entry; write it again with `recursia code depth`")

    def depth_for(self, task, first_signature: str | None = None) -> int:
        """Maximum depth for a task; give the depth-0 program's error signature when it is known."""
        return int(self.policy["types"][self.key_for(task, first_signature)]["depth"])


def load_policy(path: str | Path) -> DepthPolicy:
    path = Path(path)
    try:
        policy = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecursiaError(f"depth policy {path} cannot be read ({e}); write it with `recursia code depth "
                            "STORE --out FILE`") from e
    types = policy.get("types") if isinstance(policy, dict) else None
    if (not isinstance(policy, dict) or policy.get("version") != 1 or not isinstance(types, dict)
            or not all(isinstance(t, dict) and isinstance(t.get("depth"), int) and t["depth"] >= 0
                       for t in types.values())):
        raise RecursiaError(f"{path} is not a depth policy (no version 1 / types); write it with "
                            "`recursia code depth STORE --out FILE`")
    return DepthPolicy(policy)
