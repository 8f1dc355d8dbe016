"""Per-puzzle embedding table, trained sparsely with SignSGD.

ARC gives every augmented task version its own identifier (about a million rows), so the table is a buffer, not
a parameter: a dense gradient over it (and its all-reduce under DDP) would cost more than the whole network.
In a training forward pass the rows of the batch are gathered into a small leaf tensor that autograd fills;
`SparseSignSGD` (optim.py) then updates only those rows. For Sudoku and Maze every example has identifier 0.
"""

from __future__ import annotations

import torch
from torch import nn


class PuzzleEmbedding(nn.Module):
    def __init__(self, num_ids: int, dim: int, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.register_buffer("table", torch.zeros(num_ids, dim, dtype=dtype))  # zero init, as the reference
        self.captured: list[tuple[torch.Tensor, torch.Tensor]] = []  # (ids, rows) of training forwards

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.table[ids.long()].float()
        if self.training and torch.is_grad_enabled():
            rows.requires_grad_()
            self.captured.append((ids.long(), rows))
        return rows

    def extra_repr(self) -> str:
        return f"ids={self.table.shape[0]}, dim={self.table.shape[1]}, dtype={self.table.dtype}"
