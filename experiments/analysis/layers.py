"""Every adapted layer of a model as a lazy `AdaptedUpdate`: FLoRA (native or inside PEFT), PEFT LoRA and DoRA.

Each update computes its statistics on demand and drops its tensors before the next, so a whole-model pass never
holds more than one layer's dW. FLoRA and LoRA updates are low-rank products and never materialise dW at all;
DoRA's update (W' - W, with W' the magnitude-rescaled W + BA) has full rank, so it is the one dense case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from peft.tuners.lora import LoraLayer
from torch import nn

from experiments.analysis.update_norms import UpdateStats, unfold, update_stats
from flora.functional import tucker_to_tensor
from flora.layers.base import FloraLayer
from flora.model import parameter_deltas
from flora.peft_interop import FloraPeftLayer
from flora.tucker import TuckerDelta


@dataclass(frozen=True)
class AdaptedUpdate:
    """One adapter on one weight: its name, method and rank r (the number of singular directions the factor
    keeps), and a function computing its statistics now."""

    name: str
    method: str
    rank: int
    compute: Callable[[], UpdateStats]


def _refuse_merged(name: str, merged: bool) -> None:
    if merged:
        raise ValueError(f"layer '{name}' is merged: its base weight already holds dW; unmerge before measuring")


def tucker_stats(delta: TuckerDelta, weight: torch.Tensor) -> UpdateStats:
    """A FLoRA update in the mode-0 unfolding: dW = A_0 (s * G x_1 A_1 ... x_N A_N with mode 0 left at r_0)."""
    if type(delta).delta_weight is not TuckerDelta.delta_weight:  # a geometry that edits dW (embedding padding)
        return update_stats(unfold(weight), delta.ranks[0], delta=unfold(delta.delta_weight()))
    first, *rest = delta.factors
    identity = torch.eye(first.shape[1], dtype=first.dtype, device=first.device)
    right = unfold(tucker_to_tensor(delta.scale * delta.core, [identity, *rest]))
    return update_stats(unfold(weight), delta.ranks[0], left=first, right=right)


def _matrix(layer: LoraLayer, tensor: torch.Tensor) -> torch.Tensor:
    """A base-layout tensor as [out, rest] (Conv1D-style layers store [in, out])."""
    return tensor.mT if getattr(layer, "fan_in_fan_out", False) else unfold(tensor)


def lora_stats(layer: LoraLayer, adapter: str) -> UpdateStats:
    """PEFT LoRA: dW = scaling * B A, taken as thin factors for linears and ungrouped convs."""
    base = layer.get_base_layer()
    rank = int(layer.r[adapter])
    dense_layer = isinstance(base, nn.Linear) or (isinstance(base, nn.modules.conv._ConvNd) and base.groups == 1)
    if not dense_layer or adapter not in layer.lora_A:
        return update_stats(_matrix(layer, base.weight), rank, delta=_matrix(layer, layer.get_delta_weight(adapter)))
    left = unfold(layer.lora_B[adapter].weight)
    right = layer.scaling[adapter] * unfold(layer.lora_A[adapter].weight)
    return update_stats(_matrix(layer, base.weight), rank, left=left, right=right)


def dora_stats(layer: LoraLayer, adapter: str) -> UpdateStats:
    """PEFT DoRA: W' = m * (W + dW_lora) / ||W + dW_lora|| (norm per output channel), update W' - W."""
    base = layer.get_base_layer()
    if not isinstance(base, nn.Linear | nn.modules.conv._ConvNd):
        raise TypeError(f"DoRA statistics cover Linear and Conv layers, not {type(base).__name__}")
    weight = _matrix(layer, base.weight).to(torch.float64)
    combined = weight + _matrix(layer, layer.get_delta_weight(adapter)).to(torch.float64)
    magnitude = layer.lora_magnitude_vector[adapter].weight.reshape(-1, 1).to(torch.float64)
    adapted = magnitude * combined / torch.linalg.vector_norm(combined, dim=1, keepdim=True)
    return update_stats(weight, int(layer.r[adapter]), delta=adapted - weight)


def _peft_updates(name: str, layer: LoraLayer) -> Iterator[AdaptedUpdate]:
    _refuse_merged(name, layer.merged)
    several = len(layer.active_adapters) > 1
    for adapter in layer.active_adapters:
        label = f"{name}[{adapter}]" if several else name
        if isinstance(layer, FloraPeftLayer):
            if adapter in layer.lora_flora:
                delta = layer.lora_flora[adapter]
                weight = layer.get_base_layer().weight
                yield AdaptedUpdate(label, "flora", delta.ranks[0], lambda d=delta, w=weight: tucker_stats(d, w))
        elif adapter in layer.lora_A or adapter in getattr(layer, "lora_embedding_A", {}):
            dora = adapter in layer.lora_magnitude_vector
            stats = dora_stats if dora else lora_stats
            yield AdaptedUpdate(label, "dora" if dora else "lora", int(layer.r[adapter]),
                                lambda s=stats, a=adapter: s(layer, a))


def adapted_updates(model: nn.Module) -> Iterator[AdaptedUpdate]:
    """Every active adapter of ``model`` in module order; a merged layer is refused (its W holds dW)."""
    for name, module in model.named_modules():
        if isinstance(module, FloraLayer):
            _refuse_merged(name, module.merged)
            if not module.disabled:
                weight = module.base_layer.weight
                yield AdaptedUpdate(name, "flora", module.ranks[0], lambda m=module, w=weight: tucker_stats(m, w))
        elif isinstance(module, LoraLayer):
            yield from _peft_updates(name, module)
    for owner_name, owner, param_name, delta in parameter_deltas(model):
        name = f"{owner_name}.{param_name}" if owner_name else param_name
        _refuse_merged(name, delta.merged)
        if not delta.disabled:
            original = getattr(owner.parametrizations, param_name).original
            yield AdaptedUpdate(name, "flora", delta.ranks[0], lambda d=delta, w=original: tucker_stats(d, w))


@torch.no_grad()
def model_update_stats(model: nn.Module) -> dict[str, UpdateStats]:
    """{layer name: stats} over every adapted layer, one layer at a time; empty when nothing is adapted."""
    return {update.name: update.compute() for update in adapted_updates(model)}
