"""The DDPM objective (predict the added noise) for pretraining and fine-tuning alike, with a progress bar."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from torch import nn
from tqdm import tqdm

from experiments.errors import NonFiniteLossError


@dataclass(frozen=True)
class Schedule:
    steps: int
    batch_size: int
    lr: float
    seed: int


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, step: int) -> float:
    """One update from ``loss``, refused before it touches the weights when the loss is not finite; the loss."""
    if not torch.isfinite(loss):
        raise NonFiniteLossError(step + 1, float(loss))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def train_denoiser(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, schedule: Schedule,
                   noise: DDPMScheduler, desc: str) -> list[float]:
    """AdamW on the trainable parameters for schedule.steps batches drawn with the schedule's seed; the losses.

    Batches, timesteps and noise come from one generator, so two methods fine-tuned with the same schedule see the
    same examples in the same order.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(schedule.seed)
    steps = int(noise.config.num_train_timesteps)
    model.train()
    losses = []
    bar = tqdm(range(schedule.steps), desc=desc, unit="step", leave=False)
    for step in bar:
        index = torch.randint(0, len(images), (schedule.batch_size,), generator=gen)
        clean, label = images[index], labels[index]
        eps = torch.randn(clean.shape, generator=gen)
        t = torch.randint(0, steps, (schedule.batch_size,), generator=gen)
        loss = F.mse_loss(model(noise.add_noise(clean, eps, t), t, class_labels=label).sample, eps)
        losses.append(optimizer_step(optimizer, loss, step))
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
    model.eval()
    return losses
