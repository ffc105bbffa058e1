"""One frozen, typed trial configuration and its key=value parsing.

The field names are the only names a hyperparameter has: CLI key (`--trial key=value`),
Ray Tune key, MLflow param and DataFrame column are all the same string.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from dataclasses import dataclass, fields

from awr.errors import AwrError

BACKBONES = ("sasrec", "stosa")
MECHANISMS = ("none", "simple", "value", "additive", "stochastic")
MECHANISMS_BY_BACKBONE = {
    "sasrec": ("none", "simple", "value", "additive"),
    "stosa": ("none", "simple", "value", "additive", "stochastic"),
}
LOSSES = ("bce", "ce")
ADDITIVE_MIXES = ("fixed", "learned")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("cpu", "cuda", "cuda:N")  # N: a CUDA device index


class ConfigError(AwrError, ValueError):
    """A configuration value or key is invalid; the message says which and what is allowed."""


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines one training run. Defaults: docs/sweeps.md, ML-1M SASRec."""

    dataset: str = "ml-1m"
    backbone: str = "sasrec"
    mechanism: str = "none"
    loss: str = "bce"
    hidden_size: int = 64
    max_len: int = 200
    num_layers: int = 1
    num_heads: int = 2
    dropout: float = 0.2
    attn_dropout: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    max_epochs: int = 400
    patience: int = 20
    seed: int = 42
    device: str = "cpu"
    pvn_weight: float = 0.005
    stosa_released_code: bool = False
    refine_per_head: bool = False
    additive_mix: str = "fixed"
    eval_batch_size: int = 256
    precision: str = "fp32"
    compile: bool = False
    # Training batches are run as this many sub-batches of rows sorted by length, each trimmed
    # of its padding, with gradients accumulated in proportion to valid positions: the same
    # gradient as one batch (only dropout's random draws differ). 0 = auto: chosen by the padding
    # the groups save on the training rows (awr/train/length_groups.py; usually 1 on GPU).
    length_groups: int = 0

    def __post_init__(self) -> None:
        _check_choice("backbone", self.backbone, BACKBONES)
        _check_choice("mechanism", self.mechanism, MECHANISMS)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("additive_mix", self.additive_mix, ADDITIVE_MIXES)
        _check_choice("precision", self.precision, PRECISIONS)
        allowed = MECHANISMS_BY_BACKBONE[self.backbone]
        if self.mechanism not in allowed:
            raise ConfigError(
                f"mechanism={self.mechanism} does not fit backbone={self.backbone}; "
                f"valid for {self.backbone}: {', '.join(allowed)}"
            )
        for name in ("hidden_size", "max_len", "num_layers", "num_heads", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.length_groups <= self.batch_size:
            raise ConfigError(
                f"length_groups must be in [0, batch_size={self.batch_size}] (0 = auto), "
                f"got {self.length_groups}"
            )
        for name in ("max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not valid_device(self.device):
            raise ConfigError(f"unknown device {self.device!r}; valid: {', '.join(DEVICES)}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}"
            )
        for name in ("dropout", "attn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict[str, typing.Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: typing.Any) -> TrialConfig:
        return dataclasses.replace(self, **changes)


def valid_device(device: str) -> bool:
    """`cpu`, `cuda` or `cuda:N` (N a device index), as torch.device spells them."""
    kind, sep, index = device.partition(":")
    return device in ("cpu", "cuda") or (kind == "cuda" and bool(sep) and index.isdigit())


def check_device(device: str) -> None:
    """ConfigError unless this process's torch can use `device` (a valid TrialConfig device):
    a CPU-only torch build, or no such CUDA device, says so and what to do."""
    if device == "cpu":
        return
    import torch

    if torch.version.cuda is None:
        raise ConfigError(
            f"device={device}: this torch ({torch.__version__}) is a CPU-only build; install "
            "the CUDA build of torch that matches your driver (pytorch.org), or use device=cpu"
        )
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        seen = f"{count} CUDA device{'' if count == 1 else 's'}" if count else "no CUDA device"
        raise ConfigError(
            f"device={device}: torch sees {seen} (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); use device=cpu"
            + (f" or cuda:0..cuda:{count - 1}" if count else "")
        )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; valid: {', '.join(allowed)}")


@functools.cache
def _types() -> types.MappingProxyType[str, type]:
    """Resolved once: `get_type_hints` evaluates every annotation string on each call (a plan
    of the paper sweep converts 80k values)."""
    hints = typing.get_type_hints(TrialConfig)
    return types.MappingProxyType({f.name: hints[f.name] for f in fields(TrialConfig)})


def field_types() -> dict[str, type]:
    """Every field's name and type, in declaration order."""
    return dict(_types())


def parse_value(key: str, text: str) -> typing.Any:
    """Convert the text of `key=text` to the field's type, or raise ConfigError."""
    known = _types()
    if key not in known:
        raise ConfigError(f"unknown key {key!r}; valid keys: {', '.join(known)}")
    kind = known[key]
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key} expects a bool (true/false), got {text!r}")
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{key} expects {kind.__name__}, got {text!r}") from None


def field_value(key: str, value: typing.Any) -> typing.Any:
    """`value` as the type of field `key`, whatever carried it: text as typed after `key=` or as
    logged to MLflow (`str(value)`: "64", "0.001", "True"; see `parse_value`), or a number from
    Optuna or JSON (which give 0 for 0.0 and 64.0 for 64). An int field also takes an integral
    float ("64.0", 64.0). ConfigError for an unknown key or a value of another kind."""
    known = _types()
    if key not in known:
        raise ConfigError(f"unknown key {key!r}; valid keys: {', '.join(known)}")
    kind = known[key]
    if isinstance(value, str):
        if kind is not int or not any(c in value for c in ".eE"):
            return parse_value(key, value)
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{key} expects int, got {value!r}") from None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return str(value)
    if kind is bool and (isinstance(value, bool) or (number and value in (0, 1))):
        return bool(value)
    if kind is int and number and float(value).is_integer():
        return int(value)
    if kind is float and number:
        return float(value)
    raise ConfigError(f"{key} expects {kind.__name__}, got {value!r}")


def from_pairs(pairs: list[str], base: TrialConfig | None = None) -> TrialConfig:
    """Build a config from `key=value` strings on top of `base` (default: TrialConfig())."""
    changes: dict[str, typing.Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise ConfigError(
                f"expected key=value, got {pair!r}; valid keys: {', '.join(field_types())}"
            )
        changes[key.strip()] = parse_value(key.strip(), text)
    return (base or TrialConfig()).replace(**changes)


def from_dict(values: dict[str, typing.Any]) -> TrialConfig:
    """Build a config from a flat dict (Tune's config, MLflow params); unknown keys are an error."""
    known = _types()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown keys {unknown}; valid keys: {', '.join(known)}")
    coerced = {
        k: parse_value(k, v) if isinstance(v, str) and known[k] is not str else v
        for k, v in values.items()
    }
    return TrialConfig(**coerced)
