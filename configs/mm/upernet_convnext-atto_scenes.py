# UperNet on the small ConvNeXt (timm convnext_atto, pretrained here on Fashion-MNIST classes 0-4), from
# mmseg's own UperNet-ConvNeXt model file with the backbone swapped for timm's and SyncBN -> BN.
_base_ = ["mmseg::_base_/models/upernet_convnext.py", "./_scenes_seg.py"]
custom_imports = dict(imports=["experiments.vision.mm_models"], allow_failed_imports=False)
norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, size=(64, 64)),
    backbone=dict(
        _delete_=True,
        type="TimmBackbone",
        model_name="convnext_atto",
        out_indices=(0, 1, 2, 3),
        weights=dict(source="pretrained_here", name="convnext_atto"),
    ),
    decode_head=dict(in_channels=[40, 80, 160, 320], channels=64, num_classes=6, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=160, channels=32, num_classes=6, norm_cfg=norm_cfg),
)
