"""Run names by what a trial varies: short keys from the stage's search space, values written
briefly, distinct names over a whole grid, stage-2 names by mechanism, seed and axes."""

from __future__ import annotations

from typing import Any

import pytest

from awr.config import TrialConfig
from awr.sweep.naming import short_keys, short_value, trial_run_name
from awr.sweep.spec import grid_of, grid_points, typed_values


def fake_space(trial: Any, backbone: str) -> None:
    trial.suggest_categorical("hidden_size", [64, 128])
    trial.suggest_categorical("lr", [1e-3, 1e-4])
    trial.suggest_categorical("weight_decay", [0.0, 1e-4])
    trial.suggest_categorical("dropout", [0.2, 0.5])
    trial.suggest_categorical("num_heads", [1, 2])
    trial.suggest_categorical("num_layers", [1, 3])
    if backbone == "stosa":
        trial.suggest_categorical("pvn_weight", [0.005, 0.1])


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.001, "1e-3"), (1e-4, "1e-4"), (0.005, "5e-3"), (0.0005, "5e-4"), (0.2, "0.2"),
     (0.0, "0"), (0.5, "0.5"), (1e6, "1e6"), (3e-3, "3e-3"), (0.0012345, "0.0012345"),
     (1.2345e-5, "1.2345e-5"), (64, "64"), (True, "1"), (False, "0"), ("ce", "ce")],
)  # fmt: skip
def test_values_are_written_briefly(value: Any, text: str) -> None:
    assert short_value(value) == text


def test_short_keys_are_initials_and_stay_unique() -> None:
    assert short_keys(["hidden_size", "lr", "dropout", "attn_dropout"]) == {
        "hidden_size": "hs",
        "lr": "lr",
        "dropout": "dropout",
        "attn_dropout": "ad",
    }
    # num_layers and no_label would both be "nl": they keep their full names
    assert short_keys(["num_layers", "no_label", "lr"]) == {
        "num_layers": "num_layers",
        "no_label": "no_label",
        "lr": "lr",
    }


@pytest.mark.parametrize("backbone", ["sasrec", "stosa"])
def test_every_point_of_a_grid_gets_its_own_name_from_the_space(backbone: str) -> None:
    base = TrialConfig(dataset="ml-1m", backbone=backbone, mechanism="none", seed=42).to_dict()
    points = grid_points(grid_of(fake_space, backbone))
    names = []
    for point in points:  # as the trainable sees a stage-1 point: the Tune config, typed
        values = {**base, **typed_values(point)}
        names.append(trial_run_name(values, {key: values[key] for key in point}, stage=1))
    assert len(set(names)) == len(points) == (128 if backbone == "stosa" else 64)
    prefix = f"ml-1m-{backbone}-none-hs64-lr1e-3-wd0-dropout0.2-nh1-nl1"
    assert names[0] == (prefix + "-pw5e-3" if backbone == "stosa" else prefix)
    assert all("s42" not in name for name in names)  # stage 1's seed is fixed: not named


def test_stage_two_names_keep_mechanism_and_seed_and_add_axes() -> None:
    values = TrialConfig(dataset="/data/mine.txt", mechanism="simple", seed=3).to_dict()
    assert trial_run_name(values, {"mechanism": "simple", "seed": 3}, stage=2) == (
        "mine.txt-sasrec-simple-s3"
    )
    values["max_len"] = 100
    varied = {"mechanism": "simple", "seed": 3, "max_len": 100}
    assert trial_run_name(values, varied, stage=2) == "mine.txt-sasrec-simple-s3-ml100"
    # a pack's members: the point without its seeds, each member's own seed
    assert trial_run_name({**values, "seed": 7}, {"mechanism": "simple"}, stage=2) == (
        "mine.txt-sasrec-simple-s7"
    )
