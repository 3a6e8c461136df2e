"""Why a method costs what it costs: a torch.profiler comparison of its step against the floor's, op by op,
and the multiply-add bound of each FLoRA path (what no implementation of that path can beat).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from flora.layers.base import FACTORED_TRAINING_COST


def op_times(step: Callable[[], None], device: torch.device, reps: int) -> dict[str, float]:
    """Self time per op name in ms per step (device time on CUDA, CPU time otherwise)."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(reps):
            step()
        if cuda:
            torch.cuda.synchronize(device)
    times = {}
    for event in prof.key_averages():
        us = event.self_device_time_total if cuda else event.self_cpu_time_total
        if us > 0:
            times[event.key] = us / 1e3 / reps
    return times


def extra_ops(
    floor: Callable[[], None], method: Callable[[], None], device: torch.device, reps: int = 3, top: int = 6
) -> list[tuple[str, float, float]]:
    """The ops that add most time to ``method`` over ``floor``: (op, floor ms, method ms) per step."""
    base, other = op_times(floor, device, reps), op_times(method, device, reps)
    names = sorted(set(base) | set(other), key=lambda k: other.get(k, 0.0) - base.get(k, 0.0), reverse=True)
    return [(name, base.get(name, 0.0), other.get(name, 0.0)) for name in names[:top]]


def mac_bounds(layer: torch.nn.Module) -> dict[str, float]:
    """Time over the floor implied by multiply-adds alone, per path, for a FLoRA layer.

    The floor runs the base op forward and its input gradient (2 x base MACs per output position); the merged
    path adds the full weight gradient (``weight_grad_macs``), the factored path about three times its forward
    (``FACTORED_TRAINING_COST x factored_macs``).
    """
    base = float(math.prod(layer.weight_shape))
    return {
        "factored": 1.0 + FACTORED_TRAINING_COST * layer.factored_macs() / (2.0 * base),
        "merged": 1.0 + layer.weight_grad_macs() / (2.0 * base),
    }
