"""The mini profile's vision tower: a small CLIP vision transformer (the class LLaVA-1.5 uses), pretrained here.

No CLIP or SigLIP weights install offline, so the tower learns once what CLIP's captions teach it at scale, on a
toy world: generated images of one flat shape (experiments/multimodal/shapes.py: seven kinds, any RGB colour), whose
kind it names and whose colours it regresses. It never sees easy-VQA's images, questions or answers. The weights
are cached outside git, built atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm
from transformers import AutoModel, CLIPVisionConfig

from experiments.atomic import build_file_once
from experiments.multimodal.shapes import KINDS, render
from experiments.vision.cache import cache_root, set_cpu_threads

# LLaVA-1.5's vision_feature_layer: the penultimate layer's patch features feed the projector.
FEATURE_LAYER = -2
# Held-out images for the tower's own evaluation come from another generator seed than any training run's.
EVAL_SEED = 1234
# CLIP's preprocessing with mean = std = 0.5: pixels in [0, 1] -> [-1, 1]; the mini processor uses the same.
IMAGE_MEAN = IMAGE_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class TowerRecipe:
    """Architecture and pretraining schedule; its hash names the cached weights."""

    image_size: int = 64
    patch_size: int = 16
    hidden_size: int = 192
    intermediate_size: int = 768
    num_layers: int = 4
    num_heads: int = 3
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    seed: int = 0

    def key(self) -> str:
        """Hash of the recipe and the generated shape kinds (another set of kinds is another tower)."""
        blob = json.dumps({**asdict(self), "kinds": KINDS}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def vision_config(self) -> CLIPVisionConfig:
        return CLIPVisionConfig(
            image_size=self.image_size,
            patch_size=self.patch_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
        )


class PretrainModel(nn.Module):
    """The tower plus heads for the pretraining targets (kind logits, shape RGB, background RGB).

    The heads read the mean of the patch features LLaVA feeds its projector (layer FEATURE_LAYER, CLS dropped), so
    those features, not only the final CLS, carry what the shape is and its colours."""

    def __init__(self, recipe: TowerRecipe) -> None:
        super().__init__()
        self.tower = AutoModel.from_config(recipe.vision_config())
        self.norm = nn.LayerNorm(recipe.hidden_size)
        self.head = nn.Linear(recipe.hidden_size, len(KINDS) + 6)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        hidden = self.tower(pixel_values=pixels, output_hidden_states=True).hidden_states[FEATURE_LAYER]
        return self.head(self.norm(hidden[:, 1:].mean(dim=1)))


def normalize(images: torch.Tensor) -> torch.Tensor:
    return (images - 0.5) / 0.5


def _loss(model: PretrainModel, images: torch.Tensor, kinds: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    out = model(normalize(images))
    return F.cross_entropy(out[:, : len(KINDS)], kinds) + F.mse_loss(out[:, len(KINDS) :], colours) * 10


@torch.no_grad()
def evaluate(model: PretrainModel, recipe: TowerRecipe, limit: int = 1000) -> dict[str, float]:
    """Kind accuracy and colour error (mean absolute, 0-255 scale) on held-out generated images."""
    gen = torch.Generator().manual_seed(EVAL_SEED)
    model.eval()
    correct, error = 0, 0.0
    for _ in range(0, limit, 250):
        images, kinds, colours = render(250, recipe.image_size, gen)
        out = model(normalize(images))
        correct += int((out[:, : len(KINDS)].argmax(1) == kinds).sum())
        error += float((out[:, len(KINDS) :] - colours).abs().sum()) * 255 / 6
    return {"shape_accuracy": correct / limit, "colour_mae_255": error / limit}


def pretrain(recipe: TowerRecipe) -> tuple[dict[str, torch.Tensor], dict]:
    """Train the tower on generated shapes; returns its state dict (heads dropped) and a summary."""
    set_cpu_threads()
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    model = PretrainModel(recipe)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    warmup = max(1, recipe.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * s / recipe.steps)))
    )
    start = time.perf_counter()
    model.train()
    bar = tqdm(range(recipe.steps), desc="pretrain vision tower", unit="step")
    for _ in bar:
        loss = _loss(model, *render(recipe.batch_size, recipe.image_size, gen))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    summary = {"recipe": asdict(recipe), "final_loss": float(loss.item()), "train_seconds": time.perf_counter() - start}
    summary.update(evaluate(model, recipe))
    return model.tower.state_dict(), summary


def weights_file(recipe: TowerRecipe, root: Path | None = None) -> Path:
    return (root or cache_root() / "weights") / f"clip_vit_mini_shapes_{recipe.key()}.safetensors"


def ensure_tower(recipe: TowerRecipe, root: Path | None = None) -> Path:
    """The cached tower weights, pretraining them first if absent (a few CPU minutes; concurrent workers wait)."""
    path = weights_file(recipe, root)

    def build(tmp: Path) -> None:
        print(f"[vision tower] no cached weights: pretraining ({recipe.steps} steps) -> {path}")
        state, summary = pretrain(recipe)
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata={"summary": json.dumps(summary)})

    return build_file_once(path, build)


def load_tower(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """State dict and pretraining summary of a cached tower."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        summary = json.loads(handle.metadata()["summary"])
    return load_file(str(path)), summary
