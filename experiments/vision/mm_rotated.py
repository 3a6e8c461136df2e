"""MMRotate's oriented detector and DOTA data set as mmengine config dicts, for the rotated scenes and for DOTA.

The detector is MMRotate's own rotated RetinaNet (rotated boxes, le90 angles), read from its config file with the
backbone swapped and the neck and head sized. RetinaNet because its box loss (L1 on rotated-box deltas) and its
IoU (mmcv's box_iou_rotated) run on the CPU, whereas rotated FCOS' RotatedIoULoss needs mmcv's diff_iou_rotated_2d,
which has only a CUDA kernel. Build both dicts in MMRotate's registry scope (default_scope='mmrotate', as its configs
set): their unprefixed types (DOTADataset, ConvertBoxType, FakeRotatedAnchorGenerator, ...) are MMRotate's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmengine.config import ConfigDict

BASE_CONFIG = "mmrotate::rotated_retinanet/rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py"


def rotated_retinanet(
    backbone: Mapping[str, Any],
    out_channels: Sequence[int],
    num_classes: int,
    *,
    width: int = 256,
    strides: Sequence[int] = (8, 16, 32, 64, 128),
    stacked_convs: int = 4,
) -> ConfigDict:
    """The model config of MMRotate's rotated RetinaNet on backbone, whose stages give out_channels channels.

    As in MMRotate's config, the FPN starts at the backbone's second stage (stride 8 for a ResNet or ConvNeXt, whose
    stages have strides 4, 8, 16, 32) and has one level per stride, each of width channels; levels past the
    backbone's last come from extra convolutions. Defaults are MMRotate's DOTA ones; a small detector on the mini
    profile's 96 px scenes takes a narrower width, fewer head convolutions and strides (8, 16, 32). A ConfigDict,
    not a plain dict: mmdet's heads read their train_cfg/test_cfg by attribute.
    """
    from mmengine.config import ConfigDict
    from mmengine.hub import get_config

    model = get_config(BASE_CONFIG).model
    model.backbone = ConfigDict(backbone)
    model.neck.update(in_channels=list(out_channels), out_channels=width, num_outs=len(strides))
    model.bbox_head.update(num_classes=num_classes, in_channels=width, feat_channels=width, stacked_convs=stacked_convs)
    model.bbox_head.anchor_generator.strides = list(strides)
    return model


def dota_dataset(
    data_root: str, split: str, classes: Sequence[str], scale: int, *, test_mode: bool = False
) -> dict[str, Any]:
    """The dict of MMRotate's DOTADataset on one split of a folder in its split tool's layout (split/images,
    split/annfiles), with the pipelines of MMRotate's DOTA configs: quadrilaterals read and turned into rotated boxes,
    images resized to scale; for evaluation the boxes are read after the resize, so that they stay in the original
    image's pixels, where the detector's predictions are mapped back. Without the random flips, so that a resumed
    run sees the same batches."""
    load = [
        dict(type="mmdet.LoadAnnotations", with_bbox=True, box_type="qbox"),
        dict(type="ConvertBoxType", box_type_mapping=dict(gt_bboxes="rbox")),
    ]
    resize = [dict(type="mmdet.Resize", scale=(scale, scale), keep_ratio=True)]
    if test_mode:
        meta_keys = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")
        pack = dict(type="mmdet.PackDetInputs", meta_keys=meta_keys)
        pipeline = [dict(type="mmdet.LoadImageFromFile"), *resize, *load, pack]
    else:
        pipeline = [dict(type="mmdet.LoadImageFromFile"), *load, *resize, dict(type="mmdet.PackDetInputs")]
    return dict(
        type="DOTADataset",
        data_root=data_root,
        ann_file=f"{split}/annfiles/",
        data_prefix=dict(img_path=f"{split}/images/"),
        metainfo=dict(classes=tuple(classes)),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=pipeline,
        test_mode=test_mode,
    )
