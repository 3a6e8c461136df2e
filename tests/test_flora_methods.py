"""The runner's method registry (FLoRA and the baselines), and FLoRA-vs-LoRA equivalence."""

from __future__ import annotations

import peft
import pytest
import timm
import torch
from torch import nn

import flora
from experiments.methods import METHODS, attach, parameter_counts
from tests.flora_helpers import rel_err


def small_convnext() -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("convnext_atto", pretrained=False, num_classes=4)


BASE = {"target_types": ["Conv2d", "Linear"], "exclude_modules": ["head.fc"], "rank": 4, "modules_to_save": ["head.fc"]}


def trainable_names(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_attach_flora_adapts_depthwise_convs_too():
    model = attach(small_convnext(), {"name": "flora", **BASE, "kernel_rank": 2, "scale": 4.0})
    adapted = dict(flora.adapter_layers(model))
    assert "stages.0.blocks.0.conv_dw" in adapted
    counts = flora.count_parameters(model)
    head = sum(p.numel() for p in model.head.fc.parameters())
    assert counts["trainable"] == counts["adapter"] + head


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_attach_peft_baselines_refuse_depthwise_convs_by_name(method):
    with pytest.raises(ValueError, match=r"grouped conv 'stages.0.blocks.0.conv_dw' \(groups=40\).*method 'flora'"):
        attach(small_convnext(), {"name": method, **BASE, "alpha": 8})


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_attach_peft_baselines_on_dense_layers(method):
    cfg = {"name": method, **BASE, "exclude_modules": r".*(conv_dw|head\.fc)", "alpha": 8}
    model = attach(small_convnext(), cfg)
    names = trainable_names(model)
    assert names and all("lora_" in n or n.startswith("head.fc") for n in names)
    assert any("lora_magnitude" in n for n in names) == (method == "dora")
    counts = parameter_counts(model, 1)
    assert counts["adapter"] > 0 and counts["trainable"] > counts["adapter"]
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 4)


def test_attach_full_and_head():
    full = attach(small_convnext(), {"name": "full"})
    assert all(p.requires_grad for p in full.parameters())
    head = attach(small_convnext(), {"name": "head", "modules_to_save": ["head.fc"]})
    assert trainable_names(head) == {"head.fc.weight", "head.fc.bias"}
    assert parameter_counts(head, 1)["adapter"] == 0


def test_registry_names_every_method():
    assert sorted(METHODS) == ["bitfit", "dora", "flora", "full", "head", "lora"]


def test_bitfit_trains_biases_and_the_head():
    model = attach(small_convnext(), {"name": "bitfit", "modules_to_save": ["head.fc"]})
    names = trainable_names(model)
    assert {"head.fc.weight", "head.fc.bias"} <= names
    assert all(n.endswith(".bias") or n.startswith("head.fc") for n in names)
    assert any(n.startswith("stages.") for n in names)
    counts = parameter_counts(model, 1)
    assert counts["adapter"] == 0 and counts["trainable"] == sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )


def test_peft_baselines_without_targets_say_so():
    with pytest.raises(ValueError, match="method 'lora' needs target_modules"):
        attach(small_convnext(), {"name": "lora", "rank": 4})


def test_every_method_config_composes_and_attaches():
    """configs/method/*.yaml: each resolves to a config this registry accepts (runner keys aside)."""
    from pathlib import Path

    from omegaconf import OmegaConf

    from experiments.methods import RUNNER_KEYS

    folder = Path(__file__).resolve().parents[1] / "configs" / "method"
    for path in sorted(folder.glob("*.yaml")):
        cfg = OmegaConf.load(path)
        if "name" in cfg:
            assert cfg.name in METHODS, path.name
            unknown = set(cfg) - METHODS[cfg.name].keys - set(RUNNER_KEYS) - {"name"}
            assert not unknown, (path.name, unknown)


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
        attach(small_convnext(), cfg)


def test_attach_ignores_keys_of_other_methods_and_nones():
    model = attach(small_convnext(), {"name": "flora", **BASE, "alpha": None, "scale": 2.0})
    assert next(layer for _, layer in flora.adapter_layers(model)).scale == 2.0
    model = attach(small_convnext(), {"name": "full", "scale": 4.0, "rank": 8})
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


def test_flora_adapter_count_is_cores_and_factors_only():
    model = attach(small_convnext(), {"name": "flora", **BASE})
    cores = sum(p.numel() for _, layer in flora.adapter_layers(model) for p in (layer.core, *layer.factors))
    assert parameter_counts(model, 1)["adapter"] == cores == flora.count_parameters(model)["adapter"]


def test_a_rank_larger_than_every_adapted_layer_is_refused_not_mislabelled() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    with pytest.raises(ValueError, match=r"method.rank=100000 exceeds every adapted layer.*largest usable here is 16"):
        attach(model, {"name": "flora", "rank": 100000, "target_modules": ["0", "2"]})
    assert isinstance(model[0], torch.nn.Linear), "a refused rank leaves the model untouched"
    attach(model, {"name": "flora", "rank": 8, "target_modules": ["0", "2"]})
