"""What a record needs to be reproducible and comparable: commit, package versions, device, memory."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import resource
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import torch

from experiments.config import REPO_ROOT

PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "hydra-core", "omegaconf", "wandb")
# What decides a run's numbers besides its config: the library, the runner, the engine configs (mm files, the
# architecture json). Reporting code (tables, the dry run) and the tracker cannot change a number.
# Each engine adds its own family's files (experiments/engines/registry.py), so that a change to the vision code
# does not invalidate the language records.
COMMON_CODE = ("flora/**/*.py", "experiments/*.py", "experiments/methods/**/*.py", "experiments/engines/base.py",
               "requirements.txt")
REPORTING_ONLY = ("experiments/tables.py", "experiments/dry_run.py", "experiments/tracking.py",
                  "experiments/compare.py")
# Set by the launching process and inherited by its workers (joblib, Slurm), so that every job of a multirun
# carries the commit and code fingerprint of the tree it was launched from, not of whatever HEAD is later.
LAUNCH_COMMIT_ENV = "FLORA_LAUNCH_COMMIT"
LAUNCH_CODE_ENV = "FLORA_LAUNCH_CODE"


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()


def git_commit() -> str:
    """HEAD of the repository, with '-dirty' when tracked files outside results/ have uncommitted changes.

    results/ is excluded: the records a run writes are tracked, and must not mark the next run dirty.
    """
    try:
        head = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def code_files(patterns: Sequence[str]) -> list[Path]:
    """The files matching the glob patterns (relative to the repository), reporting-only modules left out."""
    files = {file for pattern in patterns for file in REPO_ROOT.glob(pattern) if file.is_file()}
    return sorted(f for f in files if f.relative_to(REPO_ROOT).as_posix() not in REPORTING_ONLY)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def code_content(file: Path) -> bytes:
    """What of a file can change a result: a Python module's syntax tree without docstrings (so comments,
    docstrings and formatting never invalidate a record); any other file's bytes."""
    data = file.read_bytes()
    if file.suffix != ".py":
        return data
    try:
        tree = ast.parse(data, filename=str(file))
    except SyntaxError:
        return data
    return ast.dump(_without_docstrings(tree), include_attributes=False).encode()


def code_fingerprint(patterns: Sequence[str] = COMMON_CODE) -> str:
    """A short hash of the working-tree code that decides results (committed or not), by content (code_content)."""
    digest = hashlib.sha256()
    for file in code_files(patterns):
        digest.update(file.relative_to(REPO_ROOT).as_posix().encode())
        digest.update(hashlib.sha256(code_content(file)).digest())
    return digest.hexdigest()[:12]


def _family_fingerprints() -> dict[str, str]:
    from experiments.engines.registry import ENGINES

    return {name: code_fingerprint(COMMON_CODE + engine.code) for name, engine in ENGINES.items()}


def mark_launch() -> None:
    """Take the commit and every engine's code fingerprint once, in the launching process; workers inherit them."""
    os.environ.setdefault(LAUNCH_COMMIT_ENV, git_commit())
    os.environ.setdefault(LAUNCH_CODE_ENV, json.dumps(_family_fingerprints(), sort_keys=True))


def launch_commit() -> str:
    """The commit the run was launched from (read now when the run was not started through mark_launch)."""
    return os.environ.get(LAUNCH_COMMIT_ENV) or git_commit()


def launch_code_fingerprint(engine: str) -> str:
    """The engine's code fingerprint taken at launch (computed now when not started through mark_launch)."""
    launched = os.environ.get(LAUNCH_CODE_ENV)
    fingerprints = json.loads(launched) if launched else _family_fingerprints()
    return fingerprints[engine]


def installed_versions(names: Sequence[str]) -> dict[str, str]:
    """Installed version of each named distribution ("absent" when it is not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide the numbers."""
    return {"python": platform.python_version(), **installed_versions(PACKAGES)}


def device_name() -> str:
    """The GPU's name, or the CPU and its thread count."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
# Whether the last reset_peak_memory() really restarted the CPU peak; False until one did.
_PEAK_IS_PER_RUN = False
# Other threads may allocate and free between the reset and the read that checks it.
_RESET_SLACK_KB = 4096


def reset_peak_memory() -> None:
    """Start the peak counters at this run, so runs sharing one process (a multirun) each report their own.

    CUDA has its own reset; on Linux, writing 5 to /proc/self/clear_refs resets the process's peak RSS (VmHWM).
    Some kernels and sandboxes accept the write and ignore it: right after a real reset the peak equals the
    current RSS, so the reset is checked, and a peak that was not reset is reported as the process's lifetime peak.
    """
    global _PEAK_IS_PER_RUN
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        _PEAK_IS_PER_RUN = False
        return
    sizes = _linux_memory_kb()
    peak, current = sizes.get("VmHWM"), sizes.get("VmRSS")
    _PEAK_IS_PER_RUN = peak is not None and current is not None and peak - current <= _RESET_SLACK_KB


def _linux_memory_kb() -> dict[str, int]:
    """The process's memory fields (VmHWM, VmRSS, ...) in kB, read at one instant; empty where there are none."""
    try:
        lines = _STATUS.read_text().splitlines()
    except OSError:
        return {}
    fields = (line.split(":", 1) for line in lines if line.startswith("Vm"))
    return {name: int(value.split()[0]) for name, value in fields}


def peak_memory() -> dict[str, float | str]:
    """CUDA max allocated on a GPU; otherwise the process's peak resident set size."""
    if torch.cuda.is_available():
        return {"peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20, "memory_kind": "cuda_max_allocated"}
    rss_kb = _linux_memory_kb().get("VmHWM")
    if rss_kb is not None:
        kind = "cpu_peak_rss_since_run_start" if _PEAK_IS_PER_RUN else "cpu_peak_rss_process"
        return {"peak_memory_mb": rss_kb / 1024, "memory_kind": kind}
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_memory_mb": rss_kb / 1024, "memory_kind": "cpu_peak_rss_process"}
