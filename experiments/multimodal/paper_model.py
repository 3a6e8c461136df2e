"""LLaVA-1.5-7B (transformers' llava-hf/llava-1.5-7b-hf layout) for the paper profile.

Stage 2 of LLaVA-1.5 starts from Vicuna-7B v1.5, CLIP ViT-L/14-336 and the released stage-1 projector; these are
assembled once into a llava-hf folder (with llava-hf's processor) that every run loads with from_pretrained,
which also lets DeepSpeed ZeRO-3 partition the model while it loads. The architecture config lives in the
backbone config, so the dry run builds the model on the meta device with no download.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import (
    AutoModelForCausalLM,
    AutoProcessor,
    CLIPVisionModel,
    LlavaConfig,
    LlavaForConditionalGeneration,
)

from experiments.atomic import build_dir_once
from experiments.errors import MissingAssetsError
from experiments.multimodal.templates import chat_template
from experiments.vision.cache import cache_root

ROOT_ENV = "FLORA_LLAVA_WEIGHTS"
PROJECTOR_KEYS = {"0": "linear_1", "2": "linear_2"}


def arch_config(backbone: DictConfig) -> LlavaConfig:
    """The LlavaConfig written in backbone.arch (llava-hf/llava-1.5-7b-hf's config.json)."""
    return LlavaConfig(**OmegaConf.to_container(backbone.arch, resolve=True))


def build_on_meta(backbone: DictConfig) -> LlavaForConditionalGeneration:
    with torch.device("meta"):
        return LlavaForConditionalGeneration(arch_config(backbone))


def weights_root(backbone: DictConfig) -> Path:
    """$FLORA_LLAVA_WEIGHTS, else <cache>/weights/llava-1.5."""
    return Path(os.environ.get(ROOT_ENV) or cache_root() / "weights" / "llava-1.5")


def sources(backbone: DictConfig) -> dict[str, Path]:
    """Where each downloaded part is expected (folder names are the hub repositories' last parts)."""
    root = weights_root(backbone)
    return {name: root / Path(repo).name for name, repo in backbone.weights.items()}


def missing_weights(backbone: DictConfig) -> list[str]:
    """One line per part that is not in place: what to download and where."""
    problems = []
    for name, folder in sources(backbone).items():
        needed = folder / backbone.weights_check[name]
        if not needed.is_file():
            repo = backbone.weights[name]
            problems.append(
                f"{name}: {needed} not found; run `huggingface-cli download {repo} --local-dir {folder}` "
                f"(or set ${ROOT_ENV} to a folder holding {Path(repo).name}/)"
            )
    return problems


def _projector_state(path: Path) -> dict[str, torch.Tensor]:
    """LLaVA's mm_projector.bin ('model.mm_projector.0.weight', ...) in LlavaMultiModalProjector's names."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = {}
    for key, value in raw.items():
        index, kind = key.split("mm_projector.")[1].split(".")
        state[f"{PROJECTOR_KEYS[index]}.{kind}"] = value
    return state


def assemble_stage1(backbone: DictConfig, out_dir: Path) -> None:
    """Vicuna + CLIP + stage-1 projector in LlavaForConditionalGeneration (bf16), saved with llava-hf's processor."""
    parts = sources(backbone)
    config = arch_config(backbone)
    model = LlavaForConditionalGeneration(config).to(torch.bfloat16)
    vicuna = AutoModelForCausalLM.from_pretrained(parts["language_model"], dtype=torch.bfloat16)
    vicuna.resize_token_embeddings(config.text_config.vocab_size, mean_resizing=True)
    model.model.language_model.load_state_dict(vicuna.model.state_dict())
    model.lm_head.load_state_dict(vicuna.lm_head.state_dict())
    clip = CLIPVisionModel.from_pretrained(parts["vision_tower"], dtype=torch.bfloat16)
    model.model.vision_tower.load_state_dict(clip.state_dict())
    model.model.multi_modal_projector.load_state_dict(
        _projector_state(parts["projector"] / backbone.weights_check["projector"])
    )
    processor = AutoProcessor.from_pretrained(parts["processor"])
    processor.chat_template = processor.tokenizer.chat_template = chat_template(backbone.chat_template)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


def ensure_stage1(backbone: DictConfig) -> Path:
    """The assembled stage-1 folder (built once, atomically); MissingAssetsError naming every missing part."""
    target = weights_root(backbone) / f"{backbone.name}-stage1"
    if target.is_dir():
        return target
    problems = missing_weights(backbone)
    if problems:
        raise MissingAssetsError(problems)
    return build_dir_once(target, lambda tmp: assemble_stage1(backbone, tmp))


def load(folder: Path, dtype: Any = torch.float32) -> tuple[LlavaForConditionalGeneration, Any]:
    """Model and processor of a LLaVA folder (either profile's stage-1 folder)."""
    model = LlavaForConditionalGeneration.from_pretrained(folder, dtype=dtype)
    return model, AutoProcessor.from_pretrained(folder)
