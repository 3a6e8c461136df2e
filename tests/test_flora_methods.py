"""The attach() entry point for every method, FLoRA-vs-LoRA equivalence, and FLoRA inside PEFT."""

from __future__ import annotations

import peft
import pytest
import timm
import torch
from torch import nn

import flora
from flora.peft_interop import FloraPeftConfig, from_pretrained
from tests.flora_helpers import randomise, rel_err


def small_convnext() -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("convnext_atto", pretrained=False, num_classes=4)


BASE = {"target_types": ["Conv2d", "Linear"], "exclude_modules": ["head.fc"], "rank": 4, "modules_to_save": ["head.fc"]}


def trainable_names(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_attach_flora_adapts_depthwise_convs_too():
    model = flora.attach(small_convnext(), {"name": "flora", **BASE, "kernel_rank": 2, "scale": 4.0})
    adapted = dict(flora.adapter_layers(model))
    assert "stages.0.blocks.0.conv_dw" in adapted
    counts = flora.count_parameters(model)
    head = sum(p.numel() for p in model.head.fc.parameters())
    assert counts["trainable"] == counts["adapter"] + head


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_attach_peft_baselines_refuse_depthwise_convs_by_name(method):
    with pytest.raises(ValueError, match=r"grouped conv 'stages.0.blocks.0.conv_dw' \(groups=40\).*method 'flora'"):
        flora.attach(small_convnext(), {"name": method, **BASE, "alpha": 8})


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_attach_peft_baselines_on_dense_layers(method):
    cfg = {"name": method, **BASE, "exclude_modules": r".*(conv_dw|head\.fc)", "alpha": 8}
    model = flora.attach(small_convnext(), cfg)
    names = trainable_names(model)
    assert names and all("lora_" in n or n.startswith("head.fc") for n in names)
    assert any("lora_magnitude" in n for n in names) == (method == "dora")
    counts = flora.count_parameters(model)
    assert counts["adapter"] > 0 and counts["trainable"] > counts["adapter"]
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 4)


def test_attach_full_and_head():
    full = flora.attach(small_convnext(), {"name": "full"})
    assert all(p.requires_grad for p in full.parameters())
    head = flora.attach(small_convnext(), {"name": "head", "modules_to_save": ["head.fc"]})
    assert trainable_names(head) == {"head.fc.weight", "head.fc.bias"}
    assert flora.count_parameters(head)["adapter"] == 0


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"name": "qlora"}, "unknown method 'qlora'; valid methods are"),
        ({"name": "flora", "rnak": 4, "target_types": ["Linear"]}, r"does not take \['rnak'\]"),
        ({"name": "head"}, "needs modules_to_save naming the task head"),
    ],
)
def test_attach_bad_configs(cfg, message):
    with pytest.raises(ValueError, match=message):
        flora.attach(small_convnext(), cfg)


def test_attach_ignores_keys_of_other_methods_and_nones():
    model = flora.attach(small_convnext(), {"name": "flora", **BASE, "alpha": None, "scale": 2.0})
    assert next(layer for _, layer in flora.adapter_layers(model)).scale == 2.0
    model = flora.attach(small_convnext(), {"name": "full", "scale": 4.0, "rank": 8})
    assert all(p.requires_grad for p in model.parameters())


def test_identity_core_flora_equals_peft_lora():
    torch.manual_seed(0)
    base = nn.Linear(12, 10)
    rank, alpha = 4, 8
    holder = nn.ModuleDict({"layer": base})
    lora_holder = peft.inject_adapter_in_model(
        peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=["layer"]), nn.ModuleDict({"layer": nn.Linear(12, 10)})
    )
    lora_holder.layer.base_layer.load_state_dict(base.state_dict())
    nn.init.normal_(lora_holder.layer.lora_B["default"].weight)
    layer = flora.layers.Linear(base_layer=holder["layer"], ranks=(rank, rank), scale=alpha / rank)
    with torch.no_grad():
        layer.core.copy_(torch.eye(rank))
        layer.factors[0].copy_(lora_holder.layer.lora_B["default"].weight)
        layer.factors[1].copy_(lora_holder.layer.lora_A["default"].weight.t())
    x = torch.randn(5, 12)
    for path in ("factored", "merged", "dense"):
        layer.path = path
        assert rel_err(layer(x), lora_holder.layer(x)) < 1e-6


def make_mlp_convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 5, padding=2, groups=8),
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 4),
    )


def test_flora_inside_peft_round_trip_and_merge(tmp_path):
    cfg = FloraPeftConfig(r=4, target_modules=["0", "2", "4"], flora_scale=2.0, flora_kernel_rank=2)
    model = peft.get_peft_model(make_mlp_convnet(), cfg)
    randomise(model)
    x = torch.randn(2, 3, 6, 6)
    expected = model(x)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_flora" in n for n in trainable)
    model.save_pretrained(tmp_path)
    restored = from_pretrained(make_mlp_convnet(), str(tmp_path))
    assert torch.equal(restored(x), expected)
    merged = restored.merge_and_unload()
    assert type(merged[2]) is nn.Conv2d
    assert rel_err(merged(x), expected) < 1e-5


def test_peft_flora_layer_matches_native_layer():
    cfg = FloraPeftConfig(r=3, target_modules=["0"], flora_scale=1.5, flora_kernel_rank=2)
    model = peft.get_peft_model(make_mlp_convnet(), cfg)
    randomise(model)
    peft_layer = model.base_model.model[0]
    delta = peft_layer.lora_flora["default"]
    native = flora.layers.Conv2d(base_layer=make_mlp_convnet()[0], ranks=delta.ranks, scale=1.5)
    native.load_state_dict(
        {**native.state_dict(), "core": delta.core, **{f"factors.{i}": f for i, f in enumerate(delta.factors)}}
    )
    x = torch.randn(2, 3, 6, 6)
    assert rel_err(native(x), peft_layer(x)) < 1e-6
