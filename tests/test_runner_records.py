"""Run records: atomic JSON lines; resume keeps only ok records of the current code; FORCE, failed, stale and
interrupted runs; one claim per run; nothing finished is lost when the record cannot be written."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import runner
from experiments.config import REPO_ROOT, compose_config, record_path, run_id
from experiments.engines.base import EngineResult
from experiments.errors import NonFiniteLossError
from experiments.records import RunClaim, UnreadableRecordError, is_done, read_record, write_record


def _record(run: str = "a", **fields) -> dict:
    return {"run_id": run, "config": {}, "status": "ok"} | fields


def test_write_record_is_one_parseable_line_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "a.jsonl"
    write_record(path, _record(metrics={"loss": float("nan"), "acc": 0.5}))
    write_record(path, _record(metrics={"acc": 0.75}))
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["metrics"] == {"acc": 0.75}
    assert [p.name for p in path.parent.iterdir()] == ["a.jsonl"]
    write_record(path, _record(metrics={"loss": float("nan")}))
    assert read_record(path)["metrics"]["loss"] is None


@pytest.mark.parametrize(
    "content,problem",
    [("", "empty"), ("{not json", "not JSON"), ('{"a": 1}', "not a run record"), (json.dumps(_record("b")), "run b")],
)
def test_unreadable_records_are_reported_with_their_path_and_never_count_as_done(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "a.jsonl"
    assert read_record(path) is None and not is_done(path)
    path.write_text(content)
    with pytest.raises(UnreadableRecordError, match=problem) as err:
        read_record(path)
    assert str(path) in str(err.value) and not is_done(path)


def test_failed_records_do_not_count_as_done(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_record(path, _record(status="failed"))
    assert not is_done(path)
    write_record(path, _record())
    assert is_done(path)


@pytest.fixture
def cfg(tmp_path: Path):
    return compose_config([f"paths.runs_dir={tmp_path / 'runs'}", f"paths.work_dir={tmp_path / 'work'}", "logger=none"])


def _fake_train(calls: list):
    def train_run(cfg, ctx):  # stands in for the real training in these bookkeeping tests
        calls.append(ctx)
        return EngineResult(metrics={"test_accuracy": 1.0}, params={"trainable": 1}, steps=4, total_steps=4,
                            train_seconds=0.4, extras={"inputs": {"data": "x"}})

    return train_run


def test_resume_skips_an_ok_run_of_the_current_code_and_force_reruns_it(cfg, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(runner, "train_run", _fake_train(calls))
    first = runner.execute(cfg)
    assert first["status"] == "ok" and len(calls) == 1
    saved = read_record(record_path(cfg))
    assert saved["git_commit"] and saved["fingerprint"]["code"] == runner.current_fingerprint(cfg)
    assert saved["fingerprint"]["inputs"] == {"data": "x"} and saved["timing"]["seconds_per_step"] == 0.1
    runner.execute(cfg)
    assert len(calls) == 1, "an ok record of the current code must be skipped"
    cfg.force = True
    runner.execute(cfg)
    assert len(calls) == 2 and calls[1].resume is False, "force must rerun from scratch"


def test_a_record_of_other_code_is_rerun_unless_kept_on_purpose(cfg, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(runner, "train_run", _fake_train(calls))
    path = record_path(cfg)
    write_record(path, _record(run_id(cfg), fingerprint={"code": "older0000000"}))
    cfg.keep_stale = True
    runner.execute(cfg)
    assert not calls, "keep_stale keeps an ok record made by other code"
    cfg.keep_stale = False
    runner.execute(cfg)
    assert len(calls) == 1 and read_record(path)["fingerprint"]["code"] == runner.current_fingerprint(cfg)
    write_record(path, _record(run_id(cfg)))  # made before fingerprints existed
    runner.execute(cfg)
    assert len(calls) == 2


def test_work_dir_of_other_code_is_emptied_and_resume_refused(cfg, monkeypatch, tmp_path: Path) -> None:
    calls: list = []
    monkeypatch.setattr(runner, "train_run", _fake_train(calls))
    work = Path(cfg.paths.work_dir) / run_id(cfg)
    work.mkdir(parents=True)
    (work / runner.FINGERPRINT_STAMP).write_text("older0000000")
    (work / "iter_100.pth").write_text("checkpoint of other code")
    runner.execute(cfg)
    assert calls[0].resume is False and not (work / "iter_100.pth").exists()
    record_path(cfg).unlink()  # a deleted record: the checkpoint of the same code may be resumed
    runner.execute(cfg)
    assert calls[1].resume is True


def test_a_failing_run_writes_a_failed_record_then_raises(cfg, monkeypatch) -> None:
    def boom(cfg, ctx):
        raise NonFiniteLossError(step=7, loss=float("nan"))

    monkeypatch.setattr(runner, "train_run", boom)
    with pytest.raises(NonFiniteLossError):
        runner.execute(cfg)
    record = read_record(record_path(cfg))
    assert record["status"] == "failed" and record["failed_step"] == 7 and "step 7" in record["error"]
    assert record["wall_seconds"] >= 0 and record["config"]["method"]["name"] == "flora"
    assert not RunClaim(record_path(cfg)).path.exists(), "the claim is released"


def test_in_a_multirun_a_failure_is_recorded_not_raised(cfg, monkeypatch) -> None:
    monkeypatch.setattr(runner, "train_run", lambda cfg, ctx: 1 / 0)
    record = runner.execute(cfg, tolerate_failure=True)
    assert record["status"] == "failed" and "ZeroDivisionError" in record["error"]
    calls: list = []
    monkeypatch.setattr(runner, "train_run", _fake_train(calls))
    assert runner.execute(cfg)["status"] == "ok" and calls, "a failed record must not be skipped"


def test_ctrl_c_leaves_a_failed_record_saying_how_the_run_ended(cfg, monkeypatch) -> None:
    def interrupted(cfg, ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "train_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.execute(cfg, tolerate_failure=True)
    record = read_record(record_path(cfg))
    assert record["status"] == "failed" and record["ended_by"] == "SIGINT (Ctrl-C)"


def test_a_second_identical_run_started_together_does_not_train(cfg, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(runner, "train_run", _fake_train(calls))
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = RunClaim(record_path(cfg))
        claim.path.parent.mkdir(parents=True)
        claim.path.write_text(str(holder.pid))
        assert runner.execute(cfg)["status"] == runner.STATUS_BUSY and not calls
    finally:
        holder.kill()
        holder.wait()
    assert runner.execute(cfg)["status"] == "ok", "a lock whose process is gone is taken over"


def test_an_unwritable_results_folder_fails_before_training(tmp_path: Path, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(runner, "train_run", _fake_train(calls))
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results folder should be")  # unwritable even for root
    cfg = compose_config([f"paths.runs_dir={blocker / 'runs'}", f"paths.work_dir={tmp_path / 'w'}", "logger=none"])
    with pytest.raises(OSError, match="nothing was trained"):
        runner.execute(cfg)
    assert not calls


def test_a_record_that_cannot_be_written_is_saved_elsewhere_not_lost(cfg, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(runner, "train_run", _fake_train(calls))

    def disk_full(path, record):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "write_record", disk_full)
    record = runner.execute(cfg)
    saved = Path(record["saved_at"])
    assert saved.is_file() and json.loads(saved.read_text())["metrics"] == {"test_accuracy": 1.0}
    saved.unlink()


SIGTERM_SCRIPT = """
import sys, time
from experiments import runner
from experiments.config import compose_config
from experiments.engines.base import EngineResult

def slow(cfg, ctx):
    print("training", flush=True)
    time.sleep(60)
    return EngineResult()

runner.train_run = slow
runner.execute(compose_config(sys.argv[1:]), tolerate_failure=True)
"""


def test_sigterm_leaves_a_failed_record_saying_so(cfg, tmp_path: Path) -> None:
    args = [f"paths.runs_dir={cfg.paths.runs_dir}", f"paths.work_dir={cfg.paths.work_dir}", "logger=none"]
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT, *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "training"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    record = read_record(record_path(cfg))
    assert record["status"] == "failed" and record["ended_by"] == "SIGTERM" and "SIGTERM" in record["error"]
