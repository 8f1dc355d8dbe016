"""viewer.html: one self-contained page to step through a `viz.Scene` (no network, no Pillow, no libraries).

The scene is embedded as JSON and drawn by a small script as inline SVG: a step slider (also buttons, arrow
keys and play), the panels at that step with per-cell confidence in each cell's tooltip, the step's caption,
and the halting curve sigmoid(q_halt) with the mean cell confidence per step. The page opens at the step named
in its address (`viewer.html#step=3`), moving the slider updates that address, so a step can be linked, and
a browser test can drive the slider without a driver.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from .viz import Scene

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 10px; }
#controls { display: flex; gap: 8px; align-items: center; margin-bottom: 10px; }
#slider { width: 320px; }
#view { display: flex; gap: 14px; align-items: flex-start; flex-wrap: wrap; }
.panel .ptitle { font-size: 12px; color: #444; margin-bottom: 3px; }
.panel .empty { border: 1px dashed #999; color: #999; padding: 20px; }
#caption { margin: 8px 0; color: #333; }
#legend span.sw { display: inline-block; width: 12px; height: 12px; border: 1px solid #666;
                  vertical-align: middle; margin: 0 4px 0 12px; }
#cell-info { color: #555; min-height: 1.2em; margin-top: 6px; }
svg text { font-family: system-ui, sans-serif; }
"""

