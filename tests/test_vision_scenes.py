"""The scene generator: deterministic, consistent masks across both formats, readable by pycocotools, and built
once, completely, when parallel workers ask for it at the same moment."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.config import REPO_ROOT
from experiments.vision.fashion_mnist import load_split
from experiments.vision.scenes import SceneSpec, build_scenes, ensure_scenes, scenes_fingerprint

SPEC = SceneSpec(canvas=48, n_train=12, n_val=6, seed=3)


def _digest(folder: Path) -> str:
    """Hash of every file's relative path and bytes."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_scenes(SPEC, tmp_path_factory.mktemp("scenes"))


def test_fashion_mnist_is_real() -> None:
    images, labels = load_split("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10


def test_deterministic(scenes: Path, tmp_path: Path) -> None:
    again = build_scenes(SPEC, tmp_path / "again")
    assert _digest(again) == _digest(scenes)
    other = build_scenes(SceneSpec(canvas=48, n_train=12, n_val=6, seed=4), tmp_path / "other")
    assert _digest(other) != _digest(scenes)


def test_coco_masks_match_label_maps(scenes: Path) -> None:
    from pycocotools.coco import COCO

    meta = json.loads((scenes / "meta.json").read_text())
    assert meta["classes"] == ["sandal", "shirt", "sneaker", "bag", "ankle-boot"]
    for split, count in (("training", 12), ("validation", 6)):
        coco = COCO(str(scenes / "coco" / f"instances_{split}.json"))
        assert len(coco.getImgIds()) == count and len(coco.getAnnIds()) >= count
        for image_id in coco.getImgIds():
            file_name = coco.loadImgs(image_id)[0]["file_name"]
            label_map = np.asarray(Image.open(scenes / "annotations" / split / file_name))
            image = np.asarray(Image.open(scenes / "images" / split / file_name))
            assert image.shape == (48, 48, 3) and label_map.shape == (48, 48)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
                mask = coco.annToMask(ann).astype(bool)
                assert mask.sum() == ann["area"] >= SPEC.min_visible_pixels
                assert (label_map[mask] == ann["category_id"]).all()
                x, y, w, h = ann["bbox"]
                assert mask[y : y + h, x : x + w].sum() == mask.sum()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import util

    spec = util.spec_from_file_location("make_scenes", Path(__file__).parents[1] / "scripts" / "make_scenes.py")
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit):
        module.main(["--canvas", "8", "--root", str(tmp_path)])
    assert not any(tmp_path.iterdir())
    folder = module.main(["--canvas", "32", "--n-train", "2", "--n-val", "1", "--root", str(tmp_path)])
    assert (folder / "meta.json").is_file() and str(folder) in capsys.readouterr().out


WORKER = """
import sys, time
from pathlib import Path
from experiments.vision.scenes import SceneSpec, ensure_scenes
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
print(ensure_scenes(SceneSpec(canvas=48, n_train=40, n_val=10, seed=5)))
"""


def test_parallel_workers_build_one_complete_copy(tmp_path: Path) -> None:
    """Two workers of launcher=parallel asking for the same scenes in a fresh cache both get one complete folder."""
    env = {**os.environ, "FLORA_CACHE": str(tmp_path / "cache")}
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(go)], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    time.sleep(0.5)  # both interpreters up and waiting
    go.touch()
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    folders = {out.strip().splitlines()[-1] for out in outputs}
    assert len(folders) == 1
    folder = Path(folders.pop())
    datasets = folder.parent
    assert [p.name for p in datasets.iterdir() if not p.name.endswith(".lock")] == [folder.name]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["counts"]["training"]["images"] == 40 and meta["counts"]["validation"]["images"] == 10
    for split, count in (("training", 40), ("validation", 10)):
        assert len(list((folder / "images" / split).iterdir())) == count
        assert len(list((folder / "annotations" / split).iterdir())) == count
    assert scenes_fingerprint(folder).startswith("meta.json sha256:")


def test_incomplete_folder_is_named_not_used(tmp_path: Path) -> None:
    (tmp_path / SPEC.folder_name()).mkdir()
    with pytest.raises(RuntimeError, match="incomplete"):
        ensure_scenes(SPEC, tmp_path)
