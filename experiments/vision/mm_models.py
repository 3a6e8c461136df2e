"""timm backbones for mmsegmentation and mmdetection, registered in both MODELS registries.

mmseg's and mmdet's configs name a backbone by `type`; `TimmBackbone` builds any timm model (or the
InternViT-style ViTs of experiments.vision.internvit) whole, loads its pretrained weights under their own
names, drops the layers after the last requested stage, and returns the intermediate feature maps
(NCHW, one per out_index) that UperNet / FPN expect. Keeping timm's own module names means adapter
target names in the configs are the timm names (stem.0, stages.2.blocks.0.conv_dw, blocks.3.attn.qkv).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.model import BaseModule
from mmseg.registry import MODELS as MMSEG_MODELS

from experiments.vision.timm_models import build_timm


class TimmBackbone(BaseModule):
    """Feature maps of a timm model's stages (conv nets) or blocks (ViTs) for dense-prediction heads.

    weights: {source, name} of experiments/weights.py, or None for random init (meta-device dry runs,
    or a paper run that loads a checkpoint through init_cfg/load_from). Weights load at construction and
    init_weights is a no-op, so mmengine's weight initialisation never overwrites a pretrained backbone.
    """

    def __init__(
        self,
        model_name: str,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        weights: Mapping[str, Any] | None = None,
        model_kwargs: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg)
        self.out_indices = list(out_indices)
        model = build_timm(model_name, weights, **(model_kwargs or {}))
        model.prune_intermediate_layers(self.out_indices, prune_head=True)
        self.model = model

    def init_weights(self) -> None:
        """Weights were set at construction (pretrained or timm's init); nothing to redo."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.forward_intermediates(x, indices=self.out_indices, intermediates_only=True))


MMSEG_MODELS.register_module(module=TimmBackbone, force=True)
MMDET_MODELS.register_module(module=TimmBackbone, force=True)
