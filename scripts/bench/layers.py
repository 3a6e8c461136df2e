"""Per-layer cases: forward + backward of one adapted layer (frozen base weight, gradient to the input and to
the trainable parameters), at shapes taken from ConvNeXt-L, EfficientNet-Lite0 and InternViT-6B / ViT-L.

Activation sizes are chosen so a floor repetition takes tens of milliseconds on 2 CPU cores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from bench.methods import Budget


@dataclass(frozen=True)
class LayerCase:
    """One layer shape, its input and FLoRA's budget on it."""

    name: str
    make: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    budget: Budget

    @property
    def is_conv(self) -> bool:
        return len(self.input_shape) == 4

    @property
    def kernel_size(self) -> int:
        layer = self.make()
        return int(layer.kernel_size[0]) if self.is_conv else 1


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> Callable[[], nn.Module]:
    return lambda: nn.Conv2d(c_in, c_out, k, stride=stride, padding=(k // 2 if stride == 1 else 0), groups=groups)


CONV = Budget(rank=16, kernel_rank=2, scale=4.0)
LINEAR = Budget(rank=16, kernel_rank=1, scale=0.04)


def layer_cases(quick: bool) -> list[LayerCase]:
    """The per-layer table; ``quick`` keeps every geometry but shrinks channels and activations."""
    if quick:
        small = Budget(rank=4, kernel_rank=2, scale=4.0)
        return [
            LayerCase("stem 4x4/4 3->16", _conv(3, 16, 4, stride=4), (1, 3, 32, 32), small),
            LayerCase("dense 3x3 16->16", _conv(16, 16, 3), (1, 16, 8, 8), small),
            LayerCase("depthwise 7x7 C=16", _conv(16, 16, 7, groups=16), (1, 16, 8, 8), small),
            LayerCase("linear 32->64", lambda: nn.Linear(32, 64), (1, 8, 32), Budget(4, 1, 0.04)),
        ]
    return [
        LayerCase("ConvNeXt-L stem 4x4/4 3->192", _conv(3, 192, 4, stride=4), (8, 3, 224, 224), CONV),
        LayerCase("ConvNeXt-L downsample 2x2/2 384->768", _conv(384, 768, 2, stride=2), (4, 384, 28, 28), CONV),
        LayerCase("ConvNeXt-L depthwise 7x7 C=384", _conv(384, 384, 7, groups=384), (8, 384, 28, 28), CONV),
        LayerCase("dense 3x3 256->256", _conv(256, 256, 3), (4, 256, 28, 28), CONV),
        LayerCase("EfficientNet-Lite0 depthwise 5x5 C=240", _conv(240, 240, 5, groups=240), (8, 240, 28, 28), CONV),
        LayerCase("ViT-L MLP linear 1024->4096", lambda: nn.Linear(1024, 4096), (8, 197, 1024), LINEAR),
        LayerCase("InternViT-6B MLP linear 3200->12800", lambda: nn.Linear(3200, 12800), (1, 64, 3200), LINEAR),
    ]


class Single(nn.Module):
    """A one-layer model, so ``flora.attach`` and PEFT see the layer under the name ``layer``."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)
