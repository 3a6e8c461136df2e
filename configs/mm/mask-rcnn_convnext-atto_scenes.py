# Mask R-CNN on the small ConvNeXt (timm convnext_atto, pretrained here on Fashion-MNIST classes 0-4), from
# mmdet's own Mask R-CNN FPN model file: backbone swapped for timm's, narrower neck and heads, anchors and
# sampling sized for 64 px scenes with 25-40 px items (mini profile only).
_base_ = ["mmdet::_base_/models/mask-rcnn_r50_fpn.py", "./_scenes_det.py"]
custom_imports = dict(imports=["experiments.vision.mm_models"], allow_failed_imports=False)
model = dict(
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3),
    backbone=dict(
        _delete_=True,
        type="TimmBackbone",
        model_name="convnext_atto",
        out_indices=(0, 1, 2, 3),
        weights=dict(source="pretrained_here", name="convnext_atto"),
    ),
    neck=dict(in_channels=[40, 80, 160, 320], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=5),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=5),
    ),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=128)),
    ),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)),
)
