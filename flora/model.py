"""Whole-model operations: inject adapters, freeze the rest, merge, unmerge, unload and count parameters."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from torch import nn
from torch.nn.utils import parametrize

from flora.config import FloraConfig, RankSpec
from flora.layers import conv, embedding, linear
from flora.layers import parameter as raw_parameter
from flora.layers.base import FloraLayer
from flora.tucker import TuckerDelta

# Base module type name -> (adapter class, number of leading "channel" modes that take ``rank``).
ADAPTER_REGISTRY: dict[str, tuple[type[FloraLayer], int]] = {
    "Linear": (linear.Linear, 2),
    "Conv1D": (linear.Conv1D, 2),
    "Conv1d": (conv.Conv1d, 2),
    "Conv2d": (conv.Conv2d, 2),
    "Conv3d": (conv.Conv3d, 2),
    "Embedding": (embedding.Embedding, 2),
}
_TORCH_BASES = {
    "Linear": nn.Linear,
    "Conv1d": nn.Conv1d,
    "Conv2d": nn.Conv2d,
    "Conv3d": nn.Conv3d,
    "Embedding": nn.Embedding,
}


def registry_key(module: nn.Module) -> str | None:
    """The registry entry that can adapt ``module``, or None.

    Subclasses of torch layers count only if they keep the parent's forward: a subclass with its own forward
    (timm's Conv2dSame pads dynamically) would silently disagree with the adapter's view of the op.
    """
    if linear._is_transformers_conv1d(module):
        return "Conv1D"
    for key, base in _TORCH_BASES.items():
        if isinstance(module, base) and type(module).forward is base.forward:
            return key
    return None


def name_matches(name: str, targets: Sequence[str] | str | None) -> bool:
    """PEFT's rule: a list entry matches exactly or as a dotted suffix; a string is a full-match regex."""
    if targets is None:
        return False
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def find_targets(model: nn.Module, cfg: FloraConfig) -> list[str]:
    """Names of the modules ``cfg`` selects; raises if it selects none, listing names that do exist."""
    wrapped = {n for n, m in model.named_modules() if isinstance(m, FloraLayer)}
    names = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(w + ".") for w in wrapped) or name in wrapped:
            continue
        if cfg.target_modules is not None and not name_matches(name, cfg.target_modules):
            continue
        if cfg.target_types is not None and type(module).__name__ not in cfg.target_types:
            continue
        if name_matches(name, cfg.exclude_modules):
            continue
        names.append(name)
    if not names and (cfg.target_modules is not None or cfg.target_types is not None):
        sample = [f"{n} ({type(m).__name__})" for n, m in list(model.named_modules())[1:13]]
        raise ValueError(
            f"target_modules={cfg.target_modules!r} / target_types={cfg.target_types!r} matched no module of "
            f"{type(model).__name__}; some modules that exist: {', '.join(sample)}"
        )
    return names


def resolve_ranks(shape: Sequence[int], channel_modes: int, spec: RankSpec, kernel_rank: int) -> tuple[int, ...]:
    """Per-mode ranks: an explicit tuple is checked as given; an int fills channel modes, kernel_rank the rest."""
    if isinstance(spec, tuple):
        return tuple(spec)
    channel = [min(int(spec), size) for size in shape[:channel_modes]]
    spatial = [min(kernel_rank, size) for size in shape[channel_modes:]]
    return tuple(channel + spatial)


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def _layer_kwargs(cfg: FloraConfig, name: str, shape: Sequence[int], channel_modes: int) -> dict:
    ranks = resolve_ranks(shape, channel_modes, cfg.rank_spec_for(name), cfg.kernel_rank)
    return {"ranks": ranks, "scale": cfg.scale_for(name), "dropout": cfg.dropout, "path": cfg.path}


def inject(model: nn.Module, cfg: FloraConfig) -> nn.Module:
    """Wrap every module (and bare parameter) ``cfg`` selects in a FLoRA adapter; freeze everything else.

    In place; returns ``model``. Adapter tensors are float32 on the base weight's device, whatever the base
    dtype, so bf16/fp16 bases train fp32 adapters.
    """
    targets = find_targets(model, cfg) if (cfg.target_modules or cfg.target_types) else []
    for param in model.parameters():
        param.requires_grad_(False)
    for name in targets:
        base = model.get_submodule(name)
        key = registry_key(base)
        if key is None:
            raise TypeError(
                f"module '{name}' is a {type(base).__name__}, which FLoRA cannot adapt; supported types are "
                f"{sorted(ADAPTER_REGISTRY)}. Narrow target_modules or add it to exclude_modules"
            )
        layer_cls, channel_modes = ADAPTER_REGISTRY[key]
        kwargs = _layer_kwargs(cfg, name, base.weight.shape, channel_modes)
        _set_submodule(model, name, layer_cls(base_layer=base, device=base.weight.device, **kwargs))
    for full_name in cfg.target_parameters or []:
        _inject_parameter(model, full_name, cfg)
    for name in cfg.modules_to_save:
        _module_or_raise(model, name).requires_grad_(True)
    model.flora_config = cfg
    return model


