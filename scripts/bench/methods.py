"""The methods compared, each applied to a model through ``flora.attach`` at a matched parameter budget.

The floor is the frozen model whose backward still reaches the input (what any adapter needs); the others add
trainable parameters to it. PEFT LoRA/DoRA get the rank whose parameter count is closest to FLoRA's on the same
target layers; layers PEFT cannot adapt (depthwise convs) make a cell "n/a" with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

import flora
from experiments.methods import attach
from flora.functional import lora_num_params


class NotApplicable(Exception):
    """The method cannot run on this layer or model; the message is the reason shown in the table."""


@dataclass(frozen=True)
class Budget:
    """FLoRA's ranks and scale; the PEFT rank is derived from FLoRA's parameter count."""

    rank: int
    kernel_rank: int
    scale: float


# name -> label in the table
METHOD_LABELS = {
    "floor": "frozen base (floor)",
    "flora_factored": "FLoRA factored",
    "flora_auto": "FLoRA auto",
    "flora_dense": "FLoRA materialised (official)",
    "lora": "PEFT LoRA",
    "dora": "PEFT DoRA",
    "full": "full fine-tuning",
}
FLORA_PATHS = {"flora_factored": "factored", "flora_auto": "auto", "flora_dense": "dense"}


def matched_lora_rank(shapes: Sequence[Sequence[int]], flora_params: int) -> int:
    """PEFT LoRA rank whose total count on ``shapes`` is closest to ``flora_params`` (ties: the smaller rank)."""
    largest = max(min(shape[0], shape[1] * max(1, _prod(shape[2:]))) for shape in shapes)
    counts = {r: sum(lora_num_params(shape, r) for shape in shapes) for r in range(1, largest + 1)}
    return min(counts, key=lambda r: (abs(counts[r] - flora_params), r))


def _prod(values: Sequence[int]) -> int:
    result = 1
    for v in values:
        result *= int(v)
    return result


def apply_method(
    model: nn.Module, method: str, targets: list[str], budget: Budget, head: list[str]
) -> tuple[nn.Module, str]:
    """Apply ``method`` to ``model`` in place; returns the model and a note (PEFT rank, chosen paths)."""
    if method == "floor":
        model.requires_grad_(False)
        for name in head:
            model.get_submodule(name).requires_grad_(True)
        return model, ""
    if method == "full":
        return attach(model, {"name": "full"}), ""
    if method in FLORA_PATHS:
        cfg = {
            "name": "flora",
            "target_modules": targets,
            "rank": budget.rank,
            "kernel_rank": budget.kernel_rank,
            "scale": budget.scale,
            "path": FLORA_PATHS[method],
            "modules_to_save": head,
        }
        flora.attach(model, cfg)
        paths = sorted({layer.path for _, layer in flora.adapter_layers(model)})
        return model, "path " + "/".join(paths)
    if method in ("lora", "dora"):
        rank = peft_rank(model, targets, budget)
        grouped = [n for n in targets if getattr(model.get_submodule(n), "groups", 1) > 1]
        if any(rank % model.get_submodule(n).groups for n in grouped):
            raise NotApplicable(f"PEFT needs rank % groups == 0 on grouped/depthwise convs (rank {rank})")
        cfg = {"name": method, "target_modules": targets, "rank": rank, "alpha": rank, "modules_to_save": head}
        return attach(model, cfg), f"rank {rank}"
    raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHOD_LABELS)}")


def flora_budget_params(model: nn.Module, targets: list[str], budget: Budget) -> int:
    """FLoRA's parameter count on ``targets`` without touching ``model``."""
    total = 0
    for name in targets:
        shape = tuple(model.get_submodule(name).weight.shape)
        ranks = [min(budget.rank, s) for s in shape[:2]] + [min(budget.kernel_rank, s) for s in shape[2:]]
        total += flora.flora_num_params(shape, ranks)
    return total


def peft_rank(model: nn.Module, targets: list[str], budget: Budget) -> int:
    shapes = [tuple(model.get_submodule(name).weight.shape) for name in targets]
    return matched_lora_rank(shapes, flora_budget_params(model, targets, budget))
