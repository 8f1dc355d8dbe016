"""Seeing the model think: the answer after every supervision step of one puzzle, as pictures and a viewer.

`trace_grid` / `trace_arc` run one puzzle through `supervision.rollout` and keep, for every step, the decoded
answer, the probability of each predicted token, the halting head's sigmoid(q_halt) and what the task's checker
says about the answer. `build_scene` turns a trace into task-neutral panels (a colour, text and confidence per
cell, the cells that changed since the previous step, Maze's path as segments). The PNG strip and GIF
(`viz_image`, Pillow) and the HTML viewer (`viz_html`, no Pillow) all draw that one scene, so they cannot
disagree about what the model did.

    recursia viz RUN PUZZLE --out DIR     ->  DIR/steps.png, DIR/steps.gif, DIR/viewer.html
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import VizError
from .model import RecursiveModel
from .supervision import Rollout, rollout
from .tasks import Task

# The standard ARC palette, colour 0..9.
ARC_COLOURS = ("#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00",
               "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25")
CHANGED = "#7B2FF7"  # border of a cell whose value changed since the previous step
UNSURE = "#FF6B6B"  # Sudoku and Maze cells are tinted towards this colour as confidence falls
HEAT_LOW = "#B2182B"  # ARC's confidence panel: this colour at confidence 0, white at 1
TINT_LEVELS = 10  # confidence is quantised for the tint, so a scene needs few distinct colours
CELL_PX = {"sudoku": 32, "maze": 10}  # ARC: chosen from the largest grid (`_arc_cell_px`)


@dataclass
class Trace:
    """One puzzle, step by step. Grids are flat row-major arrays of `shape` (ARC: one shape per step)."""

    task: str
    title: str
    question: np.ndarray  # Sudoku digits (81,), Maze tokens (900,), ARC input grid (h, w)
    answers: list[np.ndarray]  # decoded answer after each step (ARC: cropped grid, possibly (0, 0))
    confidence: list[np.ndarray]  # probability of each predicted cell, same shape as the answer
    halt_prob: list[float] | None  # sigmoid(q_halt) after each step; None without a halting head
    halt_fired: list[bool] | None  # the learned halting rule's decision after each step
    problems: list[list[str] | None]  # what is wrong with each step's answer; None: nothing to check against
    target: np.ndarray | None = None  # ARC: the known test output
    n_sup: int = 0  # the model's trained number of supervision steps

    @property
    def n_steps(self) -> int:
        return len(self.answers)


# ----------------------------------------------------------------------------------------------------------
# Tracing
# ----------------------------------------------------------------------------------------------------------

def _halting(rec: Rollout) -> tuple[list[float] | None, list[bool] | None]:
    """sigmoid(q_halt) and the halting rule's decision after each step, for the batch's first example."""
    probs = [float(torch.sigmoid(q[0].float())) for q in rec.q_halt] if rec.q_halt[0] is not None else None
    fired = [bool(h[0]) for h in rec.halt] if rec.halt[0] is not None else None
    return probs, fired


def trace_grid(model: RecursiveModel, task: Task, question: np.ndarray, n_steps: int | None = None,
               title: str = "") -> Trace:
    """Trace a Sudoku or Maze question (as `Task.parse` returns it) for `n_steps` (default N_sup) steps."""
    device = model.embed_tokens.device
    inputs = torch.from_numpy(task.encode(np.asarray(question)[None])).to(device)
    pids = torch.zeros(1, dtype=torch.int32, device=device)
    rec = rollout(model, inputs, pids, n_steps)
    answers = [task.decode(p[:1].cpu().numpy())[0] for p in rec.predictions]
    confidence = [c[0].float().cpu().numpy() for c in rec.confidence]
    probs, fired = _halting(rec)
    problems: list[list[str] | None] = [task.check(question, a) for a in answers]
    return Trace(task.name, title or task.name, np.asarray(question), answers, confidence, probs, fired,
                 problems, n_sup=model.cfg.N_sup)


def _arc_evaluation_index(data: Any, puzzle: str | None, file: Path | None) -> tuple[int, str]:
    """The position of the requested task among the data set's evaluation tasks, and its name."""
    from .tasks import arc

    evaluation = data.manifest["arc"]["evaluation_tasks"]
    if file is not None:
        task = arc.read_task_file(file, require_outputs=False)
        fingerprint = arc.task_fingerprint(task)
        known = [t for t in data.manifest["arc"]["tasks"] if t["role"] == "eval"]
        found = next((i for i, t in enumerate(known) if t["fingerprint"] == fingerprint), None)
        if found is None:
            raise VizError(f"{file} is not an evaluation task of this model's data set {data.root}. `recursia "
                           "viz` shows ARC tasks whose embeddings the model trained (reference protocol); a new "
                           "task first needs its embeddings fitted: use `recursia solve MODEL --file TASK`")
        return found, f"{task.task_id} ({file.name})"
    ids = [t["id"] for t in evaluation]
    if puzzle not in ids:
        raise VizError(f"ARC task {puzzle!r} is not an evaluation task of {data.root}; pass --file task.json or "
                       f"one of its {len(ids)} evaluation task ids, e.g. {', '.join(ids[:5])}")
    return ids.index(puzzle), puzzle


