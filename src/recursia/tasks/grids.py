"""The 8 symmetries of a square grid (the dihedral group D4), shared by the Maze and ARC tasks.

Transform ids follow the reference implementation, so augmented data sets line up with it:
0 identity, 1-3 rotations by 90/180/270 degrees counter-clockwise (`np.rot90`), 4 left-right flip,
5 up-down flip, 6 transpose, 7 anti-transpose.
"""

from __future__ import annotations

import numpy as np

NUM_DIHEDRAL = 8
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)  # applying t then DIHEDRAL_INVERSE[t] gives the identity


def dihedral(grid: np.ndarray, t: int) -> np.ndarray:
    """Transform the last two axes of `grid` by dihedral symmetry `t` (returns a contiguous copy)."""
    if not 0 <= t < NUM_DIHEDRAL:
        raise ValueError(f"dihedral transform id must be 0..7, got {t}")
    g = grid
    axes = (-2, -1)
    if t == 1:
        g = np.rot90(g, 1, axes=axes)
    elif t == 2:
        g = np.rot90(g, 2, axes=axes)
    elif t == 3:
        g = np.rot90(g, 3, axes=axes)
    elif t == 4:
        g = np.flip(g, axis=-1)
    elif t == 5:
        g = np.flip(g, axis=-2)
    elif t == 6:
        g = np.swapaxes(g, -2, -1)
    elif t == 7:
        g = np.flip(np.rot90(g, 1, axes=axes), axis=-1)
    return np.ascontiguousarray(g)


def inverse_dihedral(grid: np.ndarray, t: int) -> np.ndarray:
    return dihedral(grid, DIHEDRAL_INVERSE[t])
