"""Names of the analysis modules: the paper's metrics and datasets, row orders and display
labels. The run schema (MLflow keys, `metric_key`, SELECTION_KEY) is awr/schema.py's; the
backbones and mechanisms, in their order, are awr/config.py's."""

from __future__ import annotations

from collections.abc import Iterable

from awr.eval.metrics import NDCG_KS

RANK_CUTOFFS: tuple[int, ...] = NDCG_KS  # Figure 2's N of NDCG@N
TABLE2_METRICS: tuple[str, ...] = ("recall_1", "recall_5", "ndcg_5")

DATASET_ORDER: tuple[str, ...] = ("beauty", "ml-1m", "anime")
ORIGINAL = "none"

BACKBONE_LABELS = {"sasrec": "SASRec", "stosa": "STOSA"}
MECHANISM_LABELS = {
    "none": "original",
    "simple": "M1 simple",
    "value": "M2 value-weighted",
    "additive": "M3 additive",
    "stochastic": "M4 stochastic",
}
DATASET_LABELS = {"beauty": "Beauty", "ml-1m": "ML-1M", "anime": "Anime"}
METRIC_LABELS = {"recall_1": "R@1", "recall_5": "R@5", "ndcg_5": "N@5"}


def canonical_dataset(name: str) -> str:
    """Map spellings such as `ML1M`, `ml_1m` or `Beauty` onto the paper's dataset names."""
    squashed = "".join(ch for ch in name.lower() if ch.isalnum())
    for known in DATASET_ORDER:
        if squashed == "".join(ch for ch in known if ch.isalnum()):
            return known
    return name


def ordered(values: Iterable[str], order: tuple[str, ...]) -> list[str]:
    """Unique `values`, the known ones in `order` first, then the rest alphabetically."""
    unique = set(values)
    known = [value for value in order if value in unique]
    return known + sorted(unique - set(order))


def ordered_datasets(values: Iterable[str]) -> list[str]:
    """Datasets in the paper's order (Beauty, ML-1M, Anime), unknown ones after them."""
    unique = sorted(set(values))
    rank = {name: i for i, name in enumerate(DATASET_ORDER)}
    return sorted(unique, key=lambda name: (rank.get(canonical_dataset(name), len(rank)), name))


def label(name: str, labels: dict[str, str]) -> str:
    return labels.get(name, name)


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(canonical_dataset(name), name)
