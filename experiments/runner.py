"""One run from a composed config: resume check, claim, the task's engine, the run record.

The runner owns everything every engine would otherwise repeat: the record (identity, provenance, fingerprint,
params, metrics, timing, memory), the tracker, the peak-memory counters and the run's work folder. Engines
(experiments/engines/) train and evaluate and hand back an EngineResult.

Whatever happens after the run is claimed, exactly one record is written: status ok with every figure, or status
failed with the error and how the run ended (an exception, a NaN loss at step k, SIGTERM, Ctrl-C). A record that
cannot be written where it belongs is saved elsewhere, and the error says where.
"""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.atomic import atomic_write_text
from experiments.config import record_path, run_id, run_key
from experiments.engines.base import EngineResult, RunContext
from experiments.engines.registry import engine_for
from experiments.errors import NonFiniteLossError
from experiments.provenance import (
    device_name,
    launch_code_fingerprint,
    launch_commit,
    package_versions,
    peak_memory,
    reset_peak_memory,
)
from experiments.records import (
    STATUS_FAILED,
    STATUS_OK,
    RunClaim,
    UnreadableRecordError,
    read_record,
    record_line,
    write_record,
)
from experiments.tracking import tracking

log = logging.getLogger(__name__)
STATUS_BUSY = "running elsewhere"
FINGERPRINT_STAMP = ".code-fingerprint"


class RunInterrupted(BaseException):
    """A signal ended the run (SIGTERM is how Slurm preempts); a BaseException so no engine swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def engine_name(cfg: DictConfig) -> str:
    return engine_for(cfg.task).name


def current_fingerprint(cfg: DictConfig) -> str:
    """The code fingerprint a record of cfg made now would carry (taken at launch)."""
    return launch_code_fingerprint(engine_name(cfg))


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
        "git_commit": launch_commit(),
        "fingerprint": {"engine": engine_name(cfg), "code": current_fingerprint(cfg)},
        "versions": package_versions(),
        "device": device_name(),
        "started_at": _now(),
    }


def train_run(cfg: DictConfig, ctx: RunContext) -> EngineResult:
    """Hand the run to its task's engine."""
    return engine_for(cfg.task).train_run(cfg, ctx)


def fill_record(record: dict[str, Any], result: EngineResult) -> None:
    """What the engine measured, into the record."""
    record["params"] = result.params
    record["metrics"] = result.metrics
    record["timing"] = result.timing()
    for key, value in result.extras.items():
        if key == "inputs":
            record["fingerprint"]["inputs"] = value
        elif key == "versions":
            record["versions"].update(value)
        else:
            record[key] = value


def stale_reason(record: dict[str, Any], cfg: DictConfig) -> str | None:
    """Why an ok record no longer stands for cfg under the current code, or None when it does."""
    made_by = (record.get("fingerprint") or {}).get("code")
    current = current_fingerprint(cfg)
    if made_by is None:
        return "it carries no code fingerprint (made before fingerprints existed)"
    if made_by != current:
        return f"it was made by code {made_by}, the tree is now {current}"
    return None


def should_skip(cfg: DictConfig, path: Path) -> tuple[bool, dict[str, Any] | None]:
    """(skip, existing record): an ok record of the current code is kept unless forced; cfg.keep_stale keeps an
    ok record made by other code on purpose."""
    try:
        existing = read_record(path)
    except UnreadableRecordError as err:
        log.warning("%s; the run will replace it", err)
        return False, None
    if existing is None or existing.get("status") != STATUS_OK or cfg.force:
        return False, existing
    reason = stale_reason(existing, cfg)
    if reason is None:
        log.info("skip %s: ok record of the current code exists (FORCE=1 reruns it)", path.name)
        return True, existing
    if cfg.keep_stale:
        log.info("skip %s: %s, kept on purpose (keep_stale=true)", path.name, reason)
        return True, existing
    log.info("rerun %s: %s", path.name, reason)
    return False, existing


