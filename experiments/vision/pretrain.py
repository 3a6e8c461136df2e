"""Pretrain the small backbones that ship without weights (ConvNeXt-atto, InternViT-mini) once per machine.

The paper adapts pretrained backbones; offline there are no ConvNeXt or ViT weights, so these are pretrained
here on a different task than the downstream ones: classifying single real Fashion-MNIST items of classes 0-4
(t-shirt, trouser, pullover, dress, coat), tinted and shifted on a 64 px canvas with the scenes' background,
whereas the scenes' items come from the other classes (5-9) and are smaller. Weights are cached under
<cache>/weights, keyed by the recipe and the backbone's architecture revision, and built once even when several
workers ask at once (experiments/atomic.py). Runs never pretrain themselves (minutes of CPU inside a timed,
memory-measured run): scripts/prepare_caches.py builds the weights before a table's workers start.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from experiments.atomic import build_file_once
from experiments.errors import MissingSetupError
from experiments.vision.cache import cache_root, set_cpu_threads
from experiments.vision.fashion_mnist import load_split
from experiments.vision.internvit import ARCHS, build_internvit

PRETRAIN_CLASSES = (0, 1, 2, 3, 4)


def _convnext_atto(num_classes: int) -> nn.Module:
    return timm.create_model("convnext_atto", pretrained=False, num_classes=num_classes)


def _internvit_mini(num_classes: int) -> nn.Module:
    return build_internvit(ARCHS["internvit_mini"], num_classes=num_classes)


# Backbones that need pretraining here, by name: a constructor taking the number of classes.
BUILDERS: dict[str, Callable[[int], nn.Module]] = {"convnext_atto": _convnext_atto, "internvit_mini": _internvit_mini}
# Bumped when a backbone's modules change under the same name, so weights cached for the old ones get a file name
# of their own and are never loaded into the new ones. internvit_mini 2: full-width QK-norm, no final norm.
ARCH_REVISIONS: dict[str, int] = {"internvit_mini": 2}


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that determines the pretrained weights; its hash names the cached file."""

    steps: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    canvas: int = 64
    # Items fill most of the canvas (50-64 px): at the scenes' item size (25-40 px) a from-scratch ConvNeXt stays
    # at chance for the first hundreds of steps, which a few CPU minutes cannot afford.
    scale: tuple[float, float] = (1.8, 2.3)
    seed: int = 0

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def paste_items(items: torch.Tensor, canvas: int, scale: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """(B, 28, 28) uint8 items -> (B, 3, canvas, canvas) float in [0, 255]: scaled, tinted, on a noisy ground."""
    batch = items.shape[0]
    low, high = scale
    size = min(canvas, int(round(28 * (low + (high - low) * torch.rand((), generator=gen).item()))))
    alpha = F.interpolate(items[:, None].float() / 255.0, size=(size, size), mode="bilinear", align_corners=False)
    base = 10 + 40 * torch.rand(batch, 1, 1, 1, generator=gen)
    out = (base + 6 * torch.randn(batch, 3, canvas, canvas, generator=gen)).clamp(0, 255)
    tint = 0.45 + 0.55 * torch.rand(batch, 3, 1, 1, generator=gen)
    offsets = torch.randint(0, canvas - size + 1, (batch, 2), generator=gen)
    for i, (y, x) in enumerate(offsets.tolist()):
        region = out[i, :, y : y + size, x : x + size]
        out[i, :, y : y + size, x : x + size] = region * (1 - alpha[i]) + alpha[i] * 255.0 * tint[i]
    return out


def normalize(images: torch.Tensor) -> torch.Tensor:
    """[0, 255] -> [-1, 1], the same mean = std = 127.5 the mmseg/mmdet data preprocessors use."""
    return (images - 127.5) / 127.5


def _subset(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_split(split)
    keep = np.isin(labels, PRETRAIN_CLASSES)
    return torch.from_numpy(images[keep].copy()), torch.from_numpy(labels[keep])


@torch.no_grad()
def _accuracy(model: nn.Module, recipe: PretrainRecipe, limit: int = 1000) -> float:
    images, labels = _subset("test")
    gen = torch.Generator().manual_seed(1234)
    model.eval()
    correct = 0
    for start in range(0, limit, 250):
        batch = paste_items(images[start : start + 250], recipe.canvas, recipe.scale, gen)
        correct += int((model(normalize(batch)).argmax(1) == labels[start : start + 250]).sum())
    return correct / limit


def pretrain(name: str, recipe: PretrainRecipe, out_file: Path) -> dict:
    """Train BUILDERS[name] on the pretraining task and save {'state_dict', 'meta'} to out_file (a private path:
    ensure_pretrained renames it into the cache)."""
    set_cpu_threads()
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    model = BUILDERS[name](len(PRETRAIN_CLASSES))
    images, labels = _subset("train")
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    warmup = max(1, recipe.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * step / recipe.steps)))
    )
    start = time.perf_counter()
    model.train()
    bar = tqdm(range(recipe.steps), desc=f"pretrain {name}", unit="step")
    for _ in bar:
        index = torch.randint(0, len(labels), (recipe.batch_size,), generator=gen)
        logits = model(normalize(paste_items(images[index], recipe.canvas, recipe.scale, gen)))
        loss = F.cross_entropy(logits, labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    meta = {
        "backbone": name,
        "recipe": asdict(recipe),
        "classes": list(PRETRAIN_CLASSES),
        "final_loss": float(loss.item()),
        "test_accuracy": _accuracy(model, recipe),
        "train_seconds": time.perf_counter() - start,
    }
    torch.save({"state_dict": model.state_dict(), "meta": meta}, out_file)
    return meta


def weights_file(name: str, recipe: PretrainRecipe, root: Path | None = None) -> Path:
    """<root>/<name>[_archN]_fmnist04_<recipe key>.pt; no suffix at revision 1, so older caches stay valid."""
    revision = ARCH_REVISIONS.get(name, 1)
    arch = f"_arch{revision}" if revision > 1 else ""
    return (root or cache_root() / "weights") / f"{name}{arch}_fmnist04_{recipe.key()}.pt"


def ensure_pretrained(name: str, recipe: PretrainRecipe | None = None, root: Path | None = None) -> Path:
    """The cached weights file of a backbone, pretraining it first if absent (a few CPU minutes).

    Concurrent callers are safe: one pretrains, the others wait for its file.
    """
    if name not in BUILDERS:
        raise ValueError(f"no pretraining recipe for backbone '{name}'; known: {sorted(BUILDERS)}")
    recipe = recipe or PretrainRecipe()
    path = weights_file(name, recipe, root)
    if not path.is_file():
        print(f"[pretrain] no cached weights for {name}: pretraining ({recipe.steps} steps) -> {path}")
    return build_file_once(path, lambda tmp: pretrain(name, recipe, tmp))


def require_pretrained(name: str, recipe: PretrainRecipe | None = None, root: Path | None = None) -> Path:
    """The cached weights file of a backbone; a one-line error naming the command that builds it if absent."""
    path = weights_file(name, recipe or PretrainRecipe(), root)
    if not path.is_file():
        raise MissingSetupError(
            f"pretrained {name} weights {path} (emptied or never built)", f"python scripts/pretrain_backbones.py {name}"
        )
    return path


def load_backbone_state(path: Path) -> dict[str, torch.Tensor]:
    """The pretrained state dict without the pretraining classifier (ConvNeXt's head.fc, the ViT's head)."""
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if not (k.startswith("head.fc.") or k in ("head.weight", "head.bias"))}
