"""The engine registry: task.engine picks the module the runner and the dry run hand a run to, modules load only
when used, and an unknown name lists the valid ones."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from experiments import dry_run, runner
from experiments.config import REPO_ROOT, compose_config
from experiments.engines import registry
from experiments.engines.base import EngineResult, RunContext
from experiments.engines.registry import DEFAULT_ENGINE, ENGINES, engine_for
from experiments.provenance import COMMON_CODE, code_files
from experiments.tracking import Tracker


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Stand-in engine modules: each call records (module, entry point) instead of training."""
    calls: list[tuple[str, str]] = []

    def fake_module(name: str) -> SimpleNamespace:
        return SimpleNamespace(
            train_run=lambda cfg, ctx: calls.append((name, "train_run")) or EngineResult(),
            meta_counts=lambda cfg: calls.append((name, "meta_counts")) or {"trainable": 1},
        )

    monkeypatch.setattr(registry, "import_module", fake_module)
    return calls


@pytest.mark.parametrize(
    "task,module",
    [("bbcnews", "experiments.engines.hf_trainer"), ("scenes_seg", "experiments.engines.mmengine_runner")],
)
def test_runner_and_dry_run_hand_the_run_to_the_tasks_engine(task: str, module: str, loaded: list) -> None:
    cfg = compose_config([f"task={task}"])
    assert isinstance(runner.train_run(cfg, RunContext("r", Path("w"), Tracker())), EngineResult)
    assert dry_run.row_counts(cfg) == {"trainable": 1}
    assert loaded == [(module, "train_run"), (module, "meta_counts")]


def test_language_tasks_name_no_engine_and_get_the_default() -> None:
    task = compose_config(["task=bbcnews"]).task
    assert "engine" not in task, "task.engine would change every language run id (the task config is hashed)"
    assert engine_for(task) is ENGINES[DEFAULT_ENGINE] is ENGINES["hf_trainer"]


def test_unknown_engine_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown engine \(task.engine\) 'jax'; valid: hf_trainer, llava, mmengine"):
        engine_for(OmegaConf.create({"name": "t", "engine": "jax"}))


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_engine_module_has_both_entry_points_with_the_contracts_signatures(name: str) -> None:
    module = ENGINES[name].module
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"engine {name}: module {module} does not exist")
    try:
        loaded = registry.import_module(module)
    except ImportError as err:
        pytest.skip(f"engine {name} needs a library not installed here: {err}")
    assert list(inspect.signature(loaded.train_run).parameters) == ["cfg", "ctx"]
    assert list(inspect.signature(loaded.meta_counts).parameters) == ["cfg"]


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_engine_fingerprints_its_own_code(name: str) -> None:
    engine = ENGINES[name]
    files = {p.relative_to(REPO_ROOT).as_posix() for p in code_files(COMMON_CODE + engine.code)}
    assert engine.module.replace(".", "/") + ".py" in files, "a change to the engine must invalidate its records"
    for pattern in engine.code:
        assert code_files((pattern,)), f"engine {name}: code pattern {pattern} matches no file"


def test_the_runner_imports_no_engine_until_a_run_needs_one() -> None:
    code = (
        "import sys, experiments.runner, experiments.dry_run; print(sorted(m for m in sys.modules if 'mmengine' in m))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_hf_meta_counts_build_the_row_on_the_meta_device() -> None:
    counts = ENGINES["hf_trainer"].meta_counts(compose_config(["method=flora_r8"]))
    assert 0 < counts["adapter"] < counts["trainable"] < counts["backbone"]


def _family_files(name: str) -> set[str]:
    return {p.relative_to(REPO_ROOT).as_posix() for p in code_files(COMMON_CODE + ENGINES[name].code)}


@pytest.mark.parametrize(
    "overrides,family",
    [
        (["experiment=table1_convnext", "task=scenes_det"], "mmengine[retinanet_convnext-atto_scenes]"),
        (["experiment=table1_convnext", "task=scenes_seg"], "mmengine[upernet_convnext-atto_scenes]"),
        (["experiment=table1_effnet"], "mmengine[cls_efficientnet-lite0_fmnist]"),
        (["experiment=table1_convnext", "profile=paper", "task=dota"], "mmengine[rotated-retinanet_convnext-l_dota]"),
    ],
)
def test_a_vision_run_is_fingerprinted_by_its_own_mm_config_chain(overrides: list[str], family: str) -> None:
    cfg = compose_config(overrides)
    assert engine_for(cfg.task).name == family
    mm_file = cfg.backbone.mm_configs[cfg.task.name]
    files = _family_files(family)
    assert mm_file in files and "experiments/engines/mmengine_runner.py" in files
    others = {f"configs/mm/{p.name}" for p in (REPO_ROOT / "configs/mm").glob("*.py")} - files
    assert others, "another table's mm config would make this run's record stale"


def test_a_family_covers_the_local_bases_it_inherits_and_not_package_ones(tmp_path: Path) -> None:
    (tmp_path / "_shared.py").write_text("x = 1\n")
    (tmp_path / "middle.py").write_text('_base_ = "./_shared.py"\n')
    top = tmp_path / "top.py"
    top.write_text('_base_ = ["mmdet::_base_/default_runtime.py", "./middle.py"]\n')
    assert [p.name for p in registry.local_bases(top)] == ["top.py", "middle.py", "_shared.py"]
    assert "configs/mm/_scenes_seg.py" in _family_files("mmengine[upernet_convnext-atto_scenes]")


def test_an_mmengine_task_outside_a_run_config_falls_back_to_every_mm_config() -> None:
    task = OmegaConf.create({"name": "scenes_seg", "engine": "mmengine"})
    assert engine_for(task) is ENGINES["mmengine"]
    assert "configs/mm/upernet_convnext-atto_scenes.py" in _family_files("mmengine")
