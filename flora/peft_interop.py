"""FLoRA inside PEFT: ``FloraPeftConfig`` is a ``LoraConfig`` whose layers are FLoRA layers.

``FloraPeftLayer`` subclasses PEFT's ``LoraLayer`` (as PEFT's documentation asks of custom layers), so PEFT's model
operations treat it as one of their own: several adapters per layer, ``set_adapter``, ``delete_adapter``,
``disable_adapter`` (merged or not), ``merge_and_unload(adapter_names=...)``, the inference-mode freeze,
``autocast_adapter_dtype`` and ``get_layer_status``. Only this module touches PEFT.

Mapping of LoRA's fields: ``r`` is FLoRA's channel rank, ``flora_kernel_rank`` the spatial rank, ``flora_scale``
the scale s (``lora_alpha`` is ignored), ``lora_dropout`` the adapter-input dropout, ``init_lora_weights=False``
starts the core random instead of at zero.

Loading: PEFT builds the config class from the saved ``peft_type`` and accepts only names of its closed
``PeftType`` enum, so a FLoRA checkpoint read by ``PeftModel.from_pretrained`` alone would come back as plain
LoRA. ``from_pretrained`` and ``load_adapter`` below read the ``FloraPeftConfig`` first and otherwise are PEFT's
own calls (same arguments: adapter name, ``is_trainable``, ``low_cpu_mem_usage``, ...).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from peft import LoraConfig, PeftModel
from peft.tuners.lora import LoraLayer
from peft.tuners.tuners_utils import check_adapters_to_merge
from torch import nn
from torch.func import functional_call
from transformers.pytorch_utils import Conv1D

from flora.layers.base import GeometryDelta, StandsInForBase
from flora.layers.conv import ConvDelta
from flora.layers.embedding import EmbeddingDelta
from flora.layers.linear import LinearDelta
from flora.model import resolve_ranks
from flora.targets import CHANNEL_MODES, TYPE_NAMES, type_key
from flora.tucker import validate_ranks

_DELTA_FOR_KEY: dict[str, type[GeometryDelta]] = {
    "Linear": LinearDelta,
    "Conv1D": LinearDelta,
    "Conv1d": ConvDelta,
    "Conv2d": ConvDelta,
    "Conv3d": ConvDelta,
    "Embedding": EmbeddingDelta,
}


class FloraPeftLayer(StandsInForBase, LoraLayer):
    """A PEFT tuner layer holding one FLoRA update per adapter name in ``lora_flora``."""

    adapter_layer_names = ("lora_flora",)
    other_param_names = ("r", "lora_alpha", "scaling", "lora_dropout", "use_dora", "use_rslora", "lora_bias")

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: FloraPeftConfig, r: int = 0, **kwargs) -> None:
        super().__init__()
        LoraLayer.__init__(self, base_layer, **{k: v for k, v in kwargs.items() if k == "ephemeral_gpu_offload"})
        self.lora_flora = nn.ModuleDict()
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, r, config=config, **kwargs)

    def wrapped_layer(self) -> nn.Module:
        """The innermost base layer (PEFT may nest wrappers)."""
        return self.get_base_layer()

    def update_layer(self, adapter_name: str, r: int, config: LoraConfig, **kwargs) -> None:
        """Add (or replace) adapter ``adapter_name``; PEFT calls this for every further adapter on this layer."""
        if not isinstance(config, FloraPeftConfig):
            raise TypeError(
                f"adapter '{adapter_name}' has a plain {type(config).__name__}, but this layer holds FLoRA adapters; "
                "use FloraPeftConfig, and load FLoRA checkpoints with flora.peft_interop.load_adapter"
            )
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        base = self.get_base_layer()
        key = type_key(base)
        if key is None:
            raise TypeError(f"FLoRA cannot adapt a {type(base).__name__}; supported types: {list(TYPE_NAMES)}")
        shape = tuple(base.weight.shape)
        ranks = resolve_ranks(shape, CHANNEL_MODES[key], r, config.flora_kernel_rank)
        validate_ranks(ranks, shape, f"layer '{kwargs.get('target_name', type(base).__name__)}'")
        delta = _DELTA_FOR_KEY[key](
            base, ranks, config.flora_scale, dropout=config.lora_dropout, device=base.weight.device
        )
        delta.path = delta.resolve_path()
        if config.init_lora_weights is False:
            with torch.no_grad():
                delta.core.normal_(0.0, 1.0 / math.sqrt(max(1, delta.core[0].numel())))
        self.lora_flora[adapter_name] = delta
        self.r[adapter_name] = r
        self.lora_alpha[adapter_name] = config.lora_alpha
        self.scaling[adapter_name] = config.flora_scale
        self.use_dora[adapter_name] = False
        self.use_rslora[adapter_name] = False
        self.lora_bias[adapter_name] = False
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def _active_deltas(self) -> list[GeometryDelta]:
        return [self.lora_flora[name] for name in self.active_adapters if name in self.lora_flora]

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if kwargs.pop("adapter_names", None) is not None:
            raise ValueError("FLoRA layers do not support mixed-adapter batches (adapter_names); use set_adapter")
        base = self.get_base_layer()
        if self.disable_adapters:
            if self.merged:
                self.unmerge()
            return base(x, *args, **kwargs)
        deltas = self._active_deltas()
        if self.merged or not deltas:
            return base(x, *args, **kwargs)
        if deltas[0].custom_forward:
            weight = base.weight
            adapted = weight + sum(delta.delta_weight().to(weight.dtype) for delta in deltas)
            return functional_call(base, {"weight": adapted}, (x, *args), kwargs)
        result = base(x, *args, **kwargs)
        result_dtype = result.dtype
        for delta in deltas:
            inputs = self._cast_input_dtype(x, delta.core.dtype) if x.is_floating_point() else x
            inputs = delta.dropout(inputs)
            if delta.path == "factored":
                update = delta.factored_output(inputs)
            else:
                update = delta.dense_output(base, inputs, delta.delta_weight())
            result = result + update
        return result.to(result_dtype)

    def get_delta_weight(self, adapter: str) -> torch.Tensor:
        return self.lora_flora[adapter].delta_weight()

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        """Add the named (default: active) adapters into the base weight, warning about those already merged."""
        adapter_names = check_adapters_to_merge(self, adapter_names)
        weight = self.get_base_layer().weight
        for name in adapter_names:
            if name not in self.lora_flora:
                continue
            delta = self.get_delta_weight(name).to(weight.dtype)
            if safe_merge:
                merged = weight.data + delta
                if not torch.isfinite(merged).all():
                    raise ValueError(f"NaNs detected in the merged weights. The adapter {name} seems to be broken")
                weight.data = merged
            else:
                weight.data += delta
            self.merged_adapters.append(name)

    def unmerge(self) -> None:
        """Subtract merged adapters in reverse order (as LoRA does: exact to rounding in the weight's dtype)."""
        if not self.merged:
            warnings.warn("Already unmerged. Nothing to do.", stacklevel=2)
            return
        weight = self.get_base_layer().weight
        while self.merged_adapters:
            name = self.merged_adapters.pop()
            if name in self.lora_flora:
                weight.data -= self.get_delta_weight(name).to(weight.dtype)

    def supports_lora_conversion(self, adapter_name: str = "default") -> bool:
        return False

    def __repr__(self) -> str:
        return "flora." + super().__repr__()


def _custom_module_map() -> dict[type[nn.Module], type[nn.Module]]:
    types = [nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding, Conv1D]
    return dict.fromkeys(types, FloraPeftLayer)


@dataclass
class FloraPeftConfig(LoraConfig):
    """A ``LoraConfig`` that builds FLoRA layers; see the module docstring for the field mapping."""

    flora_scale: float = field(default=1.0, metadata={"help": "FLoRA's scale s"})
    flora_kernel_rank: int = field(default=2, metadata={"help": "rank of conv kernels' spatial modes"})

    def __post_init__(self) -> None:
        super().__post_init__()
        refused = {"use_dora": self.use_dora, "use_rslora": self.use_rslora, "lora_bias": self.lora_bias}
        for name, value in refused.items():
            if value:
                raise ValueError(f"FloraPeftConfig: {name}=True is a LoRA variant FLoRA does not have")
        if self.init_lora_weights not in (True, False):
            raise ValueError(
                f"FloraPeftConfig: init_lora_weights={self.init_lora_weights!r}; FLoRA takes True (core at zero, the "
                "adapted model starts as the base) or False (random core)"
            )
        kernel_rank, scale = self.flora_kernel_rank, self.flora_scale
        if isinstance(kernel_rank, bool) or not isinstance(kernel_rank, int) or kernel_rank < 1:
            raise ValueError(f"FloraPeftConfig: flora_kernel_rank must be a positive int, got {kernel_rank!r}")
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
            raise ValueError(f"FloraPeftConfig: flora_scale must be a finite number, got {scale!r}")
        self._register_custom_module(_custom_module_map())

    @classmethod
    def from_peft_type(cls, **kwargs) -> FloraPeftConfig:
        """PEFT would pick ``LoraConfig`` from the saved peft_type and drop the FLoRA fields; keep this class."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in kwargs.items() if key in known})


def from_pretrained(model: nn.Module, path: str, adapter_name: str = "default", **kwargs) -> PeftModel:
    """``PeftModel.from_pretrained`` for a FLoRA checkpoint (``is_trainable``, ``low_cpu_mem_usage``, ... as PEFT's)."""
    config = FloraPeftConfig.from_pretrained(path)
    return PeftModel.from_pretrained(model, path, adapter_name=adapter_name, config=config, **kwargs)


def load_adapter(peft_model: PeftModel, path: str, adapter_name: str, is_trainable: bool = False, **kwargs) -> Any:
    """``peft_model.load_adapter`` for a further FLoRA checkpoint; returns what PEFT's call returns."""
    if adapter_name in peft_model.peft_config:
        raise ValueError(f"adapter '{adapter_name}' already exists; pick another name or delete_adapter it first")
    config = FloraPeftConfig.from_pretrained(path)
    config.inference_mode = not is_trainable
    peft_model.add_adapter(
        adapter_name,
        config,
        low_cpu_mem_usage=kwargs.get("low_cpu_mem_usage", False),
        autocast_adapter_dtype=kwargs.get("autocast_adapter_dtype", True),
    )
    if is_trainable:
        peft_model.set_requires_grad(adapter_name)
    return peft_model.load_adapter(path, adapter_name, is_trainable=is_trainable, **kwargs)
