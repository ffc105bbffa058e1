"""Names shared by the analysis modules: metric keys, row orders and display labels."""

from __future__ import annotations

from collections.abc import Iterable

RANK_CUTOFFS: tuple[int, ...] = tuple(range(1, 21))
METRICS: tuple[str, ...] = (
    *(f"recall_{k}" for k in (1, 5, 10, 20)),
    *(f"ndcg_{k}" for k in RANK_CUTOFFS),
    "mrr",
)
TABLE2_METRICS: tuple[str, ...] = ("recall_1", "recall_5", "ndcg_5")
SELECTION_METRIC = "best_valid/ndcg_5"

BACKBONE_ORDER: tuple[str, ...] = ("sasrec", "stosa")
MECHANISM_ORDER: tuple[str, ...] = ("none", "simple", "value", "additive", "stochastic")
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


def split_key(split: str, metric: str) -> str:
    """MLflow key of a metric on a split, e.g. (`test`, `ndcg_5`) -> `test/ndcg_5`."""
    return f"{split}/{metric}"


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
