"""Adapter-only checkpoints: ``adapter_model.safetensors`` plus ``adapter_config.json``.

The JSON holds the FloraConfig and every adapted layer's shape and ranks: enough to rebuild the adapters on
a fresh copy of the base model and to refuse a checkpoint made for another model with a clear message.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from flora.config import FloraConfig
from flora.model import adapter_layers, inject, parameter_deltas
from flora.tucker import TuckerDelta

WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"
FORMAT_VERSION = 1


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _layer_specs(model: nn.Module) -> dict[str, dict]:
    specs = {
        name: {
            "kind": type(layer).__name__,
            "shape": list(layer.weight_shape),
            "ranks": list(layer.ranks),
            "scale": layer.scale,
        }
        for name, layer in adapter_layers(model)
    }
    for owner_name, _, param_name, delta in parameter_deltas(model):
        specs[f"{owner_name}.{param_name}" if owner_name else param_name] = {
            "kind": "Parameter",
            "shape": list(delta.weight_shape),
            "ranks": list(delta.ranks),
            "scale": delta.scale,
        }
    return specs


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapter tensors and the parameters of ``modules_to_save``, keyed by their names in ``model``."""
    cfg: FloraConfig = model.flora_config
    keep: dict[str, torch.Tensor] = {}
    for module_name, module in model.named_modules():
        if isinstance(module, TuckerDelta):
            prefix = f"{module_name}." if module_name else ""
            keep[f"{prefix}core"] = module.core
            keep.update({f"{prefix}factors.{i}": factor for i, factor in enumerate(module.factors)})
    for head in cfg.modules_to_save:
        for pname, param in model.get_submodule(head).named_parameters():
            keep[f"{head}.{pname}"] = param
    return {name: tensor.detach().contiguous() for name, tensor in keep.items()}


def save_adapter(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write the adapters of ``model`` (and its trainable heads) into the directory ``path``, atomically."""
    if not hasattr(model, "flora_config"):
        raise ValueError("save_adapter: this model has no FLoRA adapters; call flora.inject(model, cfg) first")
    if any(layer.merged for _, layer in adapter_layers(model)):
        raise ValueError("save_adapter: adapters are merged into the base weights; call flora.unmerge(model) first")
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.cpu() for k, v in adapter_state_dict(model).items()}
    meta = {
        "format_version": FORMAT_VERSION,
        "config": model.flora_config.to_dict(),
        "layers": _layer_specs(model),
    }
    _atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp))
    _atomic_write(directory / CONFIG_NAME, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2)))
    return directory


def load_adapter(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load adapters saved by ``save_adapter``; injects them first if ``model`` has none. Returns ``model``."""
    directory = Path(path)
    if not (directory / CONFIG_NAME).is_file() or not (directory / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(
            f"{directory} is not a FLoRA adapter checkpoint: expected {CONFIG_NAME} and "
            f"{WEIGHTS_NAME} in it (written by flora.save_adapter)"
        )
    meta = json.loads((directory / CONFIG_NAME).read_text())
    if not hasattr(model, "flora_config"):
        inject(model, FloraConfig.from_dict(meta["config"]))
    _check_layers(meta["layers"], _layer_specs(model), directory)
    saved = load_file(str(directory / WEIGHTS_NAME))
    current = dict(model.named_parameters())
    missing = sorted(set(adapter_state_dict(model)) - set(saved))
    unexpected = sorted(set(saved) - set(current))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {directory} does not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    with torch.no_grad():
        for name, tensor in saved.items():
            target = current[name]
            if target.shape != tensor.shape:
                raise ValueError(
                    f"checkpoint {directory}: '{name}' has shape {tuple(tensor.shape)} but the model "
                    f"expects {tuple(target.shape)}; was it saved from another model or config?"
                )
            target.copy_(tensor.to(target.dtype))
    return model


def _check_layers(saved: dict, current: dict, directory: Path) -> None:
    for name, spec in saved.items():
        have = current.get(name)
        if have is None:
            raise ValueError(f"checkpoint {directory} adapts '{name}', which this model has no adapter for")
        if have["shape"] != spec["shape"] or have["ranks"] != spec["ranks"]:
            raise ValueError(
                f"checkpoint {directory}: layer '{name}' was saved with weight shape {spec['shape']} "
                f"and ranks {spec['ranks']}, but this model has {have['shape']} / {have['ranks']}"
            )
