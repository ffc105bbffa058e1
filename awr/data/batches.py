"""Tensors for training and evaluation, built once per run, and the negative sampler.

Inputs are left-padded with 0 and keep the last `max_len` items (docs/protocol.md). Everything is
vectorised: building touches each interaction once; sampling never loops over users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from awr.data import split as loo
from awr.data.datasets import SequenceData
from awr.data.errors import DataError


@dataclass
class TrainTensors:
    """One training row per user with at least one training target."""

    inputs: torch.Tensor  # (U_train, L) int64, left-padded with 0, last L items of seq[:k]
    targets: torch.Tensor  # (U_train, L) int64, next item of each input position, 0 at pads
    user_index: torch.Tensor  # (U_train,) int64, index of each row's user in data.sequences
    seen_keys: torch.Tensor  # sorted unique int64 user * (num_items + 1) + item, full sequences
    num_items: int

    def subset(self, rows: torch.Tensor) -> TrainTensors:
        """The training rows `rows` (R,) int64, in that order; the seen keys stay whole, so a
        row's negatives are sampled from the same items as before."""
        return TrainTensors(
            inputs=self.inputs[rows],
            targets=self.targets[rows],
            user_index=self.user_index[rows],
            seen_keys=self.seen_keys,
            num_items=self.num_items,
        )


