"""The Tucker-core update shared by every adapter: core G, one factor per weight mode, and scale s.

``TuckerDelta`` owns the trainable tensors and knows how to materialise dW = s * G x_1 A_1 ... x_N A_N.
It does not own the frozen base module, so the same class serves the native layers (which add a
``base_layer``), the raw-parameter parametrization, and PEFT's adapter dictionaries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from flora.functional import flora_num_params, tucker_to_tensor

# The paths that compute base(x) + dW-applied-to-x during training; see ``TuckerDelta.resolve_path``.
COMPUTE_PATHS = ("auto", "factored", "merged", "dense")


def validate_ranks(ranks: Sequence[int], shape: Sequence[int], where: str) -> tuple[int, ...]:
    """Check an explicit rank tuple against a weight shape and say what is wrong if it does not fit."""
    ranks = tuple(int(r) for r in ranks)
    if len(ranks) != len(shape):
        raise ValueError(
            f"{where}: the weight has shape {tuple(shape)} ({len(shape)} modes) but ranks {ranks} give "
            f"{len(ranks)}; give one rank per mode"
        )
    for mode, (rank, size) in enumerate(zip(ranks, shape, strict=True)):
        if rank < 1 or rank > size:
            raise ValueError(
                f"{where}: rank {rank} for mode {mode} must be between 1 and that mode's size {size} "
                f"(weight shape {tuple(shape)})"
            )
    return ranks


class TuckerDelta(nn.Module):
    """Trainable core and factors of one FLoRA update for a weight of ``weight_shape``.

    Initialisation follows the authors' vision code: the core starts at zero, so dW = 0 at step 0, and each
    factor starts Kaiming-normal with a = sqrt(3), i.e. std = 1 / sqrt(2 r_n).
    """

    def __init__(
        self,
        weight_shape: Sequence[int],
        ranks: Sequence[int],
        scale: float,
        dropout: float = 0.0,
        path: str = "auto",
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if path not in COMPUTE_PATHS:
            raise ValueError(f"unknown compute path {path!r}; choose one of {COMPUTE_PATHS}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.weight_shape = tuple(int(s) for s in weight_shape)
        self.ranks = validate_ranks(ranks, self.weight_shape, type(self).__name__)
        self.scale = float(scale)
        factory = {"dtype": dtype or torch.float32, "device": device}
        self.core = nn.Parameter(torch.zeros(self.ranks, **factory))
        self.factors = nn.ParameterList(
            nn.Parameter(torch.empty(size, rank, **factory))
            for size, rank in zip(self.weight_shape, self.ranks, strict=True)
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.requested_path = path
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.core)
        for factor in self.factors:
            nn.init.kaiming_normal_(factor, a=math.sqrt(3))

    @property
    def num_params(self) -> int:
        return flora_num_params(self.weight_shape, self.ranks)

    def delta_weight(self) -> torch.Tensor:
        """dW shaped exactly like the base weight, in the adapter's dtype."""
        return self.scale * tucker_to_tensor(self.core, list(self.factors))

    def extra_repr(self) -> str:
        return f"shape={self.weight_shape}, ranks={self.ranks}, scale={self.scale}"
