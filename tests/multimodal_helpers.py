"""A tiny random LLaVA and a word-level tokenizer with the chat templates' special tokens, built in memory."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PreTrainedTokenizerFast,
)

from experiments.multimodal.processor import add_image_token, build_processor

SPECIALS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
WORDS = "user assistant what color is the shape ? blue red yes no a circle describe image briefly . : USER ASSISTANT"


def tiny_tokenizer(bos: bool = False) -> PreTrainedTokenizerFast:
    """Word-level; with bos=True it prepends <s> like Llama's tokenizer (the vicuna template does not render it)."""
    vocab = {t: i for i, t in enumerate(SPECIALS + sorted(set(WORDS.split()) | set("?.:'")))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>" if bos else "<|im_end|>",
        pad_token="<unk>" if bos else "</s>",
        additional_special_tokens=SPECIALS[3:],
    )


def tiny_llava(template: str = "chatml", bos: bool = False) -> tuple[LlavaForConditionalGeneration, object]:
    """A 2-layer Llama + 1-layer CLIP LLaVA (32 px, 16 px patches: 4 image tokens) and its processor."""
    tokenizer = tiny_tokenizer(bos)
    image_token = add_image_token(tokenizer)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
        ),
        text_config=LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_id=image_token,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, build_processor(tokenizer, config, template, (0.5,) * 3, (0.5,) * 3)
