"""The runner's one way to write files and caches that a crash, a kill or a concurrent worker can never corrupt.

Files: written to a private temporary file in the same folder, fsynced, then renamed over the target (atomic on
POSIX). Caches (a folder or a file built once per machine): built under an exclusive lock beside the target, so a
second worker waits for the first instead of repeating minutes of work, into a private temporary path per
process that is renamed into place; if the lock is not honoured (some network file systems), the first rename
wins and the other worker discards its copy.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _mode(full: int) -> int:
    """full (0o666 for files, 0o777 for folders) less the process umask: the mode a plain open()/mkdir() gives,
    instead of the owner-only mode of the private temporary path."""
    mask = os.umask(0)
    os.umask(mask)
    return full & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace path with data in one step: readers see the old content or the new, never a part."""
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """atomic_write_bytes for text (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A private temporary path beside path; renamed over path when the block ends without error.

    For writers that need a file name (torch.save, safetensors, PIL): `with atomic_file(p) as tmp: save(tmp)`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode(0o666))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on path (created if absent), held for the block.

    The kernel releases it when the holder exits, even by SIGKILL, so a crashed worker never leaves a stale lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def build_dir_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build a cache folder at target unless it exists; safe under concurrent workers.

    build(tmp) fills a private temporary folder beside target; it is then renamed into place. A second worker
    waits on the lock and then finds the folder; without a working lock the first rename wins and the later
    copy is discarded. A crash leaves only a hidden temporary folder, never a half-built target.
    """
    target = Path(target)
    if target.is_dir():
        return target
    with file_lock(_lock_path(target)):
        if target.is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        try:
            build(tmp)
            os.chmod(tmp, _mode(0o777))
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_file_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build a cache file at target unless it exists; safe under concurrent workers (see build_dir_once).

    build(tmp) writes a private temporary file beside target, which then replaces target atomically.
    """
    target = Path(target)
    if target.is_file():
        return target
    with file_lock(_lock_path(target)):
        if not target.is_file():
            with atomic_file(target) as tmp:
                build(tmp)
    return target
