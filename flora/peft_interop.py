"""FLoRA inside PEFT: ``FloraPeftConfig`` is a ``LoraConfig`` whose layers are FLoRA layers.

PEFT dispatches LoRA layers for unknown module types to user classes registered on the config
(``LoraConfig._register_custom_module``). ``FloraPeftConfig`` registers ``PeftFloraLayer`` for every module
family FLoRA adapts, so ``get_peft_model``, ``save_pretrained``, ``merge_and_unload`` and the rest of PEFT
work unchanged. Only here does the library touch PEFT internals.

Mapping of LoRA's fields: ``r`` is FLoRA's channel rank, ``flora_kernel_rank`` the spatial rank,
``flora_scale`` the scale s (``lora_alpha`` is ignored), ``lora_dropout`` the adapter-input dropout.
Registered custom modules are not serialised by PEFT, so reload with ``from_pretrained`` below (or pass
``config=FloraPeftConfig.from_pretrained(path)`` to ``PeftModel.from_pretrained``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from peft import LoraConfig, PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from flora.layers.conv import ConvDelta
from flora.layers.embedding import EmbeddingDelta
from flora.layers.linear import LinearDelta
from flora.model import ADAPTER_REGISTRY, registry_key, resolve_ranks

_DELTA_FOR_KEY = {
    "Linear": LinearDelta,
    "Conv1D": LinearDelta,
    "Conv1d": ConvDelta,
    "Conv2d": ConvDelta,
    "Conv3d": ConvDelta,
    "Embedding": EmbeddingDelta,
}


class PeftFloraLayer(nn.Module, BaseTunerLayer):
    """A PEFT tuner layer holding one FLoRA update per adapter name under ``lora_flora``."""

    adapter_layer_names = ("lora_flora",)
    other_param_names = ()

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: FloraPeftConfig, r: int, **kwargs) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.lora_flora = nn.ModuleDict()
        self._disable_adapters = False
        self.merged_adapters = []
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, r, config=config)

    def update_layer(self, adapter_name: str, r: int, config: FloraPeftConfig, **kwargs) -> None:
        base = self.get_base_layer()
        key = registry_key(base)
        if key is None:
            raise TypeError(f"FLoRA cannot adapt a {type(base).__name__}; supported: {sorted(ADAPTER_REGISTRY)}")
        _, channel_modes = ADAPTER_REGISTRY[key]
        ranks = resolve_ranks(base.weight.shape, channel_modes, r, config.flora_kernel_rank)
        delta = _DELTA_FOR_KEY[key](
            base, ranks, config.flora_scale, dropout=config.lora_dropout, device=base.weight.device
        )
        delta.path = "factored" if delta.resolve_path() == "factored" else "dense"
        self.lora_flora[adapter_name] = delta
        self.set_adapter(self.active_adapters)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        base = self.get_base_layer()
        result = base(x, *args, **kwargs)
        if self.disable_adapters or self.merged:
            return result
        for name in self.active_adapters:
            if name not in self.lora_flora:
                continue
            delta = self.lora_flora[name]
            inputs = delta.dropout(x)
            if delta.path == "factored":
                update = delta.factored_output(inputs)
            else:
                update = delta.dense_output(base, inputs, delta.delta_weight().to(base.weight.dtype))
            result = result + update.to(result.dtype)
        return result

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        return self.lora_flora[adapter_name].delta_weight()

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        weight = self.get_base_layer().weight
        for name in adapter_names or self.active_adapters:
            if name in self.lora_flora and name not in self.merged_adapters:
                if safe_merge and not torch.isfinite(self.get_delta_weight(name)).all():
                    raise ValueError(f"adapter '{name}' has non-finite weights; refusing to merge it")
                self.lora_flora[name].merge_into(weight.data)
                self.merged_adapters.append(name)

    def unmerge(self) -> None:
        weight = self.get_base_layer().weight
        while self.merged_adapters:
            self.lora_flora[self.merged_adapters.pop()].unmerge_from(weight.data)


def _custom_module_map() -> dict[type[nn.Module], type[nn.Module]]:
    mapping: dict[type[nn.Module], type[nn.Module]] = {
        nn.Linear: PeftFloraLayer,
        nn.Conv1d: PeftFloraLayer,
        nn.Conv2d: PeftFloraLayer,
        nn.Conv3d: PeftFloraLayer,
        nn.Embedding: PeftFloraLayer,
    }
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:
        return mapping
    mapping[Conv1D] = PeftFloraLayer
    return mapping


@dataclass
class FloraPeftConfig(LoraConfig):
    """A ``LoraConfig`` that builds FLoRA layers; see the module docstring for the field mapping."""

    flora_scale: float = field(default=1.0, metadata={"help": "FLoRA's scale s"})
    flora_kernel_rank: int = field(default=2, metadata={"help": "rank of conv kernels' spatial modes"})

    def __post_init__(self) -> None:
        super().__post_init__()
        self._register_custom_module(_custom_module_map())

    @classmethod
    def from_peft_type(cls, **kwargs) -> FloraPeftConfig:
        """PEFT would pick ``LoraConfig`` from the saved peft_type and drop the FLoRA fields; keep this class."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in kwargs.items() if key in known})


def from_pretrained(model: nn.Module, path: str, is_trainable: bool = False) -> PeftModel:
    """``PeftModel.from_pretrained`` with the FLoRA layers registered again (PEFT does not save them)."""
    config = FloraPeftConfig.from_pretrained(path)
    return PeftModel.from_pretrained(model, path, config=config, is_trainable=is_trainable)
