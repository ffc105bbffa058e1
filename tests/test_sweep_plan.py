"""Sweep definitions and plans without Ray: trial counts (the paper grid is the product of its
choices), --dry-run and --list text, loading by name, validation, and per-trial resources."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import sweep_fixtures

import orchestrate
from awr.config import TrialConfig
from awr.sweep import Budget, Cell, Resources, Search, Sweep, SweepError, SweepOptions, run_sweep
from awr.sweep.cluster import Cluster, trial_resources
from awr.sweep.plan import plan_units, stage1_trials
from awr.sweep.spec import grid_of, grid_points
from awr.sweep.state import SweepState
from sweeps import describe_sweeps, load_sweep, paper

PAPER_GRID = {
    "hidden_size": 2,
    "max_len": 3,
    "lr": 2,
    "weight_decay": 3,
    "dropout": 3,
    "num_heads": 3,
    "num_layers": 4,
}


def counts(name: str) -> dict[tuple[int, str, str], int]:
    return {(u.stage, u.dataset, u.backbone): u.trials for u in plan_units(load_sweep(name))}


def test_paper_stage1_is_the_full_grid_and_pvn_weight_is_stosa_only() -> None:
    sasrec = math.prod(PAPER_GRID.values())
    assert sasrec == 1296
    assert {k: len(v) for k, v in grid_of(paper.space, "sasrec").items()} == PAPER_GRID
    assert grid_of(paper.space, "stosa")["pvn_weight"] == [0.005, 0.05, 0.1]
    plan = counts("paper")
    for dataset in ("beauty", "ml-1m"):
        assert plan[(1, dataset, "sasrec")] == sasrec
        assert plan[(1, dataset, "stosa")] == sasrec * 3
        assert plan[(2, dataset, "sasrec")] == 4 * 5
        assert plan[(2, dataset, "stosa")] == 5 * 5


def test_quick_layers_and_fixed_counts() -> None:
    assert counts("quick") == {
        (1, "ml-1m", "sasrec"): 4,
        (1, "ml-1m", "stosa"): 4,
        (2, "ml-1m", "sasrec"): 4,
        (2, "ml-1m", "stosa"): 5,
    }
    assert counts("layers") == {
        (2, "beauty", "sasrec"): 4 * 4 * 3,
        (2, "beauty", "stosa"): 4 * 5 * 3,
    }
    fixed = counts("fixed")
    assert set(fixed) == {(2, d, b) for d in ("ml-1m", "beauty") for b in ("sasrec", "stosa")}
    assert fixed[(2, "ml-1m", "sasrec")] == 4 * 3
    assert fixed[(2, "ml-1m", "stosa")] == 5 * 3 * 2  # x stosa_released_code False/True


def test_dry_run_prints_the_plan_without_ray(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWR_NO_DOWNLOAD", raising=False)  # missing data: "downloaded" lines
    assert orchestrate.main(["--sweep", "paper", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "stage 1 beauty stosa: 3888 trials" in text
    assert "stage 2 ml-1m sasrec: 20 trials" in text
    assert "total: 10458 trials (stage 1 10368, stage 2 90)" in text
    assert "pvn_weight" in text and "GPU" in text


def test_default_sweep_is_quick_and_list_shows_every_sweep(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWR_NO_DOWNLOAD", raising=False)
    assert orchestrate.main(["--sweep", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("sweep quick:")
    text = describe_sweeps()
    for name in ("quick", "paper", "layers", "fixed"):
        assert f"\n{name}: " in f"\n{text}"
    assert "stage 1: 8 trials (ml-1m/sasrec 4, ml-1m/stosa 4)" in text


def test_unknown_sweep_names_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SweepError, match="valid: quick, paper, layers, fixed"):
        load_sweep("nope")
    assert orchestrate.main(["--sweep", "nope", "--dry-run"]) == 2
    assert "unknown sweep 'nope'" in capsys.readouterr().err
    with pytest.raises(SweepError, match="cannot load"):
        load_sweep("tests.nowhere:tiny")
    assert load_sweep("sweep_fixtures:tiny").name == "tiny"


def _one_cell(space: object, **search: object) -> Sweep:
    return Sweep(
        name="bad",
        description="",
        cells=(Cell(TrialConfig(dataset="synthetic")),),
        budget=Budget(2, 1),
        seeds=(1,),
        search=Search(space, **search),  # type: ignore[arg-type]
    )


def heads_space(trial: object, backbone: str) -> None:
    trial.suggest_categorical("hidden_size", [64, 63])  # type: ignore[attr-defined]


def float_space(trial: object, backbone: str) -> None:
    trial.suggest_float("lr", 1e-4, 1e-2, log=True)  # type: ignore[attr-defined]


def test_invalid_points_and_grids_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="hidden_size=63 is not divisible"):
        run_sweep(_one_cell(heads_space), SweepOptions(name="bad", out=tmp_path, dry_run=True))
    with pytest.raises(SweepError, match="suggest_categorical"):
        plan_units(_one_cell(float_space))
    assert stage1_trials(Search(float_space, sampler="tpe", num_samples=7), "sasrec") == 7
    with pytest.raises(SweepError, match="exceeds"):
        stage1_trials(Search(heads_space, num_samples=3), "sasrec")
    assert grid_points({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]


def test_trials_pack_fractional_gpus_and_fall_back_to_cpu() -> None:
    gpu_node = Cluster(cpus=16, gpus=1)
    packed = trial_resources(Resources(cpus=1, gpus=0.25), None, gpu_node)
    assert (packed.gpus, packed.device, packed.concurrent) == (0.25, "cuda", 4)
    assert trial_resources(Resources(), 0.5, gpu_node).concurrent == 2
    cpu_only = trial_resources(Resources(), 0, gpu_node)
    assert (cpu_only.gpus, cpu_only.device, cpu_only.concurrent) == (0, "cpu", 16)
    laptop = trial_resources(Resources(cpus=1, gpus=0.25), None, Cluster(cpus=2, gpus=0))
    assert (laptop.gpus, laptop.device, laptop.concurrent) == (0, "cpu", 2)
    with pytest.raises(SweepError, match="asks for GPUs"):
        trial_resources(Resources(), 0.25, Cluster(cpus=2, gpus=0))
    with pytest.raises(SweepError, match="2 GPUs per trial"):
        trial_resources(Resources(), 2, gpu_node)


def replace_pack(sweep: Sweep, pack: bool) -> Sweep:
    return dataclasses.replace(sweep, pack_seeds=pack)


def test_stage2_units_name_their_sorted_seeds_and_legacy_keys_get_the_defined_seeds(
    tmp_path: Path,
) -> None:
    sweep = _one_cell(heads_space)
    two_seeds = dataclasses.replace(sweep, search=None, seeds=(3, 2))
    stage2 = plan_units(two_seeds)[0]  # packing left to the device: off on CPU
    assert stage2.key == "2/synthetic/sasrec/seeds=2,3"
    assert stage2.name == "bad-stage2-synthetic-sasrec-seeds2-3"
    assert (stage2.packed, stage2.trials, stage2.tune_trials) == (False, 4 * 2, 4 * 2)
    for packed in (plan_units(two_seeds, "cuda")[0], plan_units(replace_pack(two_seeds, True))[0]):
        assert packed.key == stage2.key  # the same unit: a finished one is not run again
        assert packed.name == "bad-stage2-synthetic-sasrec-seeds2-3-packed"
        assert (packed.packed, packed.trials, packed.tune_trials) == (True, 4 * 2, 4)
    assert not plan_units(replace_pack(two_seeds, False), "cuda")[0].packed
    assert not plan_units(dataclasses.replace(sweep, search=None), "cuda")[0].packed  # one seed
    record = {"trials": 2, "finished": 2, "failed": 0, "parent_run_id": "p"}
    legacy = {"1/synthetic/sasrec": record, "2/synthetic/sasrec": record}
    SweepState.file(tmp_path, "bad").write_text(json.dumps({"sweep": "bad", "units": legacy}))
    state = SweepState.load(tmp_path, "bad", defined_seeds=(1,))
    assert set(state.units) == {"1/synthetic/sasrec", "2/synthetic/sasrec/seeds=1"}


def test_seeds_that_a_finished_unit_ran_are_refused(tmp_path: Path) -> None:
    sweep = dataclasses.replace(_one_cell(heads_space), search=None)
    record = {"trials": 2, "finished": 2, "failed": 0, "parent_run_id": "p"}
    units = {"2/synthetic/sasrec/seeds=1": record}
    SweepState.file(tmp_path, "bad").write_text(json.dumps({"sweep": "bad", "units": units}))
    state = SweepState.load(tmp_path, "bad", defined_seeds=(1,))
    state.check_new_seeds(plan_units(dataclasses.replace(sweep, seeds=(2, 3)))[0])
    state.check_new_seeds(plan_units(sweep)[0])  # the finished unit itself: skipped, not refused
    with pytest.raises(SweepError, match=r"seeds \[1\] already finished"):
        state.check_new_seeds(plan_units(dataclasses.replace(sweep, seeds=(1, 2)))[0])


def test_fixture_sweeps_plan_as_described() -> None:
    tiny, resumable, packed = (
        sweep_fixtures.tiny(), sweep_fixtures.resumable(), sweep_fixtures.packed()
    )  # fmt: skip
    assert [(u.stage, u.trials) for u in plan_units(tiny)] == [(1, 3), (2, 2)]
    assert [(u.stage, u.trials) for u in plan_units(resumable)] == [(1, 2), (2, 4)]
    assert [(u.stage, u.trials, u.tune_trials) for u in plan_units(packed)] == [(2, 4, 2)]