def _module_or_raise(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        top = [n for n, _ in model.named_children()]
        raise ValueError(
            f"modules_to_save names '{name}', which {type(model).__name__} lacks; top-level modules are {top}"
        ) from None


def _inject_parameter(model: nn.Module, full_name: str, cfg: FloraConfig) -> None:
    module_name, _, param_name = full_name.rpartition(".")
    try:
        module = model.get_submodule(module_name)
        weight = getattr(module, param_name)
    except AttributeError:
        params = [n for n, _ in model.named_parameters()][:10]
        raise ValueError(
            f"target_parameters names '{full_name}', which does not exist; some parameters that do: {params}"
        ) from None
    if not isinstance(weight, nn.Parameter) or weight.dim() < 2:
        raise TypeError(f"'{full_name}' must be an nn.Parameter of order >= 2 to take a FLoRA update")
    kwargs = _layer_kwargs(cfg, full_name, weight.shape, weight.dim())
    kwargs.update(path="auto", dropout=0.0)
    delta = raw_parameter.ParameterDelta(weight.shape, device=weight.device, **kwargs)
    raw_parameter.register(module, param_name, delta)


def adapter_layers(model: nn.Module) -> Iterator[tuple[str, FloraLayer]]:
    for name, module in model.named_modules():
        if isinstance(module, FloraLayer):
            yield name, module


def parameter_deltas(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, raw_parameter.ParameterDelta]]:
    """(owner name, owner module, parameter name, delta) for every parametrized bare parameter."""
    for owner_name, owner in model.named_modules():
        if not parametrize.is_parametrized(owner):
            continue
        for param_name, chain in owner.parametrizations.items():
            for delta in chain:
                if isinstance(delta, raw_parameter.ParameterDelta):
                    yield owner_name, owner, param_name, delta


def merge(model: nn.Module) -> nn.Module:
    """Add every dW into its base weight; forwards then skip the adapters until ``unmerge``."""
    for _, layer in adapter_layers(model):
        layer.merge()
    for _, owner, param_name, delta in parameter_deltas(model):
        delta.merge_into_original(getattr(owner.parametrizations, param_name).original)
    return model


def unmerge(model: nn.Module) -> nn.Module:
    """Subtract every merged dW from its base weight."""
    for _, layer in adapter_layers(model):
        layer.unmerge()
    for _, owner, param_name, delta in parameter_deltas(model):
        delta.unmerge_from_original(getattr(owner.parametrizations, param_name).original)
    return model


def unload(model: nn.Module) -> nn.Module:
    """Replace adapters by their plain base modules, keeping base weights as they are (merged or not)."""
    for name, layer in list(adapter_layers(model)):
        _set_submodule(model, name, layer.base_layer)
    for _, owner, param_name, _ in list(parameter_deltas(model)):
        parametrize.remove_parametrizations(owner, param_name, leave_parametrized=False)
    if hasattr(model, "flora_config"):
        del model.flora_config
    return model


def merge_and_unload(model: nn.Module) -> nn.Module:
    return unload(merge(model))


def set_adapters_enabled(model: nn.Module, enabled: bool) -> None:
    """Turn every adapter off (base model outputs) or on again, without touching weights."""
    for _, layer in adapter_layers(model):
        layer.disabled = not enabled
    for *_, delta in parameter_deltas(model):
        delta.disabled = not enabled


def _adapter_parameter_ids(model: nn.Module) -> set[int]:
    ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, TuckerDelta):
            ids.add(id(module.core))
            ids.update(id(f) for f in module.factors)
        elif _is_peft_tuner_layer(module):
            base = set(map(id, module.get_base_layer().parameters()))
            ids.update(id(p) for p in module.parameters() if id(p) not in base)
    return ids


def _is_peft_tuner_layer(module: nn.Module) -> bool:
    return any(cls.__name__ == "BaseTunerLayer" for cls in type(module).__mro__)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable, adapter (FLoRA or PEFT adapter tensors) and total parameter counts, each tensor once."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters()}
    adapter_ids = _adapter_parameter_ids(model)
    return {
        "trainable": sum(p.numel() for p in seen.values() if p.requires_grad),
        "adapter": sum(p.numel() for i, p in seen.items() if i in adapter_ids),
        "total": sum(p.numel() for p in seen.values()),
    }
