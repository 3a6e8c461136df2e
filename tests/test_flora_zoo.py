"""FLoRA on every Conv*d / Linear / Embedding of real architectures nobody here chose: 20 from timm and 7 from
transformers, random init, small configs. Each must stay a working model: the fresh adapters leave the output
unchanged, gradients reach every core, and merge / unmerge are exact."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import flora
from tests.flora_helpers import rel_err

TYPES = ["Linear", "Conv1D", "Conv1d", "Conv2d", "Conv3d", "Embedding"]

# timm name -> extra create_model kwargs (a small input size where the model fixes one)
TIMM = {
    "resnet10t": {},
    "mobilenetv3_small_100": {},
    "ghostnet_100": {},
    "tf_efficientnet_lite0": {},
    "convnext_atto": {},
    "vit_tiny_patch16_224": {"img_size": 32, "patch_size": 8},
    "regnetx_002": {},
    "mobilevit_xxs": {},
    "dla46_c": {},
    "edgenext_xx_small": {},
    "fastvit_t8": {},
    "mnasnet_small": {},
    "tinynet_e": {},
    "mixnet_s": {},
    "efficientvit_b0": {},
    "semnasnet_075": {},
    "hgnetv2_b0": {},
    "lcnet_050": {},
    "mobilenetv4_conv_small": {},
    "xcit_nano_12_p16_224": {"img_size": 32, "depth": 2},
}


def _timm_case(name: str):
    def build():
        model = timm.create_model(name, pretrained=False, num_classes=3, **TIMM[name])
        return model, {"x": torch.randn(1, 3, 32, 32)}

    return build


def _t5():
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=40, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, tie_word_embeddings=False)
    ids = torch.randint(0, 40, (2, 5))
    return T5ForConditionalGeneration(cfg), {"input_ids": ids, "decoder_input_ids": ids}


# T5 ties its embeddings and output head to one tensor: merging one adapter's update into it is refused (and
# ``shared`` is never called), so the zoo adapts T5's other layers.
EXCLUDE = {"transformers/t5": r".*(shared|embed_tokens|lm_head)"}


def _vit():
    from transformers import ViTConfig, ViTForImageClassification

    cfg = ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=16, patch_size=8
    )
    return ViTForImageClassification(cfg), {"pixel_values": torch.randn(2, 3, 16, 16)}


def _whisper():
    from transformers import WhisperConfig, WhisperModel

    cfg = WhisperConfig(
        vocab_size=40,
        num_mel_bins=8,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=8,
        max_target_positions=8,
        pad_token_id=0,
        decoder_start_token_id=1,
    )
    features = torch.randn(2, 8, 16)
    return WhisperModel(cfg), {"input_features": features, "decoder_input_ids": torch.randint(0, 40, (2, 4))}


def _clip():
    from transformers import CLIPConfig, CLIPModel

    text = {"vocab_size": 40, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1}
    text.update(num_attention_heads=2, max_position_embeddings=8)
    vision = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    vision.update(image_size=16, patch_size=8)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8))
    inputs = {"input_ids": torch.randint(0, 40, (2, 5)), "pixel_values": torch.randn(2, 3, 16, 16)}
    return model, inputs


def _bert():
    from transformers import BertConfig, BertForSequenceClassification

    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    return BertForSequenceClassification(cfg), {"input_ids": torch.randint(0, 40, (2, 5))}


def _gpt2():
    from transformers import GPT2Config, GPT2Model

    cfg = GPT2Config(vocab_size=40, n_embd=16, n_layer=1, n_head=2, n_positions=8)
    return GPT2Model(cfg), {"input_ids": torch.randint(0, 40, (2, 5))}


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=40,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(cfg), {"input_ids": torch.randint(0, 40, (2, 5))}


CASES = {f"timm/{name}": _timm_case(name) for name in TIMM}
CASES.update(
    {
        "transformers/t5": _t5,
        "transformers/vit": _vit,
        "transformers/whisper": _whisper,
        "transformers/clip": _clip,
        "transformers/bert": _bert,
        "transformers/gpt2": _gpt2,
        "transformers/llama": _llama,
    }
)


def output(model: nn.Module, inputs: dict) -> torch.Tensor:
    """All floating outputs of the model as one vector (timm returns a tensor, transformers a ModelOutput)."""
    out = model(**inputs)
    tensors = [out] if isinstance(out, torch.Tensor) else [v for v in out.values() if isinstance(v, torch.Tensor)]
    return torch.cat([t.reshape(-1) for t in tensors if t.is_floating_point()])


@pytest.mark.parametrize("case", sorted(CASES))
def test_flora_keeps_the_model_working(case):
    torch.manual_seed(0)
    model, inputs = CASES[case]()
    model.eval()
    with torch.no_grad():
        expected = output(model, inputs)
    cfg = flora.FloraConfig(target_types=TYPES, exclude_modules=EXCLUDE.get(case), rank=2, kernel_rank=1, scale=0.05)
    flora.inject(model, cfg)
    layers = dict(flora.adapter_layers(model))
    assert layers
    with torch.no_grad():
        assert torch.equal(output(model, inputs), expected)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in layers.values():
            layer.core.copy_(torch.randn(layer.core.shape, generator=gen))
    adapted = output(model, inputs)
    adapted.square().mean().backward()
    no_grad = [name for name, layer in layers.items() if layer.core.grad is None]
    assert not no_grad, f"adapters bypassed by the model's forward: {no_grad[:5]}"
    adapted = adapted.detach()
    assert torch.isfinite(adapted).all() and rel_err(adapted, expected) > 1e-4
    base = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    with torch.no_grad():
        flora.merge(model)
        assert rel_err(output(model, inputs), adapted) < 1e-4
        flora.unmerge(model)
    for name, param in model.named_parameters():
        if name in base:
            assert torch.equal(param, base[name]), name


def test_tied_t5_embeddings_are_refused_at_merge():
    model, _ = _t5()
    flora.inject(model, flora.FloraConfig(target_modules=["encoder.embed_tokens"], rank=2))
    with pytest.raises(ValueError, match="'encoder.embed_tokens' shares its weight tensor with"):
        flora.merge(model)
