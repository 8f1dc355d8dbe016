"""Test-time fitting of puzzle embeddings: how a trained model meets a puzzle it has never seen.

With the papers' per-puzzle embeddings, a new ARC task has no trained vector. Under the `heldout` protocol we
fit only the new tasks' embedding rows on their demonstration pairs, with the network frozen, using the same
deep-supervision loop and sparse SignSGD as training; then the test inputs are answered. No weight of the
network changes, and the test outputs are never seen.
"""

from __future__ import annotations

import torch
from .progress import bar as tqdm  # plain lines when stderr is not a terminal

from .config import RunConfig
from .dataset import Sampler, Split
from .model import RecursiveModel
from .optim import SparseSignSGD
from .supervision import DeepSupervision, Examples


def fit_embeddings(model: RecursiveModel, split: Split, cfg: RunConfig, steps: int, batch_size: int,
                   seed: int = 0, progress: bool = True) -> None:
    """Run `steps` supervision steps over `split` updating only the puzzle-embedding rows it uses."""
    if model.puzzle_emb is None or steps <= 0:
        return
    device = model.embed_tokens.device
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    generator = torch.Generator(device=device).manual_seed(seed)
    sup = DeepSupervision(model, cfg.model, cfg.train.loss, generator=generator)
    sign = SparseSignSGD(model.puzzle_emb, cfg.train.puzzle_emb_lr, cfg.train.puzzle_emb_weight_decay, generator)
    sampler = Sampler(split.groups, split.puzzles, seed)

    def fetch(k: int) -> Examples:
        rows = split.rows(sampler.take(k))
        return Examples(*(torch.from_numpy(rows[key]).to(device)
                          for key in ("inputs", "labels", "puzzle_ids", "index")))

    model.train()
    bar = tqdm(total=steps, desc=f"fit embeddings (batch {batch_size})", unit="step", disable=not progress,
               leave=False)
    try:
        carry = sup.empty_carry(batch_size, split.inputs.shape[1], device)
        for _ in range(steps):
            carry, loss, _ = sup.train_step(carry, fetch)
            loss.backward()
            sign.step()
            bar.update(1)
            if progress:
                bar.set_postfix(loss=f"{float(loss) / batch_size:.3f}")
    finally:
        bar.close()
        model.puzzle_emb.captured = []
        for p, flag in frozen:
            p.requires_grad_(flag)
        model.eval()
