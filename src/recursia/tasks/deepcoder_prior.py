"""DeepCoder's function prior: which of the DSL's 34 functions (15 operations, 19 lambdas) a program for these
examples uses, predicted from the examples alone, so that search tries those first
(`deepcoder_search.weighted_search`). DeepCoder (Balog et al., ICLR 2017) predicts the same 34 attributes.

The network proposes and search disposes: a wrong prior only costs time, since every program the search returns
is checked by running it on the examples.

Token layout (``SEQ_LEN = 97``, ``VOCAB_SIZE = 156``)
------------------------------------------------------
* The spec, positions 0-62, exactly as in `deepcoder` (labels 0: no loss).
* One cell per function, positions 63-96, in `FUNCTIONS` order. The input holds that function's own token, so a
  cell knows which function it is asked about; the label is ``<NO>`` (154) or ``<YES>`` (155): whether the
  program that generated the task uses it. The prior of a function is the model's probability of ``<YES>``
  against ``<NO>`` in its cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recursia.errors import PuzzleError

from . import deepcoder as dc

FUNCTIONS = dc.OPERATIONS + dc.LAMBDAS
NO, YES = dc.VOCAB_SIZE, dc.VOCAB_SIZE + 1
VOCAB_SIZE = dc.VOCAB_SIZE + 2
CELLS = slice(dc.SPEC_LEN, dc.SPEC_LEN + len(FUNCTIONS))
SEQ_LEN = dc.SPEC_LEN + len(FUNCTIONS)
_QUERY = np.array([dc.TOKEN_ID[f] for f in FUNCTIONS], dtype=np.uint8)
assert SEQ_LEN == 97 and VOCAB_SIZE == 156


def functions_of(program: dc.Program) -> set[str]:
    """The operations and lambdas a program uses."""
    return {s.op for s in program.statements} | {s.lam for s in program.statements if s.lam}


def encode(tasks: Sequence[dc.DeepCoderTask]) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels), each (N, SEQ_LEN) uint8; a task without a program gets labels 0 (no loss)."""
    inputs = np.zeros((len(tasks), SEQ_LEN), dtype=np.uint8)
    labels = np.zeros((len(tasks), SEQ_LEN), dtype=np.uint8)
    for i, t in enumerate(tasks):
        inputs[i, :dc.SPEC_LEN] = dc.encode_task(dc.DeepCoderTask(t.inputs, t.outputs))[0][:dc.SPEC_LEN]
        inputs[i, CELLS] = _QUERY
        if t.program is not None:
            used = functions_of(t.program)
            labels[i, CELLS] = [YES if f in used else NO for f in FUNCTIONS]
    return inputs, labels


def as_question(row: np.ndarray) -> np.ndarray:
    """A row checked: a well-formed spec (`decode_spec` raises `PuzzleError` otherwise), function cells reset."""
    row = np.asarray(row)
    if row.shape != (SEQ_LEN,):
        raise PuzzleError(f"a function-prior row has {SEQ_LEN} tokens, got shape {row.shape}")
    spec = dc.decode_spec(np.concatenate([row[:dc.SPEC_LEN], np.full(dc.PROGRAM_LEN, dc.SLOT, np.uint8)]))
    return encode([dc.DeepCoderTask(spec.inputs, spec.outputs)])[0][0]


def check_answer(question: np.ndarray, answer: np.ndarray) -> list[str]:
    """A prediction is well-formed when every function cell says <YES> or <NO>; a prior has no right answer
    of its own (the search that uses it checks programs)."""
    cells = np.asarray(answer).reshape(-1)[CELLS]
    bad = [FUNCTIONS[i] for i in np.nonzero((cells != YES) & (cells != NO))[0]]
    return [f"cells of {', '.join(bad[:4])} hold neither <YES> nor <NO>"] if bad else []


def format_row(row: np.ndarray) -> str:
    """The functions a row marks <YES> (a label row, or a prediction)."""
    cells = np.asarray(row).reshape(-1)[CELLS]
    return "uses: " + (" ".join(f for f, c in zip(FUNCTIONS, cells) if c == YES) or "(none marked)")


def prior_from_logits(logits) -> np.ndarray:
    """(B, SEQ_LEN, VOCAB) logits -> (B, 34) probabilities of <YES> against <NO>, in `FUNCTIONS` order."""
    import torch

    two = logits[:, CELLS][..., [NO, YES]].float()
    return torch.softmax(two, -1)[..., 1].cpu().numpy()


def _split(tasks: Sequence[dc.DeepCoderTask]):
    from ..dataset import SplitArrays

    inputs, labels = encode(tasks)
    extras = {"length": np.array([len(t.program) if t.program else 0 for t in tasks], dtype=np.int8)}
    return SplitArrays.ungrouped(inputs, labels, extras=extras)


