"""FLoRA inside PEFT behaves as PEFT's own LoRA: every operation runs on both, on the same toy models, through one
table of cases and shared checks (the way PEFT's own test suite is organised)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import peft
import pytest
import torch
from peft import LoraConfig, PeftModel
from torch import nn

import flora
from flora.peft_interop import FloraPeftConfig, FloraPeftLayer
from flora.peft_interop import from_pretrained as flora_from_pretrained
from flora.peft_interop import load_adapter as flora_load_adapter
from tests.flora_helpers import rel_err


class Wrap(nn.Module):
    """One layer (and a pointwise head) under the name ``layer``, so every family is targeted the same way."""

    def __init__(self, layer: nn.Module, head: nn.Module | None = None) -> None:
        super().__init__()
        self.layer = layer
        self.head = head or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(x))


def _conv1d_gpt2() -> nn.Module:
    from transformers.pytorch_utils import Conv1D

    return Wrap(Conv1D(6, 5), nn.Linear(6, 3))


def _bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24)
    return BertModel(cfg)


@dataclass(frozen=True)
class Case:
    build: Callable[[], nn.Module]
    inputs: Callable[[], torch.Tensor | dict]
    targets: list[str]
    rank: int = 2
    lora_merges: bool = True  # PEFT's LoRA refuses to merge grouped convs; FLoRA merges them


def _floats(*shape: int) -> Callable[[], torch.Tensor]:
    return lambda: torch.randn(*shape, generator=torch.Generator().manual_seed(7))


CASES = {
    "linear": Case(lambda: Wrap(nn.Linear(5, 6), nn.Linear(6, 3)), _floats(3, 5), ["layer", "head"]),
    "conv1d": Case(lambda: Wrap(nn.Conv1d(4, 6, 3, padding=1)), _floats(2, 4, 7), ["layer"]),
    "conv2d_strided": Case(lambda: Wrap(nn.Conv2d(3, 6, 3, stride=2)), _floats(2, 3, 9, 9), ["layer"]),
    "conv2d_grouped": Case(
        lambda: Wrap(nn.Conv2d(4, 6, 3, groups=2)), _floats(2, 4, 7, 7), ["layer"], lora_merges=False
    ),
    "conv2d_depthwise": Case(
        lambda: Wrap(nn.Conv2d(4, 4, 3, groups=4)), _floats(2, 4, 7, 7), ["layer"], rank=4, lora_merges=False
    ),
    "conv3d": Case(lambda: Wrap(nn.Conv3d(2, 4, 3)), _floats(1, 2, 5, 5, 5), ["layer"]),
    "embedding": Case(
        lambda: Wrap(nn.Embedding(12, 6), nn.Linear(6, 3)),
        lambda: torch.randint(0, 12, (2, 5), generator=torch.Generator().manual_seed(7)),
        ["layer", "head"],
    ),
    "gpt2_conv1d": Case(_conv1d_gpt2, _floats(3, 5), ["layer", "head"]),
    "bert": Case(
        _bert,
        lambda: {"input_ids": torch.randint(0, 30, (2, 6), generator=torch.Generator().manual_seed(7))},
        ["query", "value", "intermediate.dense"],
    ),
}


@dataclass(frozen=True)
class Method:
    """How one adapter method is configured and loaded; the checks never branch on the method otherwise."""

    config: Callable[..., LoraConfig]
    from_pretrained: Callable[..., PeftModel]
    load_adapter: Callable[..., object]


def _lora_config(case: Case, init: bool = False, targets: list[str] | None = None) -> LoraConfig:
    return LoraConfig(
        r=case.rank, lora_alpha=2 * case.rank, target_modules=targets or case.targets, init_lora_weights=init
    )


def _flora_config(case: Case, init: bool = False, targets: list[str] | None = None) -> FloraPeftConfig:
    return FloraPeftConfig(
        r=case.rank,
        target_modules=targets or case.targets,
        flora_scale=2.0,
        flora_kernel_rank=2,
        init_lora_weights=init,
    )


METHODS = {
    "lora": Method(
        _lora_config, PeftModel.from_pretrained, lambda model, path, name, **kw: model.load_adapter(path, name, **kw)
    ),
    "flora": Method(_flora_config, flora_from_pretrained, flora_load_adapter),
}


def skip_unmergeable(case_name: str, method_name: str) -> None:
    if method_name == "lora" and not CASES[case_name].lora_merges:
        pytest.skip("PEFT's LoRA does not merge grouped convs")


def build(case_name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return CASES[case_name].build().eval()


def run(model: nn.Module, inputs) -> torch.Tensor:
    out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    return (out.last_hidden_state if hasattr(out, "last_hidden_state") else out).detach()


def two_adapters(case_name: str, method: Method) -> tuple[PeftModel, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A model with random adapters 'default' and 'other'; returns it and the base, default and other outputs."""
    case = CASES[case_name]
    inputs = case.inputs()
    base = run(build(case_name), inputs)
    torch.manual_seed(1)
    model = peft.get_peft_model(build(case_name), method.config(case))
    model.add_adapter("other", method.config(case, targets=case.targets[:1]))
    first = run(model, inputs)
    model.set_adapter("other")
    second = run(model, inputs)
    model.set_adapter("default")
    return model, base, first, second


