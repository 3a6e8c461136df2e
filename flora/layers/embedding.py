"""FLoRA on ``nn.Embedding`` ([num, dim]): the update of row i is s * A_0[i] G A_1^T, a row lookup in A_0.

The row at ``padding_idx`` is never adapted (torch keeps it fixed during training; the adapter does too).

Dropout does not apply (the input is indices). Embeddings with ``max_norm`` renormalise their weight in place
during the lookup, which no additive update can reproduce, so they are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from flora.layers.base import FloraLayer, GeometryDelta


class EmbeddingDelta(GeometryDelta):
    """Tucker update of an embedding table."""

    def __init__(self, base_layer: nn.Embedding, ranks: Sequence[int], scale: float, **kwargs) -> None:
        if base_layer.max_norm is not None:
            raise TypeError(
                "FLoRA cannot adapt an nn.Embedding with max_norm (the lookup rewrites the weight in place); "
                "exclude it from target_modules or set max_norm=None"
            )
        self.padding_idx = base_layer.padding_idx
        kwargs["dropout"] = 0.0
        super().__init__(base_layer, ranks, scale, **kwargs)

    def delta_weight(self) -> torch.Tensor:
        """dW with the padding row held at zero: torch never updates that row, and neither does the adapter."""
        delta = super().delta_weight()
        if self.padding_idx is None:
            return delta
        keep = torch.ones(delta.shape[0], 1, dtype=delta.dtype, device=delta.device)
        keep[self.padding_idx] = 0
        return delta * keep

    def factored_output(self, x: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(x, self.factors[0])
        if self.padding_idx is not None:
            rows = rows * (x != self.padding_idx).unsqueeze(-1).to(rows.dtype)
        return rows @ (self.scale * self.core @ self.factors[1].t())

    def weight_forward(self, base_layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.embedding(
            x, weight, base_layer.padding_idx, None, 2.0, base_layer.scale_grad_by_freq, base_layer.sparse
        )

    def dense_output(self, base_layer: nn.Module, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return F.embedding(x, delta, padding_idx=self.padding_idx)

    def factored_macs(self) -> float:
        return float(self.ranks[0] * self.ranks[1] + self.ranks[1] * self.weight_shape[1])

    def weight_grad_macs(self) -> float:
        return float(self.weight_shape[0] * self.weight_shape[1])


class Embedding(FloraLayer, EmbeddingDelta):
    """FLoRA adapter around a frozen ``nn.Embedding``."""
