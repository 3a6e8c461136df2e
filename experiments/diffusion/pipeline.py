"""The mini profile end to end: pretrain (cached), classifier (cached), fine-tune each method, sample, score.

Every method starts from the same cached pretrained UNet, sees the same batches (one seeded generator), samples
from the same noise, and is scored by the same classifier against the same real test images.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from experiments.diffusion.budgets import method_config
from experiments.diffusion.cache import cached_weights, freeze, load_into
from experiments.diffusion.classifier import FashionClassifier, predict, train_classifier
from experiments.diffusion.data import class_images, to_unit
from experiments.diffusion.sampling import draw_grid, grid_labels, sample
from experiments.diffusion.scoring import Scorer
from experiments.diffusion.training import Schedule, train_denoiser
from experiments.diffusion.unets import mini_unet, noise_scheduler
from experiments.methods import attach, parameter_counts
from experiments.vision.fashion_mnist import CLASSES, files_fingerprint

# Bumped when the pretraining or classifier code changes what the same recipe produces (new cache files).
CODE_REVISION = 1
LABELS = {"pretrained": "Pretrained (no fine-tuning)", "full": "Full fine-tuning", "lora": "LoRA", "dora": "DoRA",
          "flora": "FLoRA", "real": "Real test images"}


@dataclass
class MethodResult:
    method: str
    label: str
    params: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    train_seconds: float = 0.0
    final_loss: float | None = None
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class MiniData:
    pretrain: tuple[torch.Tensor, torch.Tensor]
    finetune: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


def load_data(cfg: DictConfig) -> MiniData:
    size = int(cfg.image_size)
    pretrain, finetune = (class_images("train", classes, size) for classes in (cfg.pretrain_classes,
                                                                                  cfg.finetune_classes))
    return MiniData(pretrain, finetune, class_images("test", cfg.finetune_classes, size))


def _recipe(cfg: DictConfig, *keys: str) -> dict[str, Any]:
    plain = OmegaConf.to_container(cfg, resolve=True)
    return {"code": CODE_REVISION, "data": files_fingerprint(), **{k: plain[k] for k in keys}}


def pretrained_unet(cfg: DictConfig, data: MiniData) -> tuple[Path, bool]:
    """The UNet pretrained on the pretraining classes, from the cache or trained now."""
    def train() -> torch.nn.Module:
        torch.manual_seed(int(cfg.pretrain.seed))
        model = mini_unet(cfg.unet)
        train_denoiser(model, *data.pretrain, Schedule(**cfg.pretrain), noise_scheduler(cfg.noise), "pretrain UNet")
        return model

    return cached_weights("unet", _recipe(cfg, "image_size", "pretrain_classes", "unet", "noise", "pretrain"), train)


def class_index(labels: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Fashion-MNIST labels -> positions in ``classes`` (the classifier's outputs)."""
    lookup = torch.full((10,), -1, dtype=torch.long)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    return lookup[labels]


def scoring_classifier(cfg: DictConfig, data: MiniData) -> FashionClassifier:
    classes = list(cfg.finetune_classes)
    images, labels = data.finetune

    def train() -> torch.nn.Module:
        c = cfg.classifier
        return train_classifier(to_unit(images), class_index(labels, classes), len(classes), int(c.steps),
                                int(c.batch_size), float(c.lr), int(c.seed))

    path, _ = cached_weights("classifier", _recipe(cfg, "image_size", "finetune_classes", "classifier"), train)
    return freeze(load_into(FashionClassifier(len(classes), int(cfg.image_size)), path))


def finetune(cfg: DictConfig, method: str, weights: Path, data: MiniData) -> tuple[torch.nn.Module, MethodResult]:
    """The pretrained UNet with ``method`` attached and trained on the fine-tuning classes."""
    torch.manual_seed(int(cfg.finetune.seed))
    model = load_into(mini_unet(cfg.unet), weights)
    result = MethodResult(method, LABELS[method])
    backbone = sum(p.numel() for p in model.parameters())
    if method == "pretrained":
        freeze(model)
    else:
        model = attach(model, method_config(method, model, cfg))
    result.params = parameter_counts(model, backbone)
    if method == "pretrained":
        return model, result
    ft = cfg.finetune
    lr = float(ft.full_lr if method == "full" else ft.lr)
    start = time.perf_counter()
    losses = train_denoiser(model, *data.finetune, Schedule(int(ft.steps), int(ft.batch_size), lr, int(ft.seed)),
                            noise_scheduler(cfg.noise), f"fine-tune {method}")
    result.train_seconds = time.perf_counter() - start
    result.steps = len(losses)
    result.final_loss = statistics.fmean(losses[-50:])
    return model, result


@dataclass
class MiniOutcome:
    results: list[MethodResult]
    grid_paths: list[Path]
    classifier_test_accuracy: float
    pretrained_built: bool
    reference_images: int
    seconds: dict[str, float]


def run_mini(cfg: DictConfig, figures_dir: Path, grid_stem: str = "diffusion_grid") -> MiniOutcome:
    """Every method of cfg.methods, then the grid (with a row of real test images) and the scores."""
    start = time.perf_counter()
    torch.set_num_threads(int(cfg.threads))
    data = load_data(cfg)
    weights, built = pretrained_unet(cfg, data)
    seconds = {"pretrain": time.perf_counter() - start}
    classes = list(cfg.finetune_classes)
    classifier = scoring_classifier(cfg, data)
    test_x, test_y = data.test
    reference, held_out = to_unit(test_x[0::2]), to_unit(test_x[1::2])
    scorer = Scorer(classifier, reference)
    test_accuracy = float((predict(classifier, to_unit(test_x)) == class_index(test_y, classes)).float().mean())
    s = cfg.sampling
    labels = grid_labels(classes, int(s.score_per_class))
    targets = class_index(labels, classes)
    per_class, keep = int(s.score_per_class), int(s.grid_per_class)
    grid: dict[str, torch.Tensor] = {}
    results = []
    for method in tqdm(list(cfg.methods), desc="methods", unit="method"):
        model, result = finetune(cfg, method, weights, data)
        t0 = time.perf_counter()
        images = sample(model, labels, noise_scheduler(cfg.noise), int(s.steps), int(s.seed), int(s.batch_size),
                        desc=f"sample {method}")
        seconds[f"sample {method}"] = time.perf_counter() - t0
        result.scores = scorer(images, targets)
        grid[result.label] = images.reshape(len(classes), per_class, *images.shape[1:])[:, :keep].flatten(0, 1)
        results.append(result)
    real = MethodResult("real", LABELS["real"])
    real_y = class_index(test_y[1::2], classes)
    per_class_real = [held_out[real_y == i][:per_class] for i in range(len(classes))]
    real.scores = scorer(torch.cat(per_class_real),
                         torch.cat([torch.full((len(x),), i) for i, x in enumerate(per_class_real)]))
    results.append(real)
    grid[real.label] = torch.cat([held_out[real_y == i][:keep] for i in range(len(classes))])
    names = [CLASSES[c] for c in classes]
    grid_paths = draw_grid(grid, names, keep, figures_dir, grid_stem)
    seconds["total"] = time.perf_counter() - start
    return MiniOutcome(results, grid_paths, test_accuracy, built, len(reference), seconds)
