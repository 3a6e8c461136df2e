"""Which modules FLoRA adapts: type matching by ``isinstance`` (as PEFT does) and name matching by PEFT's rule."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from torch import nn

# Type name (as written in ``FloraConfig.target_types``) -> number of leading "channel" modes that take ``rank``.
CHANNEL_MODES: dict[str, int] = {
    "Linear": 2,
    "Conv1D": 2,
    "Conv1d": 2,
    "Conv2d": 2,
    "Conv3d": 2,
    "Embedding": 2,
}
_TORCH_TYPES: dict[str, type[nn.Module]] = {
    "Linear": nn.Linear,
    "Conv1d": nn.Conv1d,
    "Conv2d": nn.Conv2d,
    "Conv3d": nn.Conv3d,
    "Embedding": nn.Embedding,
}
TYPE_NAMES = tuple(CHANNEL_MODES)


def _transformers_conv1d() -> type[nn.Module] | None:
    """transformers' ``Conv1D`` if transformers is loaded: a model holding one has imported it already."""
    module = sys.modules.get("transformers.pytorch_utils")
    return getattr(module, "Conv1D", None)


def type_key(module: nn.Module) -> str | None:
    """The type name FLoRA adapts ``module`` as (subclasses included), or None."""
    conv1d = _transformers_conv1d()
    if conv1d is not None and isinstance(module, conv1d):
        return "Conv1D"
    for key, base in _TORCH_TYPES.items():
        if isinstance(module, base) and not isinstance(module, nn.modules.conv._ConvTransposeNd):
            return key
    return None


def torch_type(key: str) -> type[nn.Module]:
    """The class ``key`` names (transformers' ``Conv1D`` only when transformers is installed)."""
    if key == "Conv1D":
        from transformers.pytorch_utils import Conv1D

        return Conv1D
    return _TORCH_TYPES[key]


def has_own_forward(module: nn.Module) -> bool:
    """A subclass whose forward differs from its torch base's (timm's Conv2dSame pads, StdConv standardises)."""
    key = type_key(module)
    return key is not None and type(module).forward is not torch_type(key).forward


def name_matches(name: str, targets: Sequence[str] | str | None) -> bool:
    """PEFT's rule: a list entry matches exactly or as a dotted suffix; a string is a full-match regex."""
    if targets is None:
        return False
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)
