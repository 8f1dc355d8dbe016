"""The shared deep-supervision loop: refill of free slots drops no example, halting, exploration, evaluation."""

from __future__ import annotations

import torch

from recursia.halting import HaltRule, run, stop_steps
from recursia.model import TaskSpec, build_model
from recursia.supervision import DeepSupervision, Examples, rollout

from conftest import tiny_model_config

SPEC = TaskSpec(seq_len=81, vocab_size=11)


class Stream:
    """Examples numbered 0, 1, 2, ... (the example's number is also written into its first input cell)."""

    def __init__(self):
        self.next = 0
        self.fetched: list[int] = []

    def __call__(self, k: int) -> Examples:
        idx = torch.arange(self.next, self.next + k)
        self.next += k
        self.fetched.extend(idx.tolist())
        inputs = torch.randint(1, 11, (k, 81), generator=torch.Generator().manual_seed(self.next))
        return Examples(inputs, torch.randint(2, 11, (k, 81)), torch.zeros(k, dtype=torch.int32), idx)


def test_refill_drops_no_example_and_keeps_busy_slots():
    cfg = tiny_model_config(N_sup=5, halt_exploration_prob=0.5)
    model = build_model(cfg, SPEC)
    noise = torch.Generator().manual_seed(1)
    heads = model.heads

    def random_halting(y):  # make the halting rule fire at random, so slots free up at different times
        logits, q_halt, q_continue = heads(y)
        return logits, torch.randn(q_halt.shape, generator=noise), q_continue

    model.heads = random_halting
    sup = DeepSupervision(model, cfg, generator=torch.Generator().manual_seed(0))
    stream = Stream()
    carry = sup.empty_carry(8, 81, torch.device("cpu"))
    history = []  # per step: (index per slot, steps per slot, halted per slot)
    halted_total = 0
    for _ in range(40):
        before_halted = carry.halted.clone()
        before_index = carry.examples.index.clone()
        carry, loss, metrics = sup.train_step(carry, stream)
        busy = ~before_halted
        assert torch.equal(carry.examples.index[busy], before_index[busy])  # busy slots keep their example
        history.append((carry.examples.index.clone(), carry.steps.clone(), carry.halted.clone()))
        halted_total += int(metrics["count"])
        assert torch.isfinite(loss)
    # Every fetched example entered exactly one slot and none was skipped.
    assert stream.fetched == list(range(stream.next))
    seen = {}
    for index, steps, halted in history:
        for slot in range(8):
            i = int(index[slot])
            seen.setdefault(i, []).append((int(steps[slot]), bool(halted[slot]), slot))
    assert set(seen) == set(range(stream.next))
    finished = 0
    for i, runs in seen.items():
        assert len({slot for _, _, slot in runs}) == 1  # stays in one slot
        assert [s for s, _, _ in runs] == list(range(1, len(runs) + 1))  # counts 1, 2, 3, ... without gaps
        assert len(runs) <= cfg.N_sup
        assert all(not h for _, h, _ in runs[:-1])  # it only leaves when it halts
        finished += runs[-1][1]
    assert finished == halted_total
    lengths = {len(r) for i, r in seen.items() if r[-1][1]}
    assert len(lengths) > 1  # halting really varied (not all examples ran N_sup steps)


def test_fixed_halting_runs_exactly_n_sup_steps():
    cfg = tiny_model_config(N_sup=3, halting="fixed")
    model = build_model(cfg, SPEC)
    sup = DeepSupervision(model, cfg)
    stream = Stream()
    carry = sup.empty_carry(4, 81, torch.device("cpu"))
    counts = []
    for _ in range(6):
        carry, _, metrics = sup.train_step(carry, stream)
        counts.append(int(metrics["count"]))
    assert counts == [0, 0, 4, 0, 0, 4]
    assert stream.next == 8


def test_qlearn_step_runs_and_has_continue_loss():
    cfg = tiny_model_config(arch="hrm", halting="qlearn", N_sup=4)
    model = build_model(cfg, SPEC)
    with torch.no_grad():  # at init q is -5 everywhere, so the target equals the prediction: move it
        model.q_head.weight.normal_(0, 0.5)
    sup = DeepSupervision(model, cfg)
    carry = sup.empty_carry(4, 81, torch.device("cpu"))
    carry, loss, _ = sup.train_step(carry, Stream())
    loss.backward()
    assert model.q_head.weight.grad[1].abs().sum() > 0  # q_continue row receives gradient


def test_rollout_and_halting_step():
    cfg = tiny_model_config(N_sup=4)
    model = build_model(cfg, SPEC).eval()
    with torch.no_grad():
        model.q_head.bias.fill_(5.0)  # halt at once
    inputs = torch.randint(1, 11, (3, 81))
    rec = rollout(model, inputs, torch.zeros(3, dtype=torch.int32))
    assert len(rec.predictions) == 4
    assert torch.equal(stop_steps(HaltRule(learned=True), rec), torch.zeros(3, dtype=torch.long))
    short, stopped = run(model, inputs, torch.zeros(3, dtype=torch.int32), HaltRule(learned=True))
    assert len(short.predictions) == 1 and stopped.tolist() == [0, 0, 0]
    assert torch.equal(short.predictions[0], rec.predictions[0])


def test_reference_losses_are_sums_over_all_slots_divided_by_the_batch():
    """`ref_lm_loss` / `ref_q_halt_loss` mean what the reference logs: every slot's loss (halted or not)
    summed and divided by the batch, here checked against a hand computation on 3 slots of 4 cells."""
    from recursia.train import _reduce

    spec = TaskSpec(seq_len=4, vocab_size=5)
    cfg = tiny_model_config(N_sup=4, puzzle_emb_dim=0)
    model = build_model(cfg, spec)
    inputs = torch.tensor([[1, 2, 3, 4], [2, 2, 1, 1], [4, 3, 2, 1]])
    labels = torch.tensor([[2, 3, 0, 0], [4, 4, 4, 4], [0, 1, 2, 0]])  # 0: unlabelled, no loss
    ex = Examples(inputs, labels, torch.zeros(3, dtype=torch.int32), torch.arange(3))
    sup = DeepSupervision(model, cfg, loss_kind="softmax", generator=torch.Generator().manual_seed(0))
    carry, _, metrics = sup.train_step(sup.empty_carry(3, 4, torch.device("cpu")), lambda k: ex)

    with torch.no_grad():
        out = model(model.initial_state(3), inputs, ex.puzzle_ids)  # the same step, recomputed
    logp = torch.log_softmax(out.logits.double(), -1)
    lm, q = [], []
    for b in range(3):
        cells = [c for c in range(4) if labels[b, c] != 0]
        lm.append(-sum(logp[b, c, labels[b, c]] for c in cells) / len(cells))
        right = all(int(out.logits[b, c].argmax()) == int(labels[b, c]) for c in cells)
        p = torch.sigmoid(out.q_halt[b].double())
        q.append(-torch.log(p if right else 1 - p))
    assert abs(float(metrics["ref_lm_loss"]) - float(sum(lm)) / 3) < 1e-5
    assert abs(float(metrics["ref_q_halt_loss"]) - float(sum(q)) / 3) < 1e-5
    record = _reduce({k: v.float() for k, v in metrics.items()}, steps=1, world=1)
    assert not carry.halted.any() and record["halted_per_step"] == 0  # no slot halted: per-halted means are NaN
    assert record["lm_loss"] != record["lm_loss"] and abs(record["ref_lm_loss"] - float(sum(lm)) / 3) < 1e-5
