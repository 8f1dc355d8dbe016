"""`recursia code report RUN`: one HTML page of a run's plots, PNGs embedded (no other file, no network).

Charts are drawn with the puzzle side's Pillow helpers (`recursia.plot.chart`):

- pass@1 on the hidden tests at each depth 0..K with its Wilson 95% interval, and the equal-budget baseline;
- halting reasons (how many tasks each rule stopped);
- halting depth per task type (the four most common types);
- the running success estimates in task order: the seed's EMA (start 0.5, decay 0.999), the debiased EMA,
  the running rate with its Wilson interval (see `estimates.py` for why the last one is the one to trust).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..errors import VizError
from .estimates import divergence, ema, ema_debiased
from .evaluate import run_label
from .stats import wilson
from .store import bench_name
from .tasktypes import ANY, first_class, prompt_features, type_key

PALETTE = ["#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#7F7F7F"]


def _png(image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def record_type(bench: str, record: dict, prompts: dict[str, str]) -> str:
    attempts = record["loop"]["attempts"]
    prompt = prompts.get(record["task_id"])
    topic = prompt_features(prompt)["topic"] if prompt is not None else ANY
    return type_key(bench, first_class(attempts[0]["signature"] if attempts else None), topic)


def charts(records: list[dict], config: dict, prompts: dict[str, str]) -> list[tuple[str, object]]:
    from ..plot import Series, chart

    n, depth = len(records), config["depth"]
    depths = [float(d) for d in range(depth + 1)]
    rates, los, his = [], [], []
    for d in range(depth + 1):
        k = sum(r["hidden_by_depth"][d] for r in records)
        lo, hi = wilson(k, n)
        rates.append(k / n), los.append(lo), his.append(hi)
    series = [Series("pass@1 (hidden)", depths, rates, PALETTE[0]),
              Series("95% interval", depths + depths, los + his, "#9FC5E8", "points")]
    if all("baseline" in r for r in records):
        b = sum(r["baseline"]["hidden"] for r in records) / n
        calls = sum(r["baseline"]["calls"] for r in records) / n
        series.append(Series(f"equal-budget baseline ({calls:.1f} calls/task)", depths, [b] * len(depths), PALETTE[3]))
    out = [("pass@1 by depth", chart(f"pass@1 by depth ({n} tasks)", series, "depth", "pass@1", y_range=(0.0, 1.0),
                                     integer_x=True))]
    reasons: dict[str, int] = {}
    for r in records:
        key = r["loop"]["halt_reason"].split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    ordered = sorted(reasons.items(), key=lambda kv: -kv[1])
    names = ", ".join(f"{i} {name}" for i, (name, _) in enumerate(ordered))
    bars = [Series("tasks", [float(i) for i in range(len(ordered))], [float(c) for _, c in ordered], PALETTE[0],
                   "bars")]
    out.append(("halting reasons", chart(f"halting reasons: {names}", bars, "reason", "tasks", integer_x=True)))
    by_type: dict[str, list[int]] = {}
    for r in records:
        by_type.setdefault(record_type(bench_name(config), r, prompts), []).append(len(r["loop"]["attempts"]) - 1)
    top = sorted(by_type.items(), key=lambda kv: -len(kv[1]))[:4]
    hist = [Series(f"{name.split('|', 1)[1]} ({len(v)})", depths, [float(v.count(d)) for d in range(depth + 1)],
                   PALETTE[i % len(PALETTE)], "bars") for i, (name, v) in enumerate(top)]
    title = f"halting depth per task type (first error|topic; {bench_name(config)}, the 4 most common)"
    out.append(("halting depth per task type", chart(title, hist, "halting depth", "tasks", integer_x=True)))
    final = [bool(r["hidden_by_depth"][-1]) for r in records]
    xs = [float(t) for t in range(1, n + 1)]
    running = [sum(final[:t]) / t for t in range(1, n + 1)]
    band = [wilson(sum(final[:t]), t) for t in range(1, n + 1)]
    out.append(("success estimates", chart("success-rate estimates in task order", [
        Series("seed EMA (0.5, 0.999)", xs, ema(final), PALETTE[3]),
        Series("debiased EMA", xs, ema_debiased(final), PALETTE[1]),
        Series("running rate", xs, running, PALETTE[0]),
        Series("Wilson 95%", xs + xs, [lo for lo, _ in band] + [hi for _, hi in band], "#9FC5E8", "points")],
        "tasks seen", "success rate",
        y_range=(0.0, 1.0))))
    return out


def report_html(run: Path, records: list[dict], config: dict, prompts: dict[str, str]) -> str:
    n = len(records)
    alarm = divergence([bool(r["hidden_by_depth"][-1]) for r in records])
    facts = [f"{run_label(config)}, backend "
             f"{config['backend']}, depth {config['depth']}, halt {config['halt']}: {n} finished task(s)",
             f"model calls: {sum(r['loop']['calls'] for r in records)} in the loop"
             + (f", {sum(r['baseline']['calls'] for r in records)} in the baseline"
                if all('baseline' in r for r in records) else ""),
             "divergence alarm (last 30 vs earlier): " + ("FIRED" if alarm.fired else "quiet" if alarm.recent is not
                                                          None else "too few tasks to judge")]
    if not prompts:
        facts.append("task prompts not loaded (pass --data): task types have topic *")
    body = "".join(f"<h2>{html.escape(title)}</h2><img alt=\"{html.escape(title)}\" "
                   f"src=\"data:image/png;base64,{_png(image)}\">" for title, image in charts(records, config, prompts))
    items = "".join(f"<li>{html.escape(f)}</li>" for f in facts)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>report: {html.escape(run.name)}"
            "</title><style>body{font:14px system-ui,sans-serif;margin:16px}h2{font-size:15px}</style></head><body>"
            f"<h1>{html.escape(run.name)}</h1><ul id=\"facts\">{items}</ul>{body}</body></html>\n")


def write_report(run: str | Path, out: str | Path | None = None, tasks: list | None = None) -> Path:
    """Write RUN/report.html (or OUT/report.html) and return its path."""
    from .evaluate import read_config, read_records, scored

    run = Path(run)
    config = read_config(run)
    config.setdefault("backend", "?"), config.setdefault("halt", "?")
    records = scored(read_records(run, full=True))
    if not records:
        raise VizError(f"{run} has no finished (scored) task yet: records.jsonl is empty, or the backend failed "
                       "on every call")
    odd = next((r for r in records if len(r["hidden_by_depth"]) != config["depth"] + 1), None)
    if odd is not None:
        raise VizError(f"the record of {odd['task_id']} has {len(odd['hidden_by_depth'])} hidden outcomes, but "
                       f"the run's depth {config['depth']} needs {config['depth'] + 1}: records.jsonl and "
                       "config.json do not match")
    out = Path(out) if out is not None else run
    if out.exists() and not out.is_dir():
        raise VizError(f"--out {out} is a file; give a folder for report.html")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(report_html(run, records, config, {t.task_id: t.prompt for t in tasks or []}), encoding="utf-8")
    return path
