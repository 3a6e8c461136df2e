# Paper profile, Table 2: UperNet on InternViT-6B for ADE20K, from mmseg's own ViT + MultiLevelNeck + UperNet
# model file and its ADE20K 160k recipe; features from blocks 12, 24, 36 and 48. Weights: the released
# OpenGVLab/InternViT-6B-224px checkpoint, converted on load (experiments/vision/internvit_checkpoint.py; the
# runner sets weights from the backbone config, and dry runs set None and build on the meta device).
_base_ = [
    "mmseg::_base_/models/upernet_vit-b16_ln_mln.py",
    "mmseg::_base_/datasets/ade20k.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_160k.py",
]
custom_imports = dict(imports=["experiments.vision.mm_models"], allow_failed_imports=False)
crop_size = (512, 512)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type="TimmBackbone",
        model_name="internvit_6b",
        out_indices=(11, 23, 35, 47),
        weights=dict(source="internvit_6b_release", name=None),
        model_kwargs=dict(img_size=224),
    ),
    neck=dict(in_channels=[3200] * 4, out_channels=1024, scales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[1024] * 4, channels=1024, num_classes=150),
    auxiliary_head=dict(in_channels=1024, num_classes=150),
)
