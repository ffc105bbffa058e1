"""Training/evaluation tensors (exact on a hand-written file) and the negative sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from awr.data import split
from awr.data.batches import build_eval_tensors, build_train_tensors, sample_negatives
from awr.data.datasets import SequenceData, load_dataset
from awr.data.errors import DataError
from awr.data.synthetic import random_sequences
from awr.eval.evaluate import history_entries

# users of length 6, 1, 2, 3, 4; items 1..9
TINY_SEQ = "10 5 1 7 3 9 2\n11 4\n12 2 8\n13 6 3 1\n14 9 8 7 6\n"
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def load_text(tmp_path: Path, text: str) -> SequenceData:
    (tmp_path / "tiny.txt").write_text(text)
    return load_dataset(str(tmp_path / "tiny.txt"), cache_dir=str(tmp_path / "cache"))


@pytest.fixture
def tiny(tmp_path: Path) -> SequenceData:
    return load_text(tmp_path, TINY_SEQ)


@pytest.mark.parametrize("device", DEVICES)
def test_train_tensors_truncate_and_left_pad(tiny: SequenceData, device: str) -> None:
    tt = build_train_tensors(tiny, max_len=2, device=device)
    assert tt.inputs.device.type == device and tt.seen_keys.device.type == device
    assert tt.inputs.tolist() == [[1, 7], [0, 2], [0, 9]]  # last 2 of [5, 1, 7], [2], [9]
    assert tt.targets.tolist() == [[7, 3], [0, 8], [0, 8]]
    assert tt.user_index.tolist() == [0, 2, 4]  # users of length 1 and 3 have no target
    tt = build_train_tensors(tiny, max_len=4, device=device)
    assert tt.inputs.tolist() == [[0, 5, 1, 7], [0, 0, 0, 2], [0, 0, 0, 9]]
    assert tt.targets.tolist() == [[0, 1, 7, 3], [0, 0, 0, 8], [0, 0, 0, 8]]
    assert tt.inputs.dtype == torch.int64 and tt.num_items == 9
    # keys user * 10 + item over the FULL sequences, validation and test items included
    expected = [1, 2, 3, 5, 7, 9, 14, 22, 28, 31, 33, 36, 46, 47, 48, 49]
    assert tt.seen_keys.tolist() == expected


@pytest.mark.parametrize("device", DEVICES)
def test_eval_tensors(tiny: SequenceData, device: str) -> None:
    ev = build_eval_tensors(tiny, max_len=3, split="valid", device=device)
    assert ev.inputs.device.type == device
    assert ev.inputs.tolist() == [[1, 7, 3], [0, 0, 6], [0, 9, 8]]
    assert ev.targets.tolist() == [9, 3, 7]
    assert ev.user_index.tolist() == [0, 3, 4]
    assert ev.history_items.tolist() == [5, 1, 7, 3, 6, 9, 8]  # untruncated
    assert ev.history_offsets.tolist() == [0, 4, 5, 7]
    ev = build_eval_tensors(tiny, max_len=3, split="test", device=device)
    assert ev.inputs.tolist() == [[7, 3, 9], [0, 6, 3], [9, 8, 7]]
    assert ev.targets.tolist() == [2, 1, 6]
    assert ev.history_items.tolist() == [5, 1, 7, 3, 9, 6, 3, 9, 8, 7]
    assert ev.history_offsets.tolist() == [0, 5, 7, 10]


@pytest.mark.parametrize("device", DEVICES)
def test_eval_subset_regathers_histories_by_hand(tiny: SequenceData, device: str) -> None:
    ev = build_eval_tensors(tiny, max_len=3, split="valid", device=device)  # as above
    rows = torch.tensor([2, 0, 2], device=device)  # out of order, repeated
    lengths, items = ev.histories(rows)
    assert lengths.tolist() == [2, 4, 2] and items.tolist() == [9, 8, 5, 1, 7, 3, 9, 8]
    part = ev.subset(rows)
    assert part.inputs.tolist() == [[0, 9, 8], [1, 7, 3], [0, 9, 8]]
    assert part.targets.tolist() == [7, 9, 7] and part.user_index.tolist() == [4, 0, 4]
    assert part.history_items.tolist() == [9, 8, 5, 1, 7, 3, 9, 8]
    assert part.history_offsets.tolist() == [0, 2, 6, 8]
    empty = ev.subset(torch.tensor([], dtype=torch.int64, device=device))
    assert empty.history_offsets.tolist() == [0] and empty.history_items.numel() == 0


def test_histories_and_history_entries_equal_a_per_row_loop() -> None:
    lengths = np.random.default_rng(0).integers(1, 30, size=300)
    data = random_sequences("random", lengths, 100, seed=1, source="test")
    ev = build_eval_tensors(data, max_len=8, split="test")
    rows = torch.randint(0, ev.targets.numel(), (120,), generator=torch.Generator().manual_seed(2))
    offsets = ev.history_offsets.tolist()
    want = [ev.history_items[offsets[r] : offsets[r + 1]].tolist() for r in rows.tolist()]
    got_lengths, got_items = ev.histories(rows)
    assert got_lengths.tolist() == [len(h) for h in want]
    assert got_items.tolist() == [item for history in want for item in history]
    part = ev.subset(rows)
    for i, history in enumerate(want):
        start, end = part.history_offsets[i], part.history_offsets[i + 1]
        assert part.history_items[start:end].tolist() == history
    positions, items = history_entries(ev, rows)  # evaluate's masking reads the same gather
    assert positions.tolist() == [i for i, history in enumerate(want) for _ in history]
    assert items.tolist() == got_items.tolist()


def test_train_subset_keeps_the_sampler_alike(tiny: SequenceData) -> None:
    tt = build_train_tensors(tiny, max_len=4, device="cpu")
    rows = torch.tensor([2, 0, 2, 1])
    part = tt.subset(rows)
    for name in ("inputs", "targets", "user_index"):
        assert torch.equal(getattr(part, name), getattr(tt, name)[rows])
    assert part.seen_keys is tt.seen_keys and part.num_items == tt.num_items
    mine = sample_negatives(part, torch.arange(4).repeat(50), 9, torch.Generator().manual_seed(5))
    full = sample_negatives(tt, rows.repeat(50), 9, torch.Generator().manual_seed(5))
    assert torch.equal(mine, full)  # the same negatives as the full tensors' rows


@pytest.mark.parametrize("device", DEVICES)
def test_negatives_avoid_the_full_sequence_and_pads(tiny: SequenceData, device: str) -> None:
    tt = build_train_tensors(tiny, max_len=4, device=device)
    rows = torch.tensor([0, 1, 2] * 500, device=device)
    gen = torch.Generator(device=device).manual_seed(7)
    neg = sample_negatives(tt, rows, tiny.num_items, gen)
    assert neg.shape == (1500, 4) and neg.dtype == torch.int64 and neg.device.type == device
    pad = tt.targets[rows] == 0
    assert (neg[pad] == 0).all() and (neg[~pad] >= 1).all()
    neg = neg.cpu().numpy()
    allowed = {0: {4, 6, 8}, 1: {1, 3, 4, 5, 6, 7, 9}, 2: {1, 2, 3, 4, 5}}  # complements
    for row in range(3):
        values = set(neg[row::3][~pad.cpu().numpy()[row::3]].tolist())
        assert values == allowed[row]  # every allowed item drawn, nothing else


def test_negatives_are_seeded_and_roughly_uniform(tiny: SequenceData) -> None:
    tt = build_train_tensors(tiny, max_len=4, device="cpu")
    user0 = torch.zeros(20000, dtype=torch.int64)  # 3 targets, negatives in {4, 6, 8}

    def draw(rows: torch.Tensor, seed: int) -> torch.Tensor:
        return sample_negatives(tt, rows, 9, torch.Generator().manual_seed(seed))

    first = draw(user0, 1)
    assert torch.equal(first, draw(user0, 1))
    assert not torch.equal(first, draw(user0, 2))
    counts = torch.bincount(first[:, 1:].reshape(-1), minlength=10)
    assert counts.sum() == 60000 and counts[[4, 6, 8]].sum() == 60000
    assert (counts[[4, 6, 8]].double() / 60000 - 1 / 3).abs().max() < 0.01  # sd about 0.002
    user2 = torch.full((30000,), 1)  # row 1 is user 2: one target, 7 allowed items
    counts = torch.bincount(draw(user2, 3)[:, -1], minlength=10)[[1, 3, 4, 5, 6, 7, 9]]
    assert (counts.double() / 30000 - 1 / 7).abs().max() < 0.01


def test_sampler_argument_checks(tiny: SequenceData) -> None:
    tt = build_train_tensors(tiny, max_len=4, device="cpu")
    with pytest.raises(ValueError, match="num_items"):
        sample_negatives(tt, torch.tensor([0]), 10, torch.Generator())
    if torch.cuda.is_available():
        gpu = build_train_tensors(tiny, max_len=4, device="cuda")
        with pytest.raises(ValueError, match="generator"):
            sample_negatives(gpu, torch.tensor([0], device="cuda"), 9, torch.Generator())
    with pytest.raises(ValueError, match="max_len"):
        build_train_tensors(tiny, max_len=0, device="cpu")


def test_user_with_every_item_is_an_error(tmp_path: Path) -> None:
    data = load_text(tmp_path, "1 1 2 3 4\n2 1\n")
    with pytest.raises(DataError, match="has every item"):
        build_train_tensors(data, max_len=4, device="cpu")


def test_ml1m_tensors_and_negatives(data_dir: Path, tmp_path: Path) -> None:
    data = load_dataset("ml-1m", str(data_dir), str(tmp_path))
    lengths = split.lengths(data)
    tt = build_train_tensors(data, max_len=200, device="cpu")
    assert tt.inputs.shape == (6040, 200) and tt.user_index.tolist() == list(range(6040))
    longest, shortest = int(lengths.argmax()), int(lengths.argmin())
    seq = data.sequences[longest]
    assert tt.inputs[longest].tolist() == seq[:-3][-200:].tolist()  # truncated to the last 200
    assert tt.targets[longest].tolist() == seq[1:-2][-200:].tolist()
    seq = data.sequences[shortest]
    assert tt.inputs[shortest].tolist() == [0] * 185 + seq[:-3].tolist()  # 18 - 3 = 15 items
    assert tt.targets[shortest].tolist() == [0] * 185 + seq[1:-2].tolist()
    rows = torch.tensor([longest, shortest] + list(range(0, 6040, 50)))
    neg = sample_negatives(tt, rows, data.num_items, torch.Generator().manual_seed(0)).numpy()
    for row, user in enumerate(rows.tolist()):
        real = tt.targets[user].numpy() != 0
        assert (neg[row][~real] == 0).all() and (neg[row][real] >= 1).all()
        assert not np.isin(neg[row][real], data.sequences[user]).any()
    ev = build_eval_tensors(data, max_len=200, split="test", device="cpu")
    assert ev.history_offsets[-1] == int((lengths - 1).sum())
    assert ev.targets.tolist() == [int(s[-1]) for s in data.sequences]
