"""Fake run records for a method x rank sweep (a method grid), placed where the runner would write them, so that
tables and figures of sweeps are tested without training."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from experiments.config import compose_config, record_path, run_id
from experiments.records import write_record
from experiments.runner import current_fingerprint
from experiments.tables import grid_cells

TEMPLATE = json.loads((Path(__file__).parent / "fixtures" / "run_record.json").read_text())
# A small sweep_rank: two ranks of every method, so that the tests compose few cells.
SMALL_RANK_SWEEP = ("experiment=sweep_rank", "table.rows=[2,16]")
METHOD_BASE = {"flora": 0.80, "lora": 0.90, "dora": 0.91}


def fake_accuracy(method: str, rank: int) -> float:
    return METHOD_BASE[method] + 0.001 * rank


def fake_adapter_params(method: str, rank: int) -> int:
    return 1000 * rank + (7 if method == "flora" else 0)


def write_grid_records(runs_dir: Path, overrides: Sequence[str] = SMALL_RANK_SWEEP, skip: Sequence[str] = ()) -> None:
    """One ok record per (method, rank) cell of the grid, except for the methods in skip."""
    overrides = [*overrides, f"paths.runs_dir={runs_dir}"]
    for method, cell in grid_cells(compose_config(overrides), overrides):
        if method in skip:
            continue
        cfg = compose_config(cell.overrides)
        rank = int(cell.row)
        record = json.loads(json.dumps(TEMPLATE)) | {"run_id": run_id(cfg), "method": cfg.method.tag}
        record["fingerprint"]["code"] = current_fingerprint(cfg)
        record["params"] |= {"adapter": fake_adapter_params(method, rank), "adapter_pct": rank / 100}
        record["metrics"]["test_accuracy"] = fake_accuracy(method, rank)
        write_record(record_path(cfg), record)
