"""`recursia solve --watch`: the answer redrawn in the terminal after every supervision step, as the model runs.

The grid is drawn from `rollout`'s per-step callback, so each frame appears when its step has been computed
(with a short pause between frames on a terminal, so that fast models can still be followed). Cells that
changed since the previous step are highlighted; unsure predictions (confidence below one half) are dimmed.
When the output is not a terminal (a pipe, a log file), every frame is printed one after the other instead.
Drawing stops where the halting rule of the solve stops the puzzle, so the last frame is the printed answer.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.live import Live
from rich.text import Text

from .halting import HaltRule, check_rule
from .model import RecursiveModel
from .supervision import Rollout, rollout
from .tasks import Task
from .verify import Verifier

FRAME_PAUSE_S = 0.3  # between frames on a terminal
CHANGED_STYLE = "black on yellow"
MAZE_STYLES = {"#": "grey50", "o": "bold blue", "S": "bold green", "G": "bold red"}


def frame(task: Task, question: np.ndarray, answer: np.ndarray, confidence: np.ndarray,
          previous: np.ndarray | None, step: int, n_steps: int, halt_prob: float | None,
          fired: bool | None) -> Text:
    """One step's header and grid, styled per cell."""
    changed = np.zeros(answer.shape, dtype=bool) if previous is None else previous != answer
    head = f"step {step}/{n_steps}: " + (f"{int(changed.sum())} cells changed" if previous is not None
                                          else "first answer")
    if halt_prob is not None:
        head += f", halting confidence {halt_prob:.3f}" + (" (the halting head fires)" if fired else "")
    out = Text()
    out.append(head + "\n", style="bold")
    flat_q, flat_a = question.reshape(-1), answer.reshape(-1)
    flat_c, flat_ch = confidence.reshape(-1), changed.reshape(-1)
    cell = 0
    for ch in task.format(answer):
        if ch == "\n" or (task.name == "sudoku" and ch not in "0123456789."):
            out.append(ch)  # a line break or Sudoku's box lines
            continue
        if flat_ch[cell]:
            style = CHANGED_STYLE
        elif task.name == "sudoku" and flat_q[cell]:
            style = "bold" if flat_a[cell] == flat_q[cell] else "bold red"  # red: the model changed a clue
        elif task.name == "sudoku":
            style = "cyan"
        else:
            style = MAZE_STYLES.get(ch, "")
        if flat_c[cell] < 0.5 and not flat_ch[cell]:
            style += " dim"
        out.append(ch, style=style.strip())
        cell += 1
    return out


def watch(model: RecursiveModel, task: Task, question: np.ndarray, halt: HaltRule | None = None,
          console: Console | None = None, pause_s: float = FRAME_PAUSE_S) -> Rollout:
    """Run `question`, drawing every step as soon as it is computed, up to the step where `halt` (default: all
    N_sup steps) stops it. Returns the rollout of the steps drawn."""
    halt = halt or HaltRule()
    verifier = Verifier.for_task(task) if halt.verified else None  # raises if the task cannot check answers
    check_rule(halt, model, verifier)
    console = console or Console(highlight=False)
    device = model.embed_tokens.device
    inputs = torch.from_numpy(task.encode(np.asarray(question)[None])).to(device)
    pids = torch.zeros(1, dtype=torch.int32, device=device)
    n_steps = model.cfg.N_sup
    live = Live(console=console, auto_refresh=False, vertical_overflow="visible") if console.is_terminal else None
    previous: list[Any] = [None]
    unchanged = torch.zeros(1, dtype=torch.long)
    stopped: list[int] = []  # the step at which `halt` fired; later steps are computed but not drawn

    def on_step(rec: Rollout) -> None:
        nonlocal unchanged
        if stopped:
            return
        if len(rec.predictions) > 1:
            same = bool((rec.predictions[-1][:1] == rec.predictions[-2][:1]).all())
            unchanged = unchanged + 1 if same else torch.zeros_like(unchanged)
        learned = rec.halt[-1][:1].cpu() if rec.halt[-1] is not None else None
        q_now = rec.q_halt[-1][:1].cpu() if rec.q_halt[-1] is not None else None
        verified = None
        if verifier is not None:  # the task checks the answer itself
            verified = torch.from_numpy(np.asarray(verifier.check(inputs[:1].cpu().numpy(),
                                                                  rec.predictions[-1][:1].cpu().numpy()), dtype=bool))
        if bool(halt.fires(q_now, learned, unchanged, verified)[0]):
            stopped.append(len(rec.predictions))
        answer = task.decode(rec.predictions[-1][:1].cpu().numpy())[0]
        confidence = rec.confidence[-1][0].float().cpu().numpy()
        q = rec.q_halt[-1]
        halt_prob = float(torch.sigmoid(q[0].float())) if q is not None else None
        fired = bool(rec.halt[-1][0]) if rec.halt[-1] is not None else None
        text = frame(task, question, answer, confidence, previous[0], len(rec.predictions), n_steps, halt_prob,
                     fired)
        previous[0] = answer
        if live is None:
            console.print(text, soft_wrap=True)
            return
        live.update(text, refresh=True)
        time.sleep(pause_s)

    with live if live is not None else nullcontext():
        rec = rollout(model, inputs, pids, n_steps, on_step=on_step)
    if stopped and stopped[0] < n_steps:
        console.print(f"stopped after step {stopped[0]} of {n_steps} (--halt {halt})")
        for field in ("predictions", "confidence", "q_halt", "q_continue", "halt"):
            del getattr(rec, field)[stopped[0]:]
    return rec
