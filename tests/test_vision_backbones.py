"""FLoRA on the real conv layers of the vision backbones (4x4 stem, 2x2 strided downsampling, 7x7 / 3x3 / 5x5
depthwise, pointwise, strided 3x3 stem), selected by the backbone configs' own target patterns; merged and
unmerged models agree. Also the InternViT architecture configs, its pretraining cache name, and the
EfficientNet-Lite0 weight mapping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import timm
import torch
import yaml
from torch import nn

import flora
from experiments.vision.internvit import INTERNVIT_6B, INTERNVIT_MINI, build_internvit
from experiments.vision.pretrain import PretrainRecipe, weights_file
from experiments.vision.timm_models import build_timm, unfold_same_padding
from experiments.vision.weights import load_pretrained
from flora.tucker import TuckerDelta
from tests.flora_helpers import rel_err

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "backbone"


class Wrapped(nn.Module):
    """The engine's layout: the timm model under `backbone.model` (mm backbones) or `backbone` (classifier)."""

    def __init__(self, model: nn.Module, nested: bool) -> None:
        super().__init__()
        self.backbone = nn.Module()
        if nested:
            self.backbone.model = model
        else:
            self.backbone = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inner = self.backbone.model if hasattr(self.backbone, "model") else self.backbone
        return inner(x)


def _randomise(model: nn.Module, std: float) -> None:
    """Random cores (they start at zero, which would hide merge bugs)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, TuckerDelta):
                module.core.copy_(std * torch.randn(module.core.shape, generator=gen))


def _spec(name: str) -> dict:
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


def _conv_kinds(model: nn.Module, pattern: str) -> set[str]:
    kinds = set()
    for name, module in model.named_modules():
        if type(module) is nn.Conv2d and re.fullmatch(pattern, name):
            k = module.kernel_size[0]
            kind = "depthwise" if module.groups == module.in_channels > 1 else "dense"
            kinds.add(f"{kind} {k}x{k} stride {module.stride[0]}")
    return kinds


@pytest.mark.parametrize(
    ("backbone", "timm_name", "nested", "expected"),
    [
        (
            "convnext_atto",
            "convnext_atto",
            True,
            {"dense 4x4 stride 4", "dense 2x2 stride 2", "depthwise 7x7 stride 1"},
        ),
        (
            "efficientnet_lite0",
            "tf_efficientnet_lite0",
            False,
            {"dense 3x3 stride 2", "depthwise 3x3 stride 1", "depthwise 5x5 stride 2", "dense 1x1 stride 1"},
        ),
    ],
)
def test_flora_on_real_conv_layers(backbone: str, timm_name: str, nested: bool, expected: set[str]) -> None:
    torch.manual_seed(0)
    model = Wrapped(build_timm(timm_name), nested).eval()
    spec = _spec(backbone)
    assert expected <= _conv_kinds(model, spec["adapter_targets"])
    x = torch.randn(2, 3, 64, 64)
    base = model(x)
    method = {"name": "flora", "target_modules": spec["adapter_targets"], "target_types": spec["adapter_types"]}
    flora.attach(model, {**method, "rank": 4, "kernel_rank": 2, "scale": 4.0})
    adapted = {n for n, _ in flora.adapter_layers(model)}
    assert any("conv_dw" in n for n in adapted) and len(adapted) > 10
    assert rel_err(model(x), base) < 1e-6  # zero core: the adapted model starts as the pretrained one
    _randomise(model, std=0.05)  # small: ReLU6 saturation would amplify rounding differences
    unmerged = model(x)
    assert rel_err(unmerged, base) > 1e-3
    flora.merge(model)
    assert rel_err(model(x), unmerged) < 1e-4
    flora.unmerge(model)
    assert rel_err(model(x), unmerged) < 1e-4


@pytest.mark.parametrize(
    ("backbone", "timm_name", "nested"),
    [("convnext_atto", "convnext_atto", True), ("efficientnet_lite0", "tf_efficientnet_lite0", False)],
)
def test_peft_baselines_exclude_only_depthwise(backbone: str, timm_name: str, nested: bool) -> None:
    spec = _spec(backbone)
    method = {"name": "lora", "target_modules": spec["adapter_targets"], "target_types": spec["adapter_types"]}
    with pytest.raises(ValueError, match="groups"):
        flora.attach(Wrapped(build_timm(timm_name), nested), {**method, "rank": 4})
    model = Wrapped(build_timm(timm_name), nested)
    flora.attach(model, {**method, "exclude_modules": spec["peft_exclude"], "rank": 4})
    assert flora.count_parameters(model)["adapter"] > 0


def test_unfolded_same_padding_is_exact() -> None:
    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=0).eval()
    x = torch.randn(2, 3, 64, 64)
    expected = model(x)
    assert unfold_same_padding(model) == 5
    assert torch.equal(model(x), expected)


def test_internvit_architectures() -> None:
    with torch.device("meta"):
        big = build_internvit(INTERNVIT_6B)
    total = sum(p.numel() for p in big.parameters())
    assert total == 5_902_793_600  # InternVisionModel's count for OpenGVLab/InternViT-6B-224px ("5903M")
    block = big.blocks[0]
    assert block.attn.qkv.weight.shape == (3 * 3200, 3200) and block.mlp.fc1.weight.shape == (12800, 3200)
    assert type(block.norm1).__name__ == "RmsNorm" and block.norm1.eps == 1e-6
    assert block.attn.q_norm.weight.shape == block.attn.k_norm.weight.shape == (3200,)  # full width, not per head
    assert block.attn.qkv.bias is None and block.attn.proj.bias is not None
    assert block.ls1.gamma.shape == (3200,) and big.patch_embed.proj.kernel_size == (14, 14)
    assert isinstance(big.norm, nn.Identity) and big.pos_embed.shape == (1, 257, 3200)
    mini = build_internvit(INTERNVIT_MINI, num_classes=5)
    assert mini(torch.randn(2, 3, 64, 64)).shape == (2, 5)


def test_internvit_mini_cache_is_not_the_old_architectures(tmp_path: Path) -> None:
    """Weights pretrained for the per-head QK-norm build (file without a revision) are never read by the new one."""
    recipe = PretrainRecipe()
    assert weights_file("internvit_mini", recipe, tmp_path).name == f"internvit_mini_arch2_fmnist04_{recipe.key()}.pt"
    assert weights_file("convnext_atto", recipe, tmp_path).name == f"convnext_atto_fmnist04_{recipe.key()}.pt"


def test_efficientnet_lite0_real_weights() -> None:
    model = timm.create_model("tf_efficientnet_lite0", num_classes=10)
    before = model.conv_stem.weight.clone()
    load_pretrained(model, "efficientnet_lite0_package")
    assert not torch.equal(before, model.conv_stem.weight)
    assert model.bn1.running_var.abs().sum() > 0 and not torch.allclose(model.bn1.running_var, torch.ones(32))
