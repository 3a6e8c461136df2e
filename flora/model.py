"""Whole-model operations: inject adapters, freeze the rest, merge, unmerge, unload and count parameters.

Every operation checks everything it needs before it changes the model, so a refused call leaves the model as it
was: ``plan_injection`` builds every adapter without attaching it, ``apply_plan`` attaches them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from torch import nn
from torch.nn.utils import parametrize

from flora.config import FloraConfig, RankSpec
from flora.layers import conv, embedding, linear
from flora.layers import parameter as raw_parameter
from flora.layers.base import FloraLayer
from flora.targets import CHANNEL_MODES, TYPE_NAMES, name_matches, type_key
from flora.tucker import TuckerDelta, validate_ranks

ADAPTER_CLASSES: dict[str, type[FloraLayer]] = {
    "Linear": linear.Linear,
    "Conv1D": linear.Conv1D,
    "Conv1d": conv.Conv1d,
    "Conv2d": conv.Conv2d,
    "Conv3d": conv.Conv3d,
    "Embedding": embedding.Embedding,
}


def find_targets(
    model: nn.Module,
    target_modules: Sequence[str] | str | None,
    target_types: Sequence[str] | None = None,
    exclude_modules: Sequence[str] | str | None = None,
) -> list[str]:
    """Names of the modules selected by names and/or types (``isinstance``, subclasses included), minus exclusions.

    Raises if the selection is empty, listing names that do exist.
    """
    names = []
    for name, module in model.named_modules():
        if not name or isinstance(module, TuckerDelta) or name_matches(name, exclude_modules):
            continue
        if target_modules is not None and not name_matches(name, target_modules):
            continue
        if target_types is not None and type_key(module) not in target_types:
            continue
        names.append(name)
    if not names:
        sample = [f"{n} ({type(m).__name__})" for n, m in list(model.named_modules())[1:13]]
        raise ValueError(
            f"target_modules={target_modules!r} / target_types={target_types!r} matched no module of "
            f"{type(model).__name__}; some modules that exist: {', '.join(sample)}"
        )
    return names


def resolve_ranks(shape: Sequence[int], channel_modes: int, spec: RankSpec, kernel_rank: int) -> tuple[int, ...]:
    """Per-mode ranks: an explicit tuple is kept as given; an int fills channel modes, kernel_rank the rest."""
    if isinstance(spec, list | tuple):
        return tuple(spec)
    channel = [min(int(spec), size) for size in shape[:channel_modes]]
    spatial = [min(kernel_rank, size) for size in shape[channel_modes:]]
    return tuple(channel + spatial)


@dataclass
class Plan:
    """Adapters built for a model but not yet attached: what ``inject`` would do, checked in full."""

    cfg: FloraConfig
    layers: list[tuple[list[str], FloraLayer]] = field(default_factory=list)
    parameters: list[tuple[str, nn.Module, str, raw_parameter.ParameterDelta]] = field(default_factory=list)


def has_adapters(model: nn.Module) -> bool:
    return hasattr(model, "flora_config") or any(isinstance(m, TuckerDelta) for m in model.modules())


def plan_injection(model: nn.Module, cfg: FloraConfig) -> Plan:
    """Build every adapter ``cfg`` asks for, without touching ``model``; raises naming the layer that does not fit."""
    if has_adapters(model):
        raise ValueError(
            f"{type(model).__name__} already has FLoRA adapters; one FloraConfig describes all of a model's adapters "
            "(rank_pattern and scale_pattern set them per layer). Call flora.unload(model) (or merge_and_unload) "
            "before injecting again"
        )
    plan = Plan(cfg)
    targets = (
        find_targets(model, cfg.target_modules, cfg.target_types, cfg.exclude_modules)
        if cfg.target_modules is not None or cfg.target_types is not None
        else []
    )
    aliases = _names_by_module(model)
    for name in targets:
        base = model.get_submodule(name)
        plan.layers.append((aliases[id(base)], _build_layer(model, name, base, cfg)))
    for full_name in cfg.target_parameters or []:
        plan.parameters.append(_build_parameter(model, full_name, cfg))
    for head in cfg.modules_to_save:
        _module_or_raise(model, head)
        clash = [n for n in targets if n == head or n.startswith(head + ".") or head.startswith(n + ".")]
        if clash:
            raise ValueError(
                f"modules_to_save names '{head}', which is also adapted ({clash[:3]}): a saved module trains in full, "
                "so add it to exclude_modules"
            )
    return plan


def apply_plan(model: nn.Module, plan: Plan) -> nn.Module:
    """Freeze the model, attach the planned adapters, unfreeze ``modules_to_save``."""
    model.requires_grad_(False)
    for names, layer in plan.layers:
        for name in names:
            _set_submodule(model, name, layer)
    for _, owner, param_name, delta in plan.parameters:
        raw_parameter.register(owner, param_name, delta)
    for head in plan.cfg.modules_to_save:
        model.get_submodule(head).requires_grad_(True)
    model.flora_config = plan.cfg
    return model


def inject(model: nn.Module, cfg: FloraConfig) -> nn.Module:
    """Wrap every module (and bare parameter) ``cfg`` selects in a FLoRA adapter; freeze everything else.

    In place; returns ``model``. Adapter tensors are float32 on the base weight's device, whatever the base
    dtype, so bf16/fp16 bases train fp32 adapters. A model takes one injection (refused if it has adapters).
    """
    return apply_plan(model, plan_injection(model, cfg))


def _names_by_module(model: nn.Module) -> dict[int, list[str]]:
    """Every name a module is reachable under: a module shared by two parents is wrapped at both."""
    names: dict[int, list[str]] = defaultdict(list)
    for name, module in model.named_modules(remove_duplicate=False):
        names[id(module)].append(name)
    return names


def _build_layer(model: nn.Module, name: str, base: nn.Module, cfg: FloraConfig) -> FloraLayer:
    key = type_key(base)
    if key is None:
        raise TypeError(
            f"module '{name}' is a {type(base).__name__}, which FLoRA cannot adapt; supported types (and their "
            f"subclasses) are {list(TYPE_NAMES)}. Narrow target_modules or add it to exclude_modules"
        )
    parent_name = name.rpartition(".")[0]
    if isinstance(model.get_submodule(parent_name), nn.MultiheadAttention):
        raise TypeError(
            f"module '{name}' belongs to an nn.MultiheadAttention, which reads its weight directly instead of calling "
            "it, so an adapter there would be bypassed; add it to exclude_modules"
        )
    if parametrize.is_parametrized(base, "weight") or hasattr(base, "weight_g"):
        raise TypeError(
            f"module '{name}' computes its weight from other tensors (weight_norm or another parametrization), so "
            "merging into it cannot work; add it to exclude_modules or remove the parametrization first"
        )
    shape = tuple(base.weight.shape)
    ranks = resolve_ranks(shape, CHANNEL_MODES[key], cfg.rank_spec_for(name), cfg.kernel_rank)
    validate_ranks(ranks, shape, f"layer '{name}'")
    try:
        return ADAPTER_CLASSES[key](
            base_layer=base,
            ranks=ranks,
            scale=cfg.scale_for(name),
            dropout=cfg.dropout,
            path=cfg.path,
            device=base.weight.device,
        )
    except (TypeError, ValueError) as err:
        raise type(err)(f"layer '{name}': {err}") from None


def _build_parameter(model: nn.Module, full_name: str, cfg: FloraConfig):
    module_name, _, param_name = full_name.rpartition(".")
    try:
        module = model.get_submodule(module_name)
        weight = getattr(module, param_name)
    except AttributeError:
        params = [n for n, _ in model.named_parameters()][:10]
        raise ValueError(
            f"target_parameters names '{full_name}', which does not exist; some parameters that do: {params}"
        ) from None
    if not isinstance(weight, nn.Parameter) or weight.dim() < 2 or parametrize.is_parametrized(module, param_name):
        raise TypeError(f"'{full_name}' must be a plain nn.Parameter of order >= 2 to take a FLoRA update")
    ranks = resolve_ranks(weight.shape, weight.dim(), cfg.rank_spec_for(full_name), cfg.kernel_rank)
    validate_ranks(ranks, weight.shape, f"parameter '{full_name}'")
    delta = raw_parameter.ParameterDelta(weight.shape, ranks, cfg.scale_for(full_name), device=weight.device)
    return full_name, module, param_name, delta


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def _module_or_raise(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        top = [n for n, _ in model.named_children()]
        raise ValueError(
            f"modules_to_save names '{name}', which {type(model).__name__} lacks; top-level modules are {top}"
        ) from None


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


def _check_untied(model: nn.Module) -> None:
    """A weight tensor that another module also uses (tied embeddings) cannot take one adapter's update."""
    owners: dict[int, list[tuple[str, nn.Module]]] = defaultdict(list)
    for name, module in model.named_modules(remove_duplicate=False):
        for param_name, param in module.named_parameters(recurse=False):
            if all(module is not m for _, m in owners[id(param)]):
                owners[id(param)].append((f"{name}.{param_name}" if name else param_name, module))
    held = [(name, layer.base_layer, layer.base_layer.weight) for name, layer in adapter_layers(model)]
    for owner, module, param_name, _ in parameter_deltas(model):
        holder = getattr(module.parametrizations, param_name)
        held.append((f"{owner}.{param_name}", holder, holder.original))
    for name, holder, weight in held:
        others = [other for other, module in owners[id(weight)] if module is not holder]
        if others:
            raise ValueError(
                f"layer '{name}' shares its weight tensor with {others[:3]} (tied weights), so merging its update "
                "would change those too; keep the model unmerged, or untie the weights before adapting them"
            )


