"""The caches a vision run reads (generated scenes, pretrained weights) and fingerprints of them for its record.

One place answers "what does this config read": the engine builds or checks it before training and records a
fingerprint of each input; scripts/prepare_caches.py builds the same caches for a whole table before its workers
start, so workers never build them side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.vision import fashion_mnist
from experiments.vision.rotated_scenes import RotatedSceneSpec, ensure_rotated_scenes
from experiments.vision.scenes import SceneSpec, ensure_scenes, scenes_fingerprint
from experiments.weights import prepare_weights, weights_fingerprint

# mmengine dataset types that read the raw Fashion-MNIST files directly (not through a generated cache).
FASHION_MNIST_DATASETS = ("FashionMNISTClassification",)
# task.scenes_layout -> (the spec its task.scenes fields fill, the function that builds or finds its folder).
SCENE_LAYOUTS: dict[str, tuple[type, Callable[..., Path]]] = {
    "coco": (SceneSpec, ensure_scenes),
    "dota": (RotatedSceneSpec, ensure_rotated_scenes),
}


def scene_spec(task: DictConfig) -> SceneSpec | RotatedSceneSpec | None:
    """The scenes a task trains on (task.scenes_layout: coco scenes, or dota scenes of oriented items), or None
    when its config names its data itself."""
    if task.get("scenes") is None:
        return None
    spec = OmegaConf.to_container(task.scenes, resolve=True)
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
    layout = task.get("scenes_layout", "coco")
    if layout not in SCENE_LAYOUTS:
        raise ValueError(f"task.scenes_layout={layout!r} is not one of {sorted(SCENE_LAYOUTS)}: set one of them")
    return SCENE_LAYOUTS[layout][0](**fields)


def prepare_data(task: DictConfig) -> Path | None:
    """The task's generated data folder (built once into the cache; safe under concurrent workers), or None."""
    spec = scene_spec(task)
    if spec is None:
        return None
    return SCENE_LAYOUTS[task.get("scenes_layout", "coco")][1](spec)


def run_inputs(
    scenes: Path | None, dataset: dict[str, Any], weights: Mapping[str, Any] | None, model_name: str
) -> dict[str, str]:
    """{cache or weights name: fingerprint} of what a run reads: its scenes folder (else the raw Fashion-MNIST
    files, or a paper-profile data folder by path only) and its pretrained weights."""
    inputs: dict[str, str] = {}
    if scenes is not None:
        inputs[scenes.name] = scenes_fingerprint(scenes)
    elif dataset.get("type") in FASHION_MNIST_DATASETS:
        inputs["fashion-mnist"] = fashion_mnist.files_fingerprint()
    elif dataset.get("data_root"):
        inputs[Path(dataset["data_root"]).name] = f"not hashed: {dataset['data_root']}"
    if weights is not None:
        name, fingerprint = weights_fingerprint(weights, model_name)
        inputs[name] = fingerprint
    return inputs


def prepare_run_caches(cfg: DictConfig) -> list[Path]:
    """Build every cache the run cfg reads (its scenes, its pretrained backbone); returns their paths."""
    paths = [prepare_data(cfg.task), prepare_weights(cfg.backbone.get("weights"))]
    return [p for p in paths if p is not None]
