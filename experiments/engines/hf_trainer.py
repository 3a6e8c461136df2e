"""transformers.Trainer as the engine for language tasks: train, then evaluate every eval split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from experiments.data import TaskData
from experiments.engines.base import EngineResult
from experiments.errors import NonFiniteLossError
from experiments.metrics import make_compute_metrics


class GuardedTrainer(Trainer):
    """A Trainer that stops at the first NaN/inf loss instead of training on garbage."""

    def training_step(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        loss = super().training_step(*args, **kwargs)
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(self.state.global_step + 1, float(loss.detach().float().mean()))
        return loss


def training_arguments(cfg: DictConfig, output_dir: Path, report_to: list[str]) -> TrainingArguments:
    """TrainingArguments from the trainer config; checkpoints off (tables need metrics, not weights)."""
    return TrainingArguments(
        output_dir=str(output_dir),
        seed=int(cfg.seed),
        report_to=report_to or "none",
        run_name=output_dir.name,
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=False,
        **OmegaConf.to_container(cfg.trainer, resolve=True),
    )


def train_and_evaluate(
    model: nn.Module, tokenizer: Any, data: TaskData, cfg: DictConfig, output_dir: Path, report_to: list[str]
) -> EngineResult:
    """Fine-tune on data.train, then evaluate each eval split with the task's metrics."""
    trainer = GuardedTrainer(
        model=model,
        args=training_arguments(cfg, output_dir, report_to),
        train_dataset=data.train,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=make_compute_metrics(list(cfg.task.metrics), regression=cfg.task.num_labels == 1),
    )
    train_output = trainer.train()
    metrics = dict(train_output.metrics)
    for prefix, dataset in data.evals.items():
        metrics.update(trainer.evaluate(eval_dataset=dataset, metric_key_prefix=prefix))
    return EngineResult(
        metrics={k: float(v) for k, v in metrics.items() if isinstance(v, int | float)},
        steps=int(trainer.state.global_step),
        train_seconds=float(train_output.metrics.get("train_runtime", 0.0)),
        samples_per_second=float(train_output.metrics.get("train_samples_per_second", 0.0)),
    )
