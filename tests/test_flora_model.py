"""Whole-model operations on toy and real architectures: inject, merge/unmerge/unload, save/load, errors."""

from __future__ import annotations

import json
import string

import pytest
import timm
import torch
from torch import nn

import flora
from flora.layers import ParameterDelta
from tests.flora_helpers import make_toy, randomise, rel_err, toy_config, toy_inputs


def test_fresh_adapters_give_exactly_the_base_output():
    model = make_toy()
    expected = model(*toy_inputs())
    flora.inject(model, toy_config())
    assert torch.equal(model(*toy_inputs()), expected)


def test_inject_wraps_every_family_and_freezes_the_rest():
    model = flora.inject(make_toy(), toy_config())
    wrapped = {name: type(layer).__name__ for name, layer in flora.adapter_layers(model)}
    assert wrapped == {
        "embed": "Embedding",
        "conv1d": "Conv1d",
        "stem": "Conv2d",
        "dw": "Conv2d",
        "pw": "Conv2d",
        "vol": "Conv3d",
    }
    dw = model.get_submodule("dw")
    assert dw.core.shape == (4, 1, 2, 2)
    assert [tuple(f.shape) for f in dw.factors] == [(8, 4), (1, 1), (7, 2), (7, 2)]
    assert dw.scale == 1.5 and isinstance(dw.base_layer, nn.Conv2d)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(("core" in n or "factors" in n or n.startswith("head.")) for n in trainable)
    assert "head.weight" in trainable and "stem.base_layer.weight" not in trainable
    moe_delta = model.moe.parametrizations.experts[0]
    assert isinstance(moe_delta, ParameterDelta) and moe_delta.ranks == (3, 4, 4)


def test_delta_weight_equals_independent_einsum():
    model = flora.inject(make_toy(), toy_config())
    randomise(model)
    for _, layer in flora.adapter_layers(model):
        letters = string.ascii_lowercase[: layer.core.dim()]
        outs = string.ascii_uppercase[: layer.core.dim()]
        spec = letters + "," + ",".join(o + c for o, c in zip(outs, letters, strict=True)) + "->" + outs
        expected = layer.scale * torch.einsum(spec, layer.core, *layer.factors)
        if isinstance(layer, flora.layers.Embedding):
            expected[0] = 0.0
        assert rel_err(layer.delta_weight(), expected) < 1e-6


def test_merge_unmerge_unload_round_trip():
    model = flora.inject(make_toy(), toy_config())
    randomise(model)
    inputs = toy_inputs()
    expected = model(*inputs)
    base_weights = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    flora.merge(model)
    assert rel_err(model(*inputs), expected) < 1e-5
    flora.unmerge(model)
    for name, param in model.named_parameters():
        if name in base_weights:
            assert (param - base_weights[name]).abs().max() <= 1e-6
    merged = flora.merge_and_unload(model)
    assert not list(flora.adapter_layers(merged)) and type(merged.dw) is nn.Conv2d
    assert not hasattr(merged.moe, "parametrizations")
    assert rel_err(merged(*inputs), expected) < 1e-5
    plain = flora.unload(flora.inject(make_toy(), toy_config()))
    assert torch.equal(plain(*inputs), make_toy()(*inputs))


def test_adapters_can_be_disabled_and_enabled():
    model = flora.inject(make_toy(), toy_config())
    randomise(model)
    inputs = toy_inputs()
    adapted = model(*inputs)
    flora.set_adapters_enabled(model, False)
    assert torch.equal(model(*inputs), make_toy()(*inputs))
    flora.set_adapters_enabled(model, True)
    assert torch.equal(model(*inputs), adapted)


def test_save_load_round_trip_is_exact(tmp_path):
    model = flora.inject(make_toy(), toy_config())
    randomise(model)
    with torch.no_grad():
        model.head.weight.add_(1.0)
    inputs = toy_inputs()
    expected = model(*inputs)
    flora.save_adapter(model, tmp_path / "adapter")
    meta = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert meta["layers"]["dw"]["ranks"] == [4, 1, 2, 2] and meta["layers"]["moe.experts"]["kind"] == "Parameter"
    restored = flora.load_adapter(make_toy(), tmp_path / "adapter")
    assert torch.equal(restored(*inputs), expected)


def test_count_parameters():
    model = flora.inject(make_toy(), toy_config())
    counts = flora.count_parameters(model)
    expected_adapter = sum(
        flora.flora_num_params(layer.weight_shape, layer.ranks) for _, layer in flora.adapter_layers(model)
    )
    expected_adapter += flora.flora_num_params((3, 16, 16), (3, 4, 4))
    assert counts["adapter"] == expected_adapter
    head = sum(p.numel() for p in model.head.parameters())
    assert counts["trainable"] == expected_adapter + head
    assert counts["total"] == sum(p.numel() for p in make_toy().parameters()) + expected_adapter


