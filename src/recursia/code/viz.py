"""`recursia code viz RUN --task ID --out DIR`: one self-contained HTML page to step through a task's loop.

In the style of the puzzle viewer (`recursia.viz_html`): the steps are embedded as JSON and drawn by a small
script, with a step slider (also buttons and arrow keys); the page opens at the step in its address
(`viewer.html#step=2`), so a step can be linked and a browser test can drive it without a driver. Per step:
the program as a diff against the previous step (difflib, made here), the whole program, which visible tests
passed with their messages, the error signature, z's diagnosis, whether the submission at that depth passed
the hidden tests, and the halting reason at the last step.
"""

from __future__ import annotations

import difflib
import html
import json
from pathlib import Path

from ..errors import VizError

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 10px; }
#controls { display: flex; gap: 8px; align-items: center; margin-bottom: 10px; }
#slider { width: 320px; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font: 12px ui-monospace, monospace; margin: 4px 0; }
.add { background: #e6ffec; display: block; } .del { background: #ffebe9; display: block; }
.hunk { color: #6f42c1; display: block; }
.pass { color: #1a7f37; } .fail { color: #cf222e; }
#facts td { padding: 2px 10px 2px 0; vertical-align: top; }
h2 { font-size: 15px; margin: 14px 0 4px; }
"""

SCRIPT = """
"use strict";
const data = JSON.parse(document.getElementById("steps-data").textContent);
const n = data.steps.length, slider = document.getElementById("slider"), view = document.getElementById("view");
slider.max = String(n - 1);
function esc(s) {
  return String(s).replace(/[&<>"]/g, ch => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[ch]));
}
function show(k) {
  k = Math.max(0, Math.min(n - 1, Math.round(k) || 0));
  const s = data.steps[k];
  slider.value = String(k);
  view.dataset.step = String(k);
  document.getElementById("step-label").textContent = `step ${k} of ${n - 1} (depth ${s.depth})`;
  const diff = s.diff.map(l => `<span class="${l[0] === "+" ? "add" : l[0] === "-" ? "del" : l[0] === "@" ?
                                 "hunk" : "ctx"}">${esc(l)}</span>`).join("");
  const tests = s.tests.map(t => `<li class="${t.passed ? "pass" : "fail"}" data-passed="${t.passed}">` +
    `test ${t.index}: ${t.passed ? "passed" : "failed"}${t.message ? ": " + esc(t.message) : ""}</li>`).join("");
  view.innerHTML = `<table id="facts">
    <tr><td>visible tests</td><td id="visible">${s.visible_passed}/${s.visible_total}</td></tr>
    <tr><td>error signature</td><td id="signature">${esc(s.signature)}</td></tr>
    <tr><td>z (diagnosis)</td><td id="diagnosis">${esc(s.diagnosis || "(none at depth 0)")}</td></tr>
    <tr><td>submission at this depth</td><td id="hidden">step ${s.submitted}, hidden tests ${s.hidden === null ? "?" :
      s.hidden ? "pass" : "fail"}</td></tr>
    <tr><td>model calls so far</td><td>${s.calls}</td></tr>
    <tr><td>halting</td><td id="halt">${esc(s.halt)}</td></tr></table>
    <h2>visible tests</h2><ul id="tests">${tests || "<li>no test ran (no program)</li>"}</ul>
    <h2>change from the previous step</h2><pre id="diff">${diff || "(first program)"}</pre>
    <h2>program</h2><pre id="program">${esc(s.program === null ? "(no program in the reply)" : s.program)}</pre>`;
  if (location.hash !== `#step=${k}`) history.replaceState(null, "", `#step=${k}`);
}
function stepFromAddress() {
  const m = /step=(\\d+)/.exec(location.hash);
  return m ? Number(m[1]) : 0;
}
slider.addEventListener("input", () => show(Number(slider.value)));
document.getElementById("prev").addEventListener("click", () => show(Number(slider.value) - 1));
document.getElementById("next").addEventListener("click", () => show(Number(slider.value) + 1));
document.addEventListener("keydown", e => {
  if (e.key === "ArrowLeft") show(Number(slider.value) - 1);
  if (e.key === "ArrowRight") show(Number(slider.value) + 1);
});
window.addEventListener("hashchange", () => show(stepFromAddress()));
slider.value = String(stepFromAddress());
slider.dispatchEvent(new Event("input"));
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<h1 id="title">{title}</h1>
<div id="summary">{summary}</div>
<div id="controls">
  <button id="prev" title="previous step (left arrow)">&#9664;</button>
  <input type="range" id="slider" min="0" max="{last}" value="0" step="1" aria-label="step">
  <button id="next" title="next step (right arrow)">&#9654;</button>
  <span id="step-label"></span>
</div>
<div id="view"></div>
<script type="application/json" id="steps-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""


def diff_lines(before: str | None, after: str | None) -> list[str]:
    """The unified diff of two programs (no file header); [] for the first program."""
    if before is None and after is None:
        return []
    lines = difflib.unified_diff((before or "").splitlines(), (after or "").splitlines(), lineterm="", n=2)
    return [ln for ln in lines if not ln.startswith(("---", "+++"))]


def build_steps(record: dict) -> list[dict]:
    loop = record["loop"]
    attempts, best, hidden = loop["attempts"], loop.get("best") or [], record["hidden_by_depth"]
    steps = []
    for k, a in enumerate(attempts):
        tests = [{"index": t["index"], "passed": bool(t["passed"]), "message": t.get("message")}
                 for t in ((a.get("result") or {}).get("tests") or [])]
        last = k == len(attempts) - 1
        steps.append({"depth": a["depth"], "program": a["program"],
                      "diff": diff_lines(attempts[k - 1]["program"], a["program"]) if k else [],
                      "tests": tests, "visible_passed": a["visible_passed"], "visible_total": a["visible_total"],
                      "signature": a["signature"], "calls": a.get("calls", 0),
                      "diagnosis": "a fresh draw from x (restart)" if a.get("fresh") else a.get("diagnosis", ""),
                      "submitted": best[k] if k < len(best) else k,
                      "hidden": bool(hidden[k]) if k < len(hidden) else None,
                      "halt": f"halted: {loop['halt_reason']}" if last else "continues"})
    return steps


def viewer_html(record: dict, title: str) -> str:
    # The JSON sits inside a <script> element: "</script>" would end it and "<!--" would make the HTML parser
    # read the rest of the page as script data (a program holding "<!--<script>" blanked the page). JSON may
    # write any character as \\uXXXX, so <, > and & never appear raw.
    data = (json.dumps({"task_id": record["task_id"], "steps": build_steps(record)}, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    hidden = record["hidden_by_depth"]
    summary = (f"{len(record['loop']['attempts'])} step(s), halted: {html.escape(record['loop']['halt_reason'])}; "
               f"{record['loop']['calls']} model calls; final submission "
               f"{'passes' if hidden[-1] else 'fails'} the hidden tests")
    return PAGE.format(title=html.escape(title), style=STYLE, last=len(record["loop"]["attempts"]) - 1,
                       summary=summary, data=data, script=SCRIPT)


def write_viewer(run: str | Path, task_id: str, out: str | Path, sample: int = 0) -> Path:
    from .evaluate import read_config, read_records

    run = Path(run)
    read_config(run)
    records = read_records(run, full=True)
    match = [r for r in records if r["task_id"] == task_id and r["sample"] == sample]
    if not match:
        known = ", ".join(r["task_id"] for r in records[:3])
        raise VizError(f"{run} has no finished record of {task_id!r} (sample {sample}); ids there look like "
                       f"{known or 'nothing yet'}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VizError(f"--out {out} is a file; give a folder for viewer.html")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "viewer.html"
    path.write_text(viewer_html(match[0], f"{task_id} in {run.name}"), encoding="utf-8")
    return path
