"""mmengine's Runner as the engine for vision tasks (mmseg UperNet, mmdet Mask R-CNN, timm classifiers).

The Hydra config names an mmengine config file per task (backbone.mm_configs[task.name]); that file inherits
mmseg's/mmdet's own base configs. This module fills in what a run decides (data folder, iterations, lr,
batch size, seed, work dir), builds the model, attaches the method through flora.attach (the runner's
methods.attach_method), and hands the module to mmengine's Runner, which trains, checkpoints and evaluates
with its own loops and evaluators. Runs resume from the last checkpoint in their work dir.
"""

from __future__ import annotations

import numbers
import random
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import CheckpointLoader, Runner, set_random_seed
from omegaconf import DictConfig, OmegaConf

from experiments.config import REPO_ROOT
from experiments.engines.base import EngineResult
from experiments.errors import NonFiniteLossError, unknown_name
from experiments.methods import attach_method, parameter_counts
from experiments.provenance import peak_memory, reset_peak_memory
from experiments.tracking import tracking
from experiments.vision.cache import set_cpu_threads

PEFT_METHODS = ("lora", "dora")
ADAPTER_METHODS = ("flora", *PEFT_METHODS)
PERCENT_METRICS = ("aAcc", "mIoU", "mAcc", "accuracy")
VERSIONED = ("timm", "mmengine", "mmcv", "mmsegmentation", "mmdet")


@CheckpointLoader.register_scheme(prefixes="", force=True)
def load_local_checkpoint(filename: str, map_location: Any = None) -> dict:
    """mmengine's own checkpoints pickle optimizer and message-hub state, which torch >= 2.6's default
    weights-only loading refuses; these files are written by this engine, so load them in full."""
    path = Path(filename).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path} can not be found.")
    return torch.load(path, map_location=map_location, weights_only=False)


class RunStateHook(Hook):
    """Keeps a resumed run identical to an uninterrupted one and stops on a non-finite loss.

    mmengine restores model, optimizer, scheduler and iteration but not the global RNGs (dropout, RoI
    sampling); this hook stores them in each checkpoint and restores them on resume.
    """

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self.resumed_from_iter = 0

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        checkpoint["rng_state"] = {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        }

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        self.resumed_from_iter = int(checkpoint.get("meta", {}).get("iter", 0))
        state = checkpoint.get("rng_state")
        if state is not None:
            torch.set_rng_state(state["torch"])
            np.random.set_state(state["numpy"])
            random.setstate(state["python"])

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        loss = (outputs or {}).get("loss")
        if loss is not None and not torch.isfinite(torch.as_tensor(loss)).all():
            raise NonFiniteLossError(runner.iter + 1, float(torch.as_tensor(loss).float().mean()))


class TrackerHook(Hook):
    """Per-iteration training losses into the active W&B run (the record keeps the final figures)."""

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        import wandb

        if wandb.run is not None and outputs:
            wandb.log({f"train/{k}": float(v) for k, v in outputs.items()}, step=runner.iter + 1)


def mm_config_file(cfg: DictConfig) -> Path:
    """The mmengine config of this (backbone, task) pair."""
    files = cfg.backbone.get("mm_configs") or {}
    if cfg.task.name not in files:
        raise unknown_name(f"task for backbone '{cfg.backbone.name}' (backbone.mm_configs)", cfg.task.name, files)
    path = Path(files[cfg.task.name])
    return path if path.is_absolute() else REPO_ROOT / path


def head_learning_rate(cfg: DictConfig) -> dict[str, Any]:
    """mmengine paramwise lr multipliers so that the new modules (neck, heads) train at task.lr.head whatever the
    backbone's lr: full fine-tuning takes a small backbone lr, and without this its new heads would crawl at it."""
    lr, head_lr = float(cfg.method.learning_rate), float(cfg.task.lr.head)
    modules = cfg.backbone.get("head_modules") or []
    if head_lr == lr or not modules:
        return {}
    return {"optim_wrapper.paramwise_cfg": {"custom_keys": {name: {"lr_mult": head_lr / lr} for name in modules}}}


