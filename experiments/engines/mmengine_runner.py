"""mmengine's Runner as the engine for vision tasks (mmseg UperNet, mmdet Mask R-CNN, timm classifiers).

The Hydra config names an mmengine config file per task (backbone.mm_configs[task.name]); that file inherits
mmseg's/mmdet's own base configs. This module fills in what a run decides (data folder, iterations, lr,
batch size, seed, work dir), builds the model, attaches the method through flora.attach (the runner's
methods.attach_method), and hands the module to mmengine's Runner, which trains, checkpoints and evaluates
with its own loops and evaluators. A run resumes from the last checkpoint in its work dir unless the runner says
otherwise (RunContext.resume), and reports only what it measured (experiments/engines/base.py).
"""

from __future__ import annotations

import numbers
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from experiments.config import REPO_ROOT
from experiments.engines.base import EngineResult, RunContext
from experiments.errors import MissingSetupError, unknown_name
from experiments.methods import attach_method, parameter_counts
from experiments.provenance import installed_versions
from experiments.vision.cache import set_cpu_threads
from experiments.vision.inputs import prepare_data, run_inputs
from experiments.vision.stack import SETUP_COMMAND, require_vision_stack

try:
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner, set_random_seed

    from experiments.analysis.mm_hook import UpdateNormHook
    from experiments.vision.mm_checkpoints import OwnCheckpointRunner, PlainStateHook
    from experiments.vision.mm_hooks import NonFiniteLossHook, StepTimer, TrackerHook
except ModuleNotFoundError as err:
    if (err.name or "").split(".")[0] != "mmengine":
        raise
    raise MissingSetupError("mmengine, which the vision engine runs on (not installed)", SETUP_COMMAND) from err

PEFT_METHODS = ("lora", "dora")
ADAPTER_METHODS = ("flora", *PEFT_METHODS)
PERCENT_METRICS = ("aAcc", "mIoU", "mAcc", "accuracy")
VERSIONED = ("timm", "mmengine", "mmcv", "mmsegmentation", "mmdet")


def mm_config_file(cfg: DictConfig) -> Path:
    """The mmengine config of this (backbone, task) pair."""
    files = cfg.backbone.get("mm_configs") or {}
    if cfg.task.name not in files:
        raise unknown_name(f"task for backbone '{cfg.backbone.name}' (backbone.mm_configs)", cfg.task.name, files)
    path = Path(files[cfg.task.name])
    return path if path.is_absolute() else REPO_ROOT / path


def backbone_config(mm: Config) -> Any:
    """The part of the mm model config that builds the pretrained backbone (a detector's/segmentor's backbone, or
    the whole model for the classifier): the one that carries `weights` and `model_name`."""
    return mm.model.backbone if "backbone" in mm.model else mm.model


def head_learning_rate(cfg: DictConfig) -> dict[str, Any]:
    """mmengine paramwise lr multipliers so that the new modules (neck, heads) train at task.lr.head whatever the
    backbone's lr: full fine-tuning takes a small backbone lr, and without this its new heads would crawl at it.
    Head-only trains nothing else, so its own (possibly tuned) learning rate is the heads' learning rate."""
    lr, head_lr = float(cfg.method.learning_rate), float(cfg.task.lr.head)
    modules = cfg.backbone.get("head_modules") or []
    if cfg.method.name == "head" or head_lr == lr or not modules:
        return {}
    return {"optim_wrapper.paramwise_cfg": {"custom_keys": {name: {"lr_mult": head_lr / lr} for name in modules}}}


