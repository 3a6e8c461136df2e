"""The mmengine engine end to end on tiny runs: mmseg UperNet, mmdet Mask R-CNN and the timm classifier train
through their own loops and evaluators and write a run record; a run killed mid-way resumes from its last
checkpoint to the same final record; the paper-profile dry runs print every row's #params on the meta device."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.config import REPO_ROOT, compose_config, record_path

TINY = [
    "task.max_iters=4",
    "task.checkpoint_interval=2",
    "task.log_interval=1",
    "task.batch_size=4",
    "task.eval_batch_size=8",
    "logger=none",
    "backbone.weights=null",  # random init: the pretraining step has its own test
]


def _overrides(tmp_path: Path, *extra: str) -> list[str]:
    scenes = ["task.scenes.n_train=16", "task.scenes.n_val=8"] if "task=fmnist_cls" not in extra else []
    return [*extra, *TINY, *scenes, f"paths.runs_dir={tmp_path}/runs", f"paths.work_dir={tmp_path}/work"]


def _run(overrides: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "FLORA_CACHE": os.environ.get("FLORA_CACHE", str(Path.home() / ".cache/flora-repro"))}
    return subprocess.Popen(
        [sys.executable, "-W", "ignore", "-m", "experiments.run", *overrides],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-4000:]
    return out


def _record(overrides: list[str]) -> dict:
    path = record_path(compose_config(overrides))
    return json.loads(path.read_text().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("experiment", "task", "method", "metric"),
    [
        ("table1_convnext", "scenes_seg", "flora_r2", "val_mIoU"),
        ("table1_convnext", "scenes_det", "lora_r2", "val_segm_mAP"),
        ("table1_effnet", "fmnist_cls", "dora_r2", "val_accuracy"),
        ("table2_internvit", "scenes_seg", "flora_r2", "val_mIoU"),
    ],
)
def test_tiny_run_writes_record(tmp_path: Path, experiment: str, task: str, method: str, metric: str) -> None:
    overrides = _overrides(tmp_path, f"experiment={experiment}", f"task={task}", f"method={method}")
    _finish(_run(overrides))
    record = _record(overrides)
    assert record["status"] == "ok", record.get("error")
    assert 0.0 <= record["metrics"][metric] <= 1.0
    params = record["params"]
    assert 0 < params["adapter"] < params["trainable"] < params["total"]
    assert record["timing"]["steps"] == 4 and record["memory"]["peak_memory_mb"] > 0
    assert record["versions"]["mmcv"] == "2.1.0"


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_record(tmp_path: Path) -> None:
    base = ["experiment=table1_convnext", "task=scenes_seg", "method=flora_r2", "task.max_iters=6"]
    straight = _overrides(tmp_path / "straight", *base)
    _finish(_run(straight))
    resumed = _overrides(tmp_path / "resumed", *base)
    proc = _run(resumed, start_new_session=True)
    marker = tmp_path / "resumed" / "work" / record_path(compose_config(resumed)).stem / "last_checkpoint"
    deadline = time.time() + 600
    while not (marker.is_file() and "iter_4" in marker.read_text()):
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        assert time.time() < deadline, "no checkpoint at iteration 4 within 10 minutes"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not record_path(compose_config(resumed)).exists()
    out = _finish(_run(resumed))
    assert "Resuming" in out or "resumed" in out.lower()
    first, second = _record(straight), _record(resumed)
    assert second["resumed_from_iter"] in (4, 6) and first["resumed_from_iter"] == 0
    assert second["params"] == first["params"]
    for name, value in first["metrics"].items():
        assert second["metrics"][name] == pytest.approx(value, abs=1e-6), name


@pytest.mark.parametrize(
    ("backbone", "task"),
    [
        ("convnext_atto", "scenes_seg"),
        ("convnext_atto", "scenes_det"),
        ("internvit_mini", "scenes_seg"),
        ("efficientnet_lite0", "fmnist_cls"),
        ("convnext_large", "ade20k_seg"),
        ("convnext_large", "coco_det"),
        ("internvit_6b", "ade20k_seg"),
    ],
)
def test_every_new_module_trains_under_every_method(backbone: str, task: str) -> None:
    """Whatever the method, all that is not the pretrained backbone (neck, heads) is new and must train."""
    import torch
    from mmengine.config import Config

    from experiments.engines.mmengine_runner import build_model, method_config, mm_config_file
    from experiments.methods import attach_method

    for method in ("head", "flora_r2", "lora_r2"):
        cfg = compose_config([f"backbone={backbone}", f"task={task}", f"method={method}"])
        mm = Config.fromfile(str(mm_config_file(cfg)))
        (mm.model.backbone if "backbone" in mm.model else mm.model).weights = None
        with torch.device("meta"):
            model = attach_method(build_model(mm), method_config(cfg))
        frozen = [n for n, p in model.named_parameters() if not n.startswith("backbone.") and not p.requires_grad]
        assert not frozen, f"{method}: new modules left frozen: {frozen[:5]}"
        assert any(p.requires_grad for n, p in model.named_parameters() if n.startswith("backbone.")) == (
            method != "head"
        )


@pytest.mark.parametrize(
    ("backbone", "task"),
    [("convnext_atto", "scenes_seg"), ("convnext_atto", "scenes_det"), ("efficientnet_lite0", "fmnist_cls")],
)
@pytest.mark.parametrize("method", ["full", "flora_r2"])
def test_new_modules_train_at_the_head_lr(backbone: str, task: str, method: str) -> None:
    """mmengine's own optimiser constructor gives every new-module parameter task.lr.head and every backbone
    parameter the method's lr (full fine-tuning's is smaller), through the paramwise multipliers the engine sets."""
    import torch
    from mmengine.optim import build_optim_wrapper

    from experiments.engines.mmengine_runner import build_mm_config, build_model, method_config
    from experiments.methods import attach_method

    cfg = compose_config([f"backbone={backbone}", f"task={task}", f"method={method}", "backbone.weights=null"])
    mm = build_mm_config(cfg, None, Path("/nonexistent"))
    with torch.device("meta"):
        model = attach_method(build_model(mm), method_config(cfg))
    optimizer = build_optim_wrapper(model, mm.optim_wrapper).optimizer
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    for name, param in model.named_parameters():
        if param.requires_grad:
            expected = cfg.method.learning_rate if name.startswith("backbone.") else cfg.task.lr.head
            assert lr_of[id(param)] == pytest.approx(expected), name


@pytest.mark.parametrize(
    ("experiment", "backbone_params"),
    [("table1_convnext_paper", 196e6), ("table2_internvit_paper", 5.9e9)],
)
def test_paper_dry_run_prints_every_row(experiment: str, backbone_params: float) -> None:
    proc = _run([f"experiment={experiment}", "dry_run=true"])
    out = _finish(proc)
    cfg = compose_config([f"experiment={experiment}"])
    for row in cfg.table.rows:
        label = compose_config([f"experiment={experiment}", f"method={row}"]).method.label
        assert label in out, f"row {row} ({label}) missing from the dry run output"
    total = int(re.search(r"backbone \S+ \(([\d,]+) params\)", out).group(1).replace(",", ""))
    assert total == pytest.approx(backbone_params, rel=0.03)


def test_scale_sweep_validates_on_held_out_training_images() -> None:
    """sweep_scale_effnet's task.mm_overrides reach the mmengine config: its validation set is a slice of the
    training split that the training slice does not contain (so s is never chosen on the test split)."""
    from experiments.engines.mmengine_runner import build_mm_config
    from experiments.vision.mm_cls import FashionMNISTClassification

    cfg = compose_config(["experiment=sweep_scale_effnet"])
    mm = build_mm_config(cfg, None, Path("/nonexistent"))
    train_args = {k: v for k, v in mm.train_dataloader.dataset.items() if k != "type"}
    val_args = {k: v for k, v in mm.val_dataloader.dataset.items() if k != "type"}
    assert val_args["split"] == train_args["split"] == "train"
    train, val = FashionMNISTClassification(**train_args), FashionMNISTClassification(**val_args)
    assert len(val) == 1000
    train_images = {bytes(image.numpy()) for image in train.images}
    assert not any(bytes(image.numpy()) in train_images for image in val.images)


def test_vit_scale_sweep_validates_on_held_out_training_scenes() -> None:
    """sweep_scale_internvit trains on training scenes 0-299 and scores on 300-399, through mmseg's own dataset."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from experiments.engines.mmengine_runner import build_mm_config, prepare_data

    cfg = compose_config(["experiment=sweep_scale_internvit"])
    mm = build_mm_config(cfg, prepare_data(cfg.task), Path("/nonexistent"))
    init_default_scope("mmseg")
    train = DATASETS.build(mm.train_dataloader.dataset)
    val = DATASETS.build(mm.val_dataloader.dataset)
    train_images = {train.get_data_info(i)["img_path"] for i in range(len(train))}
    val_images = {val.get_data_info(i)["img_path"] for i in range(len(val))}
    assert (len(train_images), len(val_images)) == (300, 100)
    assert all("/training/" in path for path in val_images) and not train_images & val_images
