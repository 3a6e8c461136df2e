"""Run records: one JSON line per run in results/runs/, written atomically, read back by resume and tables."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

STATUS_OK = "ok"
STATUS_FAILED = "failed"


def _json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON: write them as null so every reader can parse a record."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write the record as one JSON line: a temp file in the same folder, then os.replace (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(_json_safe(record), sort_keys=True, default=str) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict[str, Any] | None:
    """The last record in a file, or None if there is none (or it cannot be parsed)."""
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        return json.loads(lines[-1]) if lines else None
    except (OSError, json.JSONDecodeError):
        return None


def is_done(path: Path) -> bool:
    """True when a run already finished with status ok: resume skips it."""
    record = read_record(path)
    return record is not None and record.get("status") == STATUS_OK
