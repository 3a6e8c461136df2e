# UperNet on the small InternViT-style ViT (pretrained here on Fashion-MNIST classes 0-4), from mmseg's own
# ViT + MultiLevelNeck + UperNet model file: four intermediate blocks -> a 4-level pyramid, SyncBN -> BN.
_base_ = ["mmseg::_base_/models/upernet_vit-b16_ln_mln.py", "./_scenes_seg.py"]
custom_imports = dict(imports=["experiments.vision.mm_models"], allow_failed_imports=False)
norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, size=(64, 64)),
    backbone=dict(
        _delete_=True,
        type="TimmBackbone",
        model_name="internvit_mini",
        out_indices=(1, 2, 4, 5),
        weights=dict(source="pretrained_here", name="internvit_mini"),
    ),
    neck=dict(in_channels=[192] * 4, out_channels=64, scales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[64] * 4, channels=64, num_classes=6, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=64, channels=32, num_classes=6, norm_cfg=norm_cfg),
)
