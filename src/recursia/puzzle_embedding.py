"""Per-puzzle embedding table, trained sparsely with SignSGD.

ARC gives every augmented task version its own identifier (about a million rows), so the table is a buffer, not
a parameter: a dense gradient over it (and its all-reduce under DDP) would cost more than the whole network.
In a training forward pass the rows of the batch are gathered into a small leaf tensor that autograd fills;
`SparseSignSGD` (optim.py) then updates only those rows. For Sudoku and Maze every example has identifier 0.

The table may be stored in bf16 (`model.puzzle_emb_dtype=bfloat16`), halving ARC-AGI-1's ~1M x 512 table from
2 GB to 1 GB. Updates of size lr * wd are far below bf16's resolution, so writes round stochastically
(`stochastic_bf16`): unbiased on average, where round-to-nearest would silently drop the weight decay.
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

    def write_rows(self, ids: torch.Tensor, rows: torch.Tensor, generator: torch.Generator | None) -> None:
        """Store fp32 `rows` at `ids`, rounding stochastically when the table is bf16."""
        if self.table.dtype == torch.bfloat16:
            self.table[ids] = stochastic_bf16(rows, generator)
        else:
            self.table[ids] = rows.to(self.table.dtype)

    def extra_repr(self) -> str:
        return f"ids={self.table.shape[0]}, dim={self.table.shape[1]}, dtype={self.table.dtype}"


def stochastic_bf16(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Round fp32 to bf16 up or down at random, with probability given by the distance (unbiased).

    bf16 is the top 16 bits of fp32: adding uniform noise below them and truncating rounds the magnitude up
    with probability equal to the dropped fraction, for either sign.
    """
    bits = x.float().contiguous().view(torch.int32)
    noise = torch.randint(0, 1 << 16, bits.shape, dtype=torch.int32, device=bits.device, generator=generator)
    return ((bits + noise) & -65536).view(torch.float32).to(torch.bfloat16)
