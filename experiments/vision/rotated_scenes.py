"""Fashion-MNIST scenes for oriented detection, in the DOTA layout that MMRotate's DOTADataset and DOTAMetric read.

Like experiments/vision/scenes.py, but each real item is upscaled and turned by an arbitrary angle before it is
pasted, and labelled with an oriented box: the minimum-area rectangle around its silhouette (the item's pixels
above a threshold), so the box holds every pixel of the item whole and no rectangle holding them is smaller.
The boxes of one scene never overlap (as objects seen from above rarely do, and an oriented detector's rotated
NMS at IoU 0.1 would merge overlapping ones), so every item is fully visible. Deterministic for a given
RotatedSceneSpec; written once into the cache and reused; concurrent workers build it safely.

Layout (what MMRotate's DOTA split tool, tools/data/dota/split/img_split.py, writes and DOTADataset reads):
    {train,val}/images/P0000__96__0___0.png    RGB scenes; each is the one patch, at offset (0, 0), of scene P0000
    {train,val}/annfiles/P0000__96__0___0.txt  one line per item: x1 y1 x2 y2 x3 y3 x4 y4 class difficulty
    meta.json                                  the spec, class names and counts; written last (marks completion)
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image
from shapely.geometry import Polygon
from tqdm import tqdm

from experiments.atomic import build_dir_once
from experiments.vision.cache import cache_root
from experiments.vision.fashion_mnist import CLASSES, load_split

SPLITS = {"train": "train", "val": "test"}  # DOTA split -> Fashion-MNIST split its items come from
FORMAT_VERSION = 1
PLACEMENT_TRIES = 20


@dataclass(frozen=True)
class RotatedSceneSpec:
    """Everything that determines the data set; the cache folder is named after all of it."""

    canvas: int = 96
    n_train: int = 400
    n_val: int = 100
    # Three items with distinct outlines, from the half of the classes the backbones are not pretrained on.
    class_ids: tuple[int, ...] = (7, 8, 9)
    min_items: int = 1
    max_items: int = 3
    # Side of the upscaled item over Fashion-MNIST's 28 px, drawn per item: large items, so that a small
    # detector learns them on a CPU.
    scale: tuple[float, float] = (1.4, 2.0)
    threshold: int = 25
    seed: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(CLASSES[c] for c in self.class_ids)

    def folder_name(self) -> str:
        ids = "".join(str(c) for c in self.class_ids)
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]
        return (
            f"fashion_rotated_v{FORMAT_VERSION}_c{self.canvas}_n{self.n_train}-{self.n_val}_k{ids}"
            f"_i{self.min_items}-{self.max_items}_s{self.seed}_{digest}"
        )


class RotatedItem(NamedTuple):
    """One pasted item: its class name, its silhouette on the canvas, and its oriented box's corners (4, 2)."""

    name: str
    mask: np.ndarray
    corners: np.ndarray


def oriented_box(mask: np.ndarray) -> np.ndarray:
    """Corners (4, 2; x, y) of the minimum-area rectangle holding every pixel of mask whole.

    Pixel (row i, column j) covers [j, j + 1] x [i, i + 1], the convention of mmdet's boxes (and of the COCO
    boxes of experiments/vision/scenes.py), so the rectangle is fitted to the four corners of every pixel.
    """
    ys, xs = np.nonzero(mask)
    points = np.concatenate([np.stack([xs + dx, ys + dy], axis=1) for dx in (0, 1) for dy in (0, 1)])
    return cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32))).astype(np.float64)


