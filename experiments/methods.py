"""The runner's only contact with the adapter library: flora.attach and flora.count_parameters."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

import flora

# Method-config keys the runner reads itself; everything else is flora.attach's method_cfg.
RUNNER_KEYS = ("label", "tag", "learning_rate")


def attach_config(method: DictConfig) -> dict[str, Any]:
    """The method config as flora.attach expects it (resolved, runner-only keys removed)."""
    resolved = OmegaConf.to_container(method, resolve=True)
    return {k: v for k, v in resolved.items() if k not in RUNNER_KEYS}


def attach_method(model: nn.Module, method: DictConfig) -> nn.Module:
    """Attach the configured method (FLoRA, a PEFT baseline, full or head-only) in place."""
    return flora.attach(model, attach_config(method))


def parameter_counts(model: nn.Module, backbone_total: int) -> dict[str, float]:
    """#params column: trainable, adapter and total counts, and both as % of the backbone."""
    counts = {k: int(v) for k, v in flora.count_parameters(model).items()}
    counts["backbone"] = backbone_total
    counts["trainable_pct"] = 100.0 * counts["trainable"] / backbone_total
    counts["adapter_pct"] = 100.0 * counts["adapter"] / backbone_total
    return counts
