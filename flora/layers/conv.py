"""FLoRA on convolution kernels [out, in/groups, k_1, ..., k_d] for d = 1, 2, 3.

The Tucker decomposition is of the kernel in its own layout. With groups > 1 every group's kernel
[out/groups, in/groups, k...] is G x A_out[rows of the group] x A_in x A_k...: the core, the input-channel
factor and the spatial factors are shared across groups and the output factor spans all output channels.
This is exactly a Tucker model of the stored tensor, so it needs no rank divisibility (PEFT's LoRA does) and
a depthwise kernel [C, 1, k, k] is handled as any other, with its in-mode rank capped at 1.

The factored path runs three convs: a grouped 1x1 into r_in channels per group, a grouped k x k conv whose
kernel is s * G folded with the spatial factors (carrying the base conv's stride, dilation and padding), and
a grouped 1x1 out to ``out`` channels. Pointwise maps commute with every padding mode, so non-zero padding
modes pad the r_in-channel tensor instead of the input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from flora.functional import fold_kernel
from flora.layers.base import FloraLayer, GeometryDelta

_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class ConvDelta(GeometryDelta):
    """Tucker update of an N-D conv kernel with the base conv's geometry."""

    def __init__(self, base_layer: nn.modules.conv._ConvNd, ranks: Sequence[int], scale: float, **kwargs) -> None:
        if getattr(base_layer, "transposed", False):
            raise TypeError(
                f"{type(base_layer).__name__} is a transposed convolution, which FLoRA does not adapt yet; "
                "exclude it from target_modules"
            )
        self.spatial_dims = base_layer.weight.dim() - 2
        self.stride = tuple(base_layer.stride)
        self.padding = base_layer.padding
        self.dilation = tuple(base_layer.dilation)
        self.groups = int(base_layer.groups)
        self.padding_mode = base_layer.padding_mode
        self.reversed_padding = tuple(base_layer._reversed_padding_repeated_twice)
        super().__init__(tuple(base_layer.weight.shape), ranks, scale, **kwargs)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, **kwargs) -> torch.Tensor:
        return _CONV_FN[self.spatial_dims](x, weight, **kwargs)

    def factored_output(self, x: torch.Tensor) -> torch.Tensor:
        groups, ones = self.groups, (1,) * self.spatial_dims
        out_factor, in_factor, *kernel_factors = (f.to(x.dtype) for f in self.factors)
        r_out, r_in = self.ranks[0], self.ranks[1]
        project_in = in_factor.t().repeat(groups, 1).reshape(groups * r_in, -1, *ones)
        hidden = self._conv(x, project_in, groups=groups)
        kernel = fold_kernel(self.scale * self.core.to(x.dtype), kernel_factors)
        kernel = kernel.repeat(groups, *(1,) * (kernel.dim() - 1))
        if self.padding_mode != "zeros":
            hidden = F.pad(hidden, self.reversed_padding, mode=self.padding_mode)
            padding = 0
        else:
            padding = self.padding
        hidden = self._conv(hidden, kernel, stride=self.stride, padding=padding, dilation=self.dilation, groups=groups)
        project_out = out_factor.reshape(-1, r_out, *ones)
        return self._conv(hidden, project_out, groups=groups)

    def weight_forward(self, base_layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return base_layer._conv_forward(x, weight, base_layer.bias)

    def dense_output(self, base_layer: nn.Module, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return base_layer._conv_forward(x, delta, None)

    def factored_macs(self) -> float:
        out_size, in_per_group, *kernel = self.weight_shape
        r_out, r_in = self.ranks[0], self.ranks[1]
        in_size = in_per_group * self.groups
        project_in = in_size * r_in * math.prod(self.stride)
        core_conv = self.groups * r_out * r_in * math.prod(kernel)
        return project_in + core_conv + out_size * r_out

    def weight_grad_macs(self) -> float:
        return float(math.prod(self.weight_shape))


class Conv1d(FloraLayer, ConvDelta):
    """FLoRA adapter around a frozen ``nn.Conv1d``."""


class Conv2d(FloraLayer, ConvDelta):
    """FLoRA adapter around a frozen ``nn.Conv2d``."""


class Conv3d(FloraLayer, ConvDelta):
    """FLoRA adapter around a frozen ``nn.Conv3d``."""
