"""The benchmark harness: records, synthetic shapes, subsets, options (all on tiny shapes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from awr.bench.cli import QUICK_DEFAULTS, main, mechanisms_for, parse_args
from awr.bench.record import BenchRecord, add_ratios, format_table
from awr.bench.workload import DEFAULT_MAX_LEN, default_max_len, load_bench_data, random_rows
from awr.data.batches import build_eval_tensors

TINY = [
    "--datasets",
    "synthetic:tiny",
    "--backbones",
    "sasrec",
    "--mechanisms",
    "none,simple",
    "--max-steps",
    "2",
    "--epochs",
    "1",
    "--warmup",
    "0",
    "--eval-passes",
    "1",
    "--set",
    "batch_size=64",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    return main([*TINY, "--out", str(out)]), out


def test_records_have_every_key_and_positive_times(tiny_run: tuple[list[dict], Path]) -> None:
    records, out = tiny_run
    assert json.loads(out.read_text()) == records
    assert [r["mechanism"] for r in records] == ["none", "simple"]
    for record in records:
        assert set(record) == {*BenchRecord.required_keys(), "ratio_to_none"}
        for key in ("train_seconds_per_epoch", "sequences_per_second", "eval_seconds"):
            assert record[key] > 0
        assert record["users_per_second"] > 0 and record["peak_memory_mb"] > 0
        assert record["dataset"] == "synthetic:tiny" and record["device"] == "cpu"
        assert record["epochs_timed"] == 1 and record["threads"] == torch.get_num_threads()
        assert record["scaled"] is True  # 2 batches of 64 < the tiny shape's ~970 rows


def test_extra_params_and_ratio_to_none(tiny_run: tuple[list[dict], Path]) -> None:
    none, simple = tiny_run[0]
    length = none["max_len"]
    assert length == DEFAULT_MAX_LEN["tiny"]
    assert none["extra_params"] == 0 and none["ratio_to_none"] == 1.0
    assert simple["extra_params"] == 2 * length**2
    assert simple["num_params"] == none["num_params"] + 2 * length**2
    expected = simple["train_seconds_per_epoch"] / none["train_seconds_per_epoch"]
    assert simple["ratio_to_none"] == pytest.approx(expected)


def test_table_prints_a_row_per_record(tiny_run: tuple[list[dict], Path]) -> None:
    table = format_table(tiny_run[0])
    lines = table.splitlines()
    assert len(lines) == 2 + 2 and "scaled" in lines[0] and "packed" not in lines[0]


def test_synthetic_shape_matches_the_real_dataset() -> None:
    data = load_bench_data("synthetic:ml-1m", None, seed=3)
    lengths = np.array([len(s) for s in data.sequences])
    assert len(lengths) == 6040 and data.num_items == 3416
    assert lengths.min() >= 18 and lengths.max() <= 2277
    assert 85 <= np.median(lengths) <= 105 and 150 <= lengths.mean() <= 185
    again = load_bench_data("synthetic:ml-1m", None, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(data.sequences, again.sequences, strict=True))
    other = load_bench_data("synthetic:ml-1m", None, seed=4)
    assert not np.array_equal(data.sequences[0], other.sequences[0])


def test_synthetic_of_a_file_keeps_its_lengths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWR_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "pairs.txt"
    source.write_text("1 1\n1 2\n1 3\n2 4\n2 5\n3 1\n3 2\n3 3\n3 4\n3 5\n")
    data = load_bench_data(f"synthetic:{source}", None, seed=0)
    assert sorted(len(s) for s in data.sequences) == [2, 3, 5]
    assert data.num_items == 5
    assert all(((s >= 1) & (s <= 5)).all() for s in data.sequences)


def test_eval_subset_keeps_each_users_history() -> None:
    data = load_bench_data("synthetic:tiny", None, seed=0)
    full = build_eval_tensors(data, 10, "valid")
    rows = random_rows(int(full.targets.shape[0]), 7, torch.device("cpu"))
    part = full.subset(rows)
    assert torch.equal(part.inputs, full.inputs[rows])
    assert torch.equal(part.targets, full.targets[rows])
    for new, old in enumerate(rows.tolist()):
        offsets, old_offsets = part.history_offsets, full.history_offsets
        got = part.history_items[offsets[new] : offsets[new + 1]]
        want = full.history_items[old_offsets[old] : old_offsets[old + 1]]
        assert torch.equal(got, want)


def test_quick_preset_and_explicit_options() -> None:
    args = parse_args(["--quick"])
    assert args.max_steps == QUICK_DEFAULTS["max_steps"]
    assert all(spec.startswith("synthetic:") for spec in args.datasets)
    args = parse_args(["--quick", "--max-steps", "5", "--backbones", "stosa"])
    assert args.max_steps == 5 and args.backbones == ["stosa"]
    args = parse_args([])
    assert args.max_steps is None and args.datasets == ["ml-1m", "beauty"]
    assert default_max_len("beauty") == 50 and default_max_len("synthetic:ml-1m") == 200


def test_mechanisms_default_to_each_backbones_own() -> None:
    assert mechanisms_for("sasrec", None) == ["none", "simple", "value", "additive"]
    assert "stochastic" in mechanisms_for("stosa", None)
    assert mechanisms_for("sasrec", ["none", "stochastic"]) == ["none"]


@pytest.mark.parametrize(
    "bad", [["--mechanisms", "nope"], ["--backbones", "bert"], ["--epochs", "0"]]
)
def test_bad_options_exit_with_a_message(bad: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(bad)


def test_ratio_only_where_none_was_measured() -> None:
    records = [
        {
            "backbone": "sasrec",
            "dataset": "d",
            "max_len": 5,
            "mechanism": m,
            "train_seconds_per_epoch": t,
        }
        for m, t in (("none", 2.0), ("simple", 3.0))
    ]
    records.append({**records[1], "backbone": "stosa"})
    add_ratios(records)
    assert [r.get("ratio_to_none") for r in records] == [1.0, 1.5, None]


@pytest.mark.slow
def test_packed_trials_report_aggregate_throughput(tmp_path: Path) -> None:
    argv = [*TINY, "--mechanisms", "none", "--packed", "2", "--out", str(tmp_path / "b.json")]
    (record,) = main(argv)
    assert record["packed_trials"] == 2
    assert record["packed_sequences_per_second"] > 0
    speedup = record["packed_sequences_per_second"] / record["sequences_per_second"]
    assert record["packed_speedup"] == pytest.approx(speedup)