def trace_arc(model: RecursiveModel, data_dir: Path | None, puzzle: str | None = None, file: Path | None = None,
              test_index: int = 1, n_steps: int | None = None) -> Trace:
    """Trace test input `test_index` (from 1) of an evaluation task of the model's own reference-protocol data
    set, given as a task file or a task id, in its original (untransformed) version."""
    from .dataset import Dataset
    from .tasks import arc
    from .tasks.arc_eval import evaluation_tasks

    if data_dir is None or not (Path(data_dir) / "manifest.json").is_file():
        raise VizError(f"ARC: `recursia viz` reads the task's trained embedding from the model's data set, and "
                       f"{data_dir} is not there; pass a run whose data.dir exists")
    data = Dataset(data_dir)
    protocol = data.manifest["arc"]["protocol"]
    if protocol != "reference":
        raise VizError(f"ARC: {data.root} uses the {protocol} protocol, whose evaluation embeddings are fitted at "
                       "evaluation time and not stored in the checkpoint; `recursia viz` supports "
                       "reference-protocol data sets only")
    index, name = _arc_evaluation_index(data, puzzle, file)
    task = evaluation_tasks(data)[index]
    if not 1 <= test_index <= len(task.test):
        raise VizError(f"ARC task {name} has {len(task.test)} test input(s); --index {test_index} is out of range")
    test = data.split("test")
    identity = np.all(np.asarray(test.extra("version_colours")) == np.arange(10), axis=1)
    rows = np.nonzero((np.asarray(test.extra("task")) == index)
                      & (np.asarray(test.extra("test_index")) == test_index - 1)
                      & (np.asarray(test.extra("version_t")) == 0) & identity)[0]
    if rows.size == 0:
        raise VizError(f"{data.root} holds no original version of task {name}, test input {test_index}")
    row = rows[:1]
    device = model.embed_tokens.device
    inputs = torch.from_numpy(np.asarray(test.inputs[row])).to(device)
    pids = torch.from_numpy(np.asarray(test.puzzle_ids[row])).to(device)
    rec = rollout(model, inputs, pids, n_steps)
    question, target = task.test[test_index - 1]
    answers, confidence, problems = [], [], []
    for pred, conf in zip(rec.predictions, rec.confidence):
        grid = arc.decode_prediction(pred[0].cpu().numpy())
        answers.append(grid)
        confidence.append(conf[0].float().cpu().numpy().reshape(arc.CANVAS, arc.CANVAS)[:grid.shape[0],
                                                                                         :grid.shape[1]])
        problems.append(None if target is None else _arc_problems(grid, target))
    probs, fired = _halting(rec)
    return Trace("arc", f"ARC {name}, test input {test_index}", question, answers, confidence, probs, fired,
                 problems, target, model.cfg.N_sup)


def _arc_problems(grid: np.ndarray, target: np.ndarray) -> list[str]:
    if grid.size == 0:
        return ["no readable grid"]
    if grid.shape != target.shape:
        return [f"shape {grid.shape[0]}x{grid.shape[1]}, expected {target.shape[0]}x{target.shape[1]}"]
    wrong = int((grid != target).sum())
    return [f"{wrong} of {grid.size} cells wrong"] if wrong else []


