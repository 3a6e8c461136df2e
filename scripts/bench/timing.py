"""Interleaved timing: every method runs once per round (A B C A B C ...), so machine drift hits all alike.

On CUDA each call is bracketed by CUDA events and synchronised; on the CPU wall time and process CPU time
are both taken (CPU time is less sensitive to other jobs on a shared machine).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from tqdm import tqdm


@dataclass(frozen=True)
class Summary:
    """Median and spread of one method's repetitions, in milliseconds."""

    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float
    cpu_median: float | None

    @classmethod
    def of(cls, wall: list[float], cpu: list[float] | None) -> Summary:
        quartiles = statistics.quantiles(wall, n=4) if len(wall) > 1 else [wall[0]] * 3
        return cls(
            median=statistics.median(wall),
            q1=quartiles[0],
            q3=quartiles[2],
            minimum=min(wall),
            maximum=max(wall),
            cpu_median=statistics.median(cpu) if cpu else None,
        )


def _time_once(fn: Callable[[], None], device: torch.device) -> tuple[float, float | None]:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end), None
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def time_interleaved(
    fns: Mapping[str, Callable[[], None]], device: torch.device, reps: int, warmup: int, desc: str = ""
) -> dict[str, Summary]:
    """Run ``warmup`` untimed rounds, then ``reps`` timed rounds of every function in turn."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in tqdm(range(reps), desc=desc, leave=False):
        for name, fn in fns.items():
            w, c = _time_once(fn, device)
            wall[name].append(w)
            if c is not None:
                cpu[name].append(c)
    return {name: Summary.of(wall[name], cpu[name] or None) for name in fns}
