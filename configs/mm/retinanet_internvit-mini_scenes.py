# RetinaNet on the small InternViT-style ViT (pretrained here on Fashion-MNIST classes 0-4): Table 1's mini
# detector (mmdet's RetinaNet FPN model file, narrow neck and head) with the ViT's single-scale tokens (patch 8)
# made a pyramid at strides 8 / 16 / 32 by mmseg's MultiLevelNeck, then mmdet's FPN, as the paper profile's
# InternViT-6B detector does.
_base_ = ["./retinanet_convnext-atto_scenes.py"]
model = dict(
    backbone=dict(
        _delete_=True,
        type="TimmBackbone",
        model_name="internvit_mini",
        out_indices=(1, 3, 5),
        weights=dict(source="pretrained_here", name="internvit_mini"),
    ),
    neck=[
        dict(type="mmseg.MultiLevelNeck", in_channels=[192] * 3, out_channels=64, scales=[1, 0.5, 0.25]),
        dict(type="FPN", in_channels=[64] * 3, out_channels=64, num_outs=3),
    ],
)
