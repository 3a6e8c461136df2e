"""What every engine hands back to the runner, whatever library trained the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EngineResult:
    """Final metrics (prefixed by split) and the timing figures of the training loop."""

    metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    train_seconds: float = 0.0
    samples_per_second: float = 0.0

    @property
    def seconds_per_step(self) -> float:
        return self.train_seconds / self.steps if self.steps else 0.0

    def fill_record(self, record: dict[str, Any]) -> None:
        """Write the metrics and timing fields every engine's run record shares."""
        record["metrics"] = self.metrics
        record["timing"] = {
            "steps": self.steps,
            "train_seconds": self.train_seconds,
            "seconds_per_step": self.seconds_per_step,
            "samples_per_second": self.samples_per_second,
        }
