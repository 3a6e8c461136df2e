"""Shared helpers for the flora tests: relative errors and randomising adapters so dW != 0."""

from __future__ import annotations

import torch
from torch import nn

from flora.tucker import TuckerDelta


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Norm-wise relative error, with an absolute floor so all-zero references compare sanely."""
    actual, expected = actual.detach().double(), expected.detach().double()
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-12))


def randomise(model: nn.Module, seed: int = 0) -> None:
    """Give every core random values (it starts at zero, which would hide most bugs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, TuckerDelta):
                module.core.copy_(torch.randn(module.core.shape, generator=gen))
