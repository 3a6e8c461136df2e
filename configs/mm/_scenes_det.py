# Data, schedule and runtime of the Fashion-MNIST scenes detection task (mini profile) on mmdet's own COCO
# detection base files: CocoDataset reads the scenes' COCO json, CocoMetric reports box AP at COCO's IoU
# thresholds and object sizes (the paper's COCO columns). The engine fills data_root, ann files, iterations, lr,
# batch size and seed from the Hydra config. No random augmentation (a resumed run sees the same batches);
# 64 px scenes stay 64 px.
_base_ = [
    "mmdet::_base_/datasets/coco_detection.py",
    "mmdet::_base_/schedules/schedule_1x.py",
    "mmdet::_base_/default_runtime.py",
]
classes = ("sandal", "shirt", "sneaker", "bag", "ankle-boot")
data_root = None
pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Resize", scale=(64, 64), keep_ratio=True),  # a no-op on 64 px scenes; records scale_factor
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(64, 64), keep_ratio=True),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    batch_sampler=None,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file="coco/instances_training.json",
        data_prefix=dict(img="images/training/"),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=pipeline,
    ),
)
val_dataloader = dict(
    batch_size=20,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file="coco/instances_validation.json",
        data_prefix=dict(img="images/validation/"),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file="coco/instances_validation.json", metric="bbox")
test_evaluator = val_evaluator

optim_wrapper = dict(_delete_=True, type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.01))
param_scheduler = [dict(type="PolyLR", eta_min=0.0, power=1.0, begin=0, end=150, by_epoch=False)]
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=150, val_interval=10**9, val_begin=10**9)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=50, max_keep_ckpts=1, save_last=True),
)
log_processor = dict(by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"))