def trace_checkpoint(checkpoint: str | Path, puzzle: str | None = None, file: Path | None = None,
                     index: int = 1, n_steps: int | None = None, device: str = "auto") -> Trace:
    """Load a checkpoint and trace one puzzle: text as for `recursia solve`, or puzzle `index` (from 1) of
    `file` (ARC: test input `index` of a task file, or `puzzle` names an evaluation task id)."""
    from .checkpoint import load_model, read_meta, resolve
    from .model import resolve_dtype
    from .runtime import pick_device
    from .solve import Solver

    if (puzzle is None) == (file is None):
        raise VizError("give one puzzle: as text, or --file FILE (with --index N to pick one of its puzzles)")
    if n_steps is not None and n_steps < 1:
        raise VizError(f"--steps must be at least 1, got {n_steps}")
    if read_meta(resolve(checkpoint)).get("task") == "arc":
        dev = pick_device(device)
        model, cfg, _ = load_model(checkpoint, dev)
        model.set_forward_dtype(resolve_dtype(cfg.model.forward_dtype, dev))
        return trace_arc(model, Path(cfg.data.dir) if cfg.data.dir else None, puzzle, file, index, n_steps)
    solver = Solver.load(checkpoint, device=device)
    if file is not None:
        grids = solver.read_file(file)
        if not 1 <= index <= len(grids):
            raise VizError(f"{file} holds {len(grids)} puzzle(s); --index {index} is out of range")
        return trace_grid(solver.model, solver.task, grids[index - 1], n_steps,
                          f"{solver.task.name} {file.name} #{index}")
    return trace_grid(solver.model, solver.task, solver.parse(puzzle), n_steps, f"{solver.task.name} puzzle")


# ----------------------------------------------------------------------------------------------------------
# Scenes: what to draw, shared by the PNG, GIF and HTML writers
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Panel:
    """One grid to draw. Per-cell lists are row-major; colours are indices into `Scene.colours`."""

    title: str
    rows: int
    cols: int
    fill: list[int]
    text: list[str] | None = None
    ink: list[int] | None = None
    bold: list[bool] | None = None
    confidence: list[float] | None = None  # shown in the viewer's tooltips
    changed: list[bool] | None = None
    segments: list[tuple[int, int, int, int]] = field(default_factory=list)  # path pieces (r1, c1, r2, c2)
    box: int = 0  # a thicker line every `box` cells (Sudoku's 3x3 boxes)
    grid: str | None = "#C8C8C8"  # colour of the lines between cells, None for none


@dataclass
class StepView:
    step: int  # from 1
    panels: list[Panel]
    lines: list[str]  # caption under the panels
    halt_prob: float | None
    fired: bool | None
    valid: bool | None
    changed: int
    mean_confidence: float


@dataclass
class Scene:
    task: str
    title: str
    cell: int  # pixels per cell in the pictures
    colours: list[str]
    before: list[Panel]  # drawn left of every step (ARC: the input)
    steps: list[StepView]
    after: list[Panel]  # drawn right of every step (ARC: the known answer)
    legend: list[tuple[str, str]]  # (colour, meaning)
    n_sup: int
    path_colour: str = "#0B57D0"
    changed_colour: str = CHANGED

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def slot(self) -> tuple[int, int]:
        """(rows, cols) of the largest panel: every panel is laid out in a slot of this size."""
        panels = self.before + self.after + [p for s in self.steps for p in s.panels]
        return max(max(p.rows for p in panels), 1), max(max(p.cols for p in panels), 1)


class _Colours:
    """Hex colours -> small indices, so the viewer's embedded data stays compact."""

    def __init__(self) -> None:
        self.table: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, colour: str) -> int:
        colour = colour.upper()
        if colour not in self.index:
            self.index[colour] = len(self.table)
            self.table.append(colour)
        return self.index[colour]


