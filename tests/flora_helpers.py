"""Shared helpers for the flora tests: relative errors, randomising adapters so dW != 0, and a toy model with
every layer family the library adapts."""

from __future__ import annotations

import torch
from torch import nn

import flora
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


class MixtureOfExperts(nn.Module):
    """A block with a bare 3-D expert weight, the kind of parameter no module wrapper reaches."""

    def __init__(self, experts: int = 3, dim: int = 6) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, experts)
        self.experts = nn.Parameter(torch.randn(experts, dim, dim) / dim**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.gate(x).softmax(-1)
        return torch.einsum("be,eoi,bi->bo", weights, self.experts, x)


class ToyNet(nn.Module):
    """Every family the library adapts, in one model."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8, padding_idx=0)
        self.conv1d = nn.Conv1d(8, 8, 3, padding=1, padding_mode="circular")
        self.stem = nn.Conv2d(3, 8, 4, stride=4)
        self.dw = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.vol = nn.Conv3d(2, 4, (3, 3, 3), padding="same", dilation=(1, 2, 1))
        self.moe = MixtureOfExperts(dim=16)
        self.head = nn.Linear(16 + 8 + 4, 5)

    def forward(self, image, tokens, volume):
        feat = self.pw(self.dw(self.stem(image))).mean((2, 3))
        text = self.conv1d(self.embed(tokens).transpose(1, 2)).mean(2)
        vol = self.vol(volume).mean((2, 3, 4))
        return self.head(torch.cat([self.moe(feat), text, vol], dim=1))


def toy_inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(2, 3, 16, 16, generator=gen),
        torch.randint(0, 20, (2, 7), generator=gen),
        torch.randn(2, 2, 5, 6, 5, generator=gen),
    )


def toy_config(**overrides) -> flora.FloraConfig:
    kwargs = dict(
        target_modules=["embed", "conv1d", "stem", "dw", "pw", "vol"],
        target_parameters=["moe.experts"],
        rank=4,
        kernel_rank=2,
        scale=1.5,
        modules_to_save=["head"],
    )
    kwargs.update(overrides)
    return flora.FloraConfig(**kwargs)


def make_toy(seed: int = 0) -> ToyNet:
    torch.manual_seed(seed)
    return ToyNet()
