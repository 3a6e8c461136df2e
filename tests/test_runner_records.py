"""Run records: atomic JSON lines, resume skips ok runs, FORCE and failed runs rerun, failures leave a record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments import runner
from experiments.config import compose_config, record_path
from experiments.errors import NonFiniteLossError
from experiments.records import is_done, read_record, write_record


def test_write_record_is_one_parseable_line_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "a.jsonl"
    write_record(path, {"status": "ok", "metrics": {"loss": float("nan"), "acc": 0.5}})
    write_record(path, {"status": "ok", "metrics": {"acc": 0.75}})
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["metrics"] == {"acc": 0.75}
    assert [p.name for p in path.parent.iterdir()] == ["a.jsonl"]
    write_record(path, {"status": "ok", "metrics": {"loss": float("nan")}})
    assert read_record(path)["metrics"]["loss"] is None


def test_unreadable_or_failed_records_do_not_count_as_done(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    assert not is_done(path)
    path.write_text("{not json")
    assert read_record(path) is None and not is_done(path)
    write_record(path, {"status": "failed"})
    assert not is_done(path)
    write_record(path, {"status": "ok"})
    assert is_done(path)


@pytest.fixture
def cfg(tmp_path: Path):
    return compose_config([f"paths.runs_dir={tmp_path}", "logger=none"])


def _fake_train(calls: list[str]):
    def train_run(cfg, record):  # stands in for the real training in these bookkeeping tests
        calls.append(record["run_id"])
        record.update(params={"trainable": 1}, metrics={"test_accuracy": 1.0}, timing={"seconds_per_step": 0.1})

    return train_run


def test_resume_skips_an_ok_run_and_force_reruns_it(cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(runner, "train_run", _fake_train(calls))
    first = runner.execute(cfg)
    assert first["status"] == "ok" and len(calls) == 1
    assert read_record(record_path(cfg))["git_commit"]
    runner.execute(cfg)
    assert len(calls) == 1, "an ok record must be skipped"
    cfg.force = True
    runner.execute(cfg)
    assert len(calls) == 2, "force must rerun"


def test_a_failing_run_writes_a_failed_record_then_raises(cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(cfg, record):
        raise NonFiniteLossError(step=7, loss=float("nan"))

    monkeypatch.setattr(runner, "train_run", boom)
    with pytest.raises(NonFiniteLossError):
        runner.execute(cfg)
    record = read_record(record_path(cfg))
    assert record["status"] == "failed" and record["failed_step"] == 7 and "step 7" in record["error"]
    assert record["wall_seconds"] >= 0 and record["config"]["method"]["name"] == "flora"


def test_in_a_multirun_a_failure_is_recorded_not_raised(cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "train_run", lambda cfg, record: 1 / 0)
    record = runner.execute(cfg, tolerate_failure=True)
    assert record["status"] == "failed" and "ZeroDivisionError" in record["error"]
    calls: list[str] = []
    monkeypatch.setattr(runner, "train_run", _fake_train(calls))
    assert runner.execute(cfg)["status"] == "ok" and calls, "a failed record must not be skipped"
