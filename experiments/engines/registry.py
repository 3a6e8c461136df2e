"""Training engines by name (task.engine), so the runner and the dry run never branch on engine strings.

An engine is a module with `train_run(cfg, ctx) -> EngineResult` (train and evaluate; see engines/base.py) and
`meta_counts(cfg)` (#params of the run's model built on the meta device). Modules are imported on first use:
mmengine/mmcv are slow to import and not installed for language-only work.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from types import ModuleType

from omegaconf import DictConfig

from experiments.engines.base import EngineResult, RunContext
from experiments.errors import unknown_name

# Language task configs name no engine: their runs' ids hash the task config, so the key stays out of them.
DEFAULT_ENGINE = "hf_trainer"


@dataclass(frozen=True)
class Engine:
    """One engine's module path and the code that decides its runs' results (glob patterns beside the common
    code in experiments.provenance.COMMON_CODE); its entry points are looked up only when called."""

    name: str
    module: str
    code: tuple[str, ...] = ()

    def _load(self) -> ModuleType:
        return import_module(self.module)

    def train_run(self, cfg: DictConfig, ctx: RunContext) -> EngineResult:
        """Train and evaluate the run cfg describes."""
        return self._load().train_run(cfg, ctx)

    def meta_counts(self, cfg: DictConfig) -> dict[str, float]:
        """#params of the run cfg describes, with no weights, data or memory."""
        return self._load().meta_counts(cfg)


ENGINES = {
    engine.name: engine
    for engine in (
        # transformers.Trainer: language tasks
        Engine("hf_trainer", "experiments.engines.hf_trainer", ("experiments/engines/hf_trainer.py",
                                                                 "experiments/language/**/*.py", "configs/arch/**/*")),
        # mmengine Runner: mmseg/mmdet/timm vision tasks
        Engine("mmengine", "experiments.engines.mmengine_runner", ("experiments/engines/mmengine_runner.py",
                                                                   "experiments/vision/**/*.py", "configs/mm/**/*")),
        # transformers.Trainer on LlavaForConditionalGeneration: the multimodal table
        Engine("llava", "experiments.engines.llava", ("experiments/engines/llava.py", "experiments/multimodal/**/*.py",
                                                      "configs/deepspeed/**/*", "requirements-multimodal.txt")),
    )
}


def engine_for(task: DictConfig) -> Engine:
    """The engine task.engine names (DEFAULT_ENGINE when it names none)."""
    name = task.get("engine") or DEFAULT_ENGINE
    if name not in ENGINES:
        raise unknown_name("engine (task.engine)", name, ENGINES)
    return ENGINES[name]
