"""The rotated scene generator: every item's oriented box holds its silhouette and is the smallest rectangle that
does, the build is deterministic and happens once under parallel workers; and MMRotate reads the folder with its
own classes: DOTADataset loads every instance, DOTAMetric scores the ground truth as mAP 1 (and the in-process
DOTAMetric the configs use scores like it); and the task's rotated RetinaNet on the timm ConvNeXt, built from its
mmengine config as the engine builds it, takes a finite training step on the CPU and predicts rotated boxes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from shapely.geometry import Polygon

from experiments.config import REPO_ROOT, compose_config
from experiments.vision.rotated_scenes import (
    SPLITS,
    RotatedSceneSpec,
    build_rotated_scenes,
    ensure_rotated_scenes,
    iter_split,
)
from experiments.vision.stack import SETUP_COMMAND

SPEC = RotatedSceneSpec(n_train=8, n_val=12, seed=3)


def _digest(folder: Path) -> str:
    """Hash of every file's relative path and bytes."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _pixel_corners(mask: np.ndarray) -> np.ndarray:
    """The four corners (x, y) of every pixel of mask, pixel (i, j) covering [j, j + 1] x [i, i + 1]."""
    ys, xs = np.nonzero(mask)
    return np.concatenate([np.stack([xs + dx, ys + dy], axis=1) for dx in (0, 1) for dy in (0, 1)]).astype(float)


