"""MLflow run names that say what a trial varies, so the runs table reads without opening runs:
stage 1 `ml-1m-sasrec-none-hs64-ml50-lr1e-3-wd0-dropout0.2-nh2-nl2` (the values of the keys the
stage's search space suggests, in the space's order), stage 2 `ml-1m-sasrec-simple-s42` (mechanism
and seed, then any other axis, e.g. `-ml100`).

A key is shortened to the initials of its words (`hidden_size` -> `hs`), a one-word key stays
whole (`lr`, `dropout`); keys whose short forms collide keep their full names. Values are
written as briefly as they read exactly: `1e-3` for 0.001, `0.2`, `64`, `1`/`0` for booleans.
Grid points therefore get distinct names; a point a sampler draws twice gets the same name twice
(the `ray_trial_id` tag tells the runs apart)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each key's short form, unique among `keys` (colliding ones keep their full names)."""
    short = {
        key: key if "_" not in key else "".join(w[0] for w in key.split("_") if w) for key in keys
    }
    taken = list(short.values())
    return {key: name if taken.count(name) == 1 else key for key, name in short.items()}


def short_value(value: Any) -> str:
    """A value as briefly as it reads exactly (floats to 6 significant digits)."""
    if isinstance(value, bool):
        return str(int(value))
    if not isinstance(value, float):
        return str(value)
    plain = f"{value:g}"
    mantissa, exponent = f"{value:.5e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    compact = f"{mantissa}e{int(exponent)}"
    return compact if len(compact) < len(plain) else plain


def dataset_label(dataset: str) -> str:
    """A dataset by name, or a file path by its file name."""
    return PurePath(dataset).name if "/" in dataset or "\\" in dataset else dataset


def trial_run_name(values: Mapping[str, Any], varied: Mapping[str, Any], stage: int) -> str:
    """The run name of a trial with TrialConfig `values`: dataset, backbone and mechanism, then
    (stage 2) `s<seed>`, then each `varied` key's short form and value (stage 1: the searched
    values; stage 2: its axes besides mechanism and seed)."""
    parts = [
        dataset_label(str(values["dataset"])),
        str(values["backbone"]),
        str(values["mechanism"]),
    ]
    if stage != 1:
        parts.append(f"s{values['seed']}")
        varied = {k: v for k, v in varied.items() if k not in ("mechanism", "seed")}
    names = short_keys(list(varied))
    parts += [f"{names[key]}{short_value(value)}" for key, value in varied.items()]
    return "-".join(parts)
