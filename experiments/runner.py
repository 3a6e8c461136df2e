"""One run from a composed config: resume check, the task's engine (experiments/engines/registry.py), run record.

Whatever happens after the resume check, exactly one record is written: status ok with every figure, or
status failed with the error (and the step, for a NaN loss). In a multirun the failure is logged and the
next job goes on; in a single run it is raised again after the record is written.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.config import record_path, run_id, run_key
from experiments.engines.registry import engine_for
from experiments.errors import NonFiniteLossError
from experiments.provenance import device_name, git_commit, package_versions, peak_memory
from experiments.records import STATUS_FAILED, STATUS_OK, is_done, read_record, write_record

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_record(cfg: DictConfig) -> dict[str, Any]:
    """The identity and provenance part of a record, known before anything runs."""
    choices = dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}
    return {
        "run_id": run_id(cfg),
        "run_key": run_key(cfg),
        "experiment": cfg.experiment_name,
        "profile": cfg.profile_name,
        "task": cfg.task.name,
        "method": cfg.method.tag,
        "label": cfg.method.label,
        "seed": int(cfg.seed),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "choices": choices,
        "git_commit": git_commit(),
        "versions": package_versions(),
        "device": device_name(),
        "started_at": _now(),
    }


def train_run(cfg: DictConfig, record: dict[str, Any]) -> None:
    """Hand the run to its task's engine, which fills record in place as figures become known."""
    engine_for(cfg.task).train_run(cfg, record)


def execute(cfg: DictConfig, tolerate_failure: bool = False) -> dict[str, Any]:
    """Run cfg unless an ok record exists (cfg.force reruns); always leave one record behind."""
    path = record_path(cfg)
    if is_done(path) and not cfg.force:
        log.info("skip %s: ok record exists (FORCE=1 reruns it)", path.name)
        return read_record(path) or {}
    record = base_record(cfg)
    start = time.perf_counter()
    try:
        train_run(cfg, record)
        record["status"] = STATUS_OK
    except Exception as err:
        record["status"] = STATUS_FAILED
        record["error"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc(limit=8)
        if isinstance(err, NonFiniteLossError):
            record["failed_step"] = err.step
        if not tolerate_failure:
            raise
        log.error("run %s failed: %s", record["run_id"], record["error"])
    finally:
        record["wall_seconds"] = time.perf_counter() - start
        record["finished_at"] = _now()
        record.setdefault("status", STATUS_FAILED)
        record.setdefault("memory", peak_memory())
        write_record(path, record)
        log.info("record %s (%s) -> %s", record["run_id"], record["status"], path)
    return record
