# RetinaNet on the small ConvNeXt (timm convnext_atto, pretrained here on Fashion-MNIST classes 0-4), from
# mmdet's own RetinaNet FPN model file: backbone swapped for timm's, FPN levels at strides 8-32 (the 64 px
# scenes' 25-40 px items fit the stride-8 anchors), narrower neck and head (mini profile only). A one-stage
# detector because Mask R-CNN's RoI classifier did not learn these classes within a CPU budget (box mAP about
# 1.4 for every method after 100-300 iterations).
_base_ = ["mmdet::_base_/models/retinanet_r50_fpn.py", "./_scenes_det.py"]
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
    neck=dict(in_channels=[40, 80, 160, 320], out_channels=64, start_level=1, num_outs=3),
    bbox_head=dict(
        num_classes=5,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        anchor_generator=dict(strides=[8, 16, 32]),
    ),
    test_cfg=dict(nms_pre=300, max_per_img=100),
)