def blend(a: str, b: str, t: float) -> str:
    """The colour a fraction `t` of the way from hex colour `a` to `b`."""
    ca = [int(a[i:i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02X}" for x, y in zip(ca, cb))


def _tint(base: str, confidence: float, towards: str = UNSURE, strength: float = 0.85) -> str:
    level = round((1.0 - min(max(confidence, 0.0), 1.0)) * TINT_LEVELS) / TINT_LEVELS
    return blend(base, towards, strength * level)


def _changed(prev: np.ndarray | None, cur: np.ndarray) -> np.ndarray:
    """Cells whose value differs from the previous step; all of them if the shape changed; none at step 1."""
    if prev is None:
        return np.zeros(cur.shape, dtype=bool)
    if prev.shape != cur.shape:
        return np.ones(cur.shape, dtype=bool)
    return prev != cur


def _sudoku_panel(trace: Trace, k: int, changed: np.ndarray, col: _Colours) -> Panel:
    clues = trace.question.reshape(81)
    answer, conf = trace.answers[k].reshape(81), trace.confidence[k].reshape(81)
    fill, ink, bold = [], [], []
    for i in range(81):
        if clues[i]:
            fill.append(col("#E4E4E4"))
            ink.append(col("#000000" if answer[i] == clues[i] else "#D00000"))  # red: the model moved a clue
            bold.append(True)
        else:
            fill.append(col(_tint("#FFFFFF", float(conf[i]))))
            ink.append(col("#0B57D0"))
            bold.append(False)
    text = [str(int(v)) if v else "" for v in answer]
    return Panel(f"step {k + 1}", 9, 9, fill, text, ink, bold, [round(float(c), 3) for c in conf],
                 changed.reshape(81).tolist(), box=3, grid="#B0B0B0")


MAZE_COLOURS = {0: "#BDBDBD", 1: "#2B2B2B", 2: "#FFFFFF", 3: "#2ECC40", 4: "#FF4136", 5: "#CFE3FF"}
OFF_MAZE = "#D00000"  # the mark of a cell whose prediction contradicts the maze itself


def _maze_segments(question: np.ndarray, answer: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Pieces joining 4-adjacent cells of the predicted path (predicted path cells, and the maze's S and G)."""
    from .tasks import maze

    on = ((answer == maze.PATH) | np.isin(question, (maze.START, maze.GOAL))).reshape(maze.SIZE, maze.SIZE)
    segments = []
    for r, c in zip(*np.nonzero(on)):
        if c + 1 < maze.SIZE and on[r, c + 1]:
            segments.append((int(r), int(c), int(r), int(c + 1)))
        if r + 1 < maze.SIZE and on[r + 1, c]:
            segments.append((int(r), int(c), int(r + 1), int(c)))
    return segments


def _maze_panel(trace: Trace, k: int, changed: np.ndarray, col: _Colours) -> Panel:
    """The maze as given, with the predicted path over it. The model predicts every cell; a cell whose
    prediction is neither the maze's own token nor a path on an open cell is marked with a red x."""
    from .tasks import maze

    question = trace.question.reshape(900)
    answer, conf = trace.answers[k].reshape(900), trace.confidence[k].reshape(900)
    on_path = (answer == maze.PATH) & (question == maze.OPEN)
    off_maze = (answer != question) & ~on_path
    fill, text, ink = [], [], []
    for i in range(900):
        base = MAZE_COLOURS[maze.PATH] if on_path[i] else MAZE_COLOURS.get(int(question[i]), "#BDBDBD")
        fill.append(col(_tint(base, float(conf[i]), strength=0.6)))
        letter = {maze.START: "S", maze.GOAL: "G"}.get(int(question[i]), "")
        text.append("x" if off_maze[i] else letter)
        ink.append(col(OFF_MAZE if off_maze[i] else "#FFFFFF"))
    return Panel(f"step {k + 1}", 30, 30, fill, text, ink, None, [round(float(c), 3) for c in conf],
                 changed.reshape(900).tolist(), _maze_segments(question, answer), grid=None)


def _arc_grid_panel(title: str, grid: np.ndarray, col: _Colours, changed: np.ndarray | None = None,
                    confidence: np.ndarray | None = None) -> Panel:
    h, w = grid.shape
    return Panel(title, h, w, [col(ARC_COLOURS[int(v)]) for v in grid.reshape(-1)],
                 confidence=None if confidence is None else [round(float(c), 3) for c in confidence.reshape(-1)],
                 changed=None if changed is None else changed.reshape(-1).tolist(), grid="#555555")


def _arc_confidence_panel(conf: np.ndarray, col: _Colours) -> Panel:
    h, w = conf.shape
    return Panel("confidence", h, w, [col(_tint("#FFFFFF", float(c), HEAT_LOW, 1.0)) for c in conf.reshape(-1)],
                 confidence=[round(float(c), 3) for c in conf.reshape(-1)], grid="#DDDDDD")


def _arc_cell_px(trace: Trace) -> int:
    grids = [trace.question] + trace.answers + ([trace.target] if trace.target is not None else [])
    largest = max(max(g.shape) if g.size else 1 for g in grids)
    return int(min(24, max(8, 240 // largest)))


def build_scene(trace: Trace) -> Scene:
    """The panels and captions of every step of `trace`."""
    col = _Colours()
    before: list[Panel] = []
    after: list[Panel] = []
    if trace.task == "sudoku":
        cell = CELL_PX["sudoku"]
        legend = [("#E4E4E4", "given clue (bold; red if the model changed it)"), ("#0B57D0", "predicted digit"),
                  (UNSURE, "tint: low confidence"), (CHANGED, "border: changed since the previous step")]
    elif trace.task == "maze":
        cell = CELL_PX["maze"]
        legend = [(MAZE_COLOURS[1], "wall"), (MAZE_COLOURS[3], "start S"), (MAZE_COLOURS[4], "goal G"),
                  ("#0B57D0", "predicted path"), (OFF_MAZE, "x: prediction contradicts the maze"),
                  (UNSURE, "tint: low confidence"), (CHANGED, "border: changed since the previous step")]
    elif trace.task == "arc":
        cell = _arc_cell_px(trace)
        before.append(_arc_grid_panel("input", trace.question, col))
        if trace.target is not None:
            after.append(_arc_grid_panel("known answer", trace.target, col))
        legend = [(HEAT_LOW, "confidence panel: dark = unsure, white = sure"),
                  (CHANGED, "border: changed since the previous step")]
    else:
        raise VizError(f"no pictures for task {trace.task!r}; `recursia viz` draws sudoku, maze and arc")
    steps = []
    for k in range(trace.n_steps):
        prev = trace.answers[k - 1] if k else None
        changed = _changed(prev, trace.answers[k])
        if trace.task == "sudoku":
            panels = [_sudoku_panel(trace, k, changed, col)]
        elif trace.task == "maze":
            panels = [_maze_panel(trace, k, changed, col)]
        else:
            panels = [_arc_grid_panel(f"step {k + 1}", trace.answers[k], col, changed, trace.confidence[k]),
                      _arc_confidence_panel(trace.confidence[k], col)]
        reshaped = prev is not None and prev.shape != trace.answers[k].shape
        steps.append(_step_view(trace, k, panels, int(changed.sum()), reshaped))
    for c, _ in legend:
        col(c)
    return Scene(trace.task, trace.title, cell, col.table, before, steps, after, legend, trace.n_sup)


def _step_view(trace: Trace, k: int, panels: list[Panel], changed: int, reshaped: bool) -> StepView:
    prob = trace.halt_prob[k] if trace.halt_prob is not None else None
    fired = trace.halt_fired[k] if trace.halt_fired is not None else None
    problems = trace.problems[k]
    valid = None if problems is None else not problems
    conf = trace.confidence[k]
    mean_conf = float(conf.mean()) if conf.size else 0.0
    lines = []
    if prob is not None:
        lines.append(f"halt {prob:.2f}" + (" fires" if fired else ""))
    if valid is not None:
        lines.append("valid" if valid else f"not valid: {problems[0]}" if len(problems) == 1
                     else f"not valid ({len(problems)} problems)")
    lines.append("first answer" if not k else "new shape" if reshaped else f"{changed} changed")
    return StepView(k + 1, panels, lines, prob, fired, valid, changed, mean_conf)


# ----------------------------------------------------------------------------------------------------------
# Writing everything
# ----------------------------------------------------------------------------------------------------------

def write_visuals(trace: Trace, out: str | Path) -> list[Path]:
    """Write viewer.html, steps.png and steps.gif into `out`. The viewer needs no Pillow and is written first,
    so a missing Pillow still leaves it behind (the error says so)."""
    from .viz_html import write_viewer

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VizError(f"--out {out} is a file; pass a folder (it receives viewer.html, steps.png and steps.gif)")
    out.mkdir(parents=True, exist_ok=True)
    scene = build_scene(trace)
    html = write_viewer(scene, out / "viewer.html")
    if importlib.util.find_spec("PIL") is None:
        raise VizError(f"wrote {html}, but steps.png and steps.gif need Pillow: pip install 'recursia[viz]'")
    from .viz_image import write_gif, write_strip

    return [write_strip(scene, out / "steps.png"), write_gif(scene, out / "steps.gif"), html]