table = pytest.mark.parametrize("case_name", sorted(CASES))
methods = pytest.mark.parametrize("method_name", sorted(METHODS))


@table
@methods
def test_second_adapter_switching_and_trainability(case_name, method_name):
    model, base, first, second = two_adapters(case_name, METHODS[method_name])
    inputs = CASES[case_name].inputs()
    assert rel_err(first, base) > 1e-3 and rel_err(second, first) > 1e-3
    assert torch.equal(run(model, inputs), first)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".default" in n for n in trainable)
    model.set_adapter("other")
    assert torch.equal(run(model, inputs), second)
    assert all(".other" in n for n, p in model.named_parameters() if p.requires_grad)


@table
@methods
def test_delete_adapter(case_name, method_name):
    model, _, first, _ = two_adapters(case_name, METHODS[method_name])
    model.delete_adapter("other")
    assert list(model.peft_config) == ["default"]
    assert not any(".other" in n for n, _ in model.named_parameters())
    assert torch.equal(run(model, CASES[case_name].inputs()), first)


@table
@methods
def test_disable_adapter_merged_or_not(case_name, method_name):
    skip_unmergeable(case_name, method_name)
    model, base, first, _ = two_adapters(case_name, METHODS[method_name])
    inputs = CASES[case_name].inputs()
    with model.disable_adapter():
        assert rel_err(run(model, inputs), base) < 1e-6
    model.merge_adapter()
    assert rel_err(run(model, inputs), first) < 1e-5
    with model.disable_adapter():
        assert rel_err(run(model, inputs), base) < 1e-5
    assert rel_err(run(model, inputs), first) < 1e-5


@table
@methods
def test_merge_and_unload_selected_adapter(case_name, method_name):
    skip_unmergeable(case_name, method_name)
    model, _, _, second = two_adapters(case_name, METHODS[method_name])
    merged = model.merge_and_unload(adapter_names=["other"])
    assert not any(isinstance(m, peft.tuners.tuners_utils.BaseTunerLayer) for m in merged.modules())
    assert rel_err(run(merged, CASES[case_name].inputs()), second) < 1e-5


@table
@methods
def test_double_merge_warns(case_name, method_name):
    skip_unmergeable(case_name, method_name)
    model, *_ = two_adapters(case_name, METHODS[method_name])
    model.merge_adapter()
    with pytest.warns(UserWarning, match="already merged"):
        model.merge_adapter()


