"""The mini LLaVA: SmolLM2-135M-Instruct (converted from its GGUF) + the small pretrained CLIP tower + LLaVA's
two-layer GELU projector, in transformers' LlavaForConditionalGeneration, then LLaVA's stage 1 (projector
alignment on captions). The result is saved once as an ordinary LLaVA folder (model + processor) in the cache, so
every run loads it with from_pretrained exactly as the paper profile loads its stage-1 folder."""

from __future__ import annotations

import hashlib
import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PretrainedConfig,
    set_seed,
)

from experiments.atomic import build_dir_once
from experiments.multimodal import easy_vqa
from experiments.multimodal.evaluation import evaluate_captions
from experiments.multimodal.gguf_lm import ensure_converted, file_fingerprint, packaged_gguf
from experiments.multimodal.processor import add_image_token, build_processor, image_seq_length
from experiments.multimodal.shapes import render
from experiments.multimodal.training import Collator, ConversationDataset, LlavaTrainer
from experiments.multimodal.vision_tower import (
    FEATURE_LAYER,
    IMAGE_MEAN,
    IMAGE_STD,
    TowerRecipe,
    ensure_tower,
    load_tower,
    normalize,
)
from experiments.vision.cache import cache_root, set_cpu_threads

PROJECTOR = "model.multi_modal_projector"
STAGE1_KEYS = ("language_model", "vision_tower", "alignment", "chat_template")


def llava_config(text_config: PretrainedConfig, image_token: int, recipe: TowerRecipe) -> LlavaConfig:
    """LLaVA-1.5's layout (penultimate-layer patch features, CLS dropped, GELU MLP projector) on the mini parts."""
    return LlavaConfig(
        vision_config=recipe.vision_config(),
        text_config=text_config,
        image_token_id=image_token,
        projector_hidden_act="gelu",
        vision_feature_layer=FEATURE_LAYER,
        vision_feature_select_strategy="default",
        tie_word_embeddings=text_config.tie_word_embeddings,
    )


@cache
def gguf_text_config(gguf: Path) -> tuple[PretrainedConfig, int]:
    """The LM's config with the vocabulary grown by the image token, and that token's id: read from the GGUF's
    metadata, so the dry run needs neither the conversion nor the stage-1 cache."""
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    image_token = add_image_token(tokenizer)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config.vocab_size = len(tokenizer)
    return config, image_token


def build_on_meta(backbone: DictConfig) -> LlavaForConditionalGeneration:
    """The mini LLaVA's architecture on the meta device (for #params; no weights, no caches)."""
    gguf = packaged_gguf(backbone.language_model.package, backbone.language_model.file)
    text_config, image_token = gguf_text_config(gguf)
    config = llava_config(text_config, image_token, TowerRecipe(**backbone.vision_tower))
    with torch.device("meta"):
        return LlavaForConditionalGeneration(config)


@torch.no_grad()
def match_word_scale(model: LlavaForConditionalGeneration, recipe: TowerRecipe) -> None:
    """Scale the fresh projector's output layer so image tokens start at the norm of the LM's word embeddings.

    A default-initialised projector makes them about 7x larger, and a short stage 1 does not undo that: the LM
    then treats them as noise. Measured on generated shapes (the tower's own pretraining images), not on easy-VQA.
    """
    images = render(64, recipe.image_size, torch.Generator().manual_seed(0))[0]
    hidden = model.model.vision_tower(normalize(images), output_hidden_states=True).hidden_states[FEATURE_LAYER]
    features = model.model.multi_modal_projector(hidden[:, 1:])
    words = model.get_input_embeddings().weight.norm(dim=-1).mean()
    factor = words / features.norm(dim=-1).mean()
    model.model.multi_modal_projector.linear_2.weight.mul_(factor)
    model.model.multi_modal_projector.linear_2.bias.mul_(factor)


def assemble(lm_dir: Path, tower_file: Path, recipe: TowerRecipe, template: str) -> tuple[Any, Any]:
    """LlavaForConditionalGeneration from the converted LM and the pretrained tower (projector fresh)."""
    tokenizer = AutoTokenizer.from_pretrained(lm_dir)
    image_token = add_image_token(tokenizer)
    lm = AutoModelForCausalLM.from_pretrained(lm_dir, dtype=torch.float32)
    lm.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    config = llava_config(lm.config, image_token, recipe)
    model = LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(lm.model.state_dict())
    model.lm_head.load_state_dict(lm.lm_head.state_dict())
    model.model.vision_tower.load_state_dict(load_tower(tower_file)[0])
    match_word_scale(model, recipe)
    model.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    processor = build_processor(tokenizer, config, template, IMAGE_MEAN, IMAGE_STD)
    return model, processor


def align(model: Any, processor: Any, alignment: DictConfig, out_dir: Path) -> dict[str, float]:
    """LLaVA stage 1: only the projector trains, on captions; out_dir takes the Trainer's scratch files."""
    from transformers import TrainingArguments

    set_cpu_threads()
    set_seed(int(alignment.seed))
    model.requires_grad_(False)
    model.get_submodule(PROJECTOR).requires_grad_(True)
    data = ConversationDataset(easy_vqa.caption_examples(), processor, image_seq_length(model.config), None)
    args = TrainingArguments(
        output_dir=str(out_dir / "trainer"),
        max_steps=int(alignment.steps),
        per_device_train_batch_size=int(alignment.batch_size),
        learning_rate=float(alignment.lr),
        warmup_steps=0.03,
        lr_scheduler_type="cosine",
        weight_decay=0.0,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        seed=int(alignment.seed),
        dataloader_pin_memory=False,
        remove_unused_columns=False,
    )
    trainer = LlavaTrainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=Collator(processor.tokenizer.pad_token_id),
        projector_prefix=PROJECTOR,
    )
    output = trainer.train()
    return {"alignment_loss": float(output.training_loss), "alignment_seconds": float(output.metrics["train_runtime"])}


def stage1_key(backbone: DictConfig, gguf: Path) -> str:
    """A hash of what decides the stage-1 weights (not the adapter targets or other run settings)."""
    parts = {k: OmegaConf.to_container(backbone, resolve=True)[k] for k in STAGE1_KEYS}
    tower = TowerRecipe(**backbone.vision_tower).key()
    blob = json.dumps({"lm": file_fingerprint(gguf), "tower": tower, **parts}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def ensure_stage1(backbone: DictConfig) -> Path:
    """The cached stage-1 folder of the mini LLaVA, built (tower, conversion, alignment) when absent."""
    gguf = packaged_gguf(backbone.language_model.package, backbone.language_model.file)
    recipe = TowerRecipe(**backbone.vision_tower)
    target = cache_root() / "weights" / f"{backbone.name}-stage1-{stage1_key(backbone, gguf)}"
    if target.is_dir():
        return target
    lm_dir, tower_file = ensure_converted(gguf), ensure_tower(recipe)

    def build(tmp: Path) -> None:
        model, processor = assemble(lm_dir, tower_file, recipe, backbone.chat_template)
        with tempfile.TemporaryDirectory() as work:
            summary = align(model, processor, backbone.alignment, Path(work))
        summary.update(evaluate_captions(model, processor, image_seq_length(model.config)))
        summary["vision_tower"] = load_tower(tower_file)[1]
        model.requires_grad_(True)
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "stage1.json").write_text(json.dumps(summary, indent=2))

    print(f"[llava mini] building stage 1 (projector alignment) -> {target}")
    return build_dir_once(target, build)
