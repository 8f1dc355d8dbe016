"""Reading puzzle files, shared by every task: strict text decoding, the `source,question,answer,rating` CSV
layout, a reason per bad row, and one error that lists the bad rows (nothing is dropped silently).

A task parses its own grids; this module does everything around that, so that Sudoku and Maze files fail the
same way and `skip_invalid` means the same thing everywhere.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recursia.errors import DataError

CSV_COLUMNS = ("source", "question", "answer", "rating")
MAX_ERRORS_SHOWN = 20


@dataclass
class Records:
    """Puzzles read from a file (or generated), with what was rejected so nothing disappears silently.

    `line_numbers` are 1-based file lines (-1 for generated puzzles); `rejected` holds (line, reason) of the
    rows left out with `skip_invalid`; `stats` holds generator figures such as an acceptance rate.
    """

    questions: np.ndarray
    answers: np.ndarray | None
    ratings: np.ndarray
    sources: list[str]
    line_numbers: np.ndarray
    rejected: list[tuple[int, str]] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.questions)


def read_text(path: str | Path, kind: str) -> tuple[Path, str]:
    """The file's text, decoded strictly so that a binary or mis-encoded file is reported instead of read as
    garbage. `kind` names the file in the error ("sudoku file not found: ...")."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{kind} file not found: {p}" if not p.exists() else f"not a file: {p}")
    try:
        return p, p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not UTF-8 text (byte {exc.start} cannot be decoded)") from exc


def csv_rows(p: Path, text: str, plural: str) -> tuple[list[int], list[list[str]], list[str | None]]:
    """The data rows of a `source,question,answer,rating` file: their line numbers, their four fields (empty
    for a row of the wrong width) and a reason for each row of the wrong width. Fields are not stripped."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise DataError(f"{p}: file is empty, expected a header {','.join(CSV_COLUMNS)}")
    header = [h.strip() for h in rows[0]]
    if header != list(CSV_COLUMNS):
        raise DataError(f"{p}: header is {','.join(header)!r}, expected the columns {','.join(CSV_COLUMNS)}")
    data = [(i + 1, row) for i, row in enumerate(rows) if i > 0 and any(c.strip() for c in row)]
    if not data:
        raise DataError(f"{p}: no {plural} after the header")
    width = len(CSV_COLUMNS)
    reasons = [None if len(r) == width else f"expected {width} fields ({','.join(CSV_COLUMNS)}), found {len(r)}"
               for _, r in data]
    cols = [r if len(r) == width else [""] * width for _, r in data]
    return [line for line, _ in data], cols, reasons


def parse_ratings(texts: list[str]) -> tuple[np.ndarray, list[str | None]]:
    """Ratings are optional numbers; empty means unknown (nan), anything else non-numeric is an error."""
    out = np.full(len(texts), np.nan)
    reasons: list[str | None] = [None] * len(texts)
    for i, t in enumerate(texts):
        if t.strip():
            try:
                out[i] = float(t)
            except ValueError:
                reasons[i] = f"rating {t!r} is not a number"
    return out, reasons


def merge(*reason_lists: list[str | None]) -> list[str | None]:
    """Join the reasons of several checks per row; None where every check passed."""
    merged: list[str | None] = []
    for parts in zip(*reason_lists):
        found = [p for p in parts if p]
        merged.append("; ".join(found) if found else None)
    return merged


def report(path: Path, bad: list[tuple[int, str]], skip_invalid: bool, noun: str, *,
           skippable: bool = True) -> None:
    """Raise one error listing the bad rows (`noun`: what one row is, e.g. "maze"), unless the caller chose to
    skip them. Without `skippable` (puzzles a person hands to `solve`) the advice is only to fix them."""
    if not bad or skip_invalid:
        return
    shown = [f"  {path}:{line}: {reason}" for line, reason in bad[:MAX_ERRORS_SHOWN]]
    if len(bad) > MAX_ERRORS_SHOWN:
        shown.append(f"  ... and {len(bad) - MAX_ERRORS_SHOWN} more")
    advice = (f"Fix these {noun}s, or skip them with skip_invalid=True (command line: --skip-invalid); skipped "
              f"{noun}s are listed in the result." if skippable else f"Fix these {noun}s.")
    raise DataError(f"{path}: {len(bad)} invalid {noun}{'s' if len(bad) != 1 else ''}:\n" + "\n".join(shown)
                    + "\n" + advice)


def select(p: Path, q: np.ndarray, a: np.ndarray | None, ratings: np.ndarray, sources: list[str],
           lines: list[int], reasons: list[str | None], skip_invalid: bool, noun: str, *,
           skippable: bool = True) -> Records:
    """The rows without a reason; the others raise one error, or with `skip_invalid` go to `rejected`."""
    bad = [(ln, r) for ln, r in zip(lines, reasons) if r]
    report(p, bad, skip_invalid, noun, skippable=skippable)
    keep = np.array([r is None for r in reasons], dtype=bool)
    return Records(questions=q[keep], answers=None if a is None else a[keep], ratings=ratings[keep],
                   sources=[s for s, k in zip(sources, keep) if k],
                   line_numbers=np.asarray(lines, dtype=np.int64)[keep], rejected=bad)
