"""Training engines by name (task.engine), so the runner and the dry run never branch on engine strings.

An engine is a module with `train_run(cfg, record)` (train and evaluate, filling the run record in place) and
`meta_counts(cfg)` (#params of the run's model built on the meta device). Modules are imported on first use:
mmengine/mmcv are slow to import and not installed for language-only work.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from types import ModuleType
from typing import Any

from omegaconf import DictConfig

from experiments.errors import unknown_name

# Language task configs name no engine: their runs' ids hash the task config, so the key stays out of them.
DEFAULT_ENGINE = "hf_trainer"


@dataclass(frozen=True)
class Engine:
    """One engine's module path; its entry points are looked up only when called."""

    name: str
    module: str

    def _load(self) -> ModuleType:
        return import_module(self.module)

    def train_run(self, cfg: DictConfig, record: dict[str, Any]) -> None:
        """Train and evaluate the run cfg describes, filling record in place."""
        self._load().train_run(cfg, record)

    def meta_counts(self, cfg: DictConfig) -> dict[str, float]:
        """#params of the run cfg describes, with no weights, data or memory."""
        return self._load().meta_counts(cfg)


ENGINES = {
    engine.name: engine
    for engine in (
        Engine("hf_trainer", "experiments.engines.hf_trainer"),  # transformers.Trainer: language tasks
        Engine("mmengine", "experiments.engines.mmengine_runner"),  # mmengine Runner: mmseg/mmdet/timm vision tasks
    )
}


def engine_for(task: DictConfig) -> Engine:
    """The engine task.engine names (DEFAULT_ENGINE when it names none)."""
    name = task.get("engine") or DEFAULT_ENGINE
    if name not in ENGINES:
        raise unknown_name("engine (task.engine)", name, ENGINES)
    return ENGINES[name]
