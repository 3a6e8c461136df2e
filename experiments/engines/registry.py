"""Training engines by name (task.engine), so the runner and the dry run never branch on engine strings.

An engine is a module with `train_run(cfg, ctx) -> EngineResult` (train and evaluate; see engines/base.py) and
`meta_counts(cfg)` (#params of the run's model built on the meta device). Modules are imported on first use:
mmengine/mmcv are slow to import and not installed for language-only work.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import ModuleType

from omegaconf import DictConfig, OmegaConf

from experiments.config import REPO_ROOT
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


VISION_CODE = ("experiments/engines/mmengine_runner.py", "experiments/vision/**/*.py")
MM_CONFIG_DIR = "configs/mm"

BASE_ENGINES = {
    engine.name: engine
    for engine in (
        # transformers.Trainer: language tasks
        Engine(
            "hf_trainer",
            "experiments.engines.hf_trainer",
            ("experiments/engines/hf_trainer.py", "experiments/language/**/*.py", "configs/arch/**/*"),
        ),
        # mmengine Runner: mmseg/mmdet/timm vision tasks (a run whose mm config is unknown: every mm config counts)
        Engine("mmengine", "experiments.engines.mmengine_runner", (*VISION_CODE, f"{MM_CONFIG_DIR}/**/*")),
        # transformers.Trainer on LlavaForConditionalGeneration: the multimodal table
        Engine(
            "llava",
            "experiments.engines.llava",
            (
                "experiments/engines/llava.py",
                "experiments/multimodal/**/*.py",
                "configs/deepspeed/**/*",
                "requirements-multimodal.txt",
            ),
        ),
    )
}


def local_bases(mm_config: Path) -> list[Path]:
    """The project files an mm config inherits, itself first (its `_base_` entries that are paths; package bases
    such as `mmdet::...` are pinned by the package versions each record carries)."""
    chain, pending = [], [mm_config]
    while pending:
        file = pending.pop()
        if file in chain:
            continue
        chain.append(file)
        for statement in ast.parse(file.read_text(), filename=str(file)).body:
            if isinstance(statement, ast.Assign) and any(getattr(t, "id", None) == "_base_" for t in statement.targets):
                bases = ast.literal_eval(statement.value)
                bases = [bases] if isinstance(bases, str) else bases
                pending += [(file.parent / base).resolve() for base in bases if "::" not in base]
    return chain


def mm_family_name(mm_config: str) -> str:
    return f"mmengine[{Path(mm_config).stem}]"


def mm_config_families() -> dict[str, Engine]:
    """One fingerprint family per mm config: a vision run depends on its own config chain, so a config added or
    changed for one table leaves the other tables' records standing."""
    families = {}
    for mm_config in sorted((REPO_ROOT / MM_CONFIG_DIR).glob("[!_]*.py")):
        chain = tuple(file.relative_to(REPO_ROOT).as_posix() for file in local_bases(mm_config))
        name = mm_family_name(chain[0])
        families[name] = Engine(name, BASE_ENGINES["mmengine"].module, (*VISION_CODE, *chain))
    return families


ENGINES = {**BASE_ENGINES, **mm_config_families()}


def _run_config(task: DictConfig) -> DictConfig | None:
    """The run config a task node belongs to (None for a task config on its own)."""
    parent = task._get_parent()
    return parent if isinstance(parent, DictConfig) else None


def engine_for(task: DictConfig) -> Engine:
    """The engine task.engine names (DEFAULT_ENGINE when it names none); for an mmengine run, the family of the mm
    config its backbone names for the task (backbone.mm_configs), so its fingerprint covers that config only."""
    name = task.get("engine") or DEFAULT_ENGINE
    if name not in BASE_ENGINES:
        raise unknown_name("engine (task.engine)", name, BASE_ENGINES)
    run = _run_config(task)
    mm_configs = OmegaConf.select(run, "backbone.mm_configs", default=None) if run is not None else None
    if name == "mmengine" and mm_configs and task.get("name") in mm_configs:
        family = mm_family_name(mm_configs[task.name])
        if family in ENGINES:
            return ENGINES[family]
    return ENGINES[name]
