"""Every model operation of the library is exact or refused, and a refused one leaves the model as it was."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import flora
from tests.flora_helpers import make_toy, randomise, rel_err, toy_config, toy_inputs


def snapshot(model: nn.Module) -> dict[str, tuple[torch.Tensor, bool]]:
    """Every tensor of the state dict and every parameter's trainable flag, to prove nothing changed."""
    state = {name: (tensor.detach().clone(), False) for name, tensor in model.state_dict().items()}
    state.update({f"{name}:grad": (p.detach().clone(), p.requires_grad) for name, p in model.named_parameters()})
    return state


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after.keys() == before.keys()
    for name, (tensor, flag) in before.items():
        assert torch.equal(after[name][0], tensor) and after[name][1] == flag, name


def trained_toy(tmp_path, seed: int = 0, **overrides) -> tuple[nn.Module, str]:
    model = flora.inject(make_toy(), toy_config(**overrides))
    randomise(model, seed)
    return model, str(flora.save_adapter(model, tmp_path / f"adapter{seed}"))


def base_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}


# 1. load_adapter checks scale, kind and format version


def test_load_adapter_refuses_another_scale(tmp_path):
    _, path = trained_toy(tmp_path)
    other = flora.inject(make_toy(), toy_config(scale=5.0))
    with pytest.raises(ValueError, match=r"'dw': scale 1.5 saved, 5.0 in this model"):
        flora.load_adapter(other, path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda meta: meta["layers"]["dw"].update(kind="Conv1d"), r"'dw': kind 'Conv1d' saved, 'Conv2d' in this model"),
        (lambda meta: meta.update(format_version=2), "has format version 2; this flora reads version 1"),
        (lambda meta: meta.pop("layers"), "lacks format_version, config or layers"),
    ],
)
def test_load_adapter_refuses_another_kind_or_format(tmp_path, edit, message):
    _, path = trained_toy(tmp_path)
    config = tmp_path / "adapter0" / "adapter_config.json"
    meta = json.loads(config.read_text())
    edit(meta)
    config.write_text(json.dumps(meta))
    fresh = make_toy()
    before = snapshot(fresh)
    with pytest.raises(ValueError, match=message):
        flora.load_adapter(fresh, path)
    assert_unchanged(fresh, before)


# 2. merged state: loading never applies an update twice and never corrupts the base weight


def test_load_adapter_into_a_merged_model_unmerges_loads_and_merges_again(tmp_path):
    source, path = trained_toy(tmp_path, seed=1)
    expected = source(*toy_inputs())
    model = flora.inject(make_toy(), toy_config())
    base = base_weights(model)
    randomise(model, seed=2)
    flora.merge(model)
    flora.load_adapter(model, path)
    assert flora.is_merged(model)
    assert rel_err(model(*toy_inputs()), expected) < 1e-5
    flora.unmerge(model)
    for name, weight in base_weights(model).items():
        assert torch.equal(weight, base[name]), name


def test_merged_state_dict_loads_as_merged_into_an_unmerged_model():
    source = flora.inject(make_toy(), toy_config())
    randomise(source, seed=3)
    expected = source(*toy_inputs())
    base = base_weights(source)
    flora.merge(source)
    state = source.state_dict()
    assert state["dw.flora_merged"].item() is True
    target = flora.inject(make_toy(), toy_config())
    target.load_state_dict(state)
    assert flora.is_merged(target)
    assert rel_err(target(*toy_inputs()), expected) < 1e-5
    flora.unmerge(target)
    for name, weight in base_weights(target).items():
        assert torch.equal(weight, base[name]), name


def test_unmerged_state_dict_into_a_merged_model_and_adapter_only_state():
    source = flora.inject(make_toy(), toy_config())
    randomise(source, seed=4)
    expected = source(*toy_inputs())
    target = flora.inject(make_toy(), toy_config())
    randomise(target, seed=5)
    flora.merge(target)
    target.load_state_dict(source.state_dict())
    assert rel_err(target(*toy_inputs()), expected) < 1e-5
    adapters_only = {k: v for k, v in source.state_dict().items() if "core" in k or "factors" in k}
    other = flora.inject(make_toy(), toy_config())
    randomise(other, seed=6)
    flora.merge(other)
    other.load_state_dict(adapters_only, strict=False)
    assert flora.is_merged(other)
    other.head.load_state_dict(source.head.state_dict())
    assert rel_err(other(*toy_inputs()), expected) < 1e-5


# 3. validate first, then change the model


def test_failed_load_adapter_leaves_a_fresh_model_untouched(tmp_path):
    _, path = trained_toy(tmp_path)
    weights = tmp_path / "adapter0" / "adapter_model.safetensors"
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights))
    del tensors["dw.core"]
    save_file(tensors, str(weights))
    fresh = make_toy()
    before = snapshot(fresh)
    with pytest.raises(ValueError, match=r"missing \['dw.core'\]"):
        flora.load_adapter(fresh, path)
    assert_unchanged(fresh, before)
    assert not hasattr(fresh, "flora_config") and not list(flora.adapter_layers(fresh))


