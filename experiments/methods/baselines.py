"""FLoRA through its library, and the baselines without adapters: full fine-tuning, head only and BitFit."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from torch import nn

import flora
from experiments.methods import register
from flora.model import apply_plan, plan_injection


def train_only(model: nn.Module, modules_to_save: list[str], method: str) -> None:
    """Freeze ``model`` except the named modules; a missing name is an error naming what exists."""
    model.requires_grad_(False)
    for name in modules_to_save:
        try:
            model.get_submodule(name).requires_grad_(True)
        except AttributeError:
            top = [n for n, _ in model.named_children()]
            raise ValueError(
                f"{method}: modules_to_save names '{name}', which the model lacks; top-level modules: {top}"
            ) from None


@register("flora", {f.name for f in fields(flora.FloraConfig)})
def apply_flora(model: nn.Module, cfg: dict[str, Any]) -> nn.Module:
    """flora.inject, refusing a rank that no adapted layer can take: ranks are capped at each mode's size, so
    rank=100000 would silently run at the layers' full ranks while the table's label said r=100000."""
    config = flora.FloraConfig.from_dict(cfg)
    plan = plan_injection(model, config)
    channel_ranks = [max(layer.ranks[:2]) for _, layer in plan.layers]
    if isinstance(config.rank, int) and channel_ranks and config.rank > max(channel_ranks):
        raise ValueError(
            f"method.rank={config.rank} exceeds every adapted layer: ranks are capped at each mode's size and the "
            f"largest usable here is {max(channel_ranks)}; choose method.rank <= {max(channel_ranks)}"
        )
    return apply_plan(model, plan)


@register("full", set())
def apply_full(model: nn.Module, cfg: dict[str, Any]) -> nn.Module:
    return model.requires_grad_(True)


@register("head", {"modules_to_save"})
def apply_head(model: nn.Module, cfg: dict[str, Any]) -> nn.Module:
    if not cfg.get("modules_to_save"):
        raise ValueError("method 'head' (linear probe) needs modules_to_save naming the task head, e.g. ['classifier']")
    train_only(model, list(cfg["modules_to_save"]), "head")
    return model


@register("bitfit", {"modules_to_save"})
def apply_bitfit(model: nn.Module, cfg: dict[str, Any]) -> nn.Module:
    """BitFit (Ben Zaken et al., 2022): every bias of the backbone trains, and the task head in full."""
    train_only(model, list(cfg.get("modules_to_save", [])), "bitfit")
    biases = [p for name, p in model.named_parameters() if name.rpartition(".")[2] == "bias"]
    if not biases:
        raise ValueError(f"method 'bitfit' found no bias parameter in {type(model).__name__}")
    for bias in biases:
        bias.requires_grad_(True)
    return model
