"""Generated images of one flat shape for the mini vision tower's pretraining (what a CLIP tower learns from its
web captions, at toy scale: what the object is and its colours).

Seven generic shape kinds at random size, place and rotation (no two that only a few pixels tell apart at 64 px,
as a pentagon and a circle), in a random RGB colour on a random background (half of them pale, as drawings often
are). The targets are the kind and both colours as continuous RGB: no colour names, no questions, nothing drawn
from easy-VQA's images or answers. Drawn on the CPU with tensors (2x supersampled for smooth edges), so a batch
costs milliseconds.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

KINDS = ("circle", "ellipse", "rectangle", "triangle", "semicircle", "cross", "ring")
SUPERSAMPLE = 2


def _polygon(u: torch.Tensor, v: torch.Tensor, radius: torch.Tensor, sides: int) -> torch.Tensor:
    """Inside a regular polygon of circumradius radius, one vertex pointing up (rotation applied to u, v)."""
    sector = 2 * math.pi / sides
    theta = torch.atan2(u, -v) % sector - sector / 2
    return torch.hypot(u, v) * torch.cos(theta) <= radius * math.cos(math.pi / sides)


def masks(u: torch.Tensor, v: torch.Tensor, radius: torch.Tensor, aspect: torch.Tensor) -> torch.Tensor:
    """(len(KINDS), B, H, W) inside-masks of every kind, in the shape's own rotated frame (u right, v down).

    aspect: an ellipse's axis ratio; a rectangle's side ratio is 2 * aspect - 0.4 (squares to 2:1 strips)."""
    rho = torch.hypot(u, v)
    arm = radius / 3
    return torch.stack(
        [
            rho <= radius,
            (u / radius) ** 2 + (v / (radius * aspect)) ** 2 <= 1,
            (u.abs() <= 0.85 * radius) & (v.abs() <= 0.85 * radius * (2 * aspect - 0.4)),
            _polygon(u, v, radius, 3),
            (rho <= radius) & (v <= 0.2 * radius),
            ((u.abs() <= radius) & (v.abs() <= arm)) | ((u.abs() <= arm) & (v.abs() <= radius)),
            (rho <= radius) & (rho >= 0.55 * radius),
        ]
    )


def render(batch: int, canvas: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 3, canvas, canvas) images in [0, 1], their kinds (B,) and colours (B, 6: shape RGB, background RGB)."""
    side = canvas * SUPERSAMPLE
    grid = (torch.arange(side, dtype=torch.float32) + 0.5) / side
    radius = 0.12 + 0.26 * torch.rand(batch, generator=gen)
    centre = radius[:, None] + (1 - 2 * radius[:, None]) * torch.rand(batch, 2, generator=gen)
    angle = 2 * math.pi * torch.rand(batch, generator=gen)
    aspect = 0.45 + 0.3 * torch.rand(batch, generator=gen)
    kinds = torch.randint(0, len(KINDS), (batch,), generator=gen)
    dx = grid[None, None, :] - centre[:, 0, None, None]
    dy = grid[None, :, None] - centre[:, 1, None, None]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    u, v = dx * cos + dy * sin, dy * cos - dx * sin
    inside = masks(u, v, radius[:, None, None], aspect[:, None, None])[kinds, torch.arange(batch)].float()
    alpha = F.avg_pool2d(inside[:, None], SUPERSAMPLE)
    fg = torch.rand(batch, 3, generator=gen)
    pale = torch.rand(batch, 1, generator=gen) < 0.5
    bg = torch.where(pale, 0.85 + 0.15 * torch.rand(batch, 3, generator=gen), torch.rand(batch, 3, generator=gen))
    images = alpha * fg[:, :, None, None] + (1 - alpha) * bg[:, :, None, None]
    images = (images + 0.02 * torch.randn(images.shape, generator=gen)).clamp(0, 1)
    return images, kinds, torch.cat([fg, bg], dim=1)
