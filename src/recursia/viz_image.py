"""Pictures of a `viz.Scene` with Pillow: the strip of every step (steps.png) and the animation (steps.gif).

Pillow is an optional dependency (`pip install 'recursia[viz]'`); `pillow()` imports it and says how to install
it when it is missing. Both pictures use one layout, so a GIF frame is exactly the strip's tile of that step:

    [title                                                   ]
    [before panels] [step 1 panels] ... [step N panels] [after panels]
    [              ] [caption lines ] ... [caption lines ]
    [legend                                                  ]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import VizError
from .viz import Panel, Scene

MARGIN = 12  # around the picture
GAP = 14  # between panel slots
TITLE_H = 26  # scene title
HEAD_H = 18  # a panel's title above its grid
LINE_H = 16  # one caption or legend line
MIN_SLOT_W = 100  # small ARC grids still get room for their titles and captions
BACKGROUND = "#FFFFFF"
FRAME_MS = 700  # GIF: time per step; the last step stays three times as long


def pillow() -> Any:
    """The PIL package, or a VizError that says how to install it."""
    try:
        import PIL.Image
        import PIL.ImageDraw
        import PIL.ImageFont
    except ImportError as e:
        raise VizError(f"drawing PNG/GIF pictures needs Pillow: pip install 'recursia[viz]' ({e})") from e
    if tuple(int(v) for v in PIL.__version__.split(".")[:2]) < (10, 1):
        raise VizError(f"drawing PNG/GIF pictures needs Pillow >= 10.1 (its built-in scalable font), found "
                       f"{PIL.__version__}: pip install -U 'recursia[viz]'")
    return PIL


_FONTS: dict[int, Any] = {}


def font(size: int) -> Any:
    """Pillow's built-in scalable font at `size` pixels (Pillow >= 10.1), so no font file is needed."""
    if size not in _FONTS:
        _FONTS[size] = pillow().ImageFont.load_default(size=size)
    return _FONTS[size]


@dataclass
class Layout:
    """Pixel sizes of one picture of `scene` showing `n_steps` steps."""

    slot_w: int
    slot_h: int
    caption_h: int
    legend_h: int
    width: int
    height: int
    slots: int

    @property
    def pitch(self) -> int:
        """Horizontal distance from one slot to the next."""
        return self.slot_w + GAP


def layout(scene: Scene, n_steps: int) -> Layout:
    rows, cols = scene.slot()
    slot_w, slot_h = max(cols * scene.cell + 2, MIN_SLOT_W), rows * scene.cell + 2
    per_step = len(scene.steps[0].panels) if scene.steps else 0
    slots = len(scene.before) + n_steps * per_step + len(scene.after)
    width = 2 * MARGIN + slots * slot_w + (slots - 1) * GAP
    caption_h = LINE_H * max((len(s.lines) for s in scene.steps), default=0) + 4
    legend_h = LINE_H * len(_legend_rows(scene, width - 2 * MARGIN))
    height = MARGIN + TITLE_H + HEAD_H + slot_h + caption_h + legend_h + MARGIN
    return Layout(slot_w, slot_h, caption_h, legend_h, width, height, slots)


def _text_width(text: str, size: int) -> int:
    left, _, right, _ = font(size).getbbox(text)
    return int(right - left)


def _fit(text: str, size: int, width: int) -> str:
    """`text`, shortened with an ellipsis to fit `width` pixels."""
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "...", size) > width:
        text = text[:-1]
    return text + "..."


def _legend_rows(scene: Scene, width: int) -> list[list[tuple[str, str]]]:
    """Legend entries wrapped into rows that fit `width`."""
    rows: list[list[tuple[str, str]]] = [[]]
    used = 0
    for colour, label in scene.legend:
        need = LINE_H + 4 + _text_width(label, 11) + 14
        if rows[-1] and used + need > width:
            rows.append([])
            used = 0
        rows[-1].append((colour, label))
        used += need
    return rows if rows[0] else []


