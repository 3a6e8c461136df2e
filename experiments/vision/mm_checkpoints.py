"""Resuming from the run's own mmengine checkpoints without trusting any other pickle.

mmengine's Runner checkpoints pickle message-hub history (mmengine HistoryBuffer objects, which pickle their
statistics methods through builtins.getattr, and numpy arrays and scalars), which torch's weights-only loading
refuses. Rather than loading every local file of the process with weights_only=False, the engine writes its
checkpoints as tensors and Python builtins only (PlainStateHook) and loads them with torch's default weights-only
unpickler, and its Runner reads no checkpoint outside its own work dir.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner


def plain(value: Any) -> Any:
    """value with numpy scalars as Python numbers and numpy arrays as tensors, through dicts, lists and tuples."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return type(value)((k, plain(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    return value


class PlainStateHook(Hook):
    """Makes each checkpoint weights-only loadable and a resumed run identical to an uninterrupted one.

    Before a save: the message hub's HistoryBuffers become {log, count, max_length} tensors and numbers, numpy
    values elsewhere become tensors or numbers, and the global RNG states (dropout, RoI sampling), which mmengine
    does not restore, are added as tensors and tuples. After a load, before the Runner reads them: all restored.
    """

    priority = "LOWEST"

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        hub = checkpoint["message_hub"]
        hub["log_scalars"] = {
            name: {"log": torch.from_numpy(b.data[0].copy()), "count": torch.from_numpy(b.data[1].copy()),
                   "max_length": b.max_length}
            for name, b in hub["log_scalars"].items()
        }
        for key in ("meta", "message_hub"):
            checkpoint[key] = plain(checkpoint[key])
        name, keys, pos, has_gauss, cached = np.random.get_state()
        checkpoint["rng_state"] = {
            "torch": torch.get_rng_state(),
            "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "python": random.getstate(),
        }

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        hub = checkpoint["message_hub"]
        hub["log_scalars"] = {
            name: HistoryBuffer(b["log"].numpy(), b["count"].numpy(), b["max_length"])
            for name, b in hub["log_scalars"].items()
        }
        state = checkpoint["rng_state"]
        torch.set_rng_state(state["torch"])
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        random.setstate(state["python"])


class OwnCheckpointRunner(Runner):
    """mmengine's Runner that loads checkpoints (resume, and val()'s reload of the last one) only from inside its
    work dir, through mmengine's loader (torch's weights-only unpickling); anything else is refused."""

    def load_checkpoint(self, filename: str, *args: Any, **kwargs: Any) -> dict:
        path = Path(filename).expanduser().resolve()
        work_dir = Path(self.work_dir).resolve()
        if not path.is_relative_to(work_dir):
            raise ValueError(f"refusing to load {path}: the engine only resumes from its own work dir {work_dir}")
        return super().load_checkpoint(str(path), *args, **kwargs)