def prepare_work_dir(cfg: DictConfig, work_dir: Path, fingerprint: str) -> bool:
    """Empty the run's work folder unless it holds a resumable run of the same code; True when resuming is
    allowed. A forced run, or one whose checkpoints were made by other code, starts from scratch."""
    stamp = work_dir / FINGERPRINT_STAMP
    resumable = not cfg.force and stamp.is_file() and stamp.read_text().strip() == fingerprint
    if not resumable and work_dir.exists():
        shutil.rmtree(work_dir)
    atomic_write_text(stamp, fingerprint)
    return resumable


def save_record(path: Path, record: dict[str, Any]) -> Path:
    """Write the record; if its folder cannot take it (read-only, disk full), save it in the temp folder and say
    where, so that a finished result is never lost."""
    try:
        write_record(path, record)
        return path
    except OSError as err:
        fallback = Path(tempfile.gettempdir()) / "flora-records" / path.name
        fallback.parent.mkdir(parents=True, exist_ok=True)
        fallback.write_text(record_line(record))
        log.error("could not write %s (%s); the record is saved at %s", path, err, fallback)
        record["saved_at"] = str(fallback)
        return fallback


def _raise_interrupted(signum: int, frame: object) -> None:
    raise RunInterrupted(signum)


@contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM into RunInterrupted for the run's duration (main thread only; Ctrl-C is KeyboardInterrupt)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    except ValueError:  # not the main thread: leave signal handling to the caller
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _record_failure(record: dict[str, Any], err: BaseException) -> None:
    record["status"] = STATUS_FAILED
    record["error"] = f"{type(err).__name__}: {err}"
    record["traceback"] = traceback.format_exc(limit=8)
    if isinstance(err, NonFiniteLossError):
        record["failed_step"] = err.step
    if isinstance(err, RunInterrupted | KeyboardInterrupt):
        record["ended_by"] = "SIGINT (Ctrl-C)" if isinstance(err, KeyboardInterrupt) else str(err).split()[-1]


def execute(cfg: DictConfig, tolerate_failure: bool = False) -> dict[str, Any]:
    """Run cfg unless an ok record of the current code exists (cfg.force reruns); leave exactly one record.

    tolerate_failure (a multirun): an exception is recorded and returned, not raised, so the next job goes on.
    Interruptions (SIGTERM, Ctrl-C) are recorded and always raised.
    """
    path = record_path(cfg)
    skip, existing = should_skip(cfg, path)
    if skip:
        return existing or {}
    claim = RunClaim(path)
    try:
        claimed = claim.acquire()
    except OSError as err:
        raise OSError(f"cannot write the run record in {path.parent} ({err}); nothing was trained") from err
    if not claimed:
        log.warning("skip %s: the same run is already running (pid %s)", path.name, claim.owner())
        return {"run_id": run_id(cfg), "status": STATUS_BUSY}
    record = base_record(cfg)
    work_dir = Path(cfg.paths.work_dir) / record["run_id"]
    start = time.perf_counter()
    try:
        with signals_raise():
            resume = prepare_work_dir(cfg, work_dir, record["fingerprint"]["code"])
            with tracking(cfg.logger, record["run_id"], record["config"]) as tracker:
                reset_peak_memory()
                result = train_run(cfg, RunContext(record["run_id"], work_dir, tracker, resume=resume))
                fill_record(record, result)
                record["memory"] = peak_memory()
                record["status"] = STATUS_OK
                tracker.summary({**{f"params/{k}": v for k, v in result.params.items()}, "record": record})
    except Exception as err:
        _record_failure(record, err)
        if not tolerate_failure:
            raise
        log.error("run %s failed: %s", record["run_id"], record["error"])
    except BaseException as err:
        _record_failure(record, err)
        raise
    finally:
        record["wall_seconds"] = time.perf_counter() - start
        record["finished_at"] = _now()
        record.setdefault("status", STATUS_FAILED)
        record.setdefault("memory", peak_memory())
        saved = save_record(path, record)
        claim.release()
        log.info("record %s (%s) -> %s", record["run_id"], record["status"], saved)
    return record