@table
@methods
def test_save_load_second_adapter_and_inference_freeze(case_name, method_name, tmp_path):
    method = METHODS[method_name]
    model, _, first, second = two_adapters(case_name, method)
    model.save_pretrained(tmp_path)
    inputs = CASES[case_name].inputs()
    frozen = method.from_pretrained(build(case_name), str(tmp_path))
    assert torch.equal(run(frozen, inputs), first)
    assert not any(p.requires_grad for p in frozen.parameters())
    method.load_adapter(frozen, str(tmp_path / "other"), "other")
    frozen.set_adapter("other")
    assert torch.equal(run(frozen, inputs), second)
    trainable = method.from_pretrained(build(case_name), str(tmp_path), is_trainable=True, low_cpu_mem_usage=True)
    assert torch.equal(run(trainable, inputs), first)
    assert {n for n, p in trainable.named_parameters() if p.requires_grad} == {
        n for n, p in model.named_parameters() if p.requires_grad
    }


@table
@methods
def test_init_lora_weights(case_name, method_name):
    case, method = CASES[case_name], METHODS[method_name]
    inputs = case.inputs()
    base = run(build(case_name), inputs)
    assert torch.equal(run(peft.get_peft_model(build(case_name), method.config(case, init=True)), inputs), base)
    assert rel_err(run(peft.get_peft_model(build(case_name), method.config(case, init=False)), inputs), base) > 1e-3


@table
@methods
def test_adapter_dtype_follows_autocast(case_name, method_name):
    case, method = CASES[case_name], METHODS[method_name]
    for autocast, expected in ((True, torch.float32), (False, torch.bfloat16)):
        model = peft.get_peft_model(
            build(case_name).to(torch.bfloat16), method.config(case), autocast_adapter_dtype=autocast
        )
        adapter = [p for n, p in model.named_parameters() if "lora_" in n]
        assert adapter and all(p.dtype == expected for p in adapter)


@table
def test_layer_shape_attributes_and_status_match_lora(case_name):
    case = CASES[case_name]
    models = {name: two_adapters(case_name, method)[0] for name, method in METHODS.items()}
    features = {
        name: {n: (m.in_features, m.out_features) for n, m in model.named_modules() if hasattr(m, "lora_A")}
        for name, model in models.items()
    }
    assert features["flora"] == features["lora"] and features["lora"]
    if case.lora_merges:
        for model in models.values():
            model.merge_adapter()
    status = {
        name: [
            (s.name, s.enabled, s.active_adapters, s.merged_adapters, s.available_adapters, s.requires_grad)
            for s in peft.get_layer_status(model)
        ]
        for name, model in models.items()
    }
    assert status["flora"] == status["lora"], case.targets


def test_flora_layers_are_lora_layers_and_plain_lora_is_refused_on_them():
    case = CASES["linear"]
    model = peft.get_peft_model(build("linear"), _flora_config(case))
    assert isinstance(model.base_model.model.layer, peft.tuners.lora.LoraLayer)
    assert isinstance(model.base_model.model.layer, FloraPeftLayer)
    with pytest.raises(TypeError, match="plain LoraConfig, but this layer holds FLoRA adapters"):
        model.add_adapter("lora", _lora_config(case))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"use_dora": True}, "use_dora=True is a LoRA variant FLoRA does not have"),
        ({"init_lora_weights": "gaussian"}, "init_lora_weights='gaussian'"),
        ({"flora_kernel_rank": 0}, "flora_kernel_rank must be a positive int"),
    ],
)
def test_flora_peft_config_refuses_what_flora_does_not_have(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FloraPeftConfig(r=2, target_modules=["layer"], **kwargs)


def test_peft_flora_layer_matches_native_layer():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))
    model = peft.get_peft_model(
        conv, FloraPeftConfig(r=3, target_modules=["0"], flora_scale=1.5, init_lora_weights=False)
    )
    peft_layer = model.base_model.model[0]
    delta = peft_layer.lora_flora["default"]
    native = flora.layers.Conv2d(base_layer=peft_layer.get_base_layer(), ranks=delta.ranks, scale=1.5)
    native.load_state_dict(
        {**native.state_dict(), "core": delta.core, **{f"factors.{i}": f for i, f in enumerate(delta.factors)}}
    )
    x = torch.randn(2, 3, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert rel_err(native(x), peft_layer(x)) < 1e-6
