"""How many length groups a training step runs: TrialConfig.length_groups, with 0 (auto)
chosen by the padding the groups save against what each sub-batch costs.

A step's rows are sorted by length and cut into G near-equal parts (split_by_length); each
part computes rows x (its longest row) positions, since the backbones skip only the padding
its rows share. With lengths l_1..l_B of one batch (capped at max_len), the cost of G groups
in units of one computed position is

    cost(G) = sum over parts p of |p| * max(l in p)  +  G * SUB_BATCH_COST[device]

where SUB_BATCH_COST is what one sub-batch's fixed work (kernel launches, Python, the
per-part loss and backward) is worth in positions. Auto takes the G in GROUP_CHOICES (at most
batch_size) of least mean cost over the batches of one seeded shuffle (SAMPLE_BATCHES at
most; every row as one batch when there are fewer rows than batch_size); ties go to fewer
groups.

SUB_BATCH_COST on CPU was measured on a 2-core EPYC (torch 2.13, hidden 64, batch 256, rows
of one length): 16 or 32 sub-batches cost about 7-17 ms each more than one, where a position
costs 19-50 us (SASRec, STOSA): 300-500 positions. On CUDA a sub-batch's launches (~2-3 ms)
outweigh tens of thousands of positions (not measured: no GPU was available), so auto keeps
one batch there unless its padding is enormous.

Resulting choices (batch 256): ML-1M at max_len 200: 8 groups (a step computes 0.65x the
positions); ML-1M at 50: 1 (nearly every row is full); Beauty at 50: 4 (0.42x); 600 rows of
length 20 at batch 64: 1.
"""

from __future__ import annotations

import numpy as np
import torch

from awr.config import TrialConfig

GROUP_CHOICES = (1, 2, 4, 8, 16, 32)
SUB_BATCH_COST = {"cpu": 400.0, "cuda": 25_000.0}  # positions; other devices: as CUDA
SAMPLE_BATCHES = 32
SAMPLE_SEED = 0


def computed_positions(lengths: np.ndarray, groups: int) -> int:
    """Positions one batch of rows with these `lengths` (B,) computes in `groups` parts of
    rows sorted by length (near-equal sizes, as split_by_length cuts them)."""
    ordered = np.sort(np.asarray(lengths, dtype=np.int64))
    parts = np.array_split(ordered, min(groups, max(len(ordered), 1)))
    return int(sum(len(part) * int(part[-1]) for part in parts if len(part)))


def sample_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The lengths of the first SAMPLE_BATCHES full batches of a seeded shuffle (every row as
    one batch when there are fewer than batch_size)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) <= batch_size:
        return [lengths]
    order = np.random.default_rng(SAMPLE_SEED).permutation(len(lengths))
    count = min(SAMPLE_BATCHES, len(lengths) // batch_size)
    return [lengths[order[i * batch_size : (i + 1) * batch_size]] for i in range(count)]


def group_costs(
    lengths: np.ndarray, batch_size: int, max_len: int, device: torch.device | str
) -> dict[int, float]:
    """cost(G) of the module docstring for every G in GROUP_CHOICES up to batch_size."""
    batches = sample_batches(np.minimum(np.asarray(lengths), max_len), batch_size)
    overhead = SUB_BATCH_COST.get(torch.device(device).type, SUB_BATCH_COST["cuda"])
    return {
        groups: float(np.mean([computed_positions(b, groups) for b in batches])) + groups * overhead
        for groups in GROUP_CHOICES
        if groups <= batch_size
    }


def auto_length_groups(
    lengths: np.ndarray, batch_size: int, max_len: int, device: torch.device | str
) -> int:
    """The number of length groups of least cost (fewer on ties); 1 without rows."""
    if len(lengths) == 0:
        return 1
    costs = group_costs(lengths, batch_size, max_len, device)
    return min(costs, key=lambda groups: (costs[groups], groups))


def with_resolved_groups(
    config: TrialConfig, lengths: np.ndarray, device: torch.device | str
) -> TrialConfig:
    """`config` with length_groups 0 (auto) resolved from its training rows' `lengths` (valid
    positions per row) on `device`: what a run trains with and records. The one resolver:
    Trainer and PackedTrainer call it on their training tensors, and awr.trial.resolve_groups
    on the data when a sweep needs the number before the run starts."""
    groups = resolve_length_groups(
        config.length_groups, device, config.batch_size, lengths, config.max_len
    )
    return config.replace(length_groups=groups)


def resolve_length_groups(
    length_groups: int,
    device: torch.device | str,
    batch_size: int,
    lengths: np.ndarray,
    max_len: int,
) -> int:
    """TrialConfig.length_groups with 0 (auto) resolved from the training rows' lengths
    (valid positions per row, e.g. awr.data.batches.train_row_lengths); the rule that
    `with_resolved_groups` applies to a config."""
    if length_groups:
        return length_groups
    return auto_length_groups(lengths, batch_size, max_len, device)