def _signed_distances(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Distance of each point inside each edge of the convex quadrilateral corners (negative: outside), (n, 4)."""
    edges = np.roll(corners, -1, axis=0) - corners
    orientation = np.sign(np.cross(edges[0], edges[1]))
    rel = points[:, None, :] - corners[None]
    cross = edges[None, :, 0] * rel[..., 1] - edges[None, :, 1] * rel[..., 0]
    return orientation * cross / np.linalg.norm(edges, axis=1)


def _min_rectangle_area(points: np.ndarray) -> float:
    """The smallest area of a rectangle holding points, searched over orientations in 0.05 degree steps (an upper
    bound, a fraction of a percent above the exact minimum)."""
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(float)
    angles = np.deg2rad(np.arange(0.0, 90.0, 0.05))
    u = hull @ np.stack([np.cos(angles), np.sin(angles)])
    v = hull @ np.stack([-np.sin(angles), np.cos(angles)])
    return float((np.ptp(u, axis=0) * np.ptp(v, axis=0)).min())


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_rotated_scenes(SPEC, tmp_path_factory.mktemp("rotated"))


@pytest.fixture
def mmrotate_scope() -> Iterator[None]:
    """MMRotate's registry scope for the block: its DOTA configs set default_scope='mmrotate', and mmengine then
    registers MMRotate's modules on first use (mmrotate.utils.register_all_modules)."""
    pytest.importorskip("mmrotate", reason=f"MMRotate not installed; `{SETUP_COMMAND}` installs it")
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmrotate"):
        yield


def _mm_config(folder: Path) -> object:
    """The mini profile's mmengine config of the rotated scenes task (the engine's own build), reading folder."""
    from experiments.engines.mmengine_runner import build_mm_config

    cfg = compose_config(["backbone=convnext_atto", "task=scenes_dota", "method=head", "backbone.weights=null"])
    return build_mm_config(cfg, folder, folder / "work")


def _dota_dataset(folder: Path, split: str, *, train: bool) -> object:
    """MMRotate's DOTADataset on one split of the folder, as the task's mmengine config sets it up."""
    from mmengine.registry import DATASETS

    loader = "train_dataloader" if train else "val_dataloader"
    dataset = _mm_config(folder)[loader].dataset
    if split != ("train" if train else "val"):
        dataset.update(ann_file=f"{split}/annfiles/", data_prefix=dict(img_path=f"{split}/images/"))
    return DATASETS.build(dataset)


def test_boxes_hold_silhouettes_tightly(scenes: Path) -> None:
    meta = json.loads((scenes / "meta.json").read_text())
    assert meta["classes"] == ["sneaker", "bag", "ankle-boot"]
    for split in SPLITS:
        instances = 0
        for name, image, items in iter_split(split, SPEC):
            assert image.shape == (SPEC.canvas, SPEC.canvas, 3) and image.dtype == np.uint8
            lines = (scenes / split / "annfiles" / f"{name}.txt").read_text().splitlines()
            assert len(lines) == len(items) >= SPEC.min_items
            covered = np.zeros(image.shape[:2], bool)
            for item, line in zip(items, lines, strict=True):
                fields = line.split()
                assert fields[8:] == [item.name, "0"]
                corners = np.array(fields[:8], float).reshape(4, 2)
                assert np.abs(corners - item.corners).max() <= 0.005
                points = _pixel_corners(item.mask)
                assert _signed_distances(points, corners).min() >= -0.01
                area = Polygon(corners).area
                assert _min_rectangle_area(points) * 0.99 <= area <= _min_rectangle_area(points) * 1.0001
                assert not (covered & item.mask).any()
                covered |= item.mask
            boxes = [Polygon(item.corners) for item in items]
            assert not any(a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
            instances += len(items)
        images = len(list((scenes / split / "images").iterdir()))
        assert meta["counts"][split] == {"images": images, "instances": instances}


def test_deterministic(scenes: Path, tmp_path: Path) -> None:
    assert _digest(build_rotated_scenes(SPEC, tmp_path / "again")) == _digest(scenes)
    other = build_rotated_scenes(RotatedSceneSpec(n_train=8, n_val=12, seed=4), tmp_path / "other")
    assert _digest(other) != _digest(scenes)


def test_folder_name_covers_every_field() -> None:
    assert RotatedSceneSpec(scale=(1.0, 1.5)).folder_name() != RotatedSceneSpec().folder_name()
    assert RotatedSceneSpec(threshold=40).folder_name() != RotatedSceneSpec().folder_name()


def test_incomplete_folder_is_named_not_used(tmp_path: Path) -> None:
    (tmp_path / SPEC.folder_name()).mkdir()
    with pytest.raises(RuntimeError, match="incomplete"):
        ensure_rotated_scenes(SPEC, tmp_path)


WORKER = """
import sys, time
from pathlib import Path
from experiments.vision.rotated_scenes import RotatedSceneSpec, ensure_rotated_scenes
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
print(ensure_rotated_scenes(RotatedSceneSpec(n_train=40, n_val=10, seed=5)))
"""


def test_parallel_workers_build_one_complete_copy(tmp_path: Path) -> None:
    """Two workers asking for the same scenes in a fresh cache both get one complete folder."""
    env = {**os.environ, "FLORA_CACHE": str(tmp_path / "cache")}
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(go)], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    time.sleep(0.5)
    go.touch()
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    folders = {out.strip().splitlines()[-1] for out in outputs}
    assert len(folders) == 1
    folder = Path(folders.pop())
    assert [p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock")] == [folder.name]
    meta = json.loads((folder / "meta.json").read_text())
    for split, count in (("train", 40), ("val", 10)):
        assert meta["counts"][split]["images"] == count
        assert len(list((folder / split / "images").iterdir())) == count
        assert len(list((folder / split / "annfiles").iterdir())) == count


def test_mmrotate_imports_with_this_mmcv_and_mmdet(mmrotate_scope: None) -> None:
    import mmcv
    import mmdet
    import mmrotate
    from mmrotate.registry import DATASETS, METRICS, TASK_UTILS

    assert (mmrotate.__version__, mmcv.__version__, mmdet.__version__) == ("1.0.1", "2.1.0", "3.3.0")
    assert DATASETS.get("DOTADataset").__module__ == "mmrotate.datasets.dota"
    assert METRICS.get("DOTAMetric").__module__ == "mmrotate.evaluation.metrics.dota_metric"
    assert TASK_UTILS.get("FakeRotatedAnchorGenerator") is not None


def test_dota_dataset_reads_every_instance(scenes: Path, mmrotate_scope: None) -> None:
    from mmrotate.structures import RotatedBoxes

    meta = json.loads((scenes / "meta.json").read_text())
    for split in SPLITS:
        dataset = _dota_dataset(scenes, split, train=split == "train")
        assert len(dataset) == meta["counts"][split]["images"]
        infos = [dataset.get_data_info(i) for i in range(len(dataset))]
        assert sum(len(info["instances"]) for info in infos) == meta["counts"][split]["instances"]
        sample = dataset[0]["data_samples"]
        lines = (scenes / split / "annfiles" / f"{sample.img_id}.txt").read_text().splitlines()
        boxes = sample.gt_instances.bboxes
        assert isinstance(boxes, RotatedBoxes) and len(boxes) == len(lines)
        areas = [Polygon(np.array(line.split()[:8], float).reshape(4, 2)).area for line in lines]
        assert torch.allclose(boxes.areas, torch.tensor(areas, dtype=torch.float32), rtol=1e-3)
        names = [SPEC.names[label] for label in sample.gt_instances.labels.tolist()]
        assert names == [line.split()[8] for line in lines]


def test_dota_metric_scores_ground_truth_as_one(scenes: Path, mmrotate_scope: None) -> None:
    from mmengine.registry import METRICS

    dataset = _dota_dataset(scenes, "val", train=False)
    metric = METRICS.build(dict(type="DOTAMetric", metric="mAP"))
    metric.dataset_meta = dataset.metainfo
    samples = []
    for i in range(len(dataset)):
        sample = dataset[i]["data_samples"]
        sample.pred_instances = sample.gt_instances.clone()
        sample.pred_instances.bboxes = sample.gt_instances.bboxes.tensor
        sample.pred_instances.scores = torch.ones(len(sample.gt_instances))
        samples.append(sample.to_dict())
    metric.process({}, samples)
    assert metric.evaluate(len(dataset)) == {"dota/mAP": 1.0, "dota/AP50": 1.0}


def test_in_process_dota_metric_scores_like_mmrotates(scenes: Path, mmrotate_scope: None) -> None:
    """The metric the configs use counts TP/FP on threads instead of spawned processes, with the same numbers."""
    from mmengine.registry import METRICS

    import experiments.vision.mm_metrics  # noqa: F401  (registers InProcessDOTAMetric)

    dataset = _dota_dataset(scenes, "val", train=False)
    generator = torch.Generator().manual_seed(0)
    samples = []
    for i in range(len(dataset)):
        sample = dataset[i]["data_samples"]
        boxes = sample.gt_instances.bboxes.tensor
        noisy = boxes + torch.randn(boxes.shape, generator=generator) * torch.tensor([2.0, 2.0, 3.0, 3.0, 0.2])
        sample.pred_instances = sample.gt_instances.clone()
        sample.pred_instances.bboxes = noisy
        sample.pred_instances.scores = torch.rand(len(boxes), generator=generator)
        samples.append(sample.to_dict())
    scores = {}
    for kind in ("DOTAMetric", "InProcessDOTAMetric"):
        metric = METRICS.build(dict(type=kind, metric="mAP", iou_thrs=[0.5, 0.75]))
        metric.dataset_meta = dataset.metainfo
        metric.process({}, samples)
        scores[kind] = metric.evaluate(len(dataset))
    assert scores["InProcessDOTAMetric"] == scores["DOTAMetric"]
    assert 0.0 < scores["DOTAMetric"]["dota/AP75"] < 1.0, "the noise should make some boxes miss at IoU 0.75"


def test_the_tasks_rotated_retinanet_takes_a_finite_step_and_predicts_rotated_boxes(
    scenes: Path, mmrotate_scope: None
) -> None:
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper

    from experiments.engines.mmengine_runner import build_model

    torch.manual_seed(0)
    model = build_model(_mm_config(scenes))
    before = [p.detach().clone() for p in model.parameters()]
    dataset = _dota_dataset(scenes, "train", train=True)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    model.train()
    losses = model.train_step(pseudo_collate([dataset[i] for i in range(4)]), optim)
    assert {"loss_cls", "loss_bbox"} <= set(losses) and torch.isfinite(losses["loss"])
    assert losses["loss_bbox"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    model.eval()
    val = _dota_dataset(scenes, "val", train=False)
    with torch.no_grad():
        predictions = model.val_step(pseudo_collate([val[i] for i in range(2)]))
    assert [p.img_id for p in predictions] == [val[i]["data_samples"].img_id for i in range(2)]
    for prediction in predictions:
        boxes = prediction.pred_instances.bboxes
        assert boxes.shape[-1] == 5 and torch.isfinite(boxes).all()
        assert len(boxes) == len(prediction.pred_instances.scores)