def _turned_item(rng: np.random.Generator, item: np.ndarray, spec: RotatedSceneSpec) -> np.ndarray | None:
    """The item upscaled and turned by a random angle, cropped to its silhouette (float intensities 0..255).

    The side is capped so that the item fits the canvas at any angle (with a pixel to spare for rounding).
    """
    size = min(int(round(28 * rng.uniform(*spec.scale))), int(spec.canvas / math.sqrt(2)) - 1)
    angle = float(rng.uniform(0.0, 360.0))
    resized = Image.fromarray(item).resize((size, size), Image.BILINEAR).convert("F")
    turned = np.asarray(resized.rotate(angle, resample=Image.BILINEAR, expand=True), dtype=np.float32)
    silhouette = turned > spec.threshold
    if not silhouette.any():
        return None
    rows, cols = np.flatnonzero(silhouette.any(axis=1)), np.flatnonzero(silhouette.any(axis=0))
    return turned[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def render_scene(
    rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, pool: np.ndarray, spec: RotatedSceneSpec
) -> tuple[np.ndarray, list[RotatedItem]]:
    """One scene: an RGB uint8 image and its items, each placed where its box overlaps no earlier item's box."""
    c = spec.canvas
    base = rng.uniform(10, 50)
    canvas = np.clip(base + rng.normal(0, 6, size=(c, c, 3)), 0, 255).astype(np.float32)
    items: list[RotatedItem] = []
    boxes: list[Polygon] = []
    for _ in range(int(rng.integers(spec.min_items, spec.max_items + 1))):
        index = int(pool[rng.integers(len(pool))])
        turned = _turned_item(rng, images[index], spec)
        if turned is None:
            continue
        h, w = turned.shape
        silhouette = turned > spec.threshold
        corners = oriented_box(silhouette)
        for _ in range(PLACEMENT_TRIES):
            y, x = int(rng.integers(0, c - h + 1)), int(rng.integers(0, c - w + 1))
            box = Polygon(corners + (x, y))
            if not any(box.intersects(other) for other in boxes):
                break
        else:
            continue
        alpha = (turned / 255.0)[..., None]
        tint = rng.uniform(0.45, 1.0, size=3).astype(np.float32)
        region = canvas[y : y + h, x : x + w]
        canvas[y : y + h, x : x + w] = region * (1 - alpha) + alpha * 255.0 * tint
        mask = np.zeros((c, c), bool)
        mask[y : y + h, x : x + w] = silhouette
        items.append(RotatedItem(CLASSES[int(labels[index])], mask, corners + (x, y)))
        boxes.append(box)
    return canvas.round().astype(np.uint8), items


def patch_name(scene: int, spec: RotatedSceneSpec) -> str:
    """The split tool's patch name: source image id, patch size, and the patch's x and y offsets."""
    return f"P{scene:04d}__{spec.canvas}__0___0"


def split_size(split: str, spec: RotatedSceneSpec) -> int:
    """Number of scenes in a split."""
    return {"train": spec.n_train, "val": spec.n_val}[split]


def iter_split(split: str, spec: RotatedSceneSpec) -> Iterator[tuple[str, np.ndarray, list[RotatedItem]]]:
    """Yield (patch name, image, items) of every scene of a split, in order; what build_rotated_scenes writes."""
    images, labels = load_split(SPLITS[split])
    pool = np.flatnonzero(np.isin(labels, spec.class_ids))
    rng = np.random.default_rng([spec.seed, list(SPLITS).index(split)])
    for scene in range(split_size(split, spec)):
        image, items = render_scene(rng, images, labels, pool, spec)
        yield patch_name(scene, spec), image, items


def annotation_line(item: RotatedItem) -> str:
    """A DOTA label line: the four corners, the class name, difficulty 0 (every item is whole and unoccluded)."""
    return " ".join(f"{v:.2f}" for v in item.corners.ravel()) + f" {item.name} 0"


def _write_split(root: Path, split: str, spec: RotatedSceneSpec) -> dict:
    """Render and write one split's images and label files; returns its counts."""
    (root / split / "images").mkdir(parents=True)
    (root / split / "annfiles").mkdir(parents=True)
    images = instances = 0
    scenes = tqdm(iter_split(split, spec), desc=f"rotated scenes {split}", total=split_size(split, spec), leave=False)
    for name, image, items in scenes:
        Image.fromarray(image).save(root / split / "images" / f"{name}.png")
        lines = "".join(annotation_line(item) + "\n" for item in items)
        (root / split / "annfiles" / f"{name}.txt").write_text(lines)
        images += 1
        instances += len(items)
    return {"images": images, "instances": instances}


def build_rotated_scenes(spec: RotatedSceneSpec, out_dir: Path) -> Path:
    """Write the data set into out_dir (replaced if incomplete); meta.json is written last."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    counts = {split: _write_split(out_dir, split, spec) for split in SPLITS}
    meta = {"format_version": FORMAT_VERSION, "spec": asdict(spec), "classes": list(spec.names), "counts": counts}
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    return out_dir


def rotated_scenes_folder(spec: RotatedSceneSpec, root: Path | None = None) -> Path:
    """Where the data set of spec is cached (beside the scenes of experiments/vision/scenes.py)."""
    return (root or cache_root() / "datasets") / spec.folder_name()


def ensure_rotated_scenes(spec: RotatedSceneSpec, root: Path | None = None) -> Path:
    """The data set's folder, generating it first if no copy is cached (a few seconds).

    Safe when several workers ask at once: one builds into a private folder and renames it into place.
    """
    folder = build_dir_once(rotated_scenes_folder(spec, root), lambda tmp: build_rotated_scenes(spec, tmp))
    if not (folder / "meta.json").is_file():
        raise RuntimeError(f"{folder} is incomplete (no meta.json; not written by this code): delete it and rerun")
    return folder
