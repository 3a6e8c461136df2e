"""Run records: one JSON line per run in results/runs/, written atomically, read back by resume and tables.

A record file either holds a readable record, or is reported as unreadable with its path and why: a corrupt,
truncated, empty or foreign file is never silently taken for "no run yet".
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from experiments.atomic import atomic_write_text

STATUS_OK = "ok"
STATUS_FAILED = "failed"
REQUIRED_KEYS = ("run_id", "status", "config")


class UnreadableRecordError(ValueError):
    """A record file that exists but cannot be used; the message names the file and what is wrong with it."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"unreadable run record {path}: {problem}")


def _json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON: write them as null so every reader can parse a record."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def record_line(record: dict[str, Any]) -> str:
    """The record as the one JSON line its file holds."""
    return json.dumps(_json_safe(record), sort_keys=True, default=str) + "\n"


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write the record as one JSON line, atomically (experiments/atomic.py)."""
    atomic_write_text(path, record_line(record))


def read_record(path: Path) -> dict[str, Any] | None:
    """The record in path; None when there is no file; UnreadableRecordError when the file is not a record."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableRecordError(path, f"{type(err).__name__}: {err}") from err
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise UnreadableRecordError(path, "the file is empty")
    try:
        record = json.loads(lines[-1])
    except json.JSONDecodeError as err:
        raise UnreadableRecordError(path, f"not JSON (truncated or corrupt?): {err}") from err
    if not isinstance(record, dict) or any(k not in record for k in REQUIRED_KEYS):
        raise UnreadableRecordError(path, f"not a run record (a record has the keys {', '.join(REQUIRED_KEYS)})")
    if record["run_id"] != path.stem:
        raise UnreadableRecordError(path, f"holds the record of run {record['run_id']}, not of {path.stem}")
    return record


def is_done(path: Path) -> bool:
    """True when a run already finished with status ok (an unreadable file does not count)."""
    try:
        record = read_record(path)
    except UnreadableRecordError:
        return False
    return record is not None and record.get("status") == STATUS_OK


class RunClaim:
    """A lock file beside a record: the first of two identical runs started together claims the run.

    The lock holds the owner's pid; a lock whose process is gone (a killed run) is taken over.
    """

    def __init__(self, record: Path) -> None:
        self.path = record.with_name(f".{record.stem}.lock")
        self.held = False

    def owner(self) -> int | None:
        """The pid of the live process holding the lock, if any."""
        try:
            pid = int(self.path.read_text().strip() or 0)
        except (OSError, ValueError):
            return None
        if pid <= 0:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def acquire(self) -> bool:
        """Claim the run; False when a live process holds it. OSError (read-only folder, full disk) propagates,
        so that a run that could not write its record fails before training."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self.owner() is not None:
                    return False
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            self.held = True
            return True
        return False

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
