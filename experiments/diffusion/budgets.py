"""Method configs at equal budgets: LoRA and DoRA at rank r, FLoRA per layer at the rank nearest LoRA's count.

At one rank FLoRA and LoRA differ in size by layer type (a 3x3 conv's FLoRA core space is far smaller than LoRA's
flattened factors; a linear's FLoRA is LoRA plus an r x r core), so one shared rank would not be a fair comparison.
Each layer's FLoRA channel rank is the one whose count is nearest that layer's LoRA count, so the totals differ by
less than one rank step per layer. DoRA adds one magnitude per output channel to LoRA's count.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from flora.functional import flora_num_params, largest_rank_within_budget, lora_num_params
from flora.model import find_targets, resolve_ranks

ADAPTERS = ("lora", "dora", "flora")
CHANNEL_MODES_OF_WEIGHT = 2  # out and in of a linear or conv weight; the rest are a kernel's spatial modes


def lora_layer_budgets(model: nn.Module, targets: str, rank: int) -> dict[str, int]:
    """{layer: parameters of a PEFT LoRA of ``rank`` on it} (weights flattened to [out, in * k * k])."""
    return {name: lora_num_params(tuple(model.get_submodule(name).weight.shape), rank)
            for name in find_targets(model, targets)}


def nearest_flora_rank(shape: tuple[int, ...], budget: int, kernel_rank: int) -> int:
    """The channel rank whose FLoRA count is nearest ``budget`` (ties to the smaller): the largest rank within it,
    or the next one up when that overshoots by less than the largest falls short (a linear's r x r core)."""
    def count(rank: int) -> int:
        return flora_num_params(shape, resolve_ranks(shape, CHANNEL_MODES_OF_WEIGHT, rank, kernel_rank))

    below = max(1, largest_rank_within_budget(shape, budget, kernel_rank))
    above = below + 1
    if above > max(shape[:CHANNEL_MODES_OF_WEIGHT]) or abs(count(below) - budget) <= abs(count(above) - budget):
        return below
    return above


def flora_rank_pattern(model: nn.Module, budgets: dict[str, int], kernel_rank: int) -> dict[str, int]:
    """{exact-name regex: FLoRA channel rank} matching each layer's budget as nearly as one rank step allows."""
    return {re.escape(name): nearest_flora_rank(tuple(model.get_submodule(name).weight.shape), budget, kernel_rank)
            for name, budget in budgets.items()}


def method_config(method: str, model: nn.Module, cfg: Any) -> dict[str, Any]:
    """What experiments.methods.attach takes for ``method`` on ``model`` (full: everything trains)."""
    if method == "full":
        return {"name": "full"}
    common = {"target_modules": cfg.targets, "modules_to_save": list(cfg.get("modules_to_save", []))}
    if method in ("lora", "dora"):
        return {"name": method, "rank": int(cfg.rank), "alpha": float(cfg.alpha), **common}
    if method == "flora":
        budgets = lora_layer_budgets(model, cfg.targets, int(cfg.rank))
        return {"name": "flora", "rank": int(cfg.rank), "kernel_rank": int(cfg.flora_kernel_rank),
                "scale": float(cfg.flora_scale), "rank_pattern": flora_rank_pattern(model, budgets,
                                                                                    int(cfg.flora_kernel_rank)),
                **common}
    raise ValueError(f"unknown diffusion method {method!r}; choose from full, {', '.join(ADAPTERS)}")
