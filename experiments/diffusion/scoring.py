"""One score for every method: the classifier's accuracy on the samples and the Frechet distance (torchmetrics)
between the samples' and real test images' features in the classifier's feature layer."""

from __future__ import annotations

import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from experiments.diffusion.classifier import FashionClassifier, FeatureExtractor, predict


class Scorer:
    """Real features are extracted once; each call scores one set of samples against them."""

    def __init__(self, classifier: FashionClassifier, real_images: torch.Tensor, batch_size: int = 500) -> None:
        self.classifier = classifier
        self.batch_size = batch_size
        self.fid = FrechetInceptionDistance(feature=FeatureExtractor(classifier), normalize=True,
                                            reset_real_features=False,
                                            input_img_size=tuple(real_images.shape[1:]))
        with torch.no_grad():
            for chunk in real_images.split(batch_size):
                self.fid.update(chunk, real=True)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """images in [0, 1]; targets are classifier indices (0..K-1)."""
        accuracy = float((predict(self.classifier, images, self.batch_size) == targets).float().mean())
        self.fid.reset()
        for chunk in images.split(self.batch_size):
            self.fid.update(chunk, real=False)
        return {"accuracy": accuracy, "frechet_distance": float(self.fid.compute())}
