"""What a benchmark measures on: the settings every record shares, and the tensors of one
(dataset, max_len), built once and cut to a seeded subset of rows where asked.

Datasets: a name or path for `awr.data.datasets.load_dataset` (with `--data-dir` or the
environment's AWR_DATA_DIR), or `synthetic:<name>`: seeded uniform random items with the shape
of the real dataset (awr/data/synthetic.py). `--max-steps N` makes an epoch the first N batches
of the shuffled epoch, that is a seeded random subset of N * batch_size training rows (negative
sampling included); `--max-eval-batches N` evaluates a seeded random subset of
N * eval_batch_size users. Times are then scaled by full rows / timed rows (`Workload.scaled`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from awr.config import TrialConfig
from awr.data.batches import EvalTensors, TrainTensors, build_eval_tensors, build_train_tensors
from awr.data.datasets import SequenceData, load_dataset
from awr.data.synthetic import SYNTHETIC_PREFIX, shaped_dataset

DEFAULT_MAX_LEN = {"ml-1m": 200, "beauty": 50, "tiny": 20}
SUBSET_SEED = 0


@dataclass(frozen=True)
class Settings:
    """What every record shares: the base config and the timing options."""

    base: TrialConfig
    epochs: int
    warmup: int
    eval_passes: int
    max_steps: int | None
    max_eval_batches: int | None
    packed: int
    data_dir: str | None
    seed: int  # of the synthetic data

    def trial_config(self, workload: Workload, backbone: str, mechanism: str) -> TrialConfig:
        """The base config on this workload's dataset and max_len, with this model."""
        return self.base.replace(
            dataset=workload.label,
            backbone=backbone,
            mechanism=mechanism,
            max_len=workload.max_len,
        )


@dataclass
class Workload:
    """The tensors of one (dataset, max_len): full sizes and the timed (possibly subset) ones."""

    label: str
    num_items: int
    max_len: int
    train: TrainTensors
    valid: EvalTensors
    train_rows: int  # full training rows per epoch
    eval_users: int  # full evaluated users per pass

    @property
    def train_scale(self) -> float:
        """Full training rows / timed rows (1.0 without `--max-steps`)."""
        return self.train_rows / self.train.inputs.shape[0]

    @property
    def eval_scale(self) -> float:
        """Full evaluated users / timed users (1.0 without `--max-eval-batches`)."""
        return self.eval_users / self.valid.targets.shape[0]

    @property
    def scaled(self) -> bool:
        return self.train_scale > 1.0 or self.eval_scale > 1.0


def load_bench_data(spec: str, data_dir: str | None, seed: int) -> SequenceData:
    """A dataset spec of the command line: `synthetic:<name>`, a known name or a path."""
    if spec.startswith(SYNTHETIC_PREFIX):
        return shaped_dataset(spec.removeprefix(SYNTHETIC_PREFIX), seed, data_dir)
    return load_dataset(spec, data_dir)


def default_max_len(spec: str) -> int:
    """200 for ml-1m, 50 for beauty (real or synthetic), else TrialConfig's default."""
    return DEFAULT_MAX_LEN.get(spec.removeprefix(SYNTHETIC_PREFIX), TrialConfig().max_len)


def random_rows(total: int, keep: int, device: torch.device | str) -> torch.Tensor:
    """A seeded (SUBSET_SEED) random subset of `keep` of `total` row indices, in increasing
    order, (keep,) int64 on `device`."""
    generator = torch.Generator().manual_seed(SUBSET_SEED)
    rows = torch.randperm(total, generator=generator)[:keep]
    return rows.sort().values.to(device)


def prepare_workload(data: SequenceData, label: str, max_len: int, settings: Settings) -> Workload:
    """Tensors built once on the device, cut to `--max-steps` / `--max-eval-batches` if set."""
    device = torch.device(settings.base.device)
    train = build_train_tensors(data, max_len, device)
    valid = build_eval_tensors(data, max_len, "valid", device)
    train_rows, eval_users = int(train.inputs.shape[0]), int(valid.targets.shape[0])
    if settings.max_steps is not None:
        keep = settings.max_steps * settings.base.batch_size
        if keep < train_rows:
            train = train.subset(random_rows(train_rows, keep, device))
    if settings.max_eval_batches is not None:
        keep = settings.max_eval_batches * settings.base.eval_batch_size
        if keep < eval_users:
            valid = valid.subset(random_rows(eval_users, keep, device))
    return Workload(label, data.num_items, max_len, train, valid, train_rows, eval_users)