def build_mm_config(cfg: DictConfig, data_root: Path | None, work_dir: Path) -> Config:
    """The mmengine config file with the run's data folder, schedule, optimiser settings, seed and backbone.weights
    (set whole, not merged into the file's own), then task.mm_overrides (any mmengine config keys, nested; e.g. a
    sweep's held-out validation set, custom_hooks)."""
    mm = Config.fromfile(str(mm_config_file(cfg)))
    task = cfg.task
    iters = int(task.max_iters)
    overrides: dict[str, Any] = {
        "work_dir": str(work_dir),
        "randomness": {"seed": int(cfg.seed), "deterministic": False},
        "train_cfg.max_iters": iters,
        "train_cfg.val_interval": iters + 1,
        "train_cfg.val_begin": iters + 1,
        "train_dataloader.batch_size": int(task.batch_size),
        "train_dataloader.sampler": {"type": "InfiniteSampler", "shuffle": True, "seed": int(cfg.seed)},
        "val_dataloader.batch_size": int(task.eval_batch_size),
        "optim_wrapper.optimizer.lr": float(cfg.method.learning_rate),
        "param_scheduler": [
            {"type": "PolyLR", "eta_min": 0.0, "power": 1.0, "begin": 0, "end": iters, "by_epoch": False}
        ],
        "default_hooks.checkpoint.interval": int(task.checkpoint_interval),
        "default_hooks.logger.interval": int(task.log_interval),
    }
    overrides.update(head_learning_rate(cfg))
    if data_root is not None:
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
            overrides[f"{loader}.dataset.data_root"] = str(data_root)
        for evaluator in ("val_evaluator", "test_evaluator"):
            if "ann_file" in mm.get(evaluator, {}):
                overrides[f"{evaluator}.ann_file"] = str(data_root / mm[evaluator]["ann_file"])
    mm.merge_from_dict(overrides)
    weights = cfg.backbone.get("weights")
    if isinstance(weights, DictConfig):
        weights = OmegaConf.to_container(weights, resolve=True)
    backbone_config(mm).weights = weights
    if task.get("mm_overrides"):
        mm.merge_from_dict(OmegaConf.to_container(task.mm_overrides, resolve=True))
    return mm


def method_config(cfg: DictConfig) -> DictConfig:
    """cfg.method with the backbone's adapter_types as target_types (adapters wrap only those module types among
    the target names), and backbone.peft_exclude as exclude_modules for PEFT's LoRA/DoRA, which refuse depthwise
    convs at these ranks. Head-only and full fine-tuning get the method config unchanged."""
    if cfg.method.name not in ADAPTER_METHODS:
        return cfg.method
    method = OmegaConf.to_container(cfg.method, resolve=True)
    if cfg.backbone.get("adapter_types"):
        method["target_types"] = list(cfg.backbone.adapter_types)
    if cfg.method.name in PEFT_METHODS and cfg.backbone.get("peft_exclude"):
        method["exclude_modules"] = cfg.backbone.peft_exclude
    return OmegaConf.create(method)


def build_model(mm: Config) -> torch.nn.Module:
    """The mmseg/mmdet/mmengine model of the config, in its default scope (imports its custom modules)."""
    from mmengine.registry import MODELS, init_default_scope

    init_default_scope(mm.get("default_scope", "mmengine"))
    return MODELS.build(mm.model)


def _metrics(results: dict[str, Any]) -> dict[str, float]:
    """Evaluator results as record metrics: val_<name>, fractions in [0, 1] like the language tables (mmseg's
    IoUMetric and the Accuracy metric report percentages; mmdet's CocoMetric and MMRotate's DOTAMetric fractions).
    CocoMetric's -1 means "no ground truth in this size range": a value that does not exist, so no metric."""
    metrics = {}
    for key, value in results.items():
        if isinstance(value, numbers.Real) and value >= 0:  # python or numpy scalars (mmseg: numpy floats)
            name = key.replace("coco/", "").replace("/", "_")  # dota/mAP -> dota_mAP
            metrics[f"val_{name}"] = float(value) / (100.0 if name in PERCENT_METRICS else 1.0)
    return metrics


