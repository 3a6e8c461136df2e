"""Bad input fails before anything loads, in one line, and leaves no record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.config import REPO_ROOT, compose_config
from experiments.validation import ConfigError, validate_run_config


@pytest.mark.parametrize(
    "override,key",
    [
        ("method.rank=0", "method.rank"),
        ("method.rank=-4", "method.rank"),
        ("method.rank=2.5", "method.rank"),
        ("method.rank=''", "method.rank"),
        ("method.rank='8'", "method.rank"),
        ("method.kernel_rank=0", "method.kernel_rank"),
        ("method.scale=nan", "method.scale"),
        ("method.scale=-1", "method.scale"),
        ("seed=abc", "seed"),
        ("seed=-1", "seed"),
        ("method.dropout=1.5", "method.dropout"),
        ("+method.rank_pattern={query:[2,0]}", "rank_pattern"),
        ("method=lora method.alpha=inf", "method.alpha"),
    ],
)
def test_bad_values_are_refused_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_run_config(compose_config(override.split(" ")))


@pytest.mark.parametrize("override", ["method=flora_r8", "method=lora_r2", "method=head", "method=full", "seed=3"])
def test_the_table_configs_pass(override: str) -> None:
    validate_run_config(compose_config([override]))


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )


def test_a_bad_single_run_is_one_line_and_leaves_no_record(tmp_path: Path) -> None:
    result = _cli("method.rank=2.5", f"paths.runs_dir={tmp_path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: method.rank=2.5 is not a positive integer")
    assert not list(tmp_path.iterdir())


def test_a_multirun_of_bad_values_exits_nonzero_listing_them_and_leaves_no_record(tmp_path: Path) -> None:
    result = _cli("-m", "method.rank=0,-4", f"paths.runs_dir={tmp_path}", "logger=none")
    assert result.returncode == 1 and "2 job(s) of this multirun failed" in result.stderr
    assert "method.rank=0" in result.stderr and "method.rank=-4" in result.stderr
    assert not list(tmp_path.iterdir())
