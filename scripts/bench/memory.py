"""Extra memory of a training step over the frozen floor.

CPU: bytes of the distinct tensors autograd saves for backward (``saved_tensors_hooks``; parameters and buffers
excluded, since they exist anyway) plus the bytes of the parameter gradients and optimizer state the step
creates. CUDA: ``torch.cuda.max_memory_allocated`` during the step minus what was allocated before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MemoryRecord:
    """Bytes one step needs beyond the weights: activations saved for backward and gradient/optimizer state."""

    activations: int
    gradients: int
    peak: int | None

    @property
    def total(self) -> int:
        return self.peak if self.peak is not None else self.activations + self.gradients


def _storage_key(tensor: torch.Tensor) -> tuple[int, int] | None:
    try:
        storage = tensor.untyped_storage()
    except (RuntimeError, NotImplementedError):
        return None
    return storage.data_ptr(), storage.nbytes()


def _state_bytes(module: nn.Module, optimizer: torch.optim.Optimizer | None) -> int:
    grads = sum(p.grad.nbytes for p in module.parameters() if p.grad is not None)
    if optimizer is None:
        return grads
    state = sum(
        value.nbytes for per_param in optimizer.state.values() for value in per_param.values() if torch.is_tensor(value)
    )
    return grads + state


def measure_memory(
    module: nn.Module, step: Callable[[], None], device: torch.device, optimizer: torch.optim.Optimizer | None = None
) -> MemoryRecord:
    """Memory of one call of ``step`` (forward, backward and, if given, optimizer step) on ``module``."""
    module.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
    else:
        peak = None
    resident = {_storage_key(t) for t in [*module.parameters(), *module.buffers()]}
    saved: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        key = _storage_key(tensor)
        if key is not None and key not in resident:
            saved[key] = key[1]
        return tensor

    module.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return MemoryRecord(activations=sum(saved.values()), gradients=_state_bytes(module, optimizer), peak=peak)
