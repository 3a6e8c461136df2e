"""Deterministic DDIM sampling with fixed per-sample seeds, and the sample grid (rows methods, columns classes).

Sample i of a request starts from the noise of seed + i whatever the batch or the method, so every method's grid
cell starts from the same noise and the rows differ only by what the methods learned.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from matplotlib import pyplot as plt
from torch import nn
from tqdm import tqdm

from experiments.diffusion.data import to_unit
from experiments.figures.style import save


def start_noise(count: int, shape: Sequence[int], seed: int) -> torch.Tensor:
    return torch.cat([torch.randn(1, *shape, generator=torch.Generator().manual_seed(seed + i)) for i in range(count)])


@torch.no_grad()
def sample(model: nn.Module, labels: torch.Tensor, noise: DDPMScheduler, steps: int, seed: int, batch_size: int,
           desc: str = "sampling") -> torch.Tensor:
    """Images in [0, 1], one per label, by ``steps`` DDIM steps (eta = 0) on the DDPM's noise schedule."""
    ddim = DDIMScheduler.from_config(noise.config)
    ddim.set_timesteps(steps)
    config = model.config
    x = start_noise(len(labels), (config.in_channels, config.sample_size, config.sample_size), seed)
    model.eval()
    out = []
    chunks = list(zip(x.split(batch_size), labels.split(batch_size), strict=True))
    for chunk, label in tqdm(chunks, desc=desc, unit="batch", leave=False):
        for t in ddim.timesteps:
            eps = model(chunk, t, class_labels=label).sample
            chunk = ddim.step(eps, t, chunk).prev_sample
        out.append(to_unit(chunk))
    return torch.cat(out)


def grid_labels(classes: Sequence[int], per_class: int) -> torch.Tensor:
    """Class-major labels: per_class samples of the first class, then of the next, ..."""
    return torch.tensor([c for c in classes for _ in range(per_class)])


def draw_grid(samples: dict[str, torch.Tensor], column_names: Sequence[str], per_column: int, out_dir: Path,
              stem: str, cell: float = 0.42) -> list[Path]:
    """One row per method, one column per class or prompt, each cell its per_column samples side by side (PNG and
    PDF); grey images (one channel) in a grey map, colour ones as they are. ``cell``: inches per sample."""
    rows, columns = len(samples), len(column_names)
    fig, axes = plt.subplots(rows, columns, figsize=(cell * per_column * columns + 2.2, cell * 1.15 * rows + 0.4),
                             squeeze=False)
    for r, (method, images) in enumerate(samples.items()):
        cells = images.reshape(columns, per_column, *images.shape[1:])
        for c in range(columns):
            ax = axes[r][c]
            strip = torch.cat(list(cells[c]), dim=2)
            if strip.shape[0] == 1:
                ax.imshow(strip[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(strip.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(column_names[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(method, fontsize=9, rotation=0, ha="right", va="center")
    return save(fig, out_dir, stem)
