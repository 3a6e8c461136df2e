# MMRotate's rotated RetinaNet (rotated boxes, le90 angles) on the small ConvNeXt (timm convnext_atto, pretrained
# here on Fashion-MNIST classes 0-4), from MMRotate's own DOTA config (which brings its DOTA data set, 1x schedule
# and runtime): backbone swapped for timm's, FPN levels at strides 8-32 (the 96 px scenes' 39-56 px items),
# narrower neck and head (mini profile only). RetinaNet because its box loss (L1 on rotated-box deltas) and its
# IoU (mmcv's box_iou_rotated) run on a CPU; rotated FCOS' IoU loss needs mmcv's diff_iou_rotated_2d, which has
# only a CUDA kernel.
#
# Data: the rotated Fashion-MNIST scenes in the split tool's layout (split/images, split/annfiles), read by
# MMRotate's DOTADataset; its DOTAMetric scores oriented boxes at IoU 0.50:0.05:0.95, so that mAP, AP50 and AP75
# are the paper's DOTA columns. The engine fills data_root, iterations, lr, batch size and seed from the Hydra
# config. No random flips (a resumed run sees the same batches); 96 px scenes stay 96 px.
_base_ = ["mmrotate::rotated_retinanet/rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py"]
custom_imports = dict(
    imports=["experiments.vision.mm_models", "experiments.vision.mm_metrics"], allow_failed_imports=False
)
model = dict(
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3),
    backbone=dict(
        _delete_=True,
        type="mmdet.TimmBackbone",
        model_name="convnext_atto",
        out_indices=(0, 1, 2, 3),
        weights=dict(source="pretrained_here", name="convnext_atto"),
    ),
    neck=dict(in_channels=[40, 80, 160, 320], out_channels=64, num_outs=3),
    bbox_head=dict(
        num_classes=3,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        anchor_generator=dict(strides=[8, 16, 32]),
    ),
    test_cfg=dict(nms_pre=300, max_per_img=100),
)
classes = ("sneaker", "bag", "ankle-boot")
data_root = None
load_boxes = [
    dict(type="mmdet.LoadAnnotations", with_bbox=True, box_type="qbox"),
    dict(type="ConvertBoxType", box_type_mapping=dict(gt_bboxes="rbox")),
]
train_pipeline = [
    dict(type="mmdet.LoadImageFromFile"),
    *load_boxes,
    dict(type="mmdet.Resize", scale=(96, 96), keep_ratio=True),  # a no-op on 96 px scenes
    dict(type="mmdet.PackDetInputs"),
]
# The boxes are read after the resize, so they stay in the image's pixels, where predictions are mapped back.
val_pipeline = [
    dict(type="mmdet.LoadImageFromFile"),
    dict(type="mmdet.Resize", scale=(96, 96), keep_ratio=True),
    *load_boxes,
    dict(type="mmdet.PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file="train/annfiles/",
        data_prefix=dict(img_path="train/images/"),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=20,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file="val/annfiles/",
        data_prefix=dict(img_path="val/images/"),
        pipeline=val_pipeline,
    ),
)
test_dataloader = val_dataloader
# MMRotate's DOTAMetric (VOC 11-point AP per class) counted in this process (experiments/vision/mm_metrics.py).
val_evaluator = dict(
    type="InProcessDOTAMetric", metric="mAP", iou_thrs=[round(0.5 + 0.05 * i, 2) for i in range(10)]
)
test_evaluator = val_evaluator

optim_wrapper = dict(
    _delete_=True, type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.01)
)
param_scheduler = [dict(type="PolyLR", eta_min=0.0, power=1.0, begin=0, end=150, by_epoch=False)]
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=150, val_interval=10**9, val_begin=10**9)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=50, max_keep_ckpts=1, save_last=True),
    visualization=dict(_delete_=True, type="mmdet.DetVisualizationHook", draw=False),
)
log_processor = dict(by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"))
