"""`python -m experiments.run [overrides]`: the Hydra entry point of every experiment.

python -m experiments.run method=flora method.rank=16 method.scale=4          # one run (mini profile)
python -m experiments.run -m experiment=table3_glue                           # a whole table, resumable
python -m experiments.run experiment=table3_glue profile=paper dry_run=true   # #params of every row

A multirun finishes every job, then exits 1 if any failed (listing them), so `make` stops before a table.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from experiments.config import CONFIG_DIR, REPO_ROOT
from experiments.errors import MissingAssetsError
from experiments.provenance import mark_launch
from experiments.validation import ConfigError, validate_run_config

log = logging.getLogger(__name__)
LAUNCH_ID_ENV = "FLORA_LAUNCH_ID"


def failures_dir() -> Path:
    """Where the jobs of this launch (in this process, joblib workers or Slurm jobs) note their failures."""
    return REPO_ROOT / "outputs" / "launches" / os.environ[LAUNCH_ID_ENV] / "failed"


def note_failure(name: str, error: str) -> None:
    folder = failures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(error + "\n")


def fail(message: str, code: int) -> None:
    """End a single run with its message alone (Hydra would wrap an exception in a traceback)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> dict[str, Any] | None:
    """Dry run, or one run whose failure stops a single run but not the other jobs of a multirun."""
    from experiments.dry_run import dry_run
    from experiments.runner import execute

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        validate_run_config(cfg)
    except ConfigError as err:
        if not multirun:
            fail(str(err), code=2)
        note_failure(f"job{hydra_cfg.job.num}", f"invalid config: {err}")
        log.error("job %s: invalid config: %s", hydra_cfg.job.num, err)
        return None
    if cfg.dry_run:
        dry_run(cfg, list(hydra_cfg.overrides.task))
        return None
    try:
        record = execute(cfg, tolerate_failure=multirun)
    except MissingAssetsError as err:
        fail(str(err), code=1)
    if record.get("status") == "failed":
        note_failure(record["run_id"], record.get("error", "failed"))
    return record


def cli() -> int:
    """Run main, then list the failed jobs of a multirun (exit 1); a bad single-run config exits 2."""
    os.environ.setdefault(LAUNCH_ID_ENV, uuid.uuid4().hex[:12])
    mark_launch()
    main()
    failed = sorted(failures_dir().glob("*")) if failures_dir().is_dir() else []
    if failed:
        print(f"error: {len(failed)} job(s) of this multirun failed:", file=sys.stderr)
        for path in failed:
            print(f"  {path.name}: {' '.join(path.read_text().split())[:400]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
