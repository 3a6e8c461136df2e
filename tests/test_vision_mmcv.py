"""The mmcv build (scripts/build_mmcv.sh, run by `make setup-vision`): compiled ops load and agree with torchvision's
CPU reference on the ops Mask R-CNN uses, and mmseg/mmdet models import without mmpretrain."""

from __future__ import annotations

import torch
import torchvision


def test_mmcv_compiled_ops_match_torchvision() -> None:
    import mmcv
    from mmcv.ops import nms, roi_align

    assert mmcv.__version__ == "2.1.0"
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=gen) * 50
    boxes = torch.cat([xy, xy + 5 + torch.rand(200, 2, generator=gen) * 20], dim=1)
    scores = torch.rand(200, generator=gen)
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert torch.equal(keep.sort().values, torchvision.ops.nms(boxes, scores, 0.5).sort().values)
    feats = torch.randn(2, 4, 16, 16, generator=gen)
    rois = torch.tensor([[0, 1.0, 2.0, 9.0, 12.0], [1, 0.5, 0.5, 15.0, 7.5]])
    ours = roi_align(feats, rois, (7, 7), 1.0, 2, "avg", True)  # an autograd Function: positional only
    ref = torchvision.ops.roi_align(feats, rois, (7, 7), spatial_scale=1.0, sampling_ratio=2, aligned=True)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_openmmlab_models_import_without_mmpretrain() -> None:
    import importlib.util

    import mmdet.models  # noqa: F401
    import mmseg.models  # noqa: F401

    assert importlib.util.find_spec("mmpretrain") is None
