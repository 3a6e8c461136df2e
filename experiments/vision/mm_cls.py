"""Image classification on mmengine's Runner without mmpretrain (which breaks mmseg/mmdet under transformers 5).

Registered in mmengine's root registries (mmseg/mmdet scopes fall back to them): the real Fashion-MNIST as a
dataset, a timm classifier as a BaseModel (backbone + linear head, so adapters target `backbone.*` and the
head is `cls_head`, a name no backbone parameter contains), and top-1 accuracy as a metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS
from torch import nn
from torch.utils.data import Dataset

from experiments.vision.fashion_mnist import load_split
from experiments.vision.timm_models import build_timm


class FashionMNISTClassification(Dataset):
    """Images offset ... offset + limit of a fixed shuffle of a Fashion-MNIST split, as 3 x size x size: with the
    same seed, a slice after the training images is a held-out validation set for choosing hyper-parameters."""

    def __init__(self, split: str, limit: int | None = None, size: int = 64, seed: int = 0, offset: int = 0) -> None:
        images, labels = load_split(split)
        order = np.random.default_rng(seed).permutation(len(labels))[offset:][:limit]
        self.images = torch.from_numpy(images[order].copy())
        self.labels = torch.from_numpy(labels[order].copy())
        self.size = size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        image = self.images[index][None, None].float()
        image = F.interpolate(image, size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        return {"inputs": image.expand(3, -1, -1).contiguous(), "data_samples": int(self.labels[index])}


class TimmClassifier(BaseModel):
    """A timm backbone (pooled features) and a new linear head; mmengine's loss/predict protocol."""

    def __init__(
        self,
        model_name: str,
        num_classes: int,
        weights: Mapping[str, Any] | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_timm(model_name, weights)
        self.cls_head = nn.Linear(self.backbone.num_features, num_classes)

    def forward(self, inputs: torch.Tensor, data_samples: Sequence[int] | None = None, mode: str = "tensor"):
        logits = self.cls_head(self.backbone(inputs))
        if mode == "tensor":
            return logits
        labels = torch.as_tensor(list(data_samples), device=logits.device)
        if mode == "loss":
            return {"loss": F.cross_entropy(logits, labels)}
        if mode == "predict":
            return [{"pred": int(p), "gt": int(g)} for p, g in zip(logits.argmax(1), labels, strict=True)]
        raise ValueError(f"unknown mode {mode!r}; expected tensor, loss or predict")


class Accuracy(BaseMetric):
    """Top-1 accuracy in percent (as mmseg reports mIoU), under the key 'accuracy'."""

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        self.results.extend(int(s["pred"] == s["gt"]) for s in data_samples)

    def compute_metrics(self, results: list) -> dict[str, float]:
        return {"accuracy": 100.0 * sum(results) / max(1, len(results))}


DATASETS.register_module(module=FashionMNISTClassification, force=True)
MODELS.register_module(module=TimmClassifier, force=True)
METRICS.register_module(module=Accuracy, force=True)
