"""Checks of a composed run config before anything loads: bad input fails in a second, in one line, and leaves
no record behind."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.weights import FOLDER, MODEL, check_weights

# What each engine needs from backbone.weights (experiments/weights.py); the LLaVA engine reads its own weights
# map. Language tasks name no engine.
WEIGHTS_NEEDED = {"hf_trainer": FOLDER, "mmengine": MODEL}


class ConfigError(ValueError):
    """A composed config that cannot describe a run; the message names the key, the value and the fix."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(key: str, value: Any) -> None:
    if not _is_int(value) or value < 1:
        raise ConfigError(f"{key}={value!r} is not a positive integer: give a whole number >= 1 (e.g. {key}=8)")


def _positive_float(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key}={value!r} is not a finite positive number: give e.g. {key}=1.0")


def _rank_pattern(key: str, pattern: Any) -> None:
    pattern = OmegaConf.to_container(pattern) if isinstance(pattern, DictConfig) else pattern
    for layer, rank in (pattern or {}).items():
        ranks = rank if isinstance(rank, list | tuple) else [rank]
        if not ranks or not all(_is_int(r) and r >= 1 for r in ranks):
            raise ConfigError(f"{key}['{layer}']={rank!r}: each rank must be a whole number >= 1")


def _weights(cfg: DictConfig) -> None:
    needed = WEIGHTS_NEEDED.get(cfg.task.get("engine") or "hf_trainer")
    if needed is None:
        return
    try:
        check_weights(cfg.backbone.get("weights"), needed)
    except ValueError as err:
        raise ConfigError(str(err)) from err


def validate_run_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first key of cfg that cannot describe a run."""
    seed = cfg.get("seed")
    if not _is_int(seed) or seed < 0:
        raise ConfigError(f"seed={seed!r} is not a non-negative integer: give e.g. seed=0")
    method = cfg.method
    for key in ("rank", "kernel_rank"):
        if key in method:
            _positive_int(f"method.{key}", method[key])
    for key in ("scale", "alpha", "learning_rate"):
        if key in method and method[key] is not None:
            _positive_float(f"method.{key}", method[key])
    if "dropout" in method and not (
        isinstance(method.dropout, int | float) and not isinstance(method.dropout, bool) and 0 <= method.dropout < 1
    ):
        raise ConfigError(f"method.dropout={method.dropout!r} must be a number in [0, 1)")
    if "rank_pattern" in method:
        _rank_pattern("method.rank_pattern", method.rank_pattern)
    _weights(cfg)
