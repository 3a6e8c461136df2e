"""The contract between the runner and every training engine.

An engine module has `train_run(cfg, ctx) -> EngineResult` and `meta_counts(cfg) -> dict`. It trains and
evaluates, and hands back what it measured; it never writes the run record, resets or reads peak memory, or
opens a tracker: the runner does that once for every engine (experiments/runner.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.tracking import Tracker


@dataclass(frozen=True)
class RunContext:
    """What the runner gives an engine for one run.

    work_dir is private to the run (checkpoints, Trainer output). resume is False when the run was forced or its
    previous record was invalidated: the engine must then start from scratch, ignoring any checkpoint in work_dir.
    """

    run_id: str
    work_dir: Path
    tracker: Tracker
    resume: bool = True


@dataclass
class EngineResult:
    """Final metrics (prefixed by split), parameter counts and timing of the steps this process trained.

    steps counts the optimisation steps run here; total_steps the run's whole schedule. A run resumed at step k
    has steps = total_steps - k, and train_seconds times only those, so seconds_per_step stays honest.
    extras: engine-specific record fields (e.g. cpu_threads, versions of the engine's own libraries, the data and
    weight caches the run read, as {name: fingerprint}).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    total_steps: int = 0
    train_seconds: float = 0.0
    samples_per_second: float = 0.0
    resumed_from_step: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_step(self) -> float | None:
        """Seconds per step trained in this process; None when none was (nothing to time)."""
        return self.train_seconds / self.steps if self.steps else None

    def timing(self) -> dict[str, Any]:
        """The record's timing block."""
        return {
            "steps": self.steps,
            "total_steps": self.total_steps,
            "resumed_from_step": self.resumed_from_step,
            "train_seconds": self.train_seconds,
            "seconds_per_step": self.seconds_per_step,
            "samples_per_second": self.samples_per_second,
        }
