"""Fashion-MNIST scenes: real items pasted on a canvas, for segmentation (ADE20K layout) and detection (COCO json).

No segmentation or detection data set is reachable offline, so this builds one from real images: each item keeps
its own silhouette (pixels above a threshold) as its mask. Later items occlude earlier ones, so masks are the
visible parts. Deterministic for a given SceneSpec (numpy Generator seeded per split); written once into the
cache and reused; concurrent workers build it safely (experiments/atomic.py: one builds, the others wait).

Layout (what mmseg's BaseSegDataset and mmdet's CocoDataset read unchanged):
    images/{training,validation}/000000.png        RGB scenes
    annotations/{training,validation}/000000.png   label maps: 0 background, 1..K item classes
    coco/instances_{training,validation}.json      COCO instances with RLE masks, category ids 1..K
    meta.json                                      the spec and counts; written last (marks completion)
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from experiments.atomic import build_dir_once
from experiments.vision.cache import cache_root
from experiments.vision.fashion_mnist import CLASSES, load_split

SPLITS = {"training": "train", "validation": "test"}  # scene split -> Fashion-MNIST split its items come from
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SceneSpec:
    """Everything that determines the data set; its fields name the cache folder."""

    canvas: int = 64
    n_train: int = 400
    n_val: int = 100
    # Fashion-MNIST class ids pasted into scenes (the other half of the classes pretrains the backbones).
    class_ids: tuple[int, ...] = (5, 6, 7, 8, 9)
    min_items: int = 2
    max_items: int = 3
    scale: tuple[float, float] = (0.9, 1.4)
    max_overlap: float = 0.2
    min_visible_pixels: int = 20
    threshold: int = 25
    seed: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(CLASSES[c] for c in self.class_ids)

    def folder_name(self) -> str:
        ids = "".join(str(c) for c in self.class_ids)
        return (
            f"fashion_scenes_v{FORMAT_VERSION}_c{self.canvas}_n{self.n_train}-{self.n_val}_k{ids}"
            f"_i{self.min_items}-{self.max_items}_s{self.seed}"
        )


def _place(
    rng: np.random.Generator, item: np.ndarray, spec: SceneSpec, occupied: np.ndarray
) -> tuple[np.ndarray, int, int] | None:
    """Resize an item and find a spot overlapping existing items by at most max_overlap of its silhouette."""
    size = int(round(28 * rng.uniform(*spec.scale)))
    size = min(size, spec.canvas)
    resized = np.asarray(Image.fromarray(item).resize((size, size), Image.BILINEAR), dtype=np.float32)
    silhouette = resized > spec.threshold
    area = int(silhouette.sum())
    if area == 0:
        return None
    for _ in range(20):
        y, x = (int(v) for v in rng.integers(0, spec.canvas - size + 1, size=2))
        overlap = int((occupied[y : y + size, x : x + size] & silhouette).sum())
        if overlap <= spec.max_overlap * area:
            return resized, y, x
    return None


def render_scene(
    rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, pool: np.ndarray, spec: SceneSpec
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
    """One scene: RGB uint8 image, label map (0 = background), and (class index 1..K, visible mask) per item."""
    c = spec.canvas
    base = rng.uniform(10, 50)
    canvas = np.clip(base + rng.normal(0, 6, size=(c, c, 3)), 0, 255).astype(np.float32)
    label_map = np.zeros((c, c), np.uint8)
    instance_map = np.zeros((c, c), np.int32)
    classes: list[int] = []
    for _ in range(int(rng.integers(spec.min_items, spec.max_items + 1))):
        index = int(pool[rng.integers(len(pool))])
        placed = _place(rng, images[index], spec, instance_map > 0)
        if placed is None:
            continue
        resized, y, x = placed
        size = resized.shape[0]
        alpha = (resized / 255.0)[..., None]
        tint = rng.uniform(0.45, 1.0, size=3).astype(np.float32)
        region = canvas[y : y + size, x : x + size]
        canvas[y : y + size, x : x + size] = region * (1 - alpha) + alpha * 255.0 * tint
        silhouette = resized > spec.threshold
        class_index = spec.class_ids.index(int(labels[index])) + 1
        classes.append(class_index)
        label_map[y : y + size, x : x + size][silhouette] = class_index
        instance_map[y : y + size, x : x + size][silhouette] = len(classes)
    items = []
    for number, class_index in enumerate(classes, start=1):
        mask = instance_map == number
        if mask.sum() >= spec.min_visible_pixels:
            items.append((class_index, mask))
    return canvas.round().astype(np.uint8), label_map, items


def _coco_annotation(mask: np.ndarray, class_index: int, image_id: int, ann_id: int) -> dict:
    """A COCO instance: compressed RLE of the visible mask and its tight xywh box."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    box = [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": class_index,
        "segmentation": rle,
        "area": int(mask.sum()),
        "bbox": box,
        "iscrowd": 0,
    }


