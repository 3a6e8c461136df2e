"""FLoRA on a bare N-D ``nn.Parameter`` (for example a [experts, out, in] mixture-of-experts weight).

Registered through ``torch.nn.utils.parametrize``: the owning module keeps calling its own forward and reads
W + dW wherever it used W. There is no op to factor through, so the update is always materialised.
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from flora import merging
from flora.tucker import TuckerDelta


class ParameterDelta(TuckerDelta):
    """A parametrization W -> W + dW; after ``merge`` the stored original already holds W + dW."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.merged = False
        self.disabled = False
        self.register_buffer("base_before_merge", None, persistent=False)
        self.path = "merged"

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.merged or self.disabled:
            return weight
        return weight + self.delta_weight().to(weight.dtype)

    def merge_into_original(self, original: torch.Tensor, keep_base: bool = True) -> None:
        merging.merge_into(self, original, keep_base)

    def unmerge_from_original(self, original: torch.Tensor) -> None:
        merging.unmerge_from(self, original)


def register(module: torch.nn.Module, name: str, delta: ParameterDelta) -> None:
    """Attach ``delta`` to ``module.<name>``; the original stays frozen at ``parametrizations.<name>.original``."""
    parametrize.register_parametrization(module, name, delta)
    holder = getattr(module.parametrizations, name)
    holder.original.requires_grad_(False)
    merging.register_state_hooks(holder)
