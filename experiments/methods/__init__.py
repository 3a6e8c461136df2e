"""The runner's method registry: FLoRA (through the flora library) and the baselines it is compared with.

Each method is registered by name with the config keys it takes and a function that applies it to a model in
place. ``attach_method`` and ``parameter_counts`` are what the runner and the engines call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from flora.methods import plain
from flora.tucker import TuckerDelta

# Method-config keys the runner reads itself; everything else is the method's own config.
RUNNER_KEYS = ("label", "tag", "learning_rate")


@dataclass(frozen=True)
class Method:
    """A fine-tuning method: how to apply it and which config keys it takes."""

    apply: Callable[[nn.Module, dict[str, Any]], nn.Module]
    keys: frozenset[str]


METHODS: dict[str, Method] = {}


def register(name: str, keys: set[str] | frozenset[str]) -> Callable:
    """Decorator: add ``apply(model, cfg)`` to the registry under ``name``."""

    def add(apply: Callable[[nn.Module, dict[str, Any]], nn.Module]) -> Callable:
        METHODS[name] = Method(apply, frozenset(keys))
        return apply

    return add


def attach(model: nn.Module, method_cfg: Mapping[str, Any]) -> nn.Module:
    """Apply the method named by ``method_cfg['name']`` to ``model`` in place and return it.

    Keys that no method knows are an error (a typo must not fall back to a default); keys of other methods and
    ``None`` values are ignored, so one Hydra method schema can serve every method.
    """
    cfg = {k: plain(v) for k, v in dict(method_cfg).items() if v is not None}
    name = cfg.pop("name", None)
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods are {sorted(METHODS)}")
    every_key = frozenset().union(*(method.keys for method in METHODS.values()))
    unknown = sorted(set(cfg) - every_key)
    if unknown:
        raise ValueError(f"method '{name}' does not take {unknown}; it takes {sorted(METHODS[name].keys)}")
    return METHODS[name].apply(model, {k: v for k, v in cfg.items() if k in METHODS[name].keys})


def attach_config(method: DictConfig) -> dict[str, Any]:
    """The method config as ``attach`` expects it (resolved, runner-only keys removed)."""
    resolved = OmegaConf.to_container(method, resolve=True)
    return {k: v for k, v in resolved.items() if k not in RUNNER_KEYS}


def attach_method(model: nn.Module, method: DictConfig) -> nn.Module:
    """Attach the configured method (FLoRA or a baseline) in place."""
    return attach(model, attach_config(method))


def adapter_parameter_ids(model: nn.Module) -> set[int]:
    """Parameters a method added: FLoRA's cores and factors, and what PEFT tuner layers hold besides their base."""
    ids = {id(p) for m in model.modules() if isinstance(m, TuckerDelta) for p in (m.core, *m.factors)}
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            base = {id(p) for p in module.get_base_layer().parameters()}
            ids.update(id(p) for p in module.parameters() if id(p) not in base)
    return ids


def parameter_counts(model: nn.Module, backbone_total: int) -> dict[str, float]:
    """#params column: trainable, adapter (added by the method; BitFit adds none) and total counts, and both as %
    of the backbone."""
    params = {id(p): p for p in model.parameters()}
    adapter = adapter_parameter_ids(model)
    counts: dict[str, float] = {
        "trainable": sum(p.numel() for p in params.values() if p.requires_grad),
        "adapter": sum(p.numel() for i, p in params.items() if i in adapter),
        "total": sum(p.numel() for p in params.values()),
        "backbone": backbone_total,
    }
    counts["trainable_pct"] = 100.0 * counts["trainable"] / backbone_total
    counts["adapter_pct"] = 100.0 * counts["adapter"] / backbone_total
    return counts


from experiments.methods import baselines, peft_lora  # noqa: E402,F401  (each module registers its methods)
