"""``attach(model, method_cfg)``: the one entry point that applies FLoRA or a baseline to a model.

Methods are looked up by name in ``METHODS``; each declares the config keys it understands, so a typo in
an experiment config fails loudly instead of silently falling back to a default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from torch import nn

from flora.config import FloraConfig
from flora.model import find_targets, inject, registry_key


@dataclass(frozen=True)
class Method:
    """A fine-tuning method: how to apply it and which config keys it takes."""

    apply: Callable[[nn.Module, dict[str, Any]], nn.Module]
    keys: frozenset[str]


def _freeze_all_but(model: nn.Module, modules_to_save: list[str]) -> None:
    for param in model.parameters():
        param.requires_grad_(False)
    for name in modules_to_save:
        try:
            model.get_submodule(name).requires_grad_(True)
        except AttributeError:
            top = [n for n, _ in model.named_children()]
            raise ValueError(
                f"modules_to_save names '{name}', which the model lacks; top-level modules: {top}"
            ) from None


def _apply_flora(model: nn.Module, cfg: dict[str, Any]) -> nn.Module:
    return inject(model, FloraConfig.from_dict(cfg))


def _check_peft_can_adapt(model: nn.Module, targets: list[str], rank: int, method: str) -> None:
    """PEFT refuses or mishandles some layers; name each one and the way out before PEFT sees it."""
    for name in targets:
        module = model.get_submodule(name)
        if registry_key(module) is None:
            raise TypeError(
                f"{method}: module '{name}' is a {type(module).__name__}, which PEFT's LoRA layers do "
                "not adapt; narrow target_modules or add it to exclude_modules"
            )
        groups = getattr(module, "groups", 1)
        if groups > 1 and rank % groups != 0:
            raise ValueError(
                f"{method}: PEFT cannot adapt grouped conv '{name}' (groups={groups}) at rank {rank}: the rank must "
                f"be a multiple of groups. Add it to exclude_modules, pick a rank divisible by {groups}, or use "
                "method 'flora', which adapts grouped and depthwise convs"
            )


def _apply_peft(model: nn.Module, cfg: dict[str, Any], use_dora: bool) -> nn.Module:
    from peft import LoraConfig, inject_adapter_in_model

    method = "dora" if use_dora else "lora"
    match = FloraConfig(
        target_modules=cfg.get("target_modules"),
        target_types=cfg.get("target_types"),
        exclude_modules=cfg.get("exclude_modules"),
    )
    targets = find_targets(model, match)
    rank = int(cfg.get("rank", 8))
    _check_peft_can_adapt(model, targets, rank, method)
    peft_cfg = LoraConfig(
        r=rank,
        lora_alpha=float(cfg.get("alpha", rank)),
        lora_dropout=float(cfg.get("dropout", 0.0)),
        target_modules=targets,
        use_dora=use_dora,
        bias="none",
    )
    inject_adapter_in_model(peft_cfg, model)
    for param_name, param in model.named_parameters():
        param.requires_grad_("lora_" in param_name)
    for name in cfg.get("modules_to_save", []):
        model.get_submodule(name).requires_grad_(True)
    return model


def _apply_full(model: nn.Module, cfg: dict[str, Any]) -> nn.Module:
    model.requires_grad_(True)
    return model


def _apply_head(model: nn.Module, cfg: dict[str, Any]) -> nn.Module:
    if not cfg.get("modules_to_save"):
        raise ValueError("method 'head' (linear probe) needs modules_to_save naming the task head, e.g. ['classifier']")
    _freeze_all_but(model, list(cfg["modules_to_save"]))
    return model


_PEFT_KEYS = frozenset(
    {"target_modules", "target_types", "exclude_modules", "rank", "alpha", "dropout", "modules_to_save"}
)
METHODS: dict[str, Method] = {
    "flora": Method(_apply_flora, frozenset(f.name for f in fields(FloraConfig))),
    "lora": Method(lambda m, c: _apply_peft(m, c, use_dora=False), _PEFT_KEYS),
    "dora": Method(lambda m, c: _apply_peft(m, c, use_dora=True), _PEFT_KEYS),
    "full": Method(_apply_full, frozenset()),
    "head": Method(_apply_head, frozenset({"modules_to_save"})),
}


def attach(model: nn.Module, method_cfg: Mapping[str, Any]) -> nn.Module:
    """Apply the method named by ``method_cfg['name']`` to ``model`` in place and return it.

    Keys that no method knows are an error (a typo must not fall back to a default); keys of other methods and
    ``None`` values are ignored, so one Hydra method schema can serve every method.
    """
    cfg = {k: _plain(v) for k, v in dict(method_cfg).items() if v is not None}
    name = cfg.pop("name", None)
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods are {sorted(METHODS)}")
    every_key = frozenset().union(*(method.keys for method in METHODS.values()))
    unknown = sorted(set(cfg) - every_key)
    if unknown:
        raise ValueError(f"method '{name}' does not take {unknown}; it takes {sorted(METHODS[name].keys)}")
    return METHODS[name].apply(model, {k: v for k, v in cfg.items() if k in METHODS[name].keys})


def _plain(value: Any) -> Any:
    """Hydra hands over ListConfig/DictConfig; turn them into lists and dicts."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "ListConfig":
        return [_plain(v) for v in value]
    return value
