"""The processor (image preprocessing, tokenizer with the image token, chat template) of both profiles, and the
number of placeholder tokens one image takes, computed as LlavaProcessor computes it."""

from __future__ import annotations

from typing import Any

from transformers import CLIPImageProcessor, LlavaConfig, LlavaProcessor

from experiments.multimodal.conversation import IMAGE_PLACEHOLDER
from experiments.multimodal.templates import chat_template


def image_seq_length(config: LlavaConfig) -> int:
    """Image features per image: one per patch, plus CLS unless the 'default' strategy drops it."""
    vision = config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2
    return patches + (0 if config.vision_feature_select_strategy == "default" else 1)


def add_image_token(tokenizer: Any) -> int:
    """Add "<image>" as a special token (a no-op when the tokenizer has it); its id."""
    if IMAGE_PLACEHOLDER not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_PLACEHOLDER]})
    return tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER)


def build_processor(tokenizer: Any, config: LlavaConfig, template: str, mean: tuple, std: tuple) -> LlavaProcessor:
    """A LlavaProcessor for a square tower of config's size, with the named chat template on it and its tokenizer."""
    size = config.vision_config.image_size
    images = CLIPImageProcessor(
        size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
        image_mean=list(mean),
        image_std=list(std),
    )
    tokenizer.chat_template = chat_template(template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        patch_size=config.vision_config.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        num_additional_image_tokens=1,
        chat_template=tokenizer.chat_template,
    )
