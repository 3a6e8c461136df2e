"""FLoRA on matrix weights: ``nn.Linear`` ([out, in]) and transformers' ``Conv1D`` ([in, out], transposed).

The update dW = s * A_0 G A_1^T is applied as x -> A_in -> (s * A_out G')^T, where G' is the core
arranged [r_out, r_in]. Folding the core into the output factor once per step makes the per-token cost
in * r_in + r_in * out, exactly that of a LoRA of rank r_in.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from flora.layers.base import FloraLayer, GeometryDelta
from flora.targets import type_key


class LinearDelta(GeometryDelta):
    """Tucker update of a matrix weight; ``transposed`` marks the [in, out] layout of ``Conv1D``."""

    def __init__(self, base_layer: nn.Module, ranks: Sequence[int], scale: float, **kwargs) -> None:
        self.transposed = type_key(base_layer) == "Conv1D"
        super().__init__(base_layer, ranks, scale, **kwargs)

    @property
    def out_mode(self) -> int:
        return 1 if self.transposed else 0

    @property
    def in_mode(self) -> int:
        return 0 if self.transposed else 1

    def output_projection(self) -> torch.Tensor:
        """s * A_out G' with shape [out, r_in]: the core folded into the output factor."""
        core = self.core.t() if self.transposed else self.core
        return self.scale * (self.factors[self.out_mode] @ core)

    def factored_output(self, x: torch.Tensor) -> torch.Tensor:
        in_factor = self.factors[self.in_mode].to(x.dtype)
        return F.linear(F.linear(x, in_factor.t()), self.output_projection().to(x.dtype))

    def factored_forward(self, base_layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Run the base op on the flattened tokens and accumulate the update into its fresh output in place.

        Out of place, the update costs a full-size write and a full-size add on top of its two thin matmuls;
        the in-place ``addmm_`` acts on a tensor this method created (not a view), so autograd needs no copies.
        """
        if not isinstance(self.dropout, nn.Identity):
            return super().factored_forward(base_layer, x)
        flat = x.reshape(-1, x.shape[-1])
        result = self.weight_forward(base_layer, flat, base_layer.weight)
        hidden = F.linear(flat, self.factors[self.in_mode].to(x.dtype).t())
        result.addmm_(hidden, self.output_projection().to(result.dtype).t())
        return result.view(*x.shape[:-1], result.shape[-1])

    def weight_forward(self, base_layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return F.linear(x, weight.t(), base_layer.bias)
        return F.linear(x, weight, base_layer.bias)

    def dense_output(self, base_layer: nn.Module, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return F.linear(x, delta.t() if self.transposed else delta)

    def factored_macs(self) -> float:
        r_in = self.ranks[self.in_mode]
        return self.weight_shape[self.in_mode] * r_in + self.weight_shape[self.out_mode] * r_in

    def weight_grad_macs(self) -> float:
        return float(self.weight_shape[0] * self.weight_shape[1])


class Linear(FloraLayer, LinearDelta):
    """FLoRA adapter around a frozen ``nn.Linear``."""


class Conv1D(FloraLayer, LinearDelta):
    """FLoRA adapter around a frozen transformers ``Conv1D`` (GPT-2 style, weight [in, out])."""