def generate_prior_dataset(out: str | Path, *, train_count: int, test_count: int, seed: int = 0,
                           min_length: int = 1, max_length: int = dc.MAX_STATEMENTS, split: str | None = None,
                           overwrite: bool = False) -> dict[str, Any]:
    """Generated tasks labelled with their programs' functions (`split`: that ExeDec split's training
    distribution); the test split (seed + 1_000_003) shares no spec with the train split. Test files are never
    read here."""
    from ..dataset import write_dataset

    splits, build = dc.generated_splits(train_count, test_count, seed, min_length, max_length, _split, split)
    return write_dataset(out, "deepcoder-prior", SEQ_LEN, VOCAB_SIZE, splits, build, overwrite=overwrite)


def prior(model, tasks: Sequence[dc.DeepCoderTask], steps: int | None = None) -> np.ndarray:
    """(N, 34) probabilities that a program for each task uses each function, after `steps` refinements
    (default the model's N_sup)."""
    import torch

    x = torch.from_numpy(encode(tasks)[0].astype(np.int64)).to(model.embed_tokens.device)
    pids = torch.zeros(len(tasks), dtype=torch.int32, device=x.device)
    state = model.initial_state(len(tasks))
    with torch.no_grad():
        for _ in range(steps or model.cfg.N_sup):
            out = model(state, x, pids)
            state = out.state
    return prior_from_logits(out.logits)


# Extra statement cost per factor 2**COST_STEP below the likeliest function (`deepcoder_search.prior_costs`):
# on 80 generated tasks (seed 12345, never a test file) at 20,000 candidates, steps 1 / 2 / 3 solved
# 68.8 / 73.8 / 76.2% with the preset's model after 30 minutes, plain search 72.5%, sort-and-add rounds 71.3%.
COST_STEP = 3.0


def frequency_prior(tasks: Sequence[dc.DeepCoderTask]) -> dict[str, float]:
    """The share of `tasks` whose program uses each function: one prior for every task, learned by counting. A
    network has to beat it to be worth its time (it knows the training distribution, not the examples)."""
    counts = dict.fromkeys(FUNCTIONS, 0)
    for t in tasks:
        for f in functions_of(t.program):
            counts[f] += 1
    return {f: c / max(len(tasks), 1) for f, c in counts.items()}


def at_equal_candidates(model, tasks: Sequence[dc.DeepCoderTask], max_tried: int) -> tuple[list, list]:
    """Plain enumeration and the search the model's prior orders, each allowed `max_tried` candidate statements
    per task (no clock): the two `SearchResult` lists, task by task. Counting candidates rather than seconds
    compares the orders alone, the same on any machine."""
    from .deepcoder_search import search

    plain, guided = [], []
    for t, p in zip(tasks, prior(model, tasks)):
        plain.append(search(t.inputs, t.outputs, float("inf"), max_tried=max_tried))
        guided.append(_guided(t, dict(zip(FUNCTIONS, p.tolist())), float("inf"), max_tried))
    return plain, guided


def _guided(task: dc.DeepCoderTask, p: dict[str, float], time_limit: float, max_tried: int = 0):
    """`weighted_search` on one task with the prior `p` at this module's cost step."""
    from .deepcoder_search import weighted_search

    return weighted_search(task.inputs, task.outputs, p, time_limit, max_tried=max_tried, step=COST_STEP)


def solve_tasks(model, tasks: Sequence[dc.DeepCoderTask], time_limit: float = 1.0, steps: int | None = None,
                path: str | Path = "tasks", progress: bool = False) -> dict[str, Any]:
    """Model-guided synthesis, one task at a time: the network's prior (or `model` itself when it is a fixed
    prior, a dict as `frequency_prior` gives), then `weighted_search` in the rest of `time_limit` seconds (the
    prior's time counts against the task's budget). Records as `evaluate_file`."""
    import time

    from .deepcoder_search import record, summarise

    records = []
    iterator = tasks
    if progress:
        from ..progress import bar as progress_bar

        iterator = progress_bar(tasks, desc=f"guided {Path(path).name}", unit="task")
    for t in iterator:
        start = time.perf_counter()
        p = model if isinstance(model, dict) else dict(zip(FUNCTIONS, prior(model, [t], steps)[0].tolist()))
        left = time_limit - (time.perf_counter() - start)
        r = _guided(t, p, max(left, 0.0))
        r.seconds = time.perf_counter() - start
        records.append(record(t, r))
    return summarise(records, path, time_limit)
