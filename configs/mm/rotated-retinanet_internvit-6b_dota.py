# Paper profile, Table 2 (DOTA): Table 1's DOTA detector (MMRotate's rotated RetinaNet, le90, 1x) on InternViT-6B:
# features of blocks 12, 24, 36 and 48 made a 4-level pyramid by mmseg's MultiLevelNeck, then the FPN from the
# second level on (strides 8-128, as MMRotate's config). Weights: the released InternViT-6B-224px checkpoint.
_base_ = ["./rotated-retinanet_convnext-l_dota.py"]
model = dict(
    backbone=dict(
        _delete_=True,
        type="mmdet.TimmBackbone",
        model_name="internvit_6b",
        out_indices=(11, 23, 35, 47),
        weights=dict(source="internvit_6b_release", name=None),
        model_kwargs=dict(img_size=224),
    ),
    neck=[
        dict(type="mmseg.MultiLevelNeck", in_channels=[3200] * 4, out_channels=1024, scales=[4, 2, 1, 0.5]),
        dict(
            type="mmdet.FPN",
            in_channels=[1024] * 4,
            out_channels=256,
            start_level=1,
            add_extra_convs="on_input",
            num_outs=5,
        ),
    ],
)
