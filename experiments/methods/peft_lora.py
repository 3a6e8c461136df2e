"""PEFT's own LoRA and DoRA as baselines, with the layers PEFT cannot adapt named before PEFT sees them."""

from __future__ import annotations

from typing import Any

from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from experiments.methods import register
from experiments.methods.baselines import train_only
from flora.model import find_targets
from flora.targets import type_key

KEYS = {"target_modules", "target_types", "exclude_modules", "rank", "alpha", "dropout", "modules_to_save"}


def check_peft_can_adapt(model: nn.Module, targets: list[str], rank: int, method: str) -> None:
    """PEFT refuses or mishandles some layers; name each one and the way out."""
    for name in targets:
        module = model.get_submodule(name)
        if type_key(module) is None:
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


def apply_peft(model: nn.Module, cfg: dict[str, Any], use_dora: bool) -> nn.Module:
    method = "dora" if use_dora else "lora"
    if cfg.get("target_modules") is None and cfg.get("target_types") is None:
        raise ValueError(f"method '{method}' needs target_modules (names or a regex) or target_types")
    targets = find_targets(model, cfg.get("target_modules"), cfg.get("target_types"), cfg.get("exclude_modules"))
    rank = cfg.get("rank", 8)
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"method '{method}': rank must be a positive int, got {rank!r}")
    check_peft_can_adapt(model, targets, rank, method)
    peft_cfg = LoraConfig(
        r=rank,
        lora_alpha=float(cfg.get("alpha", rank)),
        lora_dropout=float(cfg.get("dropout", 0.0)),
        target_modules=targets,
        use_dora=use_dora,
        bias="none",
    )
    inject_adapter_in_model(peft_cfg, model)
    train_only(model, list(cfg.get("modules_to_save", [])), method)
    for param_name, param in model.named_parameters():
        if "lora_" in param_name:
            param.requires_grad_(True)
    return model


@register("lora", KEYS)
def apply_lora(model: nn.Module, cfg: dict[str, Any]) -> nn.Module:
    return apply_peft(model, cfg, use_dora=False)


@register("dora", KEYS)
def apply_dora(model: nn.Module, cfg: dict[str, Any]) -> nn.Module:
    return apply_peft(model, cfg, use_dora=True)
