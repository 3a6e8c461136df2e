"""Fashion-MNIST classes as diffusion data: images resized to the profile's size, in [-1, 1]."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from experiments.vision.fashion_mnist import load_split


def class_images(split: str, classes: Sequence[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [n, 1, size, size] in [-1, 1], labels [n]) of the given classes, in file order."""
    images, labels = load_split(split)
    keep = np.isin(labels, list(classes))
    x = torch.from_numpy(images[keep]).float().div(255.0).unsqueeze(1)
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1) * 2 - 1, torch.from_numpy(labels[keep])


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clipped (what samplers return may overshoot)."""
    return ((images + 1) / 2).clamp(0, 1)
