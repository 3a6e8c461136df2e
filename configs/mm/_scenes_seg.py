# Data, schedule and runtime of the Fashion-MNIST scenes segmentation task (mini profile), on mmseg's own
# base files. The engine (experiments/engines/mmengine_runner.py) fills data_root, iterations, lr, batch
# size and seed from the Hydra config. No random augmentation: a resumed run sees the same batches.
_base_ = ["mmseg::_base_/default_runtime.py", "mmseg::_base_/schedules/schedule_160k.py"]

classes = ("background", "sandal", "shirt", "sneaker", "bag", "ankle-boot")
palette = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180]]
data_root = None
pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", reduce_zero_label=False),
    dict(type="PackSegInputs"),
]
dataset = dict(
    type="BaseSegDataset",
    data_root=data_root,
    metainfo=dict(classes=classes, palette=palette),
    img_suffix=".png",
    seg_map_suffix=".png",
    reduce_zero_label=False,
    pipeline=pipeline,
)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(dataset, data_prefix=dict(img_path="images/training", seg_map_path="annotations/training")),
)
val_dataloader = dict(
    batch_size=20,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(dataset, data_prefix=dict(img_path="images/validation", seg_map_path="annotations/validation")),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="IoUMetric", iou_metrics=["mIoU"])
test_evaluator = val_evaluator

optim_wrapper = dict(_delete_=True, type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.01))
param_scheduler = [dict(type="PolyLR", eta_min=0.0, power=1.0, begin=0, end=150, by_epoch=False)]
train_cfg = dict(max_iters=150, val_interval=10**9, val_begin=10**9)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=50, max_keep_ckpts=1, save_last=True),
    visualization=dict(type="SegVisualizationHook", draw=False),
)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"))