def _write_split(root: Path, split: str, count: int, spec: SceneSpec, seed_offset: int) -> dict:
    """Render and write one split's images, label maps and COCO json; returns its counts."""
    images, labels = load_split(SPLITS[split])
    pool = np.flatnonzero(np.isin(labels, spec.class_ids))
    rng = np.random.default_rng([spec.seed, seed_offset])
    (root / "images" / split).mkdir(parents=True)
    (root / "annotations" / split).mkdir(parents=True)
    coco_images, annotations = [], []
    for image_id in tqdm(range(count), desc=f"scenes {split}", unit="img", leave=False):
        image, label_map, items = render_scene(rng, images, labels, pool, spec)
        name = f"{image_id:06d}.png"
        Image.fromarray(image).save(root / "images" / split / name)
        Image.fromarray(label_map).save(root / "annotations" / split / name)
        coco_images.append({"id": image_id, "file_name": name, "height": spec.canvas, "width": spec.canvas})
        for class_index, mask in items:
            annotations.append(_coco_annotation(mask, class_index, image_id, len(annotations) + 1))
    categories = [{"id": i + 1, "name": n, "supercategory": "fashion"} for i, n in enumerate(spec.names)]
    coco = {"images": coco_images, "annotations": annotations, "categories": categories}
    (root / "coco").mkdir(exist_ok=True)
    (root / "coco" / f"instances_{split}.json").write_text(json.dumps(coco))
    return {"images": count, "instances": len(annotations)}


def build_scenes(spec: SceneSpec, out_dir: Path) -> Path:
    """Write the data set into out_dir (replaced if incomplete); meta.json is written last."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    counts = {
        "training": _write_split(out_dir, "training", spec.n_train, spec, 0),
        "validation": _write_split(out_dir, "validation", spec.n_val, spec, 1),
    }
    meta = {"format_version": FORMAT_VERSION, "spec": asdict(spec), "classes": list(spec.names), "counts": counts}
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    return out_dir


def scenes_folder(spec: SceneSpec, root: Path | None = None) -> Path:
    """Where the data set of spec is cached."""
    return (root or cache_root() / "datasets") / spec.folder_name()


def ensure_scenes(spec: SceneSpec, root: Path | None = None) -> Path:
    """The data set's folder, generating it first if no copy is cached (a few seconds).

    Safe when several workers ask at once: one builds into a private folder and renames it into place.
    """
    folder = build_dir_once(scenes_folder(spec, root), lambda tmp: build_scenes(spec, tmp))
    if not (folder / "meta.json").is_file():
        raise RuntimeError(f"{folder} is incomplete (no meta.json; not written by this code): delete it and rerun")
    return folder


def scenes_fingerprint(folder: Path) -> str:
    """What a run read from a scenes folder: the hash of its meta.json (spec and counts; the build is
    deterministic for a spec, and the folder name carries the format version)."""
    return "meta.json sha256:" + hashlib.sha256((folder / "meta.json").read_bytes()).hexdigest()[:16]