def merge(model: nn.Module, keep_base: bool = True) -> nn.Module:
    """Add every dW into its base weight; forwards then skip the adapters until ``unmerge``.

    ``keep_base`` keeps a copy of each base weight so ``unmerge`` restores it bit for bit (W + dW rounds in the
    weight's dtype); without it unmerge subtracts dW, exact only to rounding.
    """
    _check_untied(model)
    disabled = [name for name, layer in adapter_layers(model) if layer.disabled]
    disabled += [f"{o}.{p}" for o, _, p, delta in parameter_deltas(model) if delta.disabled]
    if disabled:
        raise ValueError(f"adapters are disabled ({disabled[:3]}); call flora.set_adapters_enabled(model, True) first")
    for _, layer in adapter_layers(model):
        layer.merge(keep_base)
    for _, owner, param_name, delta in parameter_deltas(model):
        delta.merge_into_original(getattr(owner.parametrizations, param_name).original, keep_base)
    return model


def unmerge(model: nn.Module) -> nn.Module:
    """Restore every merged base weight (bit for bit where ``merge`` kept it)."""
    for _, layer in adapter_layers(model):
        layer.unmerge()
    for _, owner, param_name, delta in parameter_deltas(model):
        delta.unmerge_from_original(getattr(owner.parametrizations, param_name).original)
    return model


