"""Where generated data and pretrained weights live: outside git, once per machine."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def cache_root() -> Path:
    """$FLORA_CACHE, or ~/.cache/flora-repro (the same root scripts/build_mmcv.sh caches its wheel in)."""
    return Path(os.environ.get("FLORA_CACHE", Path.home() / ".cache" / "flora-repro"))


def set_cpu_threads() -> int:
    """Intra-op threads for CPU training: $FLORA_NUM_THREADS, default 1. On the shared 2-core machines two
    threads are about 5x slower than one once other jobs run (the workers spin waiting for each other)."""
    threads = int(os.environ.get("FLORA_NUM_THREADS", "1"))
    if not torch.cuda.is_available():
        torch.set_num_threads(threads)
    return threads
