"""Models built once per machine (the pretrained UNet, the scoring classifier), keyed by what determines them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from experiments.atomic import build_file_once
from experiments.vision.cache import cache_root


def cache_key(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cached_weights(kind: str, recipe: dict[str, Any], train: Callable[[], nn.Module]) -> tuple[Path, bool]:
    """(weights file, built now) for ``recipe``: trained by ``train`` unless <cache>/diffusion holds them."""
    target = cache_root() / "diffusion" / f"{kind}-{cache_key(recipe)}.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    built = not target.is_file()

    def build(tmp: Path) -> None:
        state = {k: v.detach().contiguous() for k, v in train().state_dict().items()}
        save_file(state, str(tmp), metadata={"recipe": json.dumps(recipe, sort_keys=True, default=str)})

    build_file_once(target, build)
    return target, built


def load_into(model: nn.Module, path: Path) -> nn.Module:
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def freeze(model: nn.Module) -> nn.Module:
    for param in model.parameters():
        param.requires_grad_(False)
    return model
