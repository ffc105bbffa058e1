"""The paper's reported Tables 2 and 3 as data, values exactly as printed (single runs, no seeds).

Source: Liu, Liu & Liu, "Pay Attention to Attention for Sequential Recommendation",
arXiv 2410.21048, Table 2 (1 layer) and Table 3 (Beauty, NDCG@5 by number of layers).
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from analysis.names import canonical_dataset

PAPER = 'Liu, Liu & Liu, "Pay Attention to Attention for Sequential Recommendation"'
ARXIV_ID = "2410.21048"
TABLE2_SOURCE = f"{PAPER}, arXiv {ARXIV_ID}, Table 2"
TABLE3_SOURCE = f"{PAPER}, arXiv {ARXIV_ID}, Table 3"

_TABLE2_DATASETS = ("beauty", "ml-1m", "anime")
_TABLE2_METRICS = ("recall_1", "recall_5", "ndcg_5")

# Table 2 as printed: backbone, mechanism, then
# Beauty R@1 R@5 N@5 | ML-1M R@1 R@5 N@5 | Anime R@1 R@5 N@5.
_TABLE2_TEXT = """
sasrec none       0.0097 0.0371 0.0234  0.0265 0.0959 0.0616  0.1209 0.2978 0.2112
sasrec simple     0.0104 0.0376 0.0243  0.0291 0.1004 0.0649  0.1237 0.3247 0.2274
sasrec value      0.0116 0.0376 0.0251  0.0267 0.0976 0.0642  0.1269 0.3083 0.2165
sasrec additive   0.0108 0.0380 0.0239  0.0289 0.1013 0.0654  0.1211 0.3225 0.2290
stosa  none       0.0150 0.0422 0.0285  0.0218 0.0720 0.0475  0.1101 0.2716 0.1934
stosa  simple     0.0153 0.0453 0.0304  0.0221 0.0756 0.0489  0.1220 0.3018 0.2143
stosa  value      0.0154 0.0428 0.0286  0.0246 0.0789 0.0516  0.1260 0.3029 0.2171
stosa  additive   0.0162 0.0442 0.0305  0.0223 0.0750 0.0481  0.1222 0.2987 0.2147
stosa  stochastic 0.0154 0.0425 0.0276  0.0225 0.0733 0.0478  0.1194 0.2878 0.2073
"""

# Table 3 as printed (Beauty, NDCG@5): layers, then the columns in _TABLE3_COLUMNS' order.
_TABLE3_COLUMNS: tuple[tuple[str, str], ...] = (
    ("sasrec", "none"),
    ("sasrec", "simple"),
    ("sasrec", "value"),
    ("sasrec", "additive"),
    ("stosa", "none"),
    ("stosa", "simple"),
    ("stosa", "value"),
    ("stosa", "additive"),
    ("stosa", "stochastic"),
)
_TABLE3_TEXT = """
1  0.0234 0.0243 0.0251 0.0239  0.0285 0.0304 0.0286 0.0305 0.0276
2  0.0242 0.0255 0.0250 0.0254  0.0271 0.0286 0.0278 0.0289 0.0273
3  0.0265 0.0274 0.0270 0.0278  0.0257 0.0265 0.0260 0.0277 0.0261
4  0.0247 0.0262 0.0255 0.0267  0.0260 0.0267 0.0265 0.0284 0.0270
"""


@cache
def _table2_rows() -> dict[tuple[str, str], tuple[float, ...]]:
    rows = {}
    for line in _TABLE2_TEXT.strip().splitlines():
        backbone, mechanism, *values = line.split()
        rows[(backbone, mechanism)] = tuple(float(v) for v in values)
    return rows


@cache
def _table3_rows() -> dict[int, tuple[float, ...]]:
    rows = {}
    for line in _TABLE3_TEXT.strip().splitlines():
        layers, *values = line.split()
        rows[int(layers)] = tuple(float(v) for v in values)
    return rows


TABLE3_DATASET = "beauty"


def table2_frame() -> pd.DataFrame:
    """Table 2 in long form: columns backbone, mechanism, dataset, metric, value."""
    records = []
    for (backbone, mechanism), values in _table2_rows().items():
        cells = [(d, m) for d in _TABLE2_DATASETS for m in _TABLE2_METRICS]
        for (dataset, metric), value in zip(cells, values, strict=True):
            records.append((backbone, mechanism, dataset, metric, value))
    return pd.DataFrame(records, columns=["backbone", "mechanism", "dataset", "metric", "value"])


def table3_frame() -> pd.DataFrame:
    """Table 3 in long form: columns num_layers, backbone, mechanism, dataset, metric, value."""
    records = []
    for layers, values in _table3_rows().items():
        for (backbone, mechanism), value in zip(_TABLE3_COLUMNS, values, strict=True):
            records.append((layers, backbone, mechanism, TABLE3_DATASET, "ndcg_5", value))
    columns = ["num_layers", "backbone", "mechanism", "dataset", "metric", "value"]
    return pd.DataFrame(records, columns=columns)


def table2_value(backbone: str, mechanism: str, dataset: str, metric: str) -> float | None:
    """The paper's Table 2 value for a cell, or None when the paper has no such cell."""
    row = _table2_rows().get((backbone, mechanism))
    dataset = canonical_dataset(dataset)
    if row is None or dataset not in _TABLE2_DATASETS or metric not in _TABLE2_METRICS:
        return None
    position = _TABLE2_DATASETS.index(dataset) * len(_TABLE2_METRICS)
    return row[position + _TABLE2_METRICS.index(metric)]


def table3_value(
    num_layers: int, backbone: str, mechanism: str, dataset: str = TABLE3_DATASET
) -> float | None:
    """The paper's Table 3 NDCG@5 for a cell (Beauty only), or None when it has none."""
    row = _table3_rows().get(int(num_layers))
    if row is None or canonical_dataset(dataset) != TABLE3_DATASET:
        return None
    if (backbone, mechanism) not in _TABLE3_COLUMNS:
        return None
    return row[_TABLE3_COLUMNS.index((backbone, mechanism))]
