"""One run from a composed config: resume check, assets, backbone, method, engine, tracker, run record.

Whatever happens after the resume check, exactly one record is written: status ok with every figure, or
status failed with the error (and the step, for a NaN loss). In a multirun the failure is logged and the
next job goes on; in a single run it is raised again after the record is written.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from transformers import set_seed

from experiments.backbones import backbone_parameters, build_pretrained, resolve_weights
from experiments.config import record_path, run_id, run_key
from experiments.data import load_raw, tokenize
from experiments.engines.hf_trainer import train_and_evaluate
from experiments.errors import MissingAssetsError, NonFiniteLossError
from experiments.methods import attach_method, parameter_counts
from experiments.provenance import device_name, git_commit, package_versions, peak_memory, reset_peak_memory
from experiments.records import STATUS_FAILED, STATUS_OK, is_done, read_record, write_record
from experiments.tracking import tracking

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


def fetch_assets(cfg: DictConfig) -> tuple[str, Any]:
    """Weights folder and raw data, or one error naming everything missing, before any training."""
    problems: list[str] = []
    weights_dir = raw = None
    try:
        weights_dir = resolve_weights(cfg.backbone)
    except MissingAssetsError as err:
        problems += err.problems
    try:
        raw = load_raw(cfg.task)
    except MissingAssetsError as err:
        problems += err.problems
    if problems:
        raise MissingAssetsError(problems)
    return weights_dir, raw


def train_run(cfg: DictConfig, record: dict[str, Any]) -> None:
    """Build, attach, train and evaluate; fills record in place as figures become known."""
    if cfg.task.get("engine") == "mmengine":  # vision tasks: mmseg/mmdet/mmengine loops (issue 5)
        from experiments.engines.mmengine_runner import train_run as mmengine_train_run

        mmengine_train_run(cfg, record)
        return
    set_seed(int(cfg.seed))
    weights_dir, raw = fetch_assets(cfg)
    model, tokenizer = build_pretrained(cfg.backbone, cfg.task, weights_dir)
    backbone_total = backbone_parameters(model)
    model = attach_method(model, cfg.method)
    record["params"] = parameter_counts(model, backbone_total)
    data = tokenize(raw, cfg.task, tokenizer)
    output_dir = Path(cfg.paths.work_dir) / record["run_id"]
    with tracking(cfg.logger, record["run_id"], record["config"]) as tracker:
        tracker.summary({f"params/{k}": v for k, v in record["params"].items()})
        reset_peak_memory()
        result = train_and_evaluate(model, tokenizer, data, cfg, output_dir, tracker.report_to)
        result.fill_record(record)
        record["memory"] = peak_memory()
        tracker.summary({"record": record})


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
