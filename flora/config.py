"""``FloraConfig``: which weights get an adapter, with which ranks and scale. Plain data, JSON round-trippable."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from flora.targets import TYPE_NAMES
from flora.tucker import COMPUTE_PATHS

RankSpec = int | tuple[int, ...] | list[int]


@dataclass
class FloraConfig:
    """Targets and hyper-parameters of FLoRA adapters.

    target_modules: module names to adapt, as a list (an entry matches a name exactly or as its dotted suffix)
        or one regular expression (full match). ``None`` with ``target_types`` adapts every module of those types.
    target_types: types of modules to adapt, by name, e.g. ["Linear", "Conv2d"]; subclasses match too (timm's
        Linear is a Linear). Combines with target_modules (a module must satisfy both when both are given).
    target_parameters: names of bare N-D parameters (``module.path.param``) to adapt through a parametrization.
    exclude_modules: names or one regex of modules never adapted (typically the task head).
    rank: rank of the channel modes (both modes of a matrix; out and in/groups of a conv kernel).
    kernel_rank: rank of the spatial modes of a conv kernel. Each rank is capped at its mode's size.
    rank_pattern: regex -> int (channel rank) or full rank tuple, first full match wins.
    scale: the multiplier s of dW (no alpha / r).
    scale_pattern: regex -> scale for matching layers.
    modules_to_save: modules that stay trainable, e.g. a new classification head.
    path: "auto" picks factored or merged per layer by multiply-add count; or force one for benchmarks.
    """

    target_modules: list[str] | str | None = None
    target_types: list[str] | None = None
    target_parameters: list[str] | None = None
    exclude_modules: list[str] | str | None = None
    rank: int = 8
    kernel_rank: int = 2
    rank_pattern: dict[str, RankSpec] = field(default_factory=dict)
    scale: float = 1.0
    scale_pattern: dict[str, float] = field(default_factory=dict)
    dropout: float = 0.0
    modules_to_save: list[str] = field(default_factory=list)
    path: str = "auto"

    def __post_init__(self) -> None:
        """Refuse every value that would adapt nothing, truncate silently or fail later with a raw error."""
        if isinstance(self.target_modules, tuple):
            self.target_modules = list(self.target_modules)
        _check_names("target_modules", self.target_modules, regex_ok=True)
        _check_names("exclude_modules", self.exclude_modules, regex_ok=True)
        _check_names("target_parameters", self.target_parameters, regex_ok=False)
        _check_names("modules_to_save", self.modules_to_save, regex_ok=False, empty_ok=True)
        _check_types(self.target_types)
        if self.target_modules is None and self.target_types is None and not self.target_parameters:
            raise ValueError(
                "FloraConfig needs something to adapt: set target_modules (names or a regex), target_types "
                "(e.g. ['Linear', 'Conv2d']) or target_parameters"
            )
        _positive_int("rank", self.rank)
        _positive_int("kernel_rank", self.kernel_rank)
        for pattern, spec in self.rank_pattern.items():
            _compile(f"rank_pattern key {pattern!r}", pattern)
            for rank in spec if isinstance(spec, list | tuple) else [spec]:
                _positive_int(f"rank_pattern[{pattern!r}]", rank)
        _finite("scale", self.scale)
        for pattern, value in self.scale_pattern.items():
            _compile(f"scale_pattern key {pattern!r}", pattern)
            _finite(f"scale_pattern[{pattern!r}]", value)
        _finite("dropout", self.dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"FloraConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.path not in COMPUTE_PATHS:
            raise ValueError(f"FloraConfig.path: unknown path {self.path!r}; choose one of {COMPUTE_PATHS}")

    def rank_spec_for(self, name: str) -> RankSpec:
        for pattern, spec in self.rank_pattern.items():
            if re.fullmatch(pattern, name):
                return tuple(spec) if isinstance(spec, list | tuple) else spec
        return self.rank

    def scale_for(self, name: str) -> float:
        for pattern, value in self.scale_pattern.items():
            if re.fullmatch(pattern, name):
                return float(value)
        return self.scale

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FloraConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown FloraConfig fields {unknown}; valid fields are {sorted(known)}")
        return cls(**data)


def _compile(where: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as err:
        raise ValueError(f"FloraConfig.{where} is not a valid regular expression: {err}") from None


def _check_names(where: str, value: Any, regex_ok: bool, empty_ok: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, str):
        if not regex_ok:
            raise TypeError(f"FloraConfig.{where} must be a list of names, got the string {value!r}")
        _compile(where, value)
        return
    if not isinstance(value, list | tuple) or not all(isinstance(name, str) for name in value):
        raise TypeError(f"FloraConfig.{where} must be a list of names, got {value!r}")
    if not value and not empty_ok:
        raise ValueError(
            f"FloraConfig.{where}=[] selects nothing; list names (or give a regex), or leave it None"
            + (" and select modules by target_types" if where == "target_modules" else "")
        )


def _check_types(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"FloraConfig.target_types must be a non-empty list of type names from {list(TYPE_NAMES)}")
    unknown = [name for name in value if name not in TYPE_NAMES]
    if unknown:
        raise ValueError(
            f"FloraConfig.target_types: {unknown} are not types FLoRA adapts; choose from {list(TYPE_NAMES)} "
            "(subclasses match too)"
        )


def _positive_int(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"FloraConfig.{where} must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"FloraConfig.{where} must be >= 1, got {value}")


def _finite(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"FloraConfig.{where} must be a finite number, got {value!r}")
