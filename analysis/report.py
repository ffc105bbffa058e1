"""build_report: tables, figures and report.md for one sweep, logged back to MLflow."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from analysis.complexity import complexity_table, load_bench
from analysis.convergence import convergence_table, trial_cost
from analysis.names import dataset_label
from analysis.per_user import MISSING_RANKS, RanksOf, seed_to_seed
from analysis.report_figures import FIGURE_FILES, FOREST_FILE, make_figures, make_forest
from analysis.report_text import ReportContent, render_report, summaries
from analysis.runs import (
    AnalysisError,
    find_experiment,
    finished,
    load_ranks,
    metric_history,
    runs_frame,
    status_counts,
)
from analysis.selection import VARIANT, final_stage, one_variant
from analysis.tables import TABLE2_CELLS, Table, table2, table3, table_runs
from awr.eval.ranks import UserRanks
from awr.schema import FAILED, FINISHED, KIND, REPORT
from awr.store import client_for, trial_runs

REPORT_FILE = "report.md"
OUTPUT_FILES = (
    REPORT_FILE,
    "table2.csv",
    "seed_check.csv",
    "convergence.csv",
    "table3.csv",
    "complexity.csv",
    FOREST_FILE,
    *FIGURE_FILES.values(),
)


def build_report(
    sweep: str,
    tracking_uri: str,
    out_dir: Path,
    bench_json: Path | None = None,
    *,
    figure_dataset: str | None = None,
    attention_mechanism: str = "simple",
) -> Path:
    """Write out_dir/report.md with Table 2 (and Table 3, complexity table when the data has
    them), CSVs and figures; log the folder on a `report` run of the sweep's experiment.

    Raises AnalysisError naming the sweep and tracking URI when the experiment is missing or has
    no finished trial runs. Returns the path of report.md.
    """
    client = client_for(tracking_uri)
    experiment = find_experiment(client, sweep, tracking_uri)
    trials = runs_frame(trial_runs(client, experiment.experiment_id))
    counts = status_counts(trials) if not trials.empty else {}
    done = finished(trials)
    if done.empty:
        raise AnalysisError(
            f"sweep {sweep!r} at tracking URI {tracking_uri!r} has no finished trial runs "
            f"(trial runs by status: {counts or 'none'})"
        )
    bench = load_bench(bench_json) if bench_json is not None else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:
        (out_dir / name).unlink(missing_ok=True)

    final = finished(final_stage(trials))
    layers = sorted(set(final["num_layers"].dropna().astype(int))) if "num_layers" in final else []
    several_layers = len(layers) > 1
    table2_layers = 1 if several_layers and 1 in layers else None
    t2_trials = trials if table2_layers is None else trials[trials["num_layers"] == 1]
    ranks_of = ranks_loader(tracking_uri)
    t2 = table2(trials, num_layers=table2_layers, ranks_of=ranks_of)
    t2.numeric.to_csv(out_dir / "table2.csv", index=False)
    t3 = table3(trials) if several_layers else None
    if t3 is not None:
        t3.numeric.to_csv(out_dir / "table3.csv", index=False)
    comp = complexity_table(bench) if bench is not None else None
    if comp is not None:
        comp.numeric.to_csv(out_dir / "complexity.csv", index=False)

    runs = table_runs(t2_trials, TABLE2_CELLS)
    figure_runs = one_variant(runs)
    entries = make_figures(tracking_uri, figure_runs, out_dir, figure_dataset, attention_mechanism)
    forest = make_forest(t2, out_dir)
    seed_check = seed_to_seed(runs, ranks_of)
    if not seed_check.empty:
        seed_check.to_csv(out_dir / "seed_check.csv", index=False)
    cost_of = trial_cost(lambda run_id, key: metric_history(tracking_uri, run_id, key))
    convergence = convergence_table(runs, TABLE2_CELLS, cost_of)
    if not convergence.empty:
        convergence.to_csv(out_dir / "convergence.csv", index=False)
    content = ReportContent(
        sweep=sweep,
        tracking_uri=tracking_uri,
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        counts=counts,
        table2=t2,
        table2_note="Runs with 1 layer, as in the paper's Table 2." if table2_layers else "",
        per_user_note=per_user_note(t2),
        summaries=tuple(summaries(t2.numeric, dataset_label)),
        forest=forest,
        seed_check=seed_check,
        convergence=convergence,
        table3=t3,
        complexity=comp,
        figures=entries,
        facts=provenance(done, runs, figure_runs),
    )
    path = out_dir / REPORT_FILE
    path.write_text(render_report(content), encoding="utf-8")
    log_report(client, experiment.experiment_id, sweep, out_dir, counts)
    return path


def ranks_loader(tracking_uri: str) -> RanksOf:
    """run id -> its per-user ranks (None when not logged), each downloaded once."""

    @cache
    def ranks_of(run_id: str) -> UserRanks | None:
        return load_ranks(tracking_uri, run_id)

    return ranks_of


def per_user_note(t2: Table) -> str:
    """Why some or all Table 2 cells have no per-user verdict ('' when none is missing)."""
    numeric = t2.numeric
    if "user_status" not in numeric.columns:
        return ""
    missing = int((numeric["user_status"] == MISSING_RANKS).sum())
    if not missing:
        return ""
    total = int((numeric["user_status"] == MISSING_RANKS).sum() + numeric["user_p"].notna().sum())
    return (
        f"Per-user verdicts are missing for {missing} of {total} compared cells: their runs "
        "have no `ranks.npz` (trials logged before per-user ranks were stored), so those cells "
        "show the seed-level columns only. Rerun or resume the sweep to get them."
    )


def provenance(done: pd.DataFrame, used: pd.DataFrame, drawn: pd.DataFrame) -> list[str]:
    """Short facts for the report header: what the runs cover and which code and data made them."""

    def values(column: str) -> str:
        present = sorted({str(v) for v in done[column].dropna()}) if column in done else []
        return ", ".join(f"`{v}`" for v in present) or "not recorded"

    stages = sorted({str(s) for s in used["stage"].dropna()})
    variants = sorted({str(v) for v in used[VARIANT] if v}) if VARIANT in used else []
    facts = [
        f"Datasets: {values('dataset')}; backbones: {values('backbone')}; "
        f"mechanisms: {values('mechanism')}",
        f"Runs in Table 2: {len(used)} (stage {', '.join(stages) or 'untagged'}; one config per "
        "cell and variant, chosen by validation NDCG@5); in the figures: "
        f"{len(drawn)}",
    ]
    if variants:
        facts.append(
            "Variants (settings the sweep varies, each its own block of rows with its own "
            f"original): {', '.join(f'`{v}`' for v in variants)}; the figures show, per "
            "backbone, the variant whose original scores best on validation NDCG@5"
        )
    return [
        *facts,
        f"Code commits: {values('git_commit')}; data checksums: {values('data_checksum')}",
    ]


def log_report(
    client: MlflowClient, experiment_id: str, sweep: str, out_dir: Path, counts: dict[str, int]
) -> str:
    """Log out_dir as the artifacts of a run named `report` (tag awr.kind=report); its id."""
    tags = {KIND: REPORT, "sweep": sweep}
    run_id = client.create_run(experiment_id, run_name=REPORT, tags=tags).info.run_id
    status = FAILED
    try:
        stamp = int(datetime.now(UTC).timestamp() * 1000)
        metrics = [Metric(f"runs_{k.lower()}", float(v), stamp, 0) for k, v in counts.items()]
        client.log_batch(run_id, metrics=metrics)
        client.log_artifacts(run_id, str(out_dir))
        status = FINISHED
    finally:
        client.set_terminated(run_id, status)
    return run_id
