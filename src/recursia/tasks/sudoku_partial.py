"""The best partial grid of an unsolved Sudoku: what `recursia solve` shows instead of an invalid answer.

A model's answer that breaks a rule must not be printed as if it were a solution, yet most of its cells are
often right. The partial grid keeps the clues, then adds the model's digits from the most to the least
confident, skipping any digit that repeats one already placed in its row, column or box. The result never
breaks a rule and agrees with every clue; the cells left blank are the ones the model got in conflict.
"""

from __future__ import annotations

import numpy as np

from .sudoku import _CELL_UNITS, _as_grid


def best_partial(question: np.ndarray, answer: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """(81,) the clues plus the model's digits that fit, most confident first (0: left blank)."""
    q, a = _as_grid(question), _as_grid(answer)
    conf = np.zeros(81) if confidence is None else np.asarray(confidence, dtype=np.float64).reshape(81)
    out = q.copy()
    used = np.zeros((27, 10), dtype=bool)  # used[unit, digit]
    for cell in np.nonzero(q)[0]:
        used[_CELL_UNITS[cell], q[cell]] = True
    for cell in np.argsort(-conf, kind="stable"):
        d = a[cell]
        if q[cell] or not d or used[_CELL_UNITS[cell], d].any():
            continue
        out[cell] = d
        used[_CELL_UNITS[cell], d] = True
    return out
