"""Peak memory is per run, also when a multirun trains several runs in one process."""

import sys

import numpy as np
import pytest

from experiments.provenance import peak_memory, reset_peak_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-run CPU peak needs /proc/self/clear_refs")
def test_reset_starts_a_new_cpu_peak():
    block = np.ones(50_000_000)
    with_block = peak_memory()["peak_memory_mb"]
    del block
    reset_peak_memory()
    after = peak_memory()
    assert after["memory_kind"] == "cpu_peak_rss_since_run_start"
    assert after["peak_memory_mb"] < with_block - 300
