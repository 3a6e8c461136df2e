"""Adapter-only checkpoints: ``adapter_model.safetensors`` plus ``adapter_config.json``.

The JSON holds the format version, the FloraConfig and every adapted layer's kind, shape, ranks and scale:
enough to rebuild the adapters on a fresh copy of the base model and to refuse, naming what differs, a
checkpoint made for another model or config. ``load_adapter`` checks all of it before it changes the model.
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
from flora.model import adapter_layers, apply_plan, is_merged, merge, parameter_deltas, plan_injection, unmerge
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


def _spec(kind: str, delta: TuckerDelta) -> dict:
    return {"kind": kind, "shape": list(delta.weight_shape), "ranks": list(delta.ranks), "scale": delta.scale}


def _layer_specs(model: nn.Module) -> dict[str, dict]:
    specs = {name: _spec(type(layer).__name__, layer) for name, layer in adapter_layers(model)}
    for owner_name, _, param_name, delta in parameter_deltas(model):
        specs[f"{owner_name}.{param_name}" if owner_name else param_name] = _spec("Parameter", delta)
    return specs


def _adapter_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapter tensors and the parameters of ``modules_to_save``, keyed by their names in ``model``."""
    keep: dict[str, torch.Tensor] = {}
    for module_name, module in model.named_modules():
        if isinstance(module, TuckerDelta):
            prefix = f"{module_name}." if module_name else ""
            keep[f"{prefix}core"] = module.core
            keep.update({f"{prefix}factors.{i}": factor for i, factor in enumerate(module.factors)})
    for head in model.flora_config.modules_to_save:
        for pname, param in model.get_submodule(head).named_parameters():
            keep[f"{head}.{pname}"] = param
    return keep


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().contiguous() for name, tensor in _adapter_tensors(model).items()}


def save_adapter(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write the adapters of ``model`` (and its trainable heads) into the directory ``path``, atomically."""
    if not hasattr(model, "flora_config"):
        raise ValueError("save_adapter: this model has no FLoRA adapters; call flora.inject(model, cfg) first")
    if is_merged(model):
        raise ValueError("save_adapter: adapters are merged into the base weights; call flora.unmerge(model) first")
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.cpu() for k, v in adapter_state_dict(model).items()}
    meta = {"format_version": FORMAT_VERSION, "config": model.flora_config.to_dict(), "layers": _layer_specs(model)}
    _atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp))
    _atomic_write(directory / CONFIG_NAME, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2)))
    return directory


def _read_meta(file: Path) -> dict:
    try:
        meta = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not valid JSON ({err}); the checkpoint is damaged") from None
    if not isinstance(meta, dict) or not {"format_version", "config", "layers"} <= set(meta):
        raise ValueError(f"{file} lacks format_version, config or layers; it was not written by flora.save_adapter")
    if meta["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{file} has format version {meta['format_version']!r}; this flora reads version {FORMAT_VERSION}"
        )
    return meta


def _read_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{file} cannot be read as safetensors ({err}); the checkpoint is damaged") from None


def _check_layers(saved: dict, current: dict, directory: Path) -> None:
    """Every layer on both sides, with the same kind, shape, ranks and scale; all differences in one message."""
    problems = [f"'{n}' is in the checkpoint but not adapted in this model" for n in sorted(set(saved) - set(current))]
    problems += [f"'{n}' has an adapter but is not in the checkpoint" for n in sorted(set(current) - set(saved))]
    for name in sorted(set(saved) & set(current)):
        for key in ("kind", "shape", "ranks", "scale"):
            if saved[name].get(key) != current[name][key]:
                problems.append(f"'{name}': {key} {saved[name].get(key)!r} saved, {current[name][key]!r} in this model")
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise ValueError(f"checkpoint {directory} does not fit this model: {shown}")


def _check_tensors(saved: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], directory: Path) -> None:
    missing, unexpected = sorted(set(targets) - set(saved)), sorted(set(saved) - set(targets))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {directory} does not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, tensor in saved.items():
        if targets[name].shape != tensor.shape:
            raise ValueError(
                f"checkpoint {directory}: '{name}' has shape {tuple(tensor.shape)} but the model expects "
                f"{tuple(targets[name].shape)}; was it saved from another model or config?"
            )


def _planned_tensors(model: nn.Module, plan) -> tuple[dict[str, dict], dict[str, torch.Tensor]]:
    """The layer specs and adapter tensors ``model`` would have once ``plan`` is applied."""
    specs: dict[str, dict] = {}
    tensors: dict[str, torch.Tensor] = {}
    for names, layer in plan.layers:
        specs[names[0]] = _spec(type(layer).__name__, layer)
        tensors[f"{names[0]}.core"] = layer.core
        tensors.update({f"{names[0]}.factors.{i}": f for i, f in enumerate(layer.factors)})
    for full_name, _, _, delta in plan.parameters:
        specs[full_name] = _spec("Parameter", delta)
        owner, _, param = full_name.rpartition(".")
        prefix = f"{owner}.parametrizations.{param}.0." if owner else f"parametrizations.{param}.0."
        tensors[f"{prefix}core"] = delta.core
        tensors.update({f"{prefix}factors.{i}": f for i, f in enumerate(delta.factors)})
    for head in plan.cfg.modules_to_save:
        tensors.update({f"{head}.{n}": p for n, p in model.get_submodule(head).named_parameters()})
    return specs, tensors


def load_adapter(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load adapters saved by ``save_adapter``; injects them first if ``model`` has none. Returns ``model``.

    Checks the format version, every layer's kind, shape, ranks and scale, and every tensor's name and shape
    before it changes anything. A merged model is unmerged, loaded and merged again.
    """
    directory = Path(path)
    if not (directory / CONFIG_NAME).is_file() or not (directory / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(
            f"{directory} is not a FLoRA adapter checkpoint: expected {CONFIG_NAME} and "
            f"{WEIGHTS_NAME} in it (written by flora.save_adapter)"
        )
    meta = _read_meta(directory / CONFIG_NAME)
    saved = _read_tensors(directory / WEIGHTS_NAME)
    if any(p.device.type == "meta" for p in model.parameters()):
        raise ValueError(
            "load_adapter: the model's weights are on the meta device (no data); load the base weights first "
            "(e.g. model.to_empty(device='cpu') and load_state_dict), then load the adapter"
        )
    plan = None
    if hasattr(model, "flora_config"):
        specs, targets = _layer_specs(model), _adapter_tensors(model)
    else:
        try:
            cfg = FloraConfig.from_dict(meta["config"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{directory / CONFIG_NAME}: invalid config: {err}") from None
        plan = plan_injection(model, cfg)
        specs, targets = _planned_tensors(model, plan)
    _check_layers(meta["layers"], specs, directory)
    _check_tensors(saved, targets, directory)
    if plan is not None:
        apply_plan(model, plan)
    was_merged = is_merged(model)
    unmerge(model)
    with torch.no_grad():
        for name, tensor in saved.items():
            targets[name].copy_(tensor.to(targets[name].dtype))
    if was_merged:
        merge(model)
    return model
