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

Ungrouped zero-padded convs run that path as one autograd node (``flora.layers.fused.FactoredConvUpdate``):
batched-matmul projections, hidden tensors recomputed in backward instead of stored, the update added into the
base output by one ``baddbmm``; with few input channels (an RGB stem) A_in is folded into the core kernel.
Depthwise convs take the merged path, whose weight gradient ``flora.layers.fused.DepthwiseConv`` computes as a
depthwise forward (oneDNN's own depthwise weight-gradient kernel is about 10x slower on the CPU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from flora.functional import fold_kernel, mode_product
from flora.layers.base import FloraLayer, GeometryDelta
from flora.layers.fused import DepthwiseConv, FactoredConv

_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
# The fused node keeps the rank-sized projection A_in x for backward when it is at most 1/16 of the input
# (r_in <= in/16, within the 10% activation-memory budget), and recomputes it (one thin matmul) otherwise.
KEEP_PROJECTION_RATIO = 16


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
        super().__init__(base_layer, ranks, scale, **kwargs)

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

    def _core_kernel(self, dtype: torch.dtype) -> torch.Tensor:
        """s * G folded with the spatial factors, (r_out, r_in, k...): the kernel of the core conv.

        For 2-D kernels two broadcast matmuls (A_k1 G A_k2^T per channel pair) replace the generic chain of
        mode products, whose moves and copies are a visible share of a small model's step on the CPU.
        """
        core = self.scale * self.core.to(dtype)
        kernel_factors = [f.to(dtype) for f in self.factors[2:]]
        if self.spatial_dims != 2:
            return fold_kernel(core, kernel_factors)
        r_out, r_in, p, q = core.shape
        folded = torch.matmul(torch.matmul(kernel_factors[0], core.reshape(r_out * r_in, p, q)), kernel_factors[1].t())
        return folded.reshape(r_out, r_in, *folded.shape[1:])

    def _zero_padding(self) -> tuple[int, ...] | None:
        """The padding as symmetric integers when the conv zero-pads that way; else None (asymmetric 'same',
        reflect, replicate, circular), which the fused nodes leave to the plain autograd path."""
        if self.padding_mode != "zeros":
            return None
        if self.padding == "valid":
            return (0,) * self.spatial_dims
        pads = self.reversed_padding
        if any(pads[i] != pads[i + 1] for i in range(0, len(pads), 2)):
            return None
        return tuple(reversed(pads[::2]))

    def _fold_input(self) -> bool:
        """Fold A_in into the core kernel when it does not reduce the channels (r_in = in, e.g. an RGB stem).

        A 1x1 projection that keeps every channel only adds a pass over the input; otherwise the projection
        stays a batched matmul, which on the CPU beats oneDNN's backward of a conv into few channels.
        """
        return self.ranks[1] == self.weight_shape[1] * self.groups

    def _pointwise(self, padding: tuple[int, ...]) -> bool:
        """A 1x1 conv with unit stride and no padding: its core is a matrix that folds into A_out."""
        return all(k == 1 for k in self.weight_shape[2:]) and set(self.stride) == {1} and set(padding) == {0}

    def factored_forward(self, base_layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Ungrouped zero-padded convs without dropout run base op and update as one node (``flora.layers.fused``)."""
        padding = self._zero_padding()
        if self.groups != 1 or padding is None or not isinstance(self.dropout, nn.Identity):
            return super().factored_forward(base_layer, x)
        weight = base_layer.weight
        out_factor, in_factor = (f.to(weight.dtype) for f in self.factors[:2])
        kernel = self._core_kernel(weight.dtype)
        if self._fold_input():
            kernel, project_in = mode_product(kernel, in_factor, 1), None
        else:
            project_in = in_factor.t()
        if self._pointwise(padding):
            out_factor, kernel = out_factor @ kernel.reshape(kernel.shape[:2]), None
        geometry = (self.stride, padding, self.dilation)
        keep = project_in is not None and KEEP_PROJECTION_RATIO * self.ranks[1] <= self.weight_shape[1]
        return FactoredConv.apply(x, weight, base_layer.bias, project_in, kernel, out_factor, geometry, keep)

    def weight_forward(self, base_layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        out_size, in_per_group = self.weight_shape[:2]
        padding = self._zero_padding()
        if in_per_group == 1 and out_size == self.groups > 1 and padding is not None and torch.is_grad_enabled():
            return DepthwiseConv.apply(x, weight, base_layer.bias, self.stride, padding, self.dilation)
        return base_layer._conv_forward(x, weight, base_layer.bias)

    def dense_output(self, base_layer: nn.Module, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return base_layer._conv_forward(x, delta, None)

    def factored_macs(self) -> float:
        out_size, in_per_group, *kernel = self.weight_shape
        r_out, r_in = self.ranks[0], self.ranks[1]
        in_size = in_per_group * self.groups
        if self.groups == 1 and self._fold_input():
            return in_size * r_out * math.prod(kernel) + out_size * r_out
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
