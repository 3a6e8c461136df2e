"""The trials of a tune_* experiment: every (row, task, trial) cell, its config and its record, if any."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from experiments.config import compose_config, record_path, table_cells
from experiments.records import STATUS_OK, UnreadableRecordError, read_record

TRIAL_KEY = "tune.trial"


@dataclass
class Trial:
    """One trial: a table row (method and budget) on one task with the knob values of one grid entry."""

    row: str
    task: str
    index: int
    overrides: tuple[str, ...]
    tag: str = ""
    label: str = ""
    hparams: dict[str, Any] = field(default_factory=dict)
    metric: str = ""  # the record metric this trial is judged by (its config's tune.metric: tasks differ)
    record: dict[str, Any] | None = None
    problem: str | None = None  # why the record could not be read

    @property
    def ok(self) -> bool:
        return self.record is not None and self.record.get("status") == STATUS_OK

    def score(self) -> float | None:
        """The held-out metric of an ok record, else None (failed, missing or unreadable)."""
        if not self.ok:
            return None
        value = self.record.get("metrics", {}).get(self.metric)
        return None if value is None else float(value)


def tune_config(overrides: Sequence[str]) -> DictConfig:
    """The composed tune_* experiment; refuses configs that describe no trials."""
    cfg = compose_config(overrides)
    if cfg.get("tune") is None or not cfg.table.rows:
        raise ValueError("this config describes no selection: pass experiment=tune_<table> (configs/experiment/)")
    return cfg


def trial_indices(cfg: DictConfig) -> list[int]:
    """The grid entries every row runs (tune.trials)."""
    return [int(i) for i in cfg.tune.trials]


def trial_cells(cfg: DictConfig, overrides: Sequence[str]) -> list[Trial]:
    """Every trial of the experiment, rows in table order, then tasks, then grid order; one seed per trial."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != TRIAL_KEY]
    return [
        Trial(cell.row, cell.task, index, (*cell.overrides, f"{TRIAL_KEY}={index}"))
        for cell in table_cells(cfg, kept, seeds=False)
        for index in trial_indices(cfg)
    ]


def load(trials: list[Trial], desc: str) -> list[Trial]:
    """Compose each trial's config and read its record (the runner's own record path)."""
    for trial in tqdm(trials, desc=desc, unit="trial"):
        cfg = compose_config(trial.overrides)
        trial.tag, trial.label, trial.metric = str(cfg.method.tag), str(cfg.method.label), str(cfg.tune.metric)
        if cfg.hparams is None:
            raise ValueError(f"{trial.row}: tune.trial={trial.index} is not in its grid (tune.grid.{cfg.method.name})")
        trial.hparams = OmegaConf.to_container(cfg.hparams, resolve=True)
        try:
            trial.record = read_record(record_path(cfg))
        except UnreadableRecordError as err:
            trial.problem = str(err)
    return trials


def judged_by(trials: list[Trial]) -> str:
    """The metric the trials are judged by, or per task when tasks differ (e.g. GLUE: mcc on CoLA)."""
    by_task = {t.task: t.metric for t in trials}
    metrics = set(by_task.values())
    if len(metrics) == 1:
        return metrics.pop()
    return ", ".join(f"{metric} ({task})" for task, metric in by_task.items())
