"""Merging dW into a base weight so that unmerge restores it bit for bit, and a state dict that says it is merged.

``merge`` keeps a copy of the base weight (``base_before_merge``, a non-persistent buffer so ``.to()`` moves it):
W + dW rounds in the weight's dtype, so subtracting dW again is exact only to rounding (about 1e-3 relative in
bf16). ``merge(keep_base=False)`` skips the copy and unmerge then subtracts dW.

A module's state dict carries ``flora_merged`` (and the kept copy), so loading a merged model's state dict
restores merged adapters, and loading an unmerged one into a merged model unmerges, loads and merges again
instead of adding dW twice. The hooks are plain functions of the module they are registered on (deep copies
and pickles keep working).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

MERGED_KEY = "flora_merged"
BASE_KEY = "flora_base_before_merge"


class Mergeable(Protocol):
    merged: bool
    disabled: bool
    base_before_merge: torch.Tensor | None

    def delta_weight(self) -> torch.Tensor: ...


@torch.no_grad()
def merge_into(delta: Mergeable, weight: torch.Tensor, keep_base: bool = True) -> None:
    """W <- W + dW, keeping W's bits when ``keep_base``; refused while the adapter is disabled."""
    if delta.merged:
        return
    if delta.disabled:
        raise ValueError("cannot merge a disabled adapter (it would change the output); enable it first")
    delta.base_before_merge = weight.detach().clone() if keep_base else None
    weight.add_(delta.delta_weight().to(weight.dtype))
    delta.merged = True


@torch.no_grad()
def unmerge_from(delta: Mergeable, weight: torch.Tensor) -> None:
    """Restore W: the kept copy if there is one (bit for bit), else W + dW - dW (exact to rounding)."""
    if not delta.merged:
        return
    if delta.base_before_merge is not None:
        weight.copy_(delta.base_before_merge)
    else:
        weight.sub_(delta.delta_weight().to(weight.dtype))
    delta.base_before_merge = None
    delta.merged = False


def register_state_hooks(holder: nn.Module) -> None:
    """Make ``holder``'s state dict carry the merged state of the adapter it holds (see ``merge_target``)."""
    holder.register_state_dict_post_hook(_save_merge_state)
    holder.register_load_state_dict_pre_hook(_before_load)
    holder.register_load_state_dict_post_hook(_after_load)


def merge_target(holder: nn.Module) -> tuple[Mergeable, torch.Tensor, str]:
    """(adapter, base weight, key of the weight in ``holder``'s state dict) for a layer or a parametrization list."""
    from flora.layers.base import FloraLayer
    from flora.layers.parameter import ParameterDelta

    if isinstance(holder, FloraLayer):
        return holder, holder.base_layer.weight, "base_layer.weight"
    delta = next(module for module in holder.children() if isinstance(module, ParameterDelta))
    return delta, holder.original, "original"


def _save_merge_state(holder: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    delta, _, _ = merge_target(holder)
    state_dict[prefix + MERGED_KEY] = torch.tensor(delta.merged)
    if delta.base_before_merge is not None:
        state_dict[prefix + BASE_KEY] = delta.base_before_merge.detach()


def _before_load(holder: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Take the merged state out of the incoming dict and unmerge, so every tensor loads onto the plain base."""
    delta, weight, weight_key = merge_target(holder)
    flag = state_dict.pop(prefix + MERGED_KEY, None)
    kept = state_dict.pop(prefix + BASE_KEY, None)
    was_merged = delta.merged
    unmerge_from(delta, weight)
    holder._flora_pending_load = (flag, kept, prefix + weight_key in state_dict, was_merged)


def _after_load(holder: nn.Module, incompatible_keys) -> None:
    """A loaded weight is in the state its dict says; without a flag the model keeps the merged state it had."""
    pending = holder.__dict__.pop("_flora_pending_load", None)
    if pending is None:
        return
    flag, kept, weight_loaded, was_merged = pending
    delta, weight, _ = merge_target(holder)
    if weight_loaded and flag is not None:
        delta.merged = bool(flag)
        delta.base_before_merge = kept.to(weight.device, weight.dtype) if delta.merged and kept is not None else None
    elif (bool(flag) if flag is not None else was_merged) and weight.device.type != "meta":
        merge_into(delta, weight, keep_base=True)