@dataclass
class EvalTensors:
    """One row per evaluated user (at least 3 interactions) for the valid or test split."""

    inputs: torch.Tensor  # (U_eval, L) int64, left-padded last L items of the eval input
    targets: torch.Tensor  # (U_eval,) int64
    user_index: torch.Tensor  # (U_eval,) int64, index of each row's user in data.sequences
    history_items: torch.Tensor  # flat int64, the FULL (untruncated) eval input of every row
    history_offsets: torch.Tensor  # (U_eval + 1,) int64; row r is items[off[r]:off[r+1]]

    def histories(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(lengths (R,), items (sum of lengths,)) of the full input histories of `rows` (R,)
        int64, concatenated in the order of `rows`: entry j of the i-th row is
        history_items[offsets[rows[i]] + j - first[i]], first[i] = lengths[:i].sum(). One host
        sync (the total length)."""
        starts = self.history_offsets[rows]
        lengths = self.history_offsets[rows + 1] - starts
        total = int(lengths.sum())
        shift = torch.repeat_interleave(
            starts - (lengths.cumsum(0) - lengths), lengths, output_size=total
        )
        return lengths, self.history_items[shift + torch.arange(total, device=rows.device)]

    def subset(self, rows: torch.Tensor) -> EvalTensors:
        """The evaluated users `rows` (R,) int64, in that order, their histories regathered."""
        lengths, items = self.histories(rows)
        return EvalTensors(
            inputs=self.inputs[rows],
            targets=self.targets[rows],
            user_index=self.user_index[rows],
            history_items=items,
            history_offsets=torch.cat([lengths.new_zeros(1), lengths.cumsum(0)]),
        )


def flatten(data: SequenceData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat items, per-user start offsets and lengths of the full sequences."""
    lengths = loo.lengths(data)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    return np.concatenate(data.sequences).astype(np.int64), starts, lengths


def to_tensor(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """An int64 tensor on `device` holding the array."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(device)


def left_windows(
    flat: np.ndarray, starts: np.ndarray, input_lens: np.ndarray, max_len: int, shift: int = 0
) -> np.ndarray:
    """(rows, max_len): the last max_len items of flat[start:start+len] (moved right by
    `shift`), left-padded with 0."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    pos = input_lens[:, None] - max_len + np.arange(max_len)[None, :]
    index = starts[:, None] + np.maximum(pos, 0) + shift
    return np.where(pos >= 0, flat[index], 0)


def build_train_tensors(
    data: SequenceData, max_len: int, device: torch.device | str = "cpu"
) -> TrainTensors:
    """Training rows (input seq[:k], targets seq[1:k+1]; see split.py) and sampling keys."""
    flat, starts, lengths = flatten(data)
    k = loo.train_input_lengths(lengths)
    users = np.flatnonzero(k > 0)
    inputs = left_windows(flat, starts[users], k[users], max_len)
    targets = left_windows(flat, starts[users], k[users], max_len, shift=1)
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    keys = np.sort(owner * (data.num_items + 1) + flat)
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]  # np.unique, minus its hashing
    distinct = np.bincount(keys // (data.num_items + 1), minlength=len(lengths))
    full = np.flatnonzero(distinct[users] >= data.num_items)
    if len(full):
        user = int(users[full[0]])
        raise DataError(f"{data.source}: user #{user} has every item; no negative can be drawn")
    tensors = [to_tensor(a, device) for a in (inputs, targets, users, keys)]
    return TrainTensors(*tensors, num_items=data.num_items)


def train_row_lengths(data: SequenceData, max_len: int) -> np.ndarray:
    """Valid positions of every training row (one per user with a training target), in the
    row order of build_train_tensors: min(k, max_len), k the training input length."""
    k = loo.train_input_lengths(loo.lengths(data))
    return np.minimum(k[k > 0], max_len)


def is_seen(seen_keys: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Mask of the keys present in the sorted key tensor."""
    pos = torch.searchsorted(seen_keys, keys).clamp_(max=len(seen_keys) - 1)
    return seen_keys[pos] == keys


def sample_negatives(
    tt: TrainTensors, rows: torch.Tensor, num_items: int, generator: torch.Generator
) -> torch.Tensor:
    """One negative per position of tt.targets[rows]: uniform over 1..num_items minus the user's
    full sequence, 0 at padded positions. Rejection sampling: only collisions are re-drawn."""
    if num_items != tt.num_items:
        raise ValueError(f"num_items {num_items} != the tensors' {tt.num_items}")
    targets = tt.targets[rows]
    device = targets.device
    if generator.device.type != device.type:
        raise ValueError(f"generator is on {generator.device}, the tensors on {device}")
    base = (tt.user_index[rows] * (num_items + 1)).unsqueeze(1).expand_as(targets).reshape(-1)
    neg = torch.randint(1, num_items + 1, targets.shape, generator=generator, device=device)
    flat = neg.view(-1)
    todo = torch.nonzero((targets.reshape(-1) != 0) & is_seen(tt.seen_keys, base + flat))
    todo = todo.squeeze(1)
    while todo.numel():
        draw = torch.randint(1, num_items + 1, todo.shape, generator=generator, device=device)
        flat[todo] = draw
        todo = todo[is_seen(tt.seen_keys, base[todo] + draw)]
    return neg.masked_fill_(targets == 0, 0)


def split_by_length(lengths: torch.Tensor, groups: int) -> list[torch.Tensor]:
    """Positions 0..B-1 of a batch sorted by `lengths` (B,) (stable, so ties keep batch order)
    and cut into at most `groups` non-empty parts of near-equal size: parts of similar lengths,
    whose shared left padding the backbones then skip."""
    order = torch.argsort(lengths, stable=True)
    return [part for part in order.tensor_split(groups) if part.numel()]


def build_eval_tensors(
    data: SequenceData, max_len: int, split: loo.Split, device: torch.device | str = "cpu"
) -> EvalTensors:
    """Inputs, targets and the full input history of every evaluated user for one split."""
    flat, starts, lengths = flatten(data)
    users, k = loo.eval_input_lengths(lengths, split)
    inputs = left_windows(flat, starts[users], k, max_len)
    targets = flat[starts[users] + k]
    offsets = np.concatenate(([0], np.cumsum(k))).astype(np.int64)
    within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], k)
    history = flat[np.repeat(starts[users], k) + within]

    return EvalTensors(*[to_tensor(a, device) for a in (inputs, targets, users, history, offsets)])
