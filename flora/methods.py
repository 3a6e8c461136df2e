"""``attach(model, mapping)``: FLoRA from a plain mapping, such as a Hydra method config.

The comparison baselines (head-only, full fine-tuning, BitFit, PEFT's LoRA and DoRA) are not part of this
library; the experiment runner's method registry (``experiments.methods``) applies them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from flora.config import FloraConfig
from flora.model import inject


def attach(model: nn.Module, method_cfg: Mapping[str, Any]) -> nn.Module:
    """``inject(model, FloraConfig(**method_cfg))``; ``name`` may be given and must be 'flora', None means default."""
    cfg = {k: plain(v) for k, v in dict(method_cfg).items() if v is not None}
    name = cfg.pop("name", "flora")
    if name != "flora":
        raise ValueError(
            f"flora.attach applies FLoRA only, got method {name!r}; the comparison baselines (lora, dora, full, head, "
            "bitfit) are applied by the experiment runner's registry, experiments.methods"
        )
    return inject(model, FloraConfig.from_dict(cfg))


def plain(value: Any) -> Any:
    """Hydra hands over ListConfig/DictConfig; turn them into lists and dicts."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(v) for v in value]
    return value