def test_load_adapter_into_another_architecture_leaves_it_untouched(tmp_path):
    _, path = trained_toy(tmp_path)
    other = nn.Sequential(nn.Linear(4, 4))
    before = snapshot(other)
    with pytest.raises(ValueError, match="matched no module"):
        flora.load_adapter(other, path)
    assert_unchanged(other, before)


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("adapter_config.json", "{not json", r"adapter_config.json is not valid JSON"),
        ("adapter_model.safetensors", "garbage", r"adapter_model.safetensors cannot be read as safetensors"),
    ],
)
def test_damaged_checkpoint_files_are_named(tmp_path, file, content, message):
    _, path = trained_toy(tmp_path)
    (tmp_path / "adapter0" / file).write_text(content)
    fresh = make_toy()
    before = snapshot(fresh)
    with pytest.raises(ValueError, match=message):
        flora.load_adapter(fresh, path)
    assert_unchanged(fresh, before)


def test_failed_inject_leaves_the_model_untouched():
    model = make_toy()
    before = snapshot(model)
    with pytest.raises(ValueError, match="modules_to_save names 'classifier'"):
        flora.inject(model, toy_config(modules_to_save=["classifier"]))
    assert_unchanged(model, before)
    assert not list(flora.adapter_layers(model)) and not hasattr(model, "flora_config")


# 4. a second injection is refused and the first adapters stay as they were


def test_second_inject_is_refused_and_keeps_the_first(tmp_path):
    model = flora.inject(make_toy(), toy_config(target_modules=["dw"], target_parameters=None))
    before = snapshot(model)
    with pytest.raises(ValueError, match="already has FLoRA adapters.*one FloraConfig describes all"):
        flora.inject(model, toy_config(target_modules=["pw"], target_parameters=None))
    assert_unchanged(model, before)
    assert model.dw.core.requires_grad


# 5. disabling a merged model, merging a disabled one


def test_disable_while_merged_and_merge_while_disabled_are_refused():
    model = flora.inject(make_toy(), toy_config())
    randomise(model)
    flora.merge(model)
    with pytest.raises(ValueError, match="merged into the base weights; call flora.unmerge"):
        flora.set_adapters_enabled(model, False)
    flora.unmerge(model)
    flora.set_adapters_enabled(model, False)
    with pytest.raises(ValueError, match="adapters are disabled"):
        flora.merge(model)
    assert torch.equal(model(*toy_inputs()), make_toy()(*toy_inputs()))


# 6. bad configs: one clear error naming the key or layer


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"target_modules": []}, ValueError, r"target_modules=\[\] selects nothing"),
        ({"target_types": ["Linear"], "rank": 2.5}, TypeError, r"rank must be a positive int, got 2.5 \(float\)"),
        ({"target_types": ["Linear"], "rank": "8"}, TypeError, r"rank must be a positive int, got '8' \(str\)"),
        ({"target_modules": "(unclosed"}, ValueError, "target_modules is not a valid regular expression"),
        ({"target_types": ["Conv2D"]}, ValueError, r"target_types: \['Conv2D'\] are not types FLoRA adapts"),
        ({"target_types": ["Linear"], "rank_pattern": {"x": 0}}, ValueError, r"rank_pattern\['x'\] must be >= 1"),
        ({"target_types": ["Linear"], "scale": float("nan")}, ValueError, "scale must be a finite number"),
    ],
)
def test_bad_config_values_are_refused_by_name(kwargs, error, message):
    with pytest.raises(error, match=message):
        flora.FloraConfig(**kwargs)


def test_attach_is_flora_only_and_says_where_baselines_live():
    with pytest.raises(ValueError, match="flora.attach applies FLoRA only.*experiments.methods"):
        flora.attach(make_toy(), {"name": "lora", "rank": 4})


def test_load_adapter_into_a_meta_model_is_refused(tmp_path):
    _, path = trained_toy(tmp_path)
    with torch.device("meta"):
        model = make_toy()
    with pytest.raises(ValueError, match="meta device"):
        flora.load_adapter(model, path)


# 8. merge + unmerge restores the base weight bit for bit, in every dtype


@settings(max_examples=12)
@given(dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]), seed=st.integers(0, 2**16))
def test_unmerge_restores_the_base_bit_for_bit(dtype, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, groups=8), nn.Flatten(), nn.Linear(8 * 4, 5))
    model = model.to(dtype)
    flora.inject(model, flora.FloraConfig(target_types=["Conv2d", "Linear"], rank=3, scale=3.0))
    randomise(model, seed)
    base = base_weights(model)
    flora.merge(model)
    assert any(not torch.equal(w, base[n]) for n, w in base_weights(model).items())
    flora.unmerge(model)
    for name, weight in base_weights(model).items():
        assert torch.equal(weight, base[name]), name


@pytest.mark.parametrize("types", [["Embedding", "Linear"], ["Embedding"]])
def test_tied_weights_refuse_to_merge(types):
    model = nn.Sequential(nn.Embedding(10, 6), nn.Linear(6, 10, bias=False))
    model[1].weight = model[0].weight
    flora.inject(model, flora.FloraConfig(target_types=types, rank=2))
    with pytest.raises(ValueError, match=r"layer '0' shares its weight tensor with \['1.*weight'\]"):
        flora.merge(model)
    assert not flora.is_merged(model)


def test_a_module_shared_by_two_parents_is_adapted_at_both():
    shared = nn.Linear(4, 4)
    model = nn.ModuleDict({"a": nn.Sequential(shared), "b": nn.Sequential(shared)})
    flora.inject(model, flora.FloraConfig(target_types=["Linear"], rank=2))
    assert model["a"][0] is model["b"][0] and isinstance(model["b"][0], flora.FloraLayer)
    flora.unload(model)
    assert model["a"][0] is shared and model["b"][0] is shared
