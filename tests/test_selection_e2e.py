"""The selection end to end on tiny trials of the language table: Hydra's sweeper runs them as ordinary runs,
a second launch skips them, the same command chooses the same, and the choice never depends on the test split
the table reports (poisoned test labels change nothing) while the validation labels are what the trials see."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import datasets
import pytest

from experiments.config import REPO_ROOT, compose_config
from experiments.language import data
from experiments.runner import execute
from experiments.selection.choose import choose
from experiments.selection.trials import load, trial_cells, tune_config

TINY = ["trainer.max_steps=3", "task.split.train_size=48", "task.max_length=32", "logger=none"]
# Two rows with two trials each: head at 1/16 and 1x its learning rate, LoRA at (lr/4, alpha/r 0.5) and (lr, 2).
SMALL = ["experiment=tune_table3_glue", "table.rows=[head,lora_r2]", "tune.trials=[0,4]"]
METRIC = "validation_accuracy"

pytestmark = pytest.mark.slow


def _overrides(root: Path) -> list[str]:
    return [*SMALL, *TINY, f"paths.results_dir={root}", f"paths.work_dir={root / 'work'}"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def _run_in_process(overrides: list[str]) -> None:
    cfg = tune_config(overrides)
    for trial in trial_cells(cfg, overrides):
        assert execute(compose_config(trial.overrides))["status"] == "ok"


def _scores(overrides: list[str]) -> tuple[dict[tuple[str, int], float], dict[str, int]]:
    trials = load(trial_cells(tune_config(overrides), overrides), desc="trials")
    assert {t.metric for t in trials} == {METRIC}
    choices = choose(trials)
    return ({(t.row, t.index): t.score() for t in trials},
            {row: choice.trial.index for (row, _), choice in choices.items()})


def _poison(split: str) -> Callable:
    """BBC News with one split's labels rotated (every example of that split mislabelled)."""
    clean = data.SOURCES["bbcnews"]

    def load_poisoned(task: object) -> datasets.DatasetDict:
        raw = clean(task)
        raw[split] = raw[split].map(lambda ex: {"label": (ex["label"] + 1) % 5})
        return raw

    return load_poisoned


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The tiny tune through the real entry point (the `make tune-table-3` path), once for the module."""
    root = tmp_path_factory.mktemp("clean")
    overrides = _overrides(root)
    result = _cli("-m", "experiments.run", "-m", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, overrides


def test_trials_are_runs_in_their_own_folder_and_a_second_tune_skips_them(clean: tuple[Path, list[str]]) -> None:
    root, overrides = clean
    records = sorted((root / "selection" / "table3_glue" / "runs").glob("*.jsonl"))
    assert len(records) == 4 and not (root / "runs").exists()
    before = {p: p.read_text() for p in records}
    again = _cli("-m", "experiments.run", "-m", *overrides)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (again.stdout + again.stderr).count("ok record of the current code exists") == 4
    assert {p: p.read_text() for p in records} == before


def test_the_same_command_writes_the_same_choice(clean: tuple[Path, list[str]]) -> None:
    root, overrides = clean
    option = root / "selection" / "table3_glue.yaml"
    outputs = []
    for _ in range(2):
        result = _cli("scripts/select_hparams.py", *overrides)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append((option.read_text(), (root / "selection/table3_glue/table3_glue_trials.csv").read_text()))
    assert outputs[0] == outputs[1]
    assert (root / "selection/table3_glue/table3_glue_validation_vs_lr.png").is_file()
    assert "rows:" in outputs[0][0] and "lora_r2:" in outputs[0][0]


def test_poisoned_test_labels_change_nothing_poisoned_validation_labels_do(
    clean: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scores, choice = _scores(clean[1])
    monkeypatch.setitem(data.SOURCES, "bbcnews", _poison("test"))
    test_poisoned = _overrides(tmp_path / "test")
    _run_in_process(test_poisoned)
    assert _scores(test_poisoned) == (scores, choice)
    monkeypatch.setitem(data.SOURCES, "bbcnews", _poison("validation"))
    val_poisoned = _overrides(tmp_path / "validation")
    _run_in_process(val_poisoned)
    assert _scores(val_poisoned)[0] != scores
