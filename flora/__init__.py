"""FLoRA: low-rank Tucker-core adapters that keep the N-D structure of the weights they fine-tune.

dW = s * G x_1 A_1 x_2 ... x_N A_N for a frozen weight W of order N (Si et al., arXiv 2405.14739).
"""

from flora.checkpoint import load_adapter, save_adapter
from flora.config import FloraConfig
from flora.functional import flora_num_params, lora_num_params, mode_product, tucker_to_tensor
from flora.layers import FloraLayer
from flora.methods import attach
from flora.model import (
    adapter_layers,
    count_parameters,
    inject,
    is_merged,
    merge,
    merge_and_unload,
    set_adapters_enabled,
    unload,
    unmerge,
)

__all__ = [
    "FloraConfig",
    "FloraLayer",
    "adapter_layers",
    "attach",
    "count_parameters",
    "flora_num_params",
    "inject",
    "is_merged",
    "load_adapter",
    "lora_num_params",
    "merge",
    "merge_and_unload",
    "mode_product",
    "save_adapter",
    "set_adapters_enabled",
    "tucker_to_tensor",
    "unload",
    "unmerge",
]
__version__ = "0.1.0"
