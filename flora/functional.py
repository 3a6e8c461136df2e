"""Pure tensor functions of FLoRA: mode products, Tucker reconstruction, parameter counts and costs.

Everything here is stateless so it can be tested against independent references and swapped for a
faster kernel without touching the layer classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

LORA_CONVENTIONS = ("flatten", "paper")


def mode_product(tensor: torch.Tensor, matrix: torch.Tensor, mode: int) -> torch.Tensor:
    """Mode-n product ``tensor x_mode matrix``: contracts ``tensor``'s axis ``mode`` with ``matrix``'s columns.

    ``matrix`` has shape (new_size, tensor.shape[mode]); the result has ``new_size`` on axis ``mode``.
    """
    if not 0 <= mode < tensor.dim():
        raise ValueError(f"mode {mode} is out of range for a tensor of order {tensor.dim()}")
    if matrix.dim() != 2 or matrix.shape[1] != tensor.shape[mode]:
        raise ValueError(
            f"mode-{mode} product needs a matrix of shape (new, {tensor.shape[mode]}), got {tuple(matrix.shape)}"
        )
    moved = torch.movedim(tensor, mode, -1)
    return torch.movedim(moved @ matrix.transpose(0, 1), -1, mode)


def tucker_to_tensor(core: torch.Tensor, factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Full tensor ``core x_1 factors[0] x_2 factors[1] ...`` where factors[n] has shape (I_n, r_n).

    Contracts the cheapest way first: each mode product shrinks or grows one axis, so expanding the modes
    with the smallest growth ratio I_n / r_n first keeps intermediates small.
    """
    if len(factors) != core.dim():
        raise ValueError(f"a core of order {core.dim()} needs {core.dim()} factors, got {len(factors)}")
    order = sorted(range(core.dim()), key=lambda n: factors[n].shape[0] / max(factors[n].shape[1], 1))
    result = core
    for mode in order:
        result = mode_product(result, factors[mode], mode)
    return result


def flora_num_params(shape: Sequence[int], ranks: Sequence[int]) -> int:
    """Parameters of one FLoRA adapter: prod(r_n) + sum(I_n * r_n)."""
    if len(shape) != len(ranks):
        raise ValueError(f"shape {tuple(shape)} and ranks {tuple(ranks)} differ in length")
    return math.prod(ranks) + sum(size * rank for size, rank in zip(shape, ranks, strict=True))


def lora_num_params(shape: Sequence[int], rank: int, convention: str = "flatten") -> int:
    """Parameters of a matrix LoRA of rank ``rank`` on a weight of ``shape`` (base layout [out, in, k...]).

    ``flatten`` views the weight as [out, in * prod(k)] (PEFT's convention): r * (out + in * prod(k)).
    ``paper`` views a conv kernel [out, in, k_1, k_2, ...] as [out * k_1, in * k_2 * ...], as the FLoRA paper
    does: r * k * (in + out) for a square 2-D kernel. On a matrix both agree.
    """
    if convention not in LORA_CONVENTIONS:
        raise ValueError(f"unknown LoRA convention {convention!r}; choose one of {LORA_CONVENTIONS}")
    if len(shape) < 2:
        raise ValueError(f"LoRA needs a weight of order >= 2, got shape {tuple(shape)}")
    out_size, in_size, *kernel = shape
    if convention == "flatten" or not kernel:
        return rank * (out_size + in_size * math.prod(kernel))
    return rank * (out_size * kernel[0] + in_size * math.prod(kernel[1:]))


def largest_rank_within_budget(
    shape: Sequence[int], budget: int, kernel_rank: int | None = None, channel_modes: int = 2
) -> int:
    """Largest channel rank r whose FLoRA count stays within ``budget`` (kernel modes fixed at kernel_rank)."""
    best = 0
    for rank in range(1, max(shape[:channel_modes]) + 1):
        ranks = [min(rank, size) for size in shape[:channel_modes]]
        ranks += [min(kernel_rank or size, size) for size in shape[channel_modes:]]
        if flora_num_params(shape, ranks) > budget:
            break
        best = rank
    return best


def fold_kernel(core: torch.Tensor, kernel_factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Fold the spatial factors into the core: (r_out, r_in, s_1..) -> (r_out, r_in, k_1..), a small conv kernel."""
    result = core
    for offset, factor in enumerate(kernel_factors):
        result = mode_product(result, factor, 2 + offset)
    return result
