"""experiments/atomic.py: files and caches that a crash or a concurrent worker cannot leave half-written, and a
cache built once when several processes ask for it at the same moment."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from experiments.atomic import atomic_file, atomic_write_text, build_dir_once, build_file_once
from experiments.config import REPO_ROOT

# Builds a folder (or a file) slowly, appending one line per build to a log, so that overlapping workers and
# repeated builds are both visible.
WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from experiments.atomic import build_dir_once, build_file_once

    kind, target, log, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.01)

    def build_dir(tmp):
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\\n")
        for i in range(5):
            time.sleep(0.1)
            (tmp / f"part{i}").write_text(str(i))

    def build_file(tmp):
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\\n")
        time.sleep(0.5)
        tmp.write_text("complete")

    if kind == "dir":
        print(build_dir_once(target, build_dir))
    else:
        print(build_file_once(target, build_file))
    """
)


def _race(tmp_path: Path, kind: str, target: Path, workers: int = 3) -> list[subprocess.CompletedProcess]:
    """Start workers that wait on a go file, release them together, and collect their results."""
    go, log = tmp_path / "go", tmp_path / "log"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, kind, str(target), str(log), str(go)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def _hidden_leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]


def test_concurrent_workers_build_a_folder_once(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "scenes"
    results = _race(tmp_path, "dir", target)
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    assert {r.stdout.strip() for r in results} == {str(target)}
    assert sorted(p.name for p in target.iterdir()) == [f"part{i}" for i in range(5)]
    assert len((tmp_path / "log").read_text().splitlines()) == 1  # the others waited, then reused it
    assert _hidden_leftovers(target.parent) == []


def test_concurrent_workers_build_a_file_once(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "weights.pt"
    results = _race(tmp_path, "file", target)
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    assert target.read_text() == "complete"
    assert len((tmp_path / "log").read_text().splitlines()) == 1
    assert _hidden_leftovers(target.parent) == []


def test_a_failed_build_leaves_no_cache(tmp_path: Path) -> None:
    def broken(tmp: Path) -> None:
        (tmp / "half" if tmp.is_dir() else tmp).write_text("half")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError, match="mid-build"):
        build_dir_once(tmp_path / "scenes", broken)
    with pytest.raises(RuntimeError, match="mid-build"):
        build_file_once(tmp_path / "weights.pt", broken)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    assert (build_dir_once(tmp_path / "scenes", lambda tmp: (tmp / "ok").write_text("1")) / "ok").is_file()


def test_first_rename_wins_when_the_lock_is_not_honoured(tmp_path: Path) -> None:
    """A worker that ignored the lock (a file system without flock) finished first: its folder is kept."""
    target = tmp_path / "scenes"

    def racing(tmp: Path) -> None:
        (tmp / "mine").write_text("late")
        target.mkdir()
        (target / "theirs").write_text("first")

    assert build_dir_once(target, racing) == target
    assert [p.name for p in target.iterdir()] == ["theirs"]
    assert _hidden_leftovers(tmp_path) == []


def test_atomic_file_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "record.jsonl"
    atomic_write_text(path, "old\n")
    with pytest.raises(OSError), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise OSError("disk full")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["record.jsonl"]


def test_caches_get_the_modes_of_plain_files_and_folders(tmp_path: Path) -> None:
    """Not the owner-only modes of the private temporary paths: other users of a shared cache can read them."""
    folder = build_dir_once(tmp_path / "scenes", lambda tmp: (tmp / "a").write_text("1"))
    file = build_file_once(tmp_path / "weights.pt", lambda tmp: tmp.write_text("1"))
    plain_dir, plain_file = tmp_path / "plain_dir", tmp_path / "plain_file"
    plain_dir.mkdir()
    plain_file.write_text("1")
    assert folder.stat().st_mode == plain_dir.stat().st_mode
    assert file.stat().st_mode == plain_file.stat().st_mode
