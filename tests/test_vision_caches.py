"""scripts/prepare_caches.py: every cache a table's cells read is built once, before any worker starts."""

from __future__ import annotations

from importlib import util
from pathlib import Path

import pytest
import torch

from experiments.config import REPO_ROOT
from experiments.vision import pretrain


def _script():
    spec = util.spec_from_file_location("prepare_caches", REPO_ROOT / "scripts" / "prepare_caches.py")
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fresh FLORA_CACHE, with pretraining replaced by a stand-in that notes which backbone it built."""
    built: list[str] = []

    def fake_pretrain(name: str, recipe: pretrain.PretrainRecipe, out_file: Path) -> dict:
        built.append(name)
        torch.save({"state_dict": {}, "meta": {}}, out_file)
        return {}

    monkeypatch.setenv("FLORA_CACHE", str(tmp_path))
    monkeypatch.setattr(pretrain, "pretrain", fake_pretrain)
    return built


def test_a_table_gets_its_scenes_and_backbone(cache: list[str], tmp_path: Path, capsys) -> None:
    paths = _script().main(["experiment=table1_convnext", "task.scenes.n_train=8", "task.scenes.n_val=4"])
    assert cache == ["convnext_atto"]  # once for the 108 cells: the others found it
    names = sorted(p.name for p in paths)
    assert len(paths) == 3 and names[0].startswith("convnext_atto_fmnist04_")
    assert names[1].startswith("fashion_rotated") and names[2].startswith("fashion_scenes")
    assert all(p.is_relative_to(tmp_path) and p.exists() for p in paths)
    assert all(p.joinpath("meta.json").is_file() for p in paths if p.is_dir())
    assert str(paths[0]) in capsys.readouterr().out


def test_classification_reads_the_packaged_weights_only(cache: list[str]) -> None:
    paths = _script().main(["experiment=table1_effnet"])
    assert [p.name for p in paths] == ["efficientnet-lite0-57934424.pth"] and cache == []


def test_language_runs_need_nothing(cache: list[str], capsys) -> None:
    assert _script().main(["experiment=table3_glue"]) == []
    assert "no cache" in capsys.readouterr().out
