"""Weights & Biases around one run: config at start, metrics per step (through the Trainer's callback),
#params and the final record at the end, and wandb.finish() whatever happens."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig


class Tracker:
    """What the runner needs from a tracker; the no-op base is used for logger=none."""

    report_to: list[str] = []

    def summary(self, values: Mapping[str, Any]) -> None:
        """Attach final values (params, metrics, record) to the run."""

    def log(self, values: Mapping[str, Any], step: int) -> None:
        """Per-step values (losses, norms) for engines that log outside the Trainer's callback."""


class WandbTracker(Tracker):
    """A wandb run; the Trainer's WandbCallback finds it and logs each step's metrics into it."""

    report_to = ["wandb"]

    def __init__(self, run: Any) -> None:
        self.run = run

    def summary(self, values: Mapping[str, Any]) -> None:
        self.run.summary.update(dict(values))

    def log(self, values: Mapping[str, Any], step: int) -> None:
        self.run.log(dict(values), step=step)


@contextmanager
def tracking(logger: DictConfig, name: str, config: dict[str, Any]) -> Iterator[Tracker]:
    """A tracker for one run; the wandb run is always finished, with exit code 1 if the run raised.

    Under torchrun/accelerate only rank 0 logs, so a multi-GPU run is one W&B run.
    """
    if not logger.enabled or int(os.environ.get("RANK", "0")) != 0:
        yield Tracker()
        return
    import wandb

    run = wandb.init(
        project=logger.project,
        entity=logger.entity,
        mode=logger.mode,
        dir=logger.dir,
        group=logger.group,
        name=name,
        config=config,
        reinit="finish_previous",
    )
    failed = True
    try:
        yield WandbTracker(run)
        failed = False
    finally:
        wandb.finish(exit_code=1 if failed else 0)