def build_mm_config(cfg: DictConfig, data_root: Path | None, work_dir: Path) -> Config:
    """The mmengine config file with the run's data folder, schedule, optimiser settings and seed, then
    task.mm_overrides (any mmengine config keys, nested; e.g. a sweep's held-out validation set)."""
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
    model_key = "model.backbone" if "backbone" in mm.model else "model"
    overrides[f"{model_key}.weights"] = cfg.backbone.get("weights")
    if data_root is not None:
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
            overrides[f"{loader}.dataset.data_root"] = str(data_root)
        for evaluator in ("val_evaluator", "test_evaluator"):
            if "ann_file" in mm.get(evaluator, {}):
                overrides[f"{evaluator}.ann_file"] = str(data_root / mm[evaluator]["ann_file"])
    mm.merge_from_dict(overrides)
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
    IoUMetric and the Accuracy metric report percentages; mmdet's CocoMetric fractions)."""
    metrics = {}
    for key, value in results.items():
        if isinstance(value, numbers.Real):  # python or numpy scalars (mmseg returns numpy floats)
            name = key.replace("coco/", "").replace("/", "_")
            metrics[f"val_{name}"] = float(value) / (100.0 if name in PERCENT_METRICS else 1.0)
    return metrics


def make_runner(mm: Config, model: torch.nn.Module, hooks: list[Hook], name: str) -> Runner:
    """Runner.from_cfg with a ready model (already carrying its adapters); resumes from work_dir if it can."""
    return Runner(
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
        custom_hooks=hooks,
        load_from=None,
        resume=True,
        env_cfg=mm.get("env_cfg", {"dist_cfg": {"backend": "gloo"}}),
        log_processor=mm.get("log_processor"),
        log_level=mm.get("log_level", "INFO"),
        visualizer=mm.get("visualizer"),
        default_scope=mm.get("default_scope", "mmengine"),
        randomness=mm.get("randomness"),
        experiment_name=name,
        cfg=mm,
    )


def train_and_evaluate(
    cfg: DictConfig, record: dict[str, Any], data_root: Path | None, work_dir: Path, track_steps: bool
) -> EngineResult:
    """Build, attach, train (resuming from work_dir's last checkpoint) and evaluate; fills record['params']."""
    mm = build_mm_config(cfg, data_root, work_dir)
    set_random_seed(int(cfg.seed))
    model = build_model(mm)
    backbone_total = sum(p.numel() for p in getattr(model, "backbone", model).parameters())
    record["params"] = parameter_counts(attach_method(model, method_config(cfg)), backbone_total)
    state_hook = RunStateHook()
    hooks = [state_hook, *([TrackerHook()] if track_steps else [])]
    runner = make_runner(mm, model, hooks, f"{record['run_id']}-{time.time_ns()}")
    start = time.perf_counter()
    runner.train()
    train_seconds = time.perf_counter() - start
    record["resumed_from_iter"] = state_hook.resumed_from_iter  # read now: val() reloads the last checkpoint
    metrics = _metrics(runner.val())
    steps = int(cfg.task.max_iters)
    done = steps - record["resumed_from_iter"]
    return EngineResult(
        metrics=metrics,
        steps=steps,
        train_seconds=train_seconds,
        samples_per_second=done * int(cfg.task.batch_size) / train_seconds if train_seconds else 0.0,
    )


def prepare_data(task: DictConfig) -> Path | None:
    """The task's generated data folder (built once into the cache), or None when the config names its data."""
    if task.get("scenes") is None:
        return None
    from experiments.vision.scenes import SceneSpec, ensure_scenes

    spec = OmegaConf.to_container(task.scenes, resolve=True)
    return ensure_scenes(SceneSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}))


def train_run(cfg: DictConfig, record: dict[str, Any]) -> None:
    """The mmengine counterpart of experiments.engines.hf_trainer.train_run: fills the same record fields in place."""
    record.setdefault("versions", {}).update({name: metadata.version(name) for name in VERSIONED})
    record["cpu_threads"] = set_cpu_threads()
    data_root = prepare_data(cfg.task)
    work_dir = Path(cfg.paths.work_dir) / record["run_id"]
    with tracking(cfg.logger, record["run_id"], record["config"]) as tracker:
        reset_peak_memory()
        result = train_and_evaluate(cfg, record, data_root, work_dir, track_steps=bool(tracker.report_to))
        tracker.summary({f"params/{k}": v for k, v in record["params"].items()})
        result.fill_record(record)
        record["memory"] = peak_memory()
        tracker.summary({"record": record})


def meta_counts(cfg: DictConfig) -> dict[str, float]:
    """#params of the run cfg describes: the whole mm model built on the meta device, no weights or data."""
    mm = Config.fromfile(str(mm_config_file(cfg)))
    weights_owner = mm.model.backbone if "backbone" in mm.model else mm.model
    weights_owner.weights = None
    with torch.device("meta"):
        model = build_model(mm)
    backbone_total = sum(p.numel() for p in getattr(model, "backbone", model).parameters())
    return parameter_counts(attach_method(model, method_config(cfg)), backbone_total)
