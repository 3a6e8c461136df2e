# MMRotate's rotated RetinaNet on the small InternViT-style ViT (pretrained here on Fashion-MNIST classes 0-4 at
# 64 px): Table 1's mini oriented detector with the ViT as backbone. The 96 px scenes give 12 x 12 tokens; the
# position embedding learnt on 8 x 8 is resampled to them (the ViTs here are built with timm's dynamic_img_size).
# mmseg's MultiLevelNeck makes the tokens a pyramid at strides 8 / 16 / 32, then mmdet's FPN, as the paper
# profile's InternViT-6B detector does.
_base_ = ["./rotated-retinanet_convnext-atto_scenes_dota.py"]
model = dict(
    backbone=dict(
        _delete_=True,
        type="mmdet.TimmBackbone",
        model_name="internvit_mini",
        out_indices=(1, 3, 5),
        weights=dict(source="pretrained_here", name="internvit_mini"),
    ),
    neck=[
        dict(type="mmseg.MultiLevelNeck", in_channels=[192] * 3, out_channels=64, scales=[1, 0.5, 0.25]),
        dict(type="mmdet.FPN", in_channels=[64] * 3, out_channels=64, num_outs=3),
    ],
)
