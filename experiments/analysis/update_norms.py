"""||dW||_F and the feature amplification factor of one weight update, from its factors or its dense matrix.

The amplification factor is the LoRA paper's (Hu et al., 2021, section 7.3): ||dW||_F / ||U^T W V||_F with U, V
the top-r left and right singular vectors of dW and r the adapter's rank. It says how strongly dW amplifies
directions that the frozen W already uses weakly. Both figures need the singular values and top singular vectors
of dW only; when dW = L R is given by thin factors they come from two QR factorisations and the SVD of a small
matrix, so not even this one layer's dW is materialised.

Every tensor here is a matrix: an N-D weight enters as its mode-0 unfolding [I_0, I_1 * ... * I_N] (a conv kernel
as [out, in * k * k], the convention PEFT's LoRA uses). The factor does not depend on which side is the row
space, so a [in, out] weight (transformers' Conv1D) gives the same numbers as its transpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Singular values and projections are computed in float64: a bf16 or fp16 model's tiny early updates would
# otherwise round to noise.
COMPUTE_DTYPE = torch.float64


@dataclass(frozen=True)
class UpdateStats:
    """The two Figure 4 numbers of one layer at one step."""

    norm: float
    amplification: float


def unfold(tensor: torch.Tensor) -> torch.Tensor:
    """Mode-0 unfolding [I_0, rest] of a weight of any order (a vector becomes one column)."""
    return tensor.reshape(tensor.shape[0], -1)


def _top_singular(
    delta: torch.Tensor | None, left: torch.Tensor | None, right: torch.Tensor | None, rank: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(all singular values, U_r, V_r) of dW, given either dense ``delta`` or thin factors dW = left @ right."""
    if delta is not None:
        u, s, vh = torch.linalg.svd(delta.to(COMPUTE_DTYPE), full_matrices=False)
        return s, u[:, :rank], vh[:rank].mT
    q_left, r_left = torch.linalg.qr(left.to(COMPUTE_DTYPE))
    q_right, r_right = torch.linalg.qr(right.to(COMPUTE_DTYPE).mT)
    u, s, vh = torch.linalg.svd(r_left @ r_right.mT, full_matrices=False)
    return s, q_left @ u[:, :rank], q_right @ vh[:rank].mT


def update_stats(
    weight: torch.Tensor,
    rank: int,
    *,
    delta: torch.Tensor | None = None,
    left: torch.Tensor | None = None,
    right: torch.Tensor | None = None,
) -> UpdateStats:
    """||dW||_F and ||dW||_F / ||U_r^T W V_r||_F for the frozen matrix ``weight``.

    Give dW either as the dense matrix ``delta`` or as ``left`` [rows, k] and ``right`` [k, cols] with
    dW = left @ right. A zero update has norm 0 and factor 0 (its singular vectors are arbitrary, the ratio is not).
    """
    if (delta is None) == (left is None or right is None):
        raise ValueError("give dW either as delta or as both left and right factors")
    if rank < 1:
        raise ValueError(f"rank must be positive, got {rank}")
    shape = delta.shape if delta is not None else (left.shape[0], right.shape[1])
    if tuple(weight.shape) != tuple(shape):
        raise ValueError(f"dW has shape {tuple(shape)} but the frozen weight {tuple(weight.shape)}")
    singular, u, v = _top_singular(delta, left, right, rank)
    norm = float(torch.linalg.vector_norm(singular))
    if norm == 0.0:
        return UpdateStats(0.0, 0.0)
    projected = u.mT @ (weight.to(COMPUTE_DTYPE) @ v)
    return UpdateStats(norm, norm / float(torch.linalg.matrix_norm(projected)))
