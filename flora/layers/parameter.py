"""FLoRA on a bare N-D ``nn.Parameter`` (for example a [experts, out, in] mixture-of-experts weight).

Registered through ``torch.nn.utils.parametrize``: the owning module keeps calling its own forward and reads
W + dW wherever it used W. There is no op to factor through, so the update is always materialised.
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from flora.tucker import TuckerDelta


class ParameterDelta(TuckerDelta):
    """A parametrization W -> W + dW; after ``merge`` the stored original already holds W + dW."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.merged = False
        self.disabled = False
        self.path = "merged"

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.merged or self.disabled:
            return weight
        return weight + self.delta_weight().to(weight.dtype)

    def merge_into_original(self, original: torch.Tensor) -> None:
        if not self.merged:
            with torch.no_grad():
                original.add_(self.delta_weight().to(original.dtype))
            self.merged = True

    def unmerge_from_original(self, original: torch.Tensor) -> None:
        if self.merged:
            with torch.no_grad():
                original.sub_(self.delta_weight().to(original.dtype))
            self.merged = False


def register(module: torch.nn.Module, name: str, delta: ParameterDelta) -> None:
    """Attach ``delta`` to ``module.<name>``; the original stays frozen at ``parametrizations.<name>.original``."""
    parametrize.register_parametrization(module, name, delta)
    getattr(module.parametrizations, name).original.requires_grad_(False)
