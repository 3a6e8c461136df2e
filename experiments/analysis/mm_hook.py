"""The update-norm recorder as an mmengine Hook (its own module: only the vision stack has mmengine)."""

from __future__ import annotations

from typing import Any

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from torch import nn

from experiments.analysis.recorder import LogFn, UpdateNormRecorder


def _unwrapped(runner: Runner) -> nn.Module:
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


class UpdateNormHook(Hook):
    """At the iteration training starts from (0, or a resumed checkpoint's), every N iterations and at the end."""

    priority = "LOW"

    def __init__(self, every: int, log: LogFn | None = None) -> None:
        self.recorder = UpdateNormRecorder(every, log)

    def before_train(self, runner: Runner) -> None:
        self.recorder.record(_unwrapped(runner), runner.iter)

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self.recorder.maybe_record(_unwrapped(runner), runner.iter + 1)

    def after_train(self, runner: Runner) -> None:
        self.recorder.record(_unwrapped(runner), runner.iter)
