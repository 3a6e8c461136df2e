"""Real Fashion-MNIST from the Debian package dataset-fashion-mnist, or torchvision's downloader as fallback."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

from experiments.errors import MissingAssetsError
from experiments.vision.cache import cache_root

CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(path: Path) -> np.ndarray:
    """An idx-ubyte(.gz) file as a uint8 array of the shape its header declares."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    _, _, dtype, ndim = struct.unpack(">BBBB", data[:4])
    if dtype != 0x08:
        raise ValueError(f"{path}: expected unsigned bytes, got idx dtype {dtype:#x}")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _source_dir() -> Path:
    """Folder holding the four idx files: the Debian package, else a torchvision download in the cache."""
    if all((DEBIAN_DIR / f).is_file() for pair in FILES.values() for f in pair):
        return DEBIAN_DIR
    root = cache_root() / "torchvision"
    raw = root / "FashionMNIST" / "raw"
    if not all((raw / f).is_file() for pair in FILES.values() for f in pair):
        try:
            from torchvision.datasets import FashionMNIST

            FashionMNIST(str(root), train=True, download=True)
            FashionMNIST(str(root), train=False, download=True)
        except Exception as err:  # no network: say how to get the data
            raise MissingAssetsError(
                [
                    "Fashion-MNIST: `apt-get install dataset-fashion-mnist` (Debian; run by `make setup-vision`) or "
                    f"internet access for torchvision's downloader ({type(err).__name__}: {err})"
                ]
            ) from err
    return raw


def load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28) uint8 and labels (n,) int64 of the 'train' (60,000) or 'test' (10,000) split."""
    if split not in FILES:
        raise ValueError(f"unknown Fashion-MNIST split {split!r}; expected one of {sorted(FILES)}")
    folder = _source_dir()
    images_file, labels_file = FILES[split]
    return _read_idx(folder / images_file), _read_idx(folder / labels_file).astype(np.int64)


def files_fingerprint() -> str:
    """sha256 of the four files the splits are read from (30 MB: a fraction of a second), for run records."""
    folder = _source_dir()
    digest = hashlib.sha256()
    for pair in FILES.values():
        for name in pair:
            digest.update((folder / name).read_bytes())
    return "sha256:" + digest.hexdigest()[:16]
