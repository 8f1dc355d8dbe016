"""The skill library: what worked on training tasks, retrieved for a new task by BM25 and placed into z.

Two kinds of skill, both verified by hidden tests of training-split tasks (MBPP train by default; validation
may be added), never of a held-out task:

- `solution`: the submitted program of a record whose hidden tests passed;
- `fix`: a before/after pair: the program the loop refined at some depth (the submission before it), the error
  signature it had, and the rewrite that then passed the visible tests and was the final, hidden-passing
  submission.
- `reference` (`add_references`, `code skills --references`): a training task's published reference program,
  kept only if it passes that task's visible and hidden tests in the sandbox. A small model solves few training
  tasks itself (Gemma 3 270M: about 2%), so its own solutions make a library of a handful of skills.

Retrieval is BM25 (the `bm25s` package, English stop words and the Snowball stemmer of PyStemmer, so
"reverses" finds "reverse") over each skill's task prompt; a fix's text adds the error it cured. `render`
turns the best few into a short text for z.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import RecursiaError
from .depth import LeakError
from .tasktypes import same_task

ALLOWED_SPLITS = ("train", "validation")


@dataclass(frozen=True)
class Skill:
    kind: str          # solution, fix or reference
    benchmark: str
    task_id: str
    split: str
    prompt: str
    program: str       # the verified program (a fix: the program after the fix)
    before: str = ""   # a fix: the program before it
    error: str = ""    # a fix: the error signature it cured

    def text(self) -> str:
        return f"{self.prompt}\n{self.error}" if self.kind == "fix" else self.prompt


def _bm25():
    try:
        import bm25s
        import Stemmer
    except ImportError:
        raise RecursiaError("the skill library needs bm25s and PyStemmer: pip install 'recursia[skills]'") from None
    return bm25s, Stemmer.Stemmer("english")


class SkillLibrary:
    """Skills from training tasks only (adding another raises `LeakError`), with a BM25 index over them."""

    def __init__(self, skills: list[Skill] = (), splits: tuple[str, ...] = ("train",)):
        bad = [s for s in splits if s not in ALLOWED_SPLITS]
        if bad:
            raise LeakError(f"skill library splits {', '.join(bad)}: only {'/'.join(ALLOWED_SPLITS)} tasks may "
                            "enter it (held-out tasks would leak their answers)")
        self.splits, self.skills, self._index = tuple(splits), [], None
        for s in skills:
            self.add(s)

    def add(self, skill: Skill) -> None:
        if skill.split not in self.splits:
            raise LeakError(f"{skill.task_id} is a {skill.split}-split task; the skill library takes "
                            f"{'/'.join(self.splits)} tasks only")
        self.skills.append(skill)
        self._index = None

    # -- building --------------------------------------------------------------------------------------
    @classmethod
    def from_store(cls, store, splits: tuple[str, ...] = ("train",)) -> tuple["SkillLibrary", int]:
        """(library, records left out because their task's prompt is not in the store)."""
        lib = cls(splits=splits)
        marks = ", ".join("?" * len(lib.splits))
        rows = store.rows(f"SELECT r.record_id, r.benchmark, r.task_id, r.split, t.prompt FROM records r LEFT JOIN "
                          f"tasks t USING (benchmark, task_id) WHERE r.hidden_final = 1 AND r.split IN ({marks}) "
                          "ORDER BY r.record_id", lib.splits)
        seen, no_prompt = set(), 0
        for r in rows:
            if not r["prompt"]:
                no_prompt += 1
                continue
            steps = store.steps(r["record_id"])
            submitted = [o[0] for o in store.db.execute(
                "SELECT submitted FROM outcomes WHERE record_id = ? ORDER BY depth", (r["record_id"],))]
            final = steps[submitted[-1]]
            base = dict(benchmark=r["benchmark"], task_id=r["task_id"], split=r["split"], prompt=r["prompt"])
            if ("solution", r["task_id"]) not in seen and final["program"]:
                lib.add(Skill("solution", program=final["program"], **base))
                seen.add(("solution", r["task_id"]))
            j = submitted[-1]
            if j > 0:
                before = steps[submitted[j - 1]]
                if before["signature"] != "ok" and before["program"] and ("fix", r["task_id"], before["signature"]) \
                        not in seen:
                    lib.add(Skill("fix", program=final["program"], before=before["program"],
                                  error=before["signature"], **base))
                    seen.add(("fix", r["task_id"], before["signature"]))
        return lib, no_prompt

    def add_references(self, tasks, workers: int = 2, progress: bool = False) -> int:
        """Add the reference program of every task of the library's splits that passes all its tests in the
        sandbox; other tasks raise `LeakError` (a held-out task's reference is its answer). Returns the count."""
        from .scoring import check_references
        from .tasktypes import task_split

        tasks = [t for t in tasks if t.reference is not None]
        held_out = sorted({t.task_id for t in tasks if task_split(t.benchmark, t.task_id) not in self.splits})
        if held_out:
            raise LeakError(f"{len(held_out)} reference(s) of tasks outside {'/'.join(self.splits)} offered to the "
                            f"skill library, e.g. {held_out[0]}; pass training-split tasks only")
        report = check_references(tasks, workers=workers, progress=progress) if tasks else {"tasks": []}
        passed = {r["task_id"] for r in report["tasks"] if r["visible_passed"] and r["hidden_passed"]}
        added = 0
        for t in tasks:
            if t.task_id in passed:
                self.add(Skill("reference", t.benchmark, t.task_id, task_split(t.benchmark, t.task_id), t.prompt,
                               t.reference))
                added += 1
        return added

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps({"version": 1, "splits": list(self.splits),
                                    "skills": [asdict(s) for s in self.skills]}, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SkillLibrary":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RecursiaError(f"skill library {path} cannot be read ({e}); write it with `recursia code skills "
                                "STORE --out FILE`") from e
        fields = {f for f in Skill.__dataclass_fields__}
        ok = (isinstance(data, dict) and isinstance(data.get("skills"), list) and isinstance(data.get("splits"), list)
              and all(isinstance(x, str) for x in data["splits"])
              and all(isinstance(s, dict) and {"kind", "benchmark", "task_id", "split", "prompt", "program"}
                      <= set(s) <= fields and all(isinstance(v, str) for v in s.values()) for s in data["skills"]))
        if not ok:
            raise RecursiaError(f"{path} is not a skill library (an object with a list of 'splits' and a list of "
                                "'skills', each with string fields kind, benchmark, task_id, split, prompt, "
                                "program); write it with `recursia code skills STORE --out FILE`")
        return cls([Skill(**s) for s in data["skills"]], tuple(data["splits"]))

    # -- retrieval -------------------------------------------------------------------------------------
    def _tokens(self, texts: list[str]):
        bm25s, stemmer = _bm25()
        return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)

    def retrieve(self, prompt: str, k: int = 2, exclude: str | None = None) -> list[tuple[Skill, float]]:
        """The k best skills for a prompt with their BM25 scores (score > 0 only), leaving out `exclude`'s."""
        if not self.skills:
            return []
        if self._index is None:
            bm25s, _ = _bm25()
            self._index = bm25s.BM25()
            self._index.index(self._tokens([s.text() for s in self.skills]), show_progress=False)
        query = self._tokens([prompt])
        if not query[0]:
            return []
        ids, scores = self._index.retrieve(query, k=len(self.skills), show_progress=False)
        out = [(self.skills[int(i)], float(s)) for i, s in zip(ids[0], scores[0]) if s > 0]
        return [(sk, s) for sk, s in out if exclude is None or not same_task(sk.task_id, exclude)][:k]

    def for_task(self, task, k: int = 2, max_chars: int = 900) -> str:
        """The text to place into z for a task ("" when nothing relevant is found)."""
        return render([s for s, _ in self.retrieve(task.prompt, k, exclude=task.task_id)], max_chars)


def render(skills: list[Skill], max_chars: int = 900, max_lines: int = 14) -> str:
    """A short text: each skill's task in one line, then its program or its fix as a diff."""
    if not skills:
        return ""
    parts = ["Skills from similar solved tasks (they may not apply):"]
    for s in skills:
        task = " ".join(s.prompt.split())[:160]
        if s.kind == "fix":
            diff = [ln for ln in difflib.unified_diff(s.before.splitlines(), s.program.splitlines(), lineterm="",
                                                      n=1)][2:]
            body = "\n".join(diff[:max_lines])
            parts.append(f"- A fix that cured {s.error!r} on the task: {task}\n{body}")
        else:
            body = "\n".join(s.program.strip().splitlines()[:max_lines])
            parts.append(f"- A solution of the task: {task}\n{body}")  # the model's or a checked reference
    text = "\n".join(parts)
    return text if len(text) <= max_chars else text[:max_chars - 4].rstrip() + "\n..."
