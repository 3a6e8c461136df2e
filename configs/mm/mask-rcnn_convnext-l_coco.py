# Paper profile, Table 1 (detection): mmdet's own Mask R-CNN ConvNeXt (3x, multi-scale crop) COCO config with
# the backbone swapped for timm's convnext_large and the FPN widened to its channels.
_base_ = ["mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py"]
custom_imports = dict(imports=["experiments.vision.mm_models"], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type="TimmBackbone",
        model_name="convnext_large",
        out_indices=(0, 1, 2, 3),
        weights=None,
        model_kwargs=dict(drop_path_rate=0.4),
    ),
    neck=dict(in_channels=[192, 384, 768, 1536]),
)
