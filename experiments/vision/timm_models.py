"""timm models (and the InternViT-style ViTs) as the engine builds them: architecture, pretrained weights, and
TF 'SAME' padding unfolded so that every strided conv is a plain nn.Conv2d that adapters can wrap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import timm
import torch
from timm.layers import Conv2dSame
from timm.layers.padding import pad_same
from torch import nn

from experiments.vision.internvit import ARCHS, build_internvit
from experiments.weights import load_weights


class SamePad(nn.Module):
    """The input padding timm's Conv2dSame applies before its convolution (TF 'SAME', from the input size)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.dilation = conv.kernel_size, conv.stride, conv.dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pad_same(x, self.kernel_size, self.stride, self.dilation)


def unfold_same_padding(model: nn.Module) -> int:
    """Replace each Conv2dSame (TF-ported nets' strided convs) by Sequential(SamePad, Conv2d) with the same
    weights: identical outputs, and the conv (now `<name>.1`) is a Conv2d that FLoRA and PEFT adapt.
    Returns how many were replaced."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, Conv2dSame)]
    for name, same in found:
        conv = nn.Conv2d(
            same.in_channels,
            same.out_channels,
            same.kernel_size,
            same.stride,
            0,
            same.dilation,
            same.groups,
            same.bias is not None,
            device=same.weight.device,
            dtype=same.weight.dtype,
        )
        conv.load_state_dict(same.state_dict())
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, nn.Sequential(SamePad(same), conv))
    return len(found)


def build_timm(model_name: str, weights: Mapping[str, Any] | None = None, **kwargs: object) -> nn.Module:
    """A timm model without classifier (or an InternViT-style ViT by architecture name), with the pretrained
    weights of `weights` ({source, name} of experiments/weights.py; None = random init) and SAME padding
    unfolded."""
    if model_name in ARCHS:
        model = build_internvit(ARCHS[model_name], num_classes=0, dynamic_img_size=True, **kwargs)
    else:
        model = timm.create_model(model_name, pretrained=False, num_classes=0, **kwargs)
    load_weights(model, weights)
    unfold_same_padding(model)
    return model
