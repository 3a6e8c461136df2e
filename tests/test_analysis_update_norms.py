"""||dW||_F and the feature amplification factor against a direct SVD of the materialised update."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from experiments.analysis import model_update_stats, update_stats
from experiments.analysis.layers import adapted_updates
from experiments.methods import attach
from flora.tucker import TuckerDelta


@torch.no_grad()
def reference(weight: torch.Tensor, delta: torch.Tensor, rank: int) -> tuple[float, float]:
    """The LoRA paper's definition computed the obvious way: full SVD of the dense mode-0 unfolding."""
    w = weight.reshape(weight.shape[0], -1).double()
    d = delta.reshape(delta.shape[0], -1).double()
    u, _, vh = torch.linalg.svd(d, full_matrices=False)
    norm = torch.linalg.matrix_norm(d)
    return float(norm), float(norm / torch.linalg.matrix_norm(u[:, :rank].T @ w @ vh[:rank].T))


class Net(nn.Module):
    def __init__(self, depthwise: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3)
        self.dw = nn.Conv2d(6, 6, 3, groups=6) if depthwise else nn.Identity()
        self.fc = nn.Linear(24, 10)
        self.head = nn.Linear(10, 3)


def adapted(method: str, rank: int = 2) -> nn.Module:
    torch.manual_seed(0)
    model = Net(depthwise=method == "flora")
    targets = ["conv", "fc"] + (["dw"] if method == "flora" else [])
    attach(model, {"name": method, "rank": rank, "target_modules": targets, "modules_to_save": ["head"],
                   **({"scale": 1.5} if method == "flora" else {"alpha": 3 * rank})})
    with torch.no_grad():  # leave the zero-update start: random cores, factors, B matrices and magnitudes
        for name, param in model.named_parameters():
            if param.requires_grad and "head" not in name:
                param.copy_(torch.randn_like(param).abs() + 0.5 if "magnitude" in name else torch.randn_like(param))
    return model


def dense_deltas(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(W, W_merged - W) per adapted module, by merging a copy with the library that owns the adapter."""
    merged = copy.deepcopy(model)
    out = {}
    for name, module in merged.named_modules():
        if hasattr(module, "merge") and hasattr(module, "base_layer"):
            base = module.base_layer.weight.detach().clone()
            module.merge()
            out[name] = (base, module.base_layer.weight.detach() - base)
    return out


@pytest.mark.parametrize("method", ["flora", "lora", "dora"])
def test_every_layer_matches_a_direct_svd(method: str) -> None:
    model = adapted(method)
    stats = model_update_stats(model)
    expected = dense_deltas(model)
    kinds = {update.name: update.method for update in adapted_updates(model)}
    assert set(stats) == set(expected) == ({"conv", "fc", "dw"} if method == "flora" else {"conv", "fc"})
    assert set(kinds.values()) == {method}
    for name, (weight, delta) in expected.items():
        norm, factor = reference(weight, delta, rank=2)
        assert stats[name].norm == pytest.approx(norm, rel=1e-5), name
        assert stats[name].amplification == pytest.approx(factor, rel=1e-4), name


def test_factored_methods_never_build_dw(monkeypatch: pytest.MonkeyPatch) -> None:
    """FLoRA and LoRA statistics come from the factors alone (DoRA's full-rank update is the dense case)."""
    flora_model, lora_model = adapted("flora"), adapted("lora")
    monkeypatch.setattr(TuckerDelta, "delta_weight", lambda self: pytest.fail("FLoRA dW was materialised"))
    for module in lora_model.modules():
        if hasattr(module, "get_delta_weight"):
            monkeypatch.setattr(module, "get_delta_weight", lambda adapter: pytest.fail("LoRA dW was materialised"))
    assert set(model_update_stats(lora_model)) == {"conv", "fc"}
    assert set(model_update_stats(flora_model)) == {"conv", "dw", "fc"}


@pytest.mark.parametrize("shape, inner, rank", [((12, 7), 3, 3), ((5, 30), 4, 2), ((8, 6), 9, 8)])
def test_factors_and_dense_agree(shape: tuple[int, int], inner: int, rank: int) -> None:
    torch.manual_seed(1)
    weight, left, right = (torch.randn(*s, dtype=torch.float64) for s in (shape, (shape[0], inner), (inner, shape[1])))
    factored = update_stats(weight, rank, left=left, right=right)
    dense = update_stats(weight, rank, delta=left @ right)
    norm, factor = reference(weight, left @ right, rank)
    assert factored.norm == pytest.approx(norm, rel=1e-9) and dense.norm == pytest.approx(norm, rel=1e-9)
    assert factored.amplification == pytest.approx(factor, rel=1e-7)
    assert dense.amplification == pytest.approx(factor, rel=1e-7)


def test_transposed_layout_gives_the_same_factor() -> None:
    torch.manual_seed(2)
    weight, delta = torch.randn(9, 5), torch.randn(9, 2) @ torch.randn(2, 5)
    assert update_stats(weight, 2, delta=delta).amplification == pytest.approx(
        update_stats(weight.T, 2, delta=delta.T).amplification, rel=1e-9)


def test_untrained_adapters_measure_zero() -> None:
    torch.manual_seed(0)
    model = Net()
    attach(model, {"name": "flora", "rank": 2, "target_modules": ["conv", "fc"]})
    assert all(s.norm == 0.0 and s.amplification == 0.0 for s in model_update_stats(model).values())


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="either"):
        update_stats(torch.zeros(3, 3), 1, delta=torch.zeros(3, 3), left=torch.zeros(3, 1), right=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="shape"):
        update_stats(torch.zeros(3, 4), 1, delta=torch.zeros(3, 3))
    model = adapted("flora")
    model.conv.merge()
    with pytest.raises(ValueError, match="merged"):
        model_update_stats(model)


def test_flora_inside_peft_matches_a_direct_svd() -> None:
    from peft import inject_adapter_in_model

    from flora.peft_interop import FloraPeftConfig

    torch.manual_seed(3)
    model = Net()
    cfg = FloraPeftConfig(r=2, target_modules=["conv", "fc"], flora_scale=1.5, init_lora_weights=False)
    inject_adapter_in_model(cfg, model)
    stats = model_update_stats(model)
    assert {u.method for u in adapted_updates(model)} == {"flora"}
    for name in ("conv", "fc"):
        layer = model.get_submodule(name)
        norm, factor = reference(layer.get_base_layer().weight, layer.get_delta_weight("default"), rank=2)
        assert stats[name].norm == pytest.approx(norm, rel=1e-5)
        assert stats[name].amplification == pytest.approx(factor, rel=1e-4)