def make_runner(mm: Config, model: torch.nn.Module, hooks: list[Hook], name: str, resume: bool) -> Runner:
    """A Runner with a ready model (already carrying its adapters) that loads only its own checkpoints; with
    resume it continues from the last checkpoint in its work dir, without it ignores any there."""
    return OwnCheckpointRunner(
        model=model,
        work_dir=mm.work_dir,
        train_dataloader=mm.get("train_dataloader"),
        val_dataloader=mm.get("val_dataloader"),
        test_dataloader=mm.get("test_dataloader"),
        train_cfg=mm.get("train_cfg"),
        val_cfg=mm.get("val_cfg"),
        test_cfg=mm.get("test_cfg"),
        optim_wrapper=mm.get("optim_wrapper"),
        param_scheduler=mm.get("param_scheduler"),
        val_evaluator=mm.get("val_evaluator"),
        test_evaluator=mm.get("test_evaluator"),
        default_hooks=mm.get("default_hooks"),
        custom_hooks=[*hooks, *(mm.get("custom_hooks") or [])],
        load_from=None,
        resume=resume,
        env_cfg=mm.get("env_cfg", {"dist_cfg": {"backend": "gloo"}}),
        log_processor=mm.get("log_processor"),
        log_level=mm.get("log_level", "INFO"),
        visualizer=mm.get("visualizer"),
        default_scope=mm.get("default_scope", "mmengine"),
        randomness=mm.get("randomness"),
        experiment_name=name,
        cfg=mm,
    )


def train_run(cfg: DictConfig, ctx: RunContext) -> EngineResult:
    """Build, attach, train (resuming from ctx.work_dir's last checkpoint only when ctx.resume) and evaluate.

    Everything a run reads is checked (vision stack, scenes, pretrained weights) before the model is built, so a
    missing piece fails in one line before any training.
    """
    require_vision_stack()
    cpu_threads = set_cpu_threads()
    data_root = prepare_data(cfg.task)
    mm = build_mm_config(cfg, data_root, ctx.work_dir)
    backbone = backbone_config(mm)
    inputs = run_inputs(data_root, dict(mm.train_dataloader.dataset), backbone.get("weights"), backbone.model_name)
    set_random_seed(int(cfg.seed))
    model = build_model(mm)
    backbone_total = sum(p.numel() for p in getattr(model, "backbone", model).parameters())
    params = parameter_counts(attach_method(model, method_config(cfg)), backbone_total)
    timer = StepTimer()
    hooks: list[Hook] = [PlainStateHook(), NonFiniteLossHook(), timer]
    if ctx.tracker.report_to:
        hooks.append(TrackerHook(ctx.tracker))
    every = int(cfg.get("analysis", {}).get("update_norms_every", 0))
    norms = UpdateNormHook(every, ctx.tracker.log) if every > 0 else None
    if norms:
        hooks.append(norms)
    runner = make_runner(mm, model, hooks, f"{ctx.run_id}-{time.time_ns()}", resume=ctx.resume)
    runner.train()
    metrics = _metrics(runner.val())
    extras = {"cpu_threads": cpu_threads, "versions": installed_versions(VERSIONED), "inputs": inputs}
    if norms:
        extras["update_norms"] = norms.recorder.series()
    return EngineResult(
        metrics=metrics,
        params=params,
        steps=timer.steps,
        total_steps=int(cfg.task.max_iters),
        train_seconds=timer.seconds,
        samples_per_second=timer.steps * int(cfg.task.batch_size) / timer.seconds if timer.seconds else 0.0,
        resumed_from_step=timer.start_iter,
        extras=extras,
    )


def meta_counts(cfg: DictConfig) -> dict[str, float]:
    """#params of the run cfg describes: the whole mm model built on the meta device, no weights or data."""
    require_vision_stack()
    mm = Config.fromfile(str(mm_config_file(cfg)))
    backbone_config(mm).weights = None
    with torch.device("meta"):
        model = build_model(mm)
    backbone_total = sum(p.numel() for p in getattr(model, "backbone", model).parameters())
    return parameter_counts(attach_method(model, method_config(cfg)), backbone_total)
