"""transformers' Trainer on LlavaForConditionalGeneration: LLaVA-1.5's stage 2 with the run's method.

Both profiles run the same path: load the stage-1 LLaVA folder (mini: built here; paper: assembled from Vicuna,
CLIP and the released projector), attach the method to the language model's linears, keep the vision tower frozen
and the projector trained, fine-tune on conversations with the loss on the assistant turns, then evaluate (mini:
easy-VQA exact match and a POPE-style subset; paper: the merged model handed to lmms-eval).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from transformers import TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from experiments.engines.base import EngineResult, RunContext
from experiments.errors import MissingAssetsError
from experiments.methods import attach_method, parameter_counts
from experiments.multimodal import easy_vqa, handoff, llava_665k, mini_model, paper_model
from experiments.multimodal.evaluation import evaluate_easy_vqa
from experiments.multimodal.processor import image_seq_length
from experiments.multimodal.training import Collator, ConversationDataset, Example, LlavaTrainer
from experiments.vision.cache import set_cpu_threads

PROJECTOR = "model.multi_modal_projector"
# The projector-only method: it trains at its own rate; every other method trains the language model (adapters or
# all of it) at the method's rate and the projector beside it at task.lr.projector (LLaVA's mm_projector_lr).
PROJECTOR_ONLY = "head"


def check_assets(cfg: DictConfig) -> None:
    """Stop before building anything when the paper profile's weights or data are not in place, naming all."""
    if cfg.backbone.builder != "paper":
        return
    problems = []
    if not (paper_model.weights_root(cfg.backbone) / f"{cfg.backbone.name}-stage1").is_dir():
        problems += paper_model.missing_weights(cfg.backbone)
    problems += llava_665k.missing_data(Path(cfg.task.data_root), cfg.task.json_file)
    if problems:
        raise MissingAssetsError(problems)


def stage1_folder(cfg: DictConfig) -> Path:
    builder = mini_model if cfg.backbone.builder == "mini" else paper_model
    return builder.ensure_stage1(cfg.backbone)


def prepare(model: nn.Module, cfg: DictConfig) -> nn.Module:
    """The method on the language model; the vision tower frozen whatever the method (full included)."""
    model = attach_method(model, cfg.method)
    for name in cfg.backbone.frozen_modules:
        model.get_submodule(name).requires_grad_(False)
    return model


def counts(model: nn.Module, backbone_total: int) -> dict[str, float]:
    """The runner's counts plus trainable_pct_of_all: trainable / all parameters including the adapter, the
    convention of the DoRA paper's LLaVA table (LoRA 4.61%, DoRA 4.63%)."""
    result = parameter_counts(model, backbone_total)
    result["trainable_pct_of_all"] = 100.0 * result["trainable"] / result["total"]
    return result


def train_examples(cfg: DictConfig) -> list[Example]:
    task = cfg.task
    if task.data == "easy_vqa":
        return easy_vqa.instruction_examples(task.get("train_images"), task.get("max_turns"))
    return llava_665k.examples(Path(task.data_root), task.json_file, task.get("train_images"))


def training_arguments(cfg: DictConfig, ctx: RunContext) -> TrainingArguments:
    """The trainer group's arguments with the task's own (steps, DeepSpeed, bf16, checkpointing) on top."""
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    kwargs.update(OmegaConf.to_container(cfg.task.trainer_args, resolve=True))
    kwargs.setdefault("save_strategy", "no")
    return TrainingArguments(
        output_dir=str(ctx.work_dir),
        seed=int(cfg.seed),
        report_to=ctx.tracker.report_to or "none",
        run_name=ctx.run_id,
        eval_strategy="no",
        remove_unused_columns=False,
        **kwargs,
    )


def evaluate(model: nn.Module, processor: Any, cfg: DictConfig, ctx: RunContext) -> dict[str, float]:
    task = cfg.task
    if task.data == "easy_vqa":
        return evaluate_easy_vqa(model, processor, image_seq_length(model.config), task.eval)
    model_dir = handoff.export_for_eval(model, processor, ctx.work_dir / "merged")
    if not task.eval.run_lmms_eval:
        return {}
    return handoff.run_lmms_eval(model_dir, list(task.eval.lmms_tasks), ctx.work_dir / "lmms_eval")


def train_run(cfg: DictConfig, ctx: RunContext) -> EngineResult:
    """Build, attach, train and evaluate one run; the runner writes the record."""
    threads = set_cpu_threads()
    set_seed(int(cfg.seed))
    check_assets(cfg)
    args = training_arguments(cfg, ctx)  # first, so that ZeRO-3 partitions the model while it loads
    folder = stage1_folder(cfg)
    model, processor = paper_model.load(folder, torch.bfloat16 if args.bf16 else torch.float32)
    backbone_total = sum(p.numel() for p in model.parameters())
    model = prepare(model, cfg)
    params = counts(model, backbone_total)
    ctx.tracker.summary({f"params/{k}": v for k, v in params.items()})
    data = ConversationDataset(train_examples(cfg), processor, image_seq_length(model.config), cfg.task.max_length)
    projector_lr = None if cfg.method.name == PROJECTOR_ONLY else cfg.task.lr.projector
    trainer = LlavaTrainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=Collator(processor.tokenizer.pad_token_id),
        projector_prefix=PROJECTOR,
        projector_lr=projector_lr,
    )
    checkpoint = get_last_checkpoint(str(ctx.work_dir)) if ctx.resume and ctx.work_dir.is_dir() else None
    output = trainer.train(resume_from_checkpoint=checkpoint)
    resumed = int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else 0
    metrics = {"train_loss": float(output.training_loss), **evaluate(model, processor, cfg, ctx)}
    return EngineResult(
        metrics=metrics,
        params=params,
        steps=int(trainer.state.global_step) - resumed,
        total_steps=int(trainer.state.max_steps),
        train_seconds=float(output.metrics.get("train_runtime", 0.0)),
        samples_per_second=float(output.metrics.get("train_samples_per_second", 0.0)),
        resumed_from_step=resumed,
        extras={"cpu_threads": threads, "stage1": folder.name},
    )


def meta_counts(cfg: DictConfig) -> dict[str, float]:
    """#params of the run's model on the meta device (mini: the architecture read from the GGUF's metadata)."""
    builder = mini_model if cfg.backbone.builder == "mini" else paper_model
    model = builder.build_on_meta(cfg.backbone)
    backbone_total = sum(p.numel() for p in model.parameters())
    return counts(prepare(model, cfg), backbone_total)