def draw_panel(draw: Any, scene: Scene, panel: Panel, x0: int, y0: int, width: int) -> None:
    """One grid of `scene` with its title above, at (x0, y0) = the top-left corner of its title."""
    cell, table = scene.cell, scene.colours
    draw.text((x0, y0 + 2), _fit(panel.title, 12, width), fill="#333333", font=font(12))
    top = y0 + HEAD_H
    if panel.rows == 0 or panel.cols == 0:
        draw.rectangle([x0, top, x0 + 6 * cell, top + 3 * cell], outline="#999999")
        draw.text((x0 + 4, top + 4), "no grid", fill="#999999", font=font(11))
        return
    text_size = max(8, int(cell * 0.62))
    for i, colour in enumerate(panel.fill):
        r, c = divmod(i, panel.cols)
        x, y = x0 + 1 + c * cell, top + 1 + r * cell
        draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=table[colour])
    w, h = panel.cols * cell, panel.rows * cell
    if panel.grid:
        for k in range(1, panel.cols):
            draw.line([x0 + 1 + k * cell, top + 1, x0 + 1 + k * cell, top + h], fill=panel.grid)
        for k in range(1, panel.rows):
            draw.line([x0 + 1, top + 1 + k * cell, x0 + w, top + 1 + k * cell], fill=panel.grid)
    if panel.box:
        for k in range(panel.box, panel.cols, panel.box):
            draw.line([x0 + 1 + k * cell, top + 1, x0 + 1 + k * cell, top + h], fill="#333333", width=2)
        for k in range(panel.box, panel.rows, panel.box):
            draw.line([x0 + 1, top + 1 + k * cell, x0 + w, top + 1 + k * cell], fill="#333333", width=2)
    draw.rectangle([x0, top, x0 + w + 1, top + h + 1], outline="#333333", width=1)
    half = cell / 2
    for r1, c1, r2, c2 in panel.segments:
        draw.line([x0 + 1 + c1 * cell + half, top + 1 + r1 * cell + half,
                   x0 + 1 + c2 * cell + half, top + 1 + r2 * cell + half], fill=scene.path_colour,
                  width=max(2, cell // 3))
    if panel.text:
        for i, text in enumerate(panel.text):
            if not text:
                continue
            r, c = divmod(i, panel.cols)
            bold = bool(panel.bold and panel.bold[i])
            ink = table[panel.ink[i]] if panel.ink else "#000000"
            draw.text((x0 + 1 + c * cell + half, top + 1 + r * cell + half), text, fill=ink,
                      font=font(text_size), anchor="mm", stroke_width=1 if bold and cell >= 20 else 0,
                      stroke_fill=ink)
    if panel.changed:
        width = max(1, cell // 10)
        for i, changed in enumerate(panel.changed):
            if changed:
                r, c = divmod(i, panel.cols)
                x, y = x0 + 1 + c * cell, top + 1 + r * cell
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline=scene.changed_colour, width=width)


def render(scene: Scene, steps: list[int]) -> Any:
    """A picture of `scene` showing the steps at the given 0-based indices (all of them: the strip)."""
    PIL = pillow()
    lay = layout(scene, len(steps))
    image = PIL.Image.new("RGB", (lay.width, lay.height), BACKGROUND)
    draw = PIL.ImageDraw.Draw(image)
    title = scene.title if len(steps) != 1 else f"{scene.title}: step {steps[0] + 1} of {len(scene.steps)}"
    draw.text((MARGIN, MARGIN), title, fill="#000000", font=font(15))
    top = MARGIN + TITLE_H
    x = MARGIN
    for panel in scene.before:
        draw_panel(draw, scene, panel, x, top, lay.slot_w)
        x += lay.pitch
    for k in steps:
        view = scene.steps[k]
        start = x
        for panel in view.panels:
            draw_panel(draw, scene, panel, x, top, lay.slot_w)
            x += lay.pitch
        y = top + HEAD_H + lay.slot_h + 4
        for line in view.lines:
            draw.text((start, y), _fit(line, 11, x - start - GAP), fill="#333333", font=font(11))
            y += LINE_H
    for panel in scene.after:
        draw_panel(draw, scene, panel, x, top, lay.slot_w)
        x += lay.pitch
    y = top + HEAD_H + lay.slot_h + lay.caption_h
    for row in _legend_rows(scene, lay.width - 2 * MARGIN):
        x = MARGIN
        for colour, label in row:
            draw.rectangle([x, y + 2, x + LINE_H - 6, y + LINE_H - 4], fill=colour, outline="#666666")
            draw.text((x + LINE_H, y + 1), label, fill="#333333", font=font(11))
            x += LINE_H + 4 + _text_width(label, 11) + 14
        y += LINE_H
    return image


def write_strip(scene: Scene, path: Path) -> Path:
    """steps.png: every step side by side."""
    render(scene, list(range(len(scene.steps)))).save(path)
    return path


def write_gif(scene: Scene, path: Path) -> Path:
    """steps.gif: one frame per step, looping."""
    frames = [render(scene, [k]) for k in range(len(scene.steps))]
    durations = [FRAME_MS] * (len(frames) - 1) + [3 * FRAME_MS]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path
