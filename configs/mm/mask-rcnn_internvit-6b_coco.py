# Paper profile, Table 2 (COCO): mmdet's Mask R-CNN ConvNeXt 3x COCO recipe (as Table 1's) on InternViT-6B:
# features of blocks 12, 24, 36 and 48 made a 4-level pyramid by mmseg's MultiLevelNeck (as the ADE20K UperNet
# does), then mmdet's FPN. Weights: the released OpenGVLab/InternViT-6B-224px checkpoint (see the ADE20K config).
_base_ = ["mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py"]
custom_imports = dict(imports=["experiments.vision.mm_models"], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type="TimmBackbone",
        model_name="internvit_6b",
        out_indices=(11, 23, 35, 47),
        weights=dict(source="internvit_6b_release", name=None),
        model_kwargs=dict(img_size=224),
    ),
    neck=[
        dict(type="mmseg.MultiLevelNeck", in_channels=[3200] * 4, out_channels=1024, scales=[4, 2, 1, 0.5]),
        dict(type="FPN", in_channels=[1024] * 4, out_channels=256, num_outs=5),
    ],
)
