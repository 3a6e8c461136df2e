"""The scoring classifier: a small CNN trained on real Fashion-MNIST images of the fine-tuning classes.

It judges samples two ways: its accuracy on them (does a sample look like the class it was asked for), and the
Frechet distance between the samples' and real test images' features in its penultimate layer (torchmetrics'
FrechetInceptionDistance with this network in place of Inception, which has no weights offline and is built for
299 px colour photographs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm


class FashionClassifier(nn.Module):
    """Two conv blocks and a 128-d feature layer; inputs in [0, 1], [n, 1, s, s] with s divisible by 4."""

    num_features = 128

    def __init__(self, num_classes: int, size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, self.num_features), nn.ReLU(),
        )
        self.head = nn.Linear(self.num_features, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body((images.float() - 0.5) / 0.5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class FeatureExtractor(nn.Module):
    """The classifier's feature layer as torchmetrics' custom FID extractor (float images in [0, 1])."""

    def __init__(self, classifier: FashionClassifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images)


def train_classifier(images: torch.Tensor, targets: torch.Tensor, num_classes: int, steps: int, batch_size: int,
                     lr: float, seed: int) -> FashionClassifier:
    """Images in [0, 1]; targets are class indices 0..num_classes-1."""
    torch.manual_seed(seed)
    model = FashionClassifier(num_classes, images.shape[-1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(steps), desc="classifier", unit="step", leave=False):
        index = torch.randint(0, len(images), (batch_size,), generator=gen)
        loss = F.cross_entropy(model(images[index]), targets[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def predict(model: FashionClassifier, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    return torch.cat([model(chunk).argmax(-1) for chunk in images.split(batch_size)])
