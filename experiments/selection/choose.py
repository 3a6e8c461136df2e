"""Pick one trial per (row, task) by its validation score, and check that no trial scored on reported data.

Rule: the highest score wins; ties go to the trial listed first in the grid (the grids list the learning rate
outermost and ascending, then the method's own knob ascending), so a tie picks the smaller learning rate, then
the smaller s or alpha/r. Failed trials cannot win; a row whose trials all failed, or a trial with no record, stops
the selection (the trials must finish first).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from experiments.config import compose_config
from experiments.selection.trials import Trial

TIE_BREAK = ("highest validation score; ties go to the first trial in grid order "
             "(lower learning rate, then smaller knob)")


class SelectionError(ValueError):
    """The trials cannot give a choice yet (missing or unreadable records, a row with no ok trial)."""


@dataclass(frozen=True)
class Choice:
    """The winning trial of one (row, task) and how many trials it was chosen from."""

    trial: Trial
    score: float
    candidates: int


def evaluation_data(cfg: DictConfig) -> set[str]:
    """What a run is scored on: its dataset splits (language) or its validation loader's data (mmengine)."""
    if cfg.task.get("engine") in (None, "hf_trainer"):
        return {f"split {split}" for split in cfg.task.eval_splits.values()}
    dataset = OmegaConf.select(cfg, "task.mm_overrides.val_dataloader.dataset")
    spec = "the config's validation set" if dataset is None else json.dumps(
        OmegaConf.to_container(dataset, resolve=True), sort_keys=True)
    return {f"val_dataloader {spec}"}


def reported_overlap(cfg: DictConfig, overrides: Sequence[str]) -> set[str]:
    """The evaluation data that the trials share with the table they select for (empty when held out)."""
    table_overrides = [o for o in overrides if not o.lstrip("+~").startswith(("experiment=", "tune."))]
    problems: set[str] = set()
    for task in cfg.table.tasks:
        base = [f"{cfg.table.row_key}={cfg.table.rows[0]}", f"task={task}"]
        trial_cfg = compose_config([*overrides, *base])
        table_cfg = compose_config([*table_overrides, f"experiment={cfg.tune.table}", *base])
        problems |= evaluation_data(trial_cfg) & evaluation_data(table_cfg)
    return problems


def missing(trials: list[Trial]) -> list[str]:
    """Trials without a readable record, described for the error message."""
    return [trial.problem or f"{trial.row} / {trial.task} / trial {trial.index}: no record"
            for trial in trials if trial.record is None]


def choose(trials: list[Trial]) -> dict[tuple[str, str], Choice]:
    """One choice per (row, task), in the order the trials come (table order), each by its trials' metric."""
    if problems := missing(trials):
        raise SelectionError(f"{len(problems)} trial(s) have no readable record: " + "; ".join(problems[:8]))
    groups: dict[tuple[str, str], list[Trial]] = {}
    for trial in trials:
        groups.setdefault((trial.row, trial.task), []).append(trial)
    choices = {}
    for key, group in groups.items():
        scored = [(t.score(), t.index, t) for t in group if t.score() is not None]
        if not scored:
            raise SelectionError(f"row {key[0]} on {key[1]}: no trial finished with a {group[0].metric} score")
        score, _, best = min(scored, key=lambda item: (-item[0], item[1]))
        choices[key] = Choice(best, score, len(group))
    return choices
