"""Peak memory is per run, also when a multirun trains several runs in one process, and a record says which
peak it holds when the kernel does not let a run restart it."""

import mmap
import sys

import numpy as np
import pytest

from experiments import provenance
from experiments.provenance import peak_memory, reset_peak_memory

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CPU peak is read from /proc")


def resident_block(size: int) -> mmap.mmap:
    """Anonymous memory mapped here and touched page by page: it adds to the resident set whatever the heap holds
    (a numpy array could reuse memory the allocator kept from earlier tests, and raise no peak), and closing it
    hands the pages back at once."""
    block = mmap.mmap(-1, size)
    pages = np.frombuffer(block, dtype=np.uint8)
    pages[:: mmap.PAGESIZE] = 1
    del pages
    return block


@linux_only
def test_reset_starts_a_new_cpu_peak_or_says_it_did_not():
    block = resident_block(400 * 2**20)
    with_block = peak_memory()["peak_memory_mb"]
    block.close()
    reset_peak_memory()
    after = peak_memory()
    if after["memory_kind"] == "cpu_peak_rss_since_run_start":
        assert after["peak_memory_mb"] < with_block - 300
    else:
        assert after["memory_kind"] == "cpu_peak_rss_process"
        assert after["peak_memory_mb"] >= with_block


@linux_only
@pytest.mark.parametrize(
    ("peak_kb", "writable", "kind"),
    [
        (2400000, True, "cpu_peak_rss_process"),  # the kernel takes the write and ignores it
        (500000, False, "cpu_peak_rss_process"),  # the write is refused
        (500000, True, "cpu_peak_rss_since_run_start"),  # the reset took: the peak is the current RSS
    ],
)
def test_the_record_says_whether_the_reset_took(tmp_path, monkeypatch, peak_kb, writable, kind):
    status = tmp_path / "status"
    status.write_text(f"VmHWM:\t {peak_kb} kB\nVmRSS:\t  500000 kB\n")
    clear_refs = tmp_path / "clear_refs" if writable else tmp_path / "missing" / "clear_refs"
    monkeypatch.setattr(provenance, "_CLEAR_REFS", clear_refs)
    monkeypatch.setattr(provenance, "_STATUS", status)
    reset_peak_memory()
    assert peak_memory() == {"peak_memory_mb": peak_kb / 1024, "memory_kind": kind}
