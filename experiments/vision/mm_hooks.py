"""mmengine hooks the vision engine adds to every run: non-finite loss checks, step timing and per-step tracking
(the checkpoint-format hook lives with the loader, in experiments/vision/mm_checkpoints.py)."""

from __future__ import annotations

import time
from typing import Any

import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from experiments.errors import NonFiniteLossError
from experiments.tracking import Tracker


class NonFiniteLossHook(Hook):
    """Stops a run at the first non-finite loss, naming the step (the runner records it)."""

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        loss = (outputs or {}).get("loss")
        if loss is not None and not torch.isfinite(torch.as_tensor(loss)).all():
            raise NonFiniteLossError(runner.iter + 1, float(torch.as_tensor(loss).float().mean()))


class StepTimer(Hook):
    """Where this process's training started and how long the iterations it ran took.

    start_iter is the loop's iteration when training began (the resumed checkpoint's, else 0); seconds span the
    first iteration run here to the end of the last (checkpoint saves included, the resume's load and dataloader
    fast-forward not), so a resumed run is timed on the iterations it ran and nothing else.
    """

    priority = "LOWEST"

    def __init__(self) -> None:
        self.start_iter = 0
        self.steps = 0
        self._first: float | None = None
        self._last: float | None = None

    def before_train(self, runner: Runner) -> None:
        self.start_iter = runner.iter

    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None:
        if self._first is None:
            self._first = time.perf_counter()

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self.steps += 1
        self._last = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Wall time of the iterations run here (0.0 when none was)."""
        return self._last - self._first if self._first is not None and self._last is not None else 0.0


class TrackerHook(Hook):
    """Per-iteration training losses into the run's tracker (the record keeps the final figures)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if outputs:
            values = {f"train/{k}": float(torch.as_tensor(v).detach()) for k, v in outputs.items()}
            self.tracker.log(values, step=runner.iter + 1)
