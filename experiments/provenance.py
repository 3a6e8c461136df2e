"""What a record needs to be reproducible and comparable: commit, package versions, device, memory."""

from __future__ import annotations

import platform
import resource
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from experiments.config import REPO_ROOT

PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "hydra-core", "omegaconf", "wandb")


def git_commit() -> str:
    """HEAD of the repository, with '-dirty' when tracked files have uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide the numbers."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def device_name() -> str:
    """The GPU's name, or the CPU and its thread count."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak_memory() -> None:
    """Start the peak counters at this run, so runs sharing one process (a multirun) each report their own.

    CUDA has its own reset; on Linux, writing 5 to /proc/self/clear_refs resets the process's peak RSS (VmHWM).
    """
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


def _linux_peak_rss_kb() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_memory() -> dict[str, float | str]:
    """CUDA max allocated on a GPU; otherwise the process's peak resident set size."""
    if torch.cuda.is_available():
        return {"peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20, "memory_kind": "cuda_max_allocated"}
    rss_kb = _linux_peak_rss_kb()
    if rss_kb is not None:
        return {"peak_memory_mb": rss_kb / 1024, "memory_kind": "cpu_peak_rss_since_run_start"}
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_memory_mb": rss_kb / 1024, "memory_kind": "cpu_peak_rss_process"}
