"""Config composition shared by the runner, the dry run and the table scripts.

One place decides how a table row becomes a run config and which part of a config identifies a run, so the
runner's resume check and the table builder always agree on the record they look for.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, ListConfig, OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"
# The parts of a config that change what a run computes; logger, launcher, paths and table do not.
RUN_KEYS = ("backbone", "method", "task", "trainer", "seed")


def _csv(values: Sequence[Any]) -> str:
    """Join a list into Hydra's sweep syntax, so experiment files keep their rows as plain lists."""
    return ",".join(str(v) for v in values)


def _range(start: str, stop: str) -> ListConfig:
    """`${range:300,400}`: the integers start..stop-1, as a ListConfig so that OmegaConf.resolve accepts it."""
    return ListConfig(list(range(int(start), int(stop))))


def _mul(*factors: float) -> float:
    """`${mul:2,${.rank}}`: the product of numbers, e.g. LoRA's alpha = 2r at whatever rank a sweep sets."""
    return math.prod(factors)


def register_resolvers() -> None:
    """Register the custom interpolations used in configs/ (idempotent)."""
    if not OmegaConf.has_resolver("repo_root"):
        OmegaConf.register_new_resolver("repo_root", lambda: str(REPO_ROOT))
    if not OmegaConf.has_resolver("csv"):
        OmegaConf.register_new_resolver("csv", _csv)
    if not OmegaConf.has_resolver("range"):
        OmegaConf.register_new_resolver("range", _range)
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", _mul)


register_resolvers()


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose configs/config.yaml with overrides, inside a running Hydra app or standalone."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name="config", overrides=list(overrides))
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@dataclass(frozen=True)
class Cell:
    """One run of a table: a row value, a task and a seed, and the overrides that select them."""

    row: str
    task: str
    seed: int
    overrides: tuple[str, ...]


def table_cells(cfg: DictConfig, base_overrides: Sequence[str] = (), seeds: bool = True) -> Iterator[Cell]:
    """Every (row, task, seed) of the table that cfg describes, as Hydra overrides.

    base_overrides (the user's command line) are kept except those the table itself sets.
    """
    table = cfg.table
    owned = {table.row_key, "task", "seed"}
    kept = tuple(o for o in base_overrides if o.split("=", 1)[0].lstrip("+~") not in owned)
    seed_list = list(table.seeds) if seeds else [table.seeds[0]]
    for row in table.rows:
        for task in table.tasks:
            for seed in seed_list:
                extra = (f"{table.row_key}={row}", f"task={task}", f"seed={seed}")
                yield Cell(str(row), str(task), int(seed), kept + extra)


# Keys that cannot change what a run computes: labels and what a table reports.
DISPLAY_KEYS = {"method": ("label",), "task": ("report",), "backbone": ("label",)}
# Method keys only FLoRA reads: a LoRA row that inherits a swept `method.scale` computes the same thing.
FLORA_ONLY_KEYS = ("scale", "kernel_rank", "path", "scale_pattern")
# Keys each non-adapter method reads (besides name); everything else in its config is inert.
PLAIN_METHOD_KEYS = {
    "head": ("modules_to_save", "learning_rate"),
    "full": ("learning_rate",),
    "bitfit": ("modules_to_save", "learning_rate"),
}


def _method_identity(method: dict[str, Any]) -> dict[str, Any]:
    name = method.get("name")
    if name in PLAIN_METHOD_KEYS:
        return {k: v for k, v in method.items() if k == "name" or k in PLAIN_METHOD_KEYS[name]}
    if name != "flora":
        return {k: v for k, v in method.items() if k not in FLORA_ONLY_KEYS}
    return method


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """The part of cfg that decides a run's result (see RUN_KEYS), with the inert keys removed.

    The transformers trainer group is dropped under a task that another engine trains (it is never read).
    """
    content: dict[str, Any] = {}
    for key in RUN_KEYS:
        if key == "seed":
            content[key] = cfg[key]
            continue
        if key == "trainer" and cfg.task.get("engine") not in (None, "hf_trainer"):
            continue
        value = OmegaConf.to_container(cfg[key], resolve=True)
        for inert in DISPLAY_KEYS.get(key, ()):
            value.pop(inert, None)
        content[key] = _method_identity(value) if key == "method" else value
    return content


def run_key(cfg: DictConfig) -> str:
    """A short hash of everything that changes a run's result (run_identity)."""
    blob = json.dumps(run_identity(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def run_id(cfg: DictConfig) -> str:
    """Readable, unique file stem of a run's record."""
    return f"{cfg.task.name}-{cfg.method.tag}-seed{cfg.seed}-{run_key(cfg)}"


def record_path(cfg: DictConfig) -> Path:
    """Where the run record of cfg lives."""
    return Path(cfg.paths.runs_dir) / f"{run_id(cfg)}.jsonl"
