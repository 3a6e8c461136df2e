"""Peak memory is per run, also when a multirun trains several runs in one process, and a record says which
peak it holds when the kernel does not let a run restart it."""

import sys

import numpy as np
import pytest

from experiments import provenance
from experiments.provenance import peak_memory, reset_peak_memory

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CPU peak is read from /proc")


@linux_only
def test_reset_starts_a_new_cpu_peak_or_says_it_did_not():
    block = np.ones(50_000_000)
    block[::512] = 2.0
    with_block = peak_memory()["peak_memory_mb"]
    del block
    reset_peak_memory()
    after = peak_memory()
    if after["memory_kind"] == "cpu_peak_rss_since_run_start":
        assert after["peak_memory_mb"] < with_block - 300
    else:
        assert after["memory_kind"] == "cpu_peak_rss_process"
        assert after["peak_memory_mb"] >= with_block


@linux_only
def test_a_reset_the_kernel_ignores_is_reported_as_the_process_peak(tmp_path, monkeypatch):
    status = tmp_path / "status"
    status.write_text("VmHWM:\t 2400000 kB\nVmRSS:\t  500000 kB\n")
    monkeypatch.setattr(provenance, "_CLEAR_REFS", tmp_path / "clear_refs")
    monkeypatch.setattr(provenance, "_STATUS", status)
    reset_peak_memory()
    assert peak_memory() == {"peak_memory_mb": 2400000 / 1024, "memory_kind": "cpu_peak_rss_process"}


@linux_only
def test_a_reset_that_cannot_be_written_is_reported_as_the_process_peak(tmp_path, monkeypatch):
    status = tmp_path / "status"
    status.write_text("VmHWM:\t 2400000 kB\nVmRSS:\t 2400000 kB\n")
    monkeypatch.setattr(provenance, "_CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    monkeypatch.setattr(provenance, "_STATUS", status)
    reset_peak_memory()
    assert peak_memory()["memory_kind"] == "cpu_peak_rss_process"


@linux_only
def test_a_reset_that_took_effect_is_reported_per_run(tmp_path, monkeypatch):
    status = tmp_path / "status"
    status.write_text("VmHWM:\t 500000 kB\nVmRSS:\t  500000 kB\n")
    monkeypatch.setattr(provenance, "_CLEAR_REFS", tmp_path / "clear_refs")
    monkeypatch.setattr(provenance, "_STATUS", status)
    reset_peak_memory()
    assert peak_memory()["memory_kind"] == "cpu_peak_rss_since_run_start"
