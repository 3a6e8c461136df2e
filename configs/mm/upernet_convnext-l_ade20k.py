# Paper profile, Table 1 (segmentation): mmseg's own ConvNeXt-L UperNet ADE20K 640x640 160k config, with the
# backbone taken from timm (convnext_large; mmpretrain breaks mmseg under transformers 5). Pretrained weights
# come from the timm hub on machines with network (weights=dict(source="timm_hub", name=None), which the runner
# sets from the backbone config); None builds the architecture only.
_base_ = ["mmseg::convnext/convnext-large_upernet_8xb2-amp-160k_ade20k-640x640.py"]
custom_imports = dict(imports=["experiments.vision.mm_models"], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type="TimmBackbone",
        model_name="convnext_large",
        out_indices=(0, 1, 2, 3),
        weights=None,
        model_kwargs=dict(drop_path_rate=0.4),
    ),
)
