"""The Figure 4 time series: every N steps, each adapted layer's ||dW||_F and amplification factor.

One `UpdateNormRecorder` serves both engines (the Trainer callback and the mmengine hook only decide when to call
it): it logs per-layer and summary values through the function it is given (an engine passes its tracker's
``log``) and keeps the series that the engine puts in the run record as ``extras["update_norms"]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from experiments.analysis.layers import model_update_stats
from experiments.analysis.update_norms import UpdateStats

LogFn = Callable[[Mapping[str, float], int], None]
PREFIX = "update_norms"


def summarise(stats: Mapping[str, UpdateStats]) -> dict[str, float]:
    """Model-level values: the norm of the concatenated update, and the mean norm and factor over layers."""
    if not stats:
        return {}
    norms = [s.norm for s in stats.values()]
    return {
        "total_norm": math.sqrt(sum(n * n for n in norms)),
        "mean_norm": sum(norms) / len(norms),
        "mean_amplification": sum(s.amplification for s in stats.values()) / len(stats),
    }


class UpdateNormRecorder:
    """Measures a model at the steps it is asked to and remembers each measurement once."""

    def __init__(self, every: int, log: LogFn | None = None) -> None:
        if every < 1:
            raise ValueError(f"update norms are measured every N >= 1 steps, got {every}")
        self.every = every
        self.log = log
        self.steps: list[int] = []
        self.summary: dict[str, list[float]] = {}
        self.layers: dict[str, dict[str, list[float]]] = {}

    def due(self, step: int) -> bool:
        return step % self.every == 0 and step not in self.steps

    def record(self, model: nn.Module, step: int) -> dict[str, float]:
        """Measure now (unless this step is already recorded); returns the logged values. A model without adapters
        (head-only, full fine-tuning) has nothing to measure and records nothing."""
        if step in self.steps:
            return {}
        stats = model_update_stats(model)
        if not stats:
            return {}
        summary = summarise(stats)
        self.steps.append(step)
        for key, value in summary.items():
            self.summary.setdefault(key, []).append(value)
        values = {f"{PREFIX}/{key}": value for key, value in summary.items()}
        for name, layer in stats.items():
            series = self.layers.setdefault(name, {"norm": [], "amplification": []})
            series["norm"].append(layer.norm)
            series["amplification"].append(layer.amplification)
            values[f"{PREFIX}/{name}/norm"] = layer.norm
            values[f"{PREFIX}/{name}/amplification"] = layer.amplification
        if self.log is not None and values:
            self.log(values, step)
        return values

    def maybe_record(self, model: nn.Module, step: int) -> None:
        if self.due(step):
            self.record(model, step)

    def series(self) -> dict[str, Any]:
        """The record's ``update_norms`` block: steps, summary series and per-layer series, aligned by index."""
        return {"every": self.every, "steps": list(self.steps), "summary": self.summary, "layers": self.layers}