def test_rank_and_scale_patterns():
    cfg = toy_config(rank_pattern={"stem": (2, 3, 1, 2), "pw": 2}, scale_pattern={"dw": 0.5})
    model = flora.inject(make_toy(), cfg)
    assert model.stem.ranks == (2, 3, 1, 2)
    assert model.pw.ranks == (2, 2, 1, 1)
    assert model.dw.scale == 0.5 and model.pw.scale == 1.5


def test_target_by_regex_and_type_with_exclusion():
    cfg = flora.FloraConfig(target_modules=r".*(dw|pw)", target_types=["Conv2d"], exclude_modules=["pw"])
    model = flora.inject(make_toy(), cfg)
    assert [name for name, _ in flora.adapter_layers(model)] == ["dw"]


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"rank_pattern": {"stem": (2, 2, 2)}}, ValueError, r"layer 'stem': the weight has shape \(8, 3, 4, 4\)"),
        ({"rank_pattern": {"stem": (2, 0, 2, 2)}}, ValueError, r"rank_pattern\['stem'\] must be >= 1, got 0"),
        ({"rank_pattern": {"stem": (2, 4, 2, 2)}}, ValueError, "layer 'stem': rank 4 for mode 1 must be between 1"),
        ({"target_modules": ["does_not_exist"]}, ValueError, "matched no module.*some modules that exist: embed"),
        ({"target_modules": ["moe"]}, TypeError, "'moe' is a MixtureOfExperts, which FLoRA cannot adapt"),
        ({"target_parameters": ["moe.nothing"]}, ValueError, "'moe.nothing', which does not exist"),
        ({"modules_to_save": ["classifier"]}, ValueError, "modules_to_save names 'classifier'"),
    ],
)
def test_bad_input_gets_a_clear_error(overrides, error, message):
    with pytest.raises(error, match=message):
        flora.inject(make_toy(), toy_config(**overrides))


def test_config_without_targets_is_refused():
    with pytest.raises(ValueError, match="needs something to adapt"):
        flora.FloraConfig()


def test_checkpoint_for_another_model_is_refused(tmp_path):
    model = flora.inject(make_toy(), toy_config())
    flora.save_adapter(model, tmp_path / "a")
    other = flora.inject(make_toy(), toy_config(rank_pattern={"pw": 3}))
    with pytest.raises(ValueError, match=r"does not fit this model: 'pw': ranks \[4, 4, 1, 1\] saved, \[3, 3, 1, 1\]"):
        flora.load_adapter(other, tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="is not a FLoRA adapter checkpoint"):
        flora.load_adapter(make_toy(), tmp_path / "missing")


def test_timm_convnext_every_weight_layer():
    """ConvNeXt's real layers: 4x4 stride-4 stem, 2x2 stride-2 downsampling, depthwise 7x7, pointwise linears."""
    torch.manual_seed(0)
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=4).eval()
    x = torch.randn(2, 3, 64, 64)
    base_out = model(x)
    cfg = flora.FloraConfig(
        target_types=["Conv2d", "Linear"],
        exclude_modules=["head.fc"],
        rank=4,
        kernel_rank=2,
        scale=4.0,
        modules_to_save=["head"],
    )
    flora.inject(model, cfg)
    assert torch.equal(model(x), base_out)
    names = dict(flora.adapter_layers(model))
    assert names["stem.0"].base_layer.stride == (4, 4)
    assert names["stages.1.downsample.1"].base_layer.kernel_size == (2, 2)
    assert names["stages.0.blocks.0.conv_dw"].base_layer.groups == 40
    randomise(model)
    adapted = model(x)
    flora.merge(model)
    assert rel_err(model(x), adapted) < 1e-5


def test_transformers_bert_attention_and_ffn():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=3
    )
    model = BertForSequenceClassification(config).eval()
    tokens = torch.randint(0, 50, (2, 9))
    base_out = model(input_ids=tokens).logits
    cfg = flora.FloraConfig(
        target_modules=["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"],
        rank=4,
        scale=0.5,
        modules_to_save=["classifier"],
    )
    flora.inject(model, cfg)
    assert len(list(flora.adapter_layers(model))) == 12
    assert torch.equal(model(input_ids=tokens).logits, base_out)
    randomise(model)
    adapted = model(input_ids=tokens).logits
    flora.merge(model)
    assert rel_err(model(input_ids=tokens).logits, adapted) < 1e-5
