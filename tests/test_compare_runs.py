"""A reproduction compared with the reference row by row: both means, the differences, and the verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.compare import FLOOR, Comparison, compare
from experiments.config import REPO_ROOT, compose_config, record_path, run_id, table_cells
from experiments.records import write_record
from experiments.runner import current_fingerprint
from experiments.tables import Stat, collect

TEMPLATE = json.loads((Path(__file__).parent / "fixtures" / "run_record.json").read_text())
OVERRIDES = ["experiment=table3_glue", "table.rows=[head,flora_r8]"]


def _records(runs: Path, accuracy: dict[str, list[float]]) -> None:
    overrides = [*OVERRIDES, f"paths.runs_dir={runs}"]
    for cell in table_cells(compose_config(overrides), overrides):
        cfg = compose_config(cell.overrides)
        record = json.loads(json.dumps(TEMPLATE)) | {"run_id": run_id(cfg), "method": cfg.method.tag}
        record["fingerprint"]["code"] = current_fingerprint(cfg)
        record["metrics"]["test_accuracy"] = accuracy[cell.row][cell.seed]
        write_record(record_path(cfg), record)


def test_verdicts_follow_the_standard_error_of_the_difference() -> None:
    same = Comparison("r", "c", Stat([0.90, 0.91, 0.92]), Stat([0.905, 0.915, 0.925]))
    assert same.verdict == "agree" and same.difference == pytest.approx(-0.005)
    far = Comparison("r", "c", Stat([0.80, 0.81, 0.82]), Stat([0.90, 0.91, 0.92]))
    assert far.verdict == "differ"
    single = Comparison("r", "c", Stat([0.900]), Stat([0.902]))
    assert single.tolerance == FLOOR and single.verdict == "agree"
    assert Comparison("r", "c", Stat([]), Stat([0.9])).verdict == "no data"


def test_the_script_compares_a_reproduction_with_the_reference(tmp_path: Path) -> None:
    reference, ours = tmp_path / "reference", tmp_path / "ours"
    _records(reference, {"head": [0.87, 0.88, 0.86], "flora_r8": [0.93, 0.94, 0.92]})
    _records(ours / "runs", {"head": [0.87, 0.88, 0.865], "flora_r8": [0.80, 0.81, 0.79]})
    table = collect([*OVERRIDES, f"paths.runs_dir={ours / 'runs'}"])
    verdicts = {(c.row, c.column): c.verdict for c in compare(table, table)}
    assert set(verdicts.values()) == {"agree"}, "a table agrees with itself"
    result = subprocess.run(
        [sys.executable, "scripts/compare_runs.py", *OVERRIDES, f"paths.results_dir={ours}", "--reference",
         str(reference)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = (ours / "table3_glue_vs_reference.md").read_text()
    head = next(line for line in report.splitlines() if line.startswith("| Head only | bbcnews/test_accuracy"))
    flora = next(line for line in report.splitlines() if line.startswith("| FLoRA (r=8) | bbcnews/test_accuracy"))
    assert head.endswith("| agree |") and flora.endswith("| differ |") and "| -13.00 |" in flora
