"""The efficiency benchmark keeps working: quick mode writes a well-formed table, CSV and chart.

Timings are never asserted; only the shape of the outputs and the bookkeeping (budget matching, ratios,
target verdicts) are.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from bench import report  # noqa: E402
from bench.memory import MemoryRecord  # noqa: E402
from bench.methods import matched_lora_rank  # noqa: E402
from bench.runner import Row  # noqa: E402
from bench.timing import Summary  # noqa: E402


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("table5")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "scripts/benchmark_efficiency.py", "--quick", "--threads", "1", "--out-dir", str(out)]
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, timeout=900)
    return out


def test_quick_mode_writes_a_well_formed_csv(quick_run):
    with (quick_run / "table5_efficiency.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and list(rows[0]) == report.CSV_FIELDS
    assert {r["section"] for r in rows} == {"layer", "step"}
    for case in {r["case"] for r in rows}:
        methods = {r["method"]: r for r in rows if r["case"] == case}
        assert {"floor", "flora_auto", "flora_dense", "lora", "dora", "full"} <= set(methods)
        assert float(methods["floor"]["ratio_to_floor"]) == pytest.approx(1.0)
    for row in rows:
        if row["status"] == "ok":
            assert float(row["median_ms"]) > 0 and float(row["q1_ms"]) <= float(row["q3_ms"])
            assert int(row["saved_activation_bytes"]) >= 0
        else:
            assert row["status"] == "n/a" and row["note"], row
    depthwise = [r for r in rows if "depthwise" in r["case"] and r["method"] == "lora"]
    assert depthwise and all(r["status"] == "n/a" and "groups" in r["note"] for r in depthwise)


def test_quick_mode_writes_the_table_and_chart(quick_run):
    text = (quick_run / "table5_efficiency.md").read_text()
    for heading in ("## Targets", "## Per layer: forward + backward", "## Per training step"):
        assert heading in text
    for key in ("device", "threads", "versions", "load average"):
        assert f"**{key}**" in text
    assert "T1 layer time" in text and "T2 step time" in text and "T3 layer memory" in text
    chart = quick_run / "figures" / "table5_efficiency.png"
    assert chart.stat().st_size > 10_000


def test_matched_lora_rank_is_closest_to_floras_count():
    # dense 3x3 256->256 at FLoRA ranks (16, 16, 2, 2): 9,228 parameters; PEFT LoRA costs 2,560 per rank.
    assert matched_lora_rank([(256, 256, 3, 3)], 9_228) == 4
    assert matched_lora_rank([(4096, 1024)], 82_176) == 16


def _row(case: str, method: str, ms: float, saved: int, section: str = "layer") -> Row:
    row = Row(section, case, method, params=1, note="path factored")
    row.timing = Summary.of([ms, ms], None)
    row.memory = MemoryRecord(activations=saved, gradients=0, peak=None)
    return row


def test_verdicts_follow_the_issue_targets():
    rows = [
        _row("conv", "floor", 10.0, 1000),
        _row("conv", "flora_auto", 11.0, 1050),
        _row("conv", "flora_dense", 30.0, 2000),
        _row("slow", "floor", 10.0, 1000),
        _row("slow", "flora_auto", 13.0, 1200),
        _row("slow", "flora_dense", 20.0, 1200),
        _row("net", "floor", 100.0, 10, "step"),
        _row("net", "flora_auto", 120.0, 10, "step"),
        _row("net", "lora", 125.0, 10, "step"),
        _row("net", "dora", 150.0, 10, "step"),
    ]
    verdicts = {(v.target, v.case): v.met for v in report.verdicts(rows, {"conv": 3, "slow": 7})}
    assert verdicts[("T1 layer time", "conv")] is True
    assert verdicts[("T3 layer memory", "conv")] is True
    assert verdicts[("T1 layer time", "slow")] is False
    assert verdicts[("T3 layer memory", "slow")] is False
    assert verdicts[("T2 step time", "net")] is True