def is_merged(model: nn.Module) -> bool:
    return any(layer.merged for _, layer in adapter_layers(model)) or any(
        delta.merged for *_, delta in parameter_deltas(model)
    )


def unload(model: nn.Module) -> nn.Module:
    """Replace adapters by their plain base modules, keeping base weights as they are (merged or not)."""
    wrappers = {id(layer) for _, layer in adapter_layers(model)}
    for name, module in list(model.named_modules(remove_duplicate=False)):
        if id(module) in wrappers:
            _set_submodule(model, name, module.base_layer)
    for _, owner, param_name, _ in list(parameter_deltas(model)):
        parametrize.remove_parametrizations(owner, param_name, leave_parametrized=False)
    if hasattr(model, "flora_config"):
        del model.flora_config
    return model


def merge_and_unload(model: nn.Module) -> nn.Module:
    """The plain model with every update merged in (no copies of the base weights are kept)."""
    return unload(merge(model, keep_base=False))


def set_adapters_enabled(model: nn.Module, enabled: bool) -> None:
    """Turn every adapter off (base model outputs) or on again; refused while merged (the weights hold dW)."""
    if not enabled and is_merged(model):
        raise ValueError("adapters are merged into the base weights; call flora.unmerge(model) before disabling them")
    for _, layer in adapter_layers(model):
        layer.disabled = not enabled
    for *_, delta in parameter_deltas(model):
        delta.disabled = not enabled


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable, adapter (FLoRA's cores and factors, native or inside PEFT) and total counts, each tensor once."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters()}
    adapter_ids = {id(p) for m in model.modules() if isinstance(m, TuckerDelta) for p in (m.core, *m.factors)}
    return {
        "trainable": sum(p.numel() for p in seen.values() if p.requires_grad),
        "adapter": sum(p.numel() for i, p in seen.items() if i in adapter_ids),
        "total": sum(p.numel() for p in seen.values()),
    }
