"""The update-norm recorder as a transformers TrainerCallback: at step 0, every N steps and at the last step."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from experiments.analysis.recorder import LogFn, UpdateNormRecorder


class UpdateNormCallback(TrainerCallback):
    """Measures the model the Trainer hands to its callbacks (the unwrapped one, not a DDP wrapper)."""

    def __init__(self, every: int, log: LogFn | None = None) -> None:
        self.recorder = UpdateNormRecorder(every, log)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        self.recorder.record(kwargs["model"], state.global_step)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        self.recorder.maybe_record(kwargs["model"], state.global_step)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        self.recorder.record(kwargs["model"], state.global_step)
