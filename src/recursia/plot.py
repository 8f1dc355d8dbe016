"""`recursia plot`: a run's training curves and its evaluation per supervision step, as PNG charts.

Charts are drawn with Pillow (the `viz` extra), so plotting adds no plotting library. A run directory gives

    training.png          loss, and train/eval accuracy, against the optimizer step (metrics.jsonl)
    accuracy_by_step.png  exact and cell accuracy after each supervision step (eval.json), and the early-halting
                          accuracy when every example is stopped at step k at the latest
    halting_steps.png     how many examples the halting head stops at each step (eval.json)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import VizError
from .metrics_log import read_metrics
from .viz_image import font, pillow

BLUE, ORANGE, GREEN, RED, GREY = "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#7F7F7F"
WIDTH, HEIGHT = 720, 380
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 62, 46  # the plot area's distance from the chart's edges


@dataclass
class Series:
    label: str
    x: list[float]
    y: list[float]
    colour: str
    style: str = "line"  # line (with points), points, bars


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values (1, 2 or 5 times a power of ten apart) covering lo..hi."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def _label(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e5 else f"{v:.2g}"


def chart(title: str, series: list[Series], x_label: str, y_label: str,
          y_range: tuple[float, float] | None = None, integer_x: bool = False,
          x_range: tuple[float, float] | None = None) -> Any:
    """One chart as a Pillow image; non-finite values are left out (e.g. NaN before any example halted)."""
    PIL = pillow()
    clean = []
    for s in series:
        pts = [(x, y) for x, y in zip(s.x, s.y) if math.isfinite(x) and y is not None and math.isfinite(y)]
        if pts:
            clean.append((s, pts))
    if not clean:
        raise VizError(f"nothing to plot for {title!r}: every value is missing or not a number")
    xs = [x for _, pts in clean for x, _ in pts]
    ys = [y for _, pts in clean for _, y in pts]
    bars = any(s.style == "bars" for s, _ in clean)
    x_lo, x_hi = x_range or (min(xs), max(xs))
    if bars or integer_x or x_lo == x_hi:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    y_ticks = nice_ticks(*(y_range or (min(0.0, min(ys)) if bars else min(ys), max(ys))))
    y_lo, y_hi = (y_range or (y_ticks[0], y_ticks[-1]))
    image = PIL.Image.new("RGB", (WIDTH, HEIGHT), "#FFFFFF")
    draw = PIL.ImageDraw.Draw(image)
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * pw

    def py(y: float) -> float:
        return TOP + (1 - (y - y_lo) / ((y_hi - y_lo) or 1.0)) * ph

    draw.text((LEFT, 10), title, fill="#000000", font=font(15))
    for t in y_ticks:
        if y_lo - 1e-12 <= t <= y_hi + 1e-12:
            draw.line([LEFT, py(t), LEFT + pw, py(t)], fill="#E6E6E6")
            draw.text((LEFT - 6, py(t)), _label(t), fill="#333333", font=font(11), anchor="rm")
    if integer_x:
        span = int(x_hi - x_lo)
        x_ticks = [float(v) for v in range(math.ceil(x_lo), math.floor(x_hi) + 1, max(1, span // 16 + 1))]
    else:
        x_ticks = [t for t in nice_ticks(x_lo, x_hi, 6) if x_lo <= t <= x_hi]
    for t in x_ticks:
        draw.line([px(t), TOP + ph, px(t), TOP + ph + 4], fill="#333333")
        draw.text((px(t), TOP + ph + 6), _label(t), fill="#333333", font=font(11), anchor="mt")
    draw.rectangle([LEFT, TOP, LEFT + pw, TOP + ph], outline="#333333")
    draw.text((LEFT + pw / 2, HEIGHT - 6), x_label, fill="#333333", font=font(12), anchor="md")
    draw.text((8, TOP - 34), y_label, fill="#333333", font=font(12))  # above the top tick's label
    n_bar = sum(s.style == "bars" for s, _ in clean)
    bar_w = 0.8 * pw / max(len(set(xs)), 1) / max(n_bar, 1)
    k_bar = 0
    for s, pts in clean:
        points = [(px(x), py(y)) for x, y in pts]
        if s.style == "bars":
            offset = (k_bar - (n_bar - 1) / 2) * bar_w
            k_bar += 1
            for x, y in points:
                draw.rectangle([x + offset - bar_w / 2, min(y, py(0)), x + offset + bar_w / 2, max(y, py(0))],
                               fill=s.colour)
            continue
        if s.style == "line" and len(points) > 1:
            draw.line(points, fill=s.colour, width=2)
        r = 3 if s.style == "line" else 4
        if s.style == "points" or len(points) <= 60:
            for x, y in points:
                draw.ellipse([x - r, y - r, x + r, y + r], fill=s.colour)
    x = LEFT
    for s, _ in clean:  # legend, above the plot area
        draw.rectangle([x, TOP - 20, x + 12, TOP - 10], fill=s.colour)
        draw.text((x + 16, TOP - 21), s.label, fill="#333333", font=font(11))
        left, _, right, _ = font(11).getbbox(s.label)
        x += 16 + int(right - left) + 18
    return image


def _column(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    rows = [(float(r["step"]), float(r[key])) for r in records if isinstance(r.get(key), (int, float))]
    return [x for x, _ in rows], [y for _, y in rows]


def training_chart(records: list[dict[str, Any]]) -> Any:
    """Loss above, accuracy below, against the optimizer step."""
    PIL = pillow()
    loss = [Series(label, *_column(records, key), colour)
            for key, label, colour in (("train/loss", "loss (answer + halting)", BLUE),
                                       ("train/lm_loss", "answer loss", ORANGE))]
    accuracy = [Series(label, *_column(records, key), colour, style)
                for key, label, colour, style in (
                    ("train/cell_accuracy", "train cell accuracy", ORANGE, "line"),
                    ("train/exact_accuracy", "train exact accuracy", BLUE, "line"),
                    ("eval/all_steps/cell_accuracy", "eval cell accuracy", RED, "points"),
                    ("eval/all_steps/exact_accuracy", "eval exact accuracy", GREEN, "points"))]
    if not any(s.y for s in loss):
        raise VizError("metrics.jsonl has no train/loss records yet; has the run logged its first step?")
    steps = [float(r["step"]) for r in records]
    x_range = (min(steps), max(steps))  # both charts on one step axis
    top = chart("training loss", loss, "optimizer step", "loss", x_range=x_range)
    bottom = chart("accuracy (train: examples that halted since the last log)", accuracy, "optimizer step",
                   "accuracy", y_range=(0.0, 1.0), x_range=x_range)
    image = PIL.Image.new("RGB", (WIDTH, 2 * HEIGHT), "#FFFFFF")
    image.paste(top, (0, 0))
    image.paste(bottom, (0, HEIGHT))
    return image


def by_step_chart(result: dict[str, Any]) -> Any:
    all_steps, early = result["all_steps"], result["early_halting"]
    n = len(all_steps["exact_accuracy_by_step"])
    steps = [float(k) for k in range(1, n + 1)]
    series = [Series("exact accuracy after step k", steps, all_steps["exact_accuracy_by_step"], BLUE)]
    if "cell_accuracy_by_step" in all_steps:
        series.append(Series("cell accuracy after step k", steps, all_steps["cell_accuracy_by_step"], ORANGE))
    if "exact_accuracy_by_step" in early:
        series.append(Series("early halting, at most k steps", steps, early["exact_accuracy_by_step"], GREEN))
    return chart(f"accuracy per supervision step ({result.get('examples', '?')} examples)", series,
                 "supervision step", "accuracy", y_range=(0.0, 1.0), integer_x=True)


def halting_title(result: dict[str, Any]) -> str:
    mean = result["early_halting"].get("mean_steps")
    return f"where halting stops (model.halting={result.get('halting', '?')}" + \
        (f", mean {mean:.2f} steps)" if mean else ")")


def halting_chart(result: dict[str, Any]) -> Any:
    histogram = result["early_halting"].get("halting_step_histogram")
    if not histogram:
        raise VizError("eval.json has no early_halting.halting_step_histogram (written by recursia eval)")
    steps = [float(k) for k in range(1, len(histogram) + 1)]
    bars = Series("examples halted at step k", steps, [float(v) for v in histogram], BLUE, "bars")
    return chart(halting_title(result), [bars],
                 "supervision step", "examples", integer_x=True)


def _read_eval(path: Path) -> dict[str, Any]:
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise VizError(f"{path} is not valid JSON ({e})") from e
    if "all_steps" not in result or "early_halting" not in result:
        raise VizError(f"{path} is not an evaluation result (no all_steps / early_halting); write one with "
                       "`recursia eval RUN --json FILE`")
    return result


def plot_run(run_dir: str | Path, eval_json: str | Path | None = None,
             out: str | Path | None = None) -> tuple[list[Path], list[str]]:
    """Write the charts of a run into `out` (default RUN_DIR/plots). Returns (written files, notes on what
    was left out: the evaluation charts when the run has no eval.json and none was given)."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        raise VizError(f"{run_dir / 'metrics.jsonl'} does not exist; `recursia plot` takes a run directory "
                       "written by `recursia train`")
    if eval_json is not None and not Path(eval_json).is_file():
        raise VizError(f"evaluation file {eval_json} does not exist")
    out = Path(out) if out is not None else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "training.png"]
    training_chart(read_metrics(run_dir)).save(written[0])
    notes = []
    eval_path = Path(eval_json) if eval_json is not None else run_dir / "eval.json"
    if eval_path.is_file():
        result = _read_eval(eval_path)
        by_step_chart(result).save(out / "accuracy_by_step.png")
        halting_chart(result).save(out / "halting_steps.png")
        written += [out / "accuracy_by_step.png", out / "halting_steps.png"]
    else:
        notes.append(f"no {eval_path}: per-step accuracy and halting charts left out (pass --eval FILE)")
    return written, notes