SCRIPT = """
"use strict";
const scene = JSON.parse(document.getElementById("scene-data").textContent);
const C = scene.colours, n = scene.steps.length, cell = scene.cell;
const slider = document.getElementById("slider"), view = document.getElementById("view");
slider.max = String(n);

function esc(s) {
  return String(s).replace(/[&<>"]/g, ch => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[ch]));
}

function panelSvg(p, role) {
  const out = [`<div class="panel" data-role="${role}"><div class="ptitle">${esc(p.title)}</div>`];
  if (!p.rows || !p.cols) return out.join("") + '<div class="empty">no grid</div></div>';
  const w = p.cols * cell, h = p.rows * cell, half = cell / 2;
  out.push(`<svg class="grid" width="${w + 2}" height="${h + 2}" viewBox="-1 -1 ${w + 2} ${h + 2}">`);
  for (let i = 0; i < p.fill.length; i++) {
    const r = Math.floor(i / p.cols), c = i % p.cols;
    let tip = `row ${r + 1}, column ${c + 1}`;
    if (p.text && p.text[i]) tip += `: ${p.text[i]}`;
    if (p.confidence) tip += `, confidence ${p.confidence[i].toFixed(3)}`;
    out.push(`<rect class="cell" data-cell="${i}" x="${c * cell}" y="${r * cell}" width="${cell}" ` +
             `height="${cell}" fill="${C[p.fill[i]]}"><title>${esc(tip)}</title></rect>`);
  }
  const lines = [];
  if (p.grid) {
    for (let k = 1; k < p.cols; k++) lines.push(`M${k * cell} 0V${h}`);
    for (let k = 1; k < p.rows; k++) lines.push(`M0 ${k * cell}H${w}`);
    out.push(`<path d="${lines.join("")}" stroke="${p.grid}" stroke-width="1" fill="none"/>`);
  }
  if (p.box) {
    const box = [];
    for (let k = p.box; k < p.cols; k += p.box) box.push(`M${k * cell} 0V${h}`);
    for (let k = p.box; k < p.rows; k += p.box) box.push(`M0 ${k * cell}H${w}`);
    out.push(`<path d="${box.join("")}" stroke="#333" stroke-width="2" fill="none"/>`);
  }
  out.push(`<rect x="0" y="0" width="${w}" height="${h}" fill="none" stroke="#333"/>`);
  for (const [r1, c1, r2, c2] of p.segments) {
    out.push(`<line class="path" x1="${c1 * cell + half}" y1="${r1 * cell + half}" x2="${c2 * cell + half}" ` +
             `y2="${r2 * cell + half}" stroke="${scene.path_colour}" stroke-width="${Math.max(2, cell / 3)}" ` +
             `stroke-linecap="round"/>`);
  }
  if (p.text) {
    for (let i = 0; i < p.text.length; i++) {
      if (!p.text[i]) continue;
      const r = Math.floor(i / p.cols), c = i % p.cols;
      const weight = p.bold && p.bold[i] ? "bold" : "normal";
      out.push(`<text class="cell-text" data-cell="${i}" x="${c * cell + half}" y="${r * cell + half}" ` +
               `fill="${C[p.ink[i]]}" font-size="${Math.max(8, cell * 0.62)}" font-weight="${weight}" ` +
               `text-anchor="middle" dominant-baseline="central" pointer-events="none">${esc(p.text[i])}</text>`);
    }
  }
  if (p.changed) {
    const sw = Math.max(1, Math.floor(cell / 10));
    for (let i = 0; i < p.changed.length; i++) {
      if (!p.changed[i]) continue;
      const r = Math.floor(i / p.cols), c = i % p.cols;
      out.push(`<rect class="changed" data-cell="${i}" x="${c * cell + sw / 2}" y="${r * cell + sw / 2}" ` +
               `width="${cell - sw}" height="${cell - sw}" fill="none" stroke="${scene.changed_colour}" ` +
               `stroke-width="${sw}" pointer-events="none"/>`);
    }
  }
  return out.join("") + "</svg></div>";
}

function chartSvg(k) {
  const W = 420, H = 170, L = 40, R = 12, T = 12, B = 30, pw = W - L - R, ph = H - T - B;
  const x = s => L + (n === 1 ? pw / 2 : (s - 1) * pw / (n - 1)), y = v => T + (1 - v) * ph;
  const out = [`<svg id="halting-chart" width="${W}" height="${H}">`];
  for (const v of [0, 0.5, 1]) {
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"` +
             (v === 0.5 ? ' stroke-dasharray="4 3"' : "") + "/>");
    out.push(`<text x="${L - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v}</text>`);
  }
  for (let s = 1; s <= n; s++) {
    if (n <= 20 || s % Math.ceil(n / 20) === 0 || s === 1)
      out.push(`<text x="${x(s)}" y="${T + ph + 14}" font-size="10" text-anchor="middle">${s}</text>`);
  }
  out.push(`<text x="${L + pw / 2}" y="${H - 2}" font-size="11" text-anchor="middle">supervision step</text>`);
  out.push(`<line id="current-step" x1="${x(k)}" x2="${x(k)}" y1="${T}" y2="${T + ph}" stroke="#7B2FF7"/>`);
  if (n > scene.n_sup) {  // steps beyond the trained N_sup
    out.push(`<line x1="${x(scene.n_sup)}" x2="${x(scene.n_sup)}" y1="${T}" y2="${T + ph}" stroke="#999" ` +
             `stroke-dasharray="2 3"/><text x="${x(scene.n_sup) + 3}" y="${T + ph - 4}" font-size="10">N_sup</text>`);
  }
  const series = [["mean cell confidence", "#999", scene.steps.map(s => s.mean_confidence)]];
  if (scene.steps[0].halt_prob !== null)
    series.push(["sigmoid(q_halt)", "#0B57D0", scene.steps.map(s => s.halt_prob)]);
  series.forEach(([name, colour, values], j) => {
    const pts = values.map((v, i) => `${x(i + 1)},${y(v)}`).join(" ");
    out.push(`<polyline class="series" data-name="${name}" points="${pts}" fill="none" stroke="${colour}" ` +
             `stroke-width="2"/>`);
    values.forEach((v, i) => {
      const fired = name.startsWith("sigmoid") && scene.steps[i].fired;
      out.push(`<circle cx="${x(i + 1)}" cy="${y(v)}" r="${fired ? 5 : 3}" fill="${fired ? colour : "#fff"}" ` +
               `stroke="${colour}"><title>step ${i + 1}: ${name} ${v.toFixed(3)}${fired ? ", halts" : ""}` +
               `</title></circle>`);
    });
    out.push(`<rect x="${L + 8}" y="${T + 4 + 14 * j}" width="10" height="3" fill="${colour}"/>` +
             `<text x="${L + 22}" y="${T + 9 + 14 * j}" font-size="11">${name}</text>`);
  });
  if (scene.steps[0].halt_prob === null)
    out.push(`<text x="${L + 8}" y="${T + 36}" font-size="11">no halting head (halting is fixed)</text>`);
  return out.join("") + "</svg>";
}

function show(k) {
  k = Math.max(1, Math.min(n, Math.round(k) || 1));
  const s = scene.steps[k - 1];
  slider.value = String(k);
  view.dataset.step = String(k);
  view.innerHTML = [...scene.before.map(p => panelSvg(p, "before")), ...s.panels.map(p => panelSvg(p, "step")),
                    ...scene.after.map(p => panelSvg(p, "after"))].join("");
  document.getElementById("step-label").textContent = `step ${k} of ${n} (trained with N_sup = ${scene.n_sup})`;
  document.getElementById("caption").textContent = s.lines.join(" \\u00b7 ");
  document.getElementById("chart").innerHTML = chartSvg(k);
  if (location.hash !== `#step=${k}`) history.replaceState(null, "", `#step=${k}`);
}

function stepFromAddress() {
  const m = /step=(\\d+)/.exec(location.hash);
  return m ? Number(m[1]) : 1;
}

let timer = null;
function play() {
  const button = document.getElementById("play");
  if (timer !== null) { clearInterval(timer); timer = null; button.textContent = "play"; return; }
  if (Number(slider.value) >= n) show(1);
  button.textContent = "pause";
  timer = setInterval(() => {
    if (Number(slider.value) >= n) { play(); return; }
    show(Number(slider.value) + 1);
  }, 600);
}

slider.addEventListener("input", () => show(Number(slider.value)));
document.getElementById("prev").addEventListener("click", () => show(Number(slider.value) - 1));
document.getElementById("next").addEventListener("click", () => show(Number(slider.value) + 1));
document.getElementById("play").addEventListener("click", play);
document.addEventListener("keydown", e => {
  if (e.key === "ArrowLeft") show(Number(slider.value) - 1);
  if (e.key === "ArrowRight") show(Number(slider.value) + 1);
});
window.addEventListener("hashchange", () => show(stepFromAddress()));
view.addEventListener("mouseover", e => {
  const t = e.target.closest("rect.cell");
  if (t) document.getElementById("cell-info").textContent = t.textContent;
});
document.getElementById("legend").innerHTML = scene.legend.map(
  ([colour, label]) => `<span class="sw" style="background:${colour}"></span>${esc(label)}`).join("");
document.getElementById("title").textContent = scene.title;
// Open at the address's step by moving the slider, exactly as a person would.
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
<div id="controls">
  <button id="prev" title="previous step (left arrow)">&#9664;</button>
  <input type="range" id="slider" min="1" max="{n}" value="1" step="1" aria-label="supervision step">
  <button id="next" title="next step (right arrow)">&#9654;</button>
  <button id="play">play</button>
  <span id="step-label"></span>
</div>
<div id="view"></div>
<div id="caption"></div>
<div id="cell-info"></div>
<div id="chart"></div>
<div id="legend"></div>
<script type="application/json" id="scene-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""


def viewer_html(scene: Scene) -> str:
    """The page as a string. `</` in the data is escaped so that no string can close the script element."""
    data = json.dumps(scene.to_json(), separators=(",", ":")).replace("</", "<\\/")
    return PAGE.format(title=html.escape(scene.title), style=STYLE, n=len(scene.steps), data=data,
                       script=SCRIPT)


def write_viewer(scene: Scene, path: Path) -> Path:
    path.write_text(viewer_html(scene), encoding="utf-8")
    return path
