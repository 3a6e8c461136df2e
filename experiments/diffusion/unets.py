"""The two UNets: the mini profile's class-conditional UNet2DModel and Stable Diffusion v1.5's UNet on meta."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel, UNet2DModel

from experiments.config import REPO_ROOT

# Not under configs/arch/: that folder is part of the language engine's code fingerprint.
SD15_CONFIG = REPO_ROOT / "configs" / "diffusion" / "sd15-unet.json"
SD15_PARAMETERS = 859_520_964  # runwayml/stable-diffusion-v1-5's unet/diffusion_pytorch_model.safetensors


def mini_unet(unet_cfg: Mapping[str, Any]) -> UNet2DModel:
    """A fresh UNet2DModel from the profile's keywords (lists become tuples, as diffusers expects)."""
    return UNet2DModel(**{k: tuple(v) if isinstance(v, list) else v for k, v in dict(unet_cfg).items()})


def noise_scheduler(noise_cfg: Mapping[str, Any]) -> DDPMScheduler:
    return DDPMScheduler(**dict(noise_cfg))


def sd15_on_meta() -> UNet2DConditionModel:
    """Stable Diffusion v1.5's UNet from its config, on the meta device: shapes without weights or memory."""
    config = {k: v for k, v in json.loads(SD15_CONFIG.read_text()).items() if not k.startswith("_")}
    with torch.device("meta"):
        return UNet2DConditionModel.from_config(config)
