"""``FloraConfig``: which weights get an adapter, with which ranks and scale. Plain data, JSON round-trippable."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from flora.tucker import COMPUTE_PATHS

RankSpec = int | tuple[int, ...] | list[int]


@dataclass
class FloraConfig:
    """Targets and hyper-parameters of FLoRA adapters.

    target_modules: module names to adapt, as a list (an entry matches a name exactly or as its dotted suffix)
        or one regular expression (full match). ``None`` with ``target_types`` adapts every module of those types.
    target_types: class names of modules to adapt, e.g. ["Linear", "Conv2d"]; combines with target_modules
        (a module must satisfy both when both are given).
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
        if self.target_modules is None and self.target_types is None and not self.target_parameters:
            raise ValueError(
                "FloraConfig needs something to adapt: set target_modules (names or a regex), target_types "
                "(e.g. ['Linear', 'Conv2d']) or target_parameters"
            )
        if isinstance(self.target_modules, tuple):
            self.target_modules = list(self.target_modules)
        if self.rank < 1 or self.kernel_rank < 1:
            raise ValueError(f"rank and kernel_rank must be >= 1, got rank={self.rank}, kernel_rank={self.kernel_rank}")
        if self.path not in COMPUTE_PATHS:
            raise ValueError(f"unknown path {self.path!r}; choose one of {COMPUTE_PATHS}")
        for pattern in [*self.rank_pattern, *self.scale_pattern]:
            re.compile(pattern)

    def rank_spec_for(self, name: str) -> RankSpec:
        for pattern, spec in self.rank_pattern.items():
            if re.fullmatch(pattern, name):
                return tuple(spec) if isinstance(spec, list | tuple) else int(spec)
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
