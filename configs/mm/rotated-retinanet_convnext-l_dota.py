# Paper profile, Table 1 (DOTA): MMRotate's rotated RetinaNet (rotated boxes, le90 angles, 1x schedule) DOTA-v1.0
# config with the backbone swapped for timm's convnext_large and the FPN widened to its channels. The paper does
# not name its DOTA detector; rotated RetinaNet is MMRotate's reference one-stage oriented detector (its published
# R-50 DOTA-v1.0 AP50 is about 68, the range of the paper's Base row), and the same detector runs the mini profile.
# Data: MMRotate's split tool output under data/split_ss_dota (1024 px patches, gap 200): trained on train/,
# evaluated on val/ (DOTA's test labels are not public), at IoU 0.50:0.05:0.95 (the paper's mAP, AP50, AP75).
_base_ = ["mmrotate::rotated_retinanet/rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py"]
custom_imports = dict(
    imports=["experiments.vision.mm_models", "experiments.vision.mm_metrics"], allow_failed_imports=False
)
model = dict(
    backbone=dict(
        _delete_=True,
        type="mmdet.TimmBackbone",
        model_name="convnext_large",
        out_indices=(0, 1, 2, 3),
        weights=None,
        model_kwargs=dict(drop_path_rate=0.4),
    ),
    neck=dict(in_channels=[192, 384, 768, 1536]),
)
train_dataloader = dict(dataset=dict(ann_file="train/annfiles/", data_prefix=dict(img_path="train/images/")))
val_dataloader = dict(dataset=dict(ann_file="val/annfiles/", data_prefix=dict(img_path="val/images/")))
test_dataloader = val_dataloader
val_evaluator = dict(
    type="InProcessDOTAMetric", metric="mAP", iou_thrs=[round(0.5 + 0.05 * i, 2) for i in range(10)]
)
test_evaluator = val_evaluator
