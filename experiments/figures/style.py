"""One look for every figure, and how a figure is written: PNG for the README, PDF for papers, both atomically."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from experiments.atomic import atomic_write_bytes  # noqa: E402

# Method families by the label prefix the method configs give their rows ("FLoRA (r=8)" -> "FLoRA").
COLORS = {"FLoRA": "tab:red", "LoRA": "tab:blue", "DoRA": "tab:green", "Full fine-tuning": "black",
          "Head only": "tab:gray", "BitFit": "tab:purple"}
MARKERS = {"FLoRA": "o", "LoRA": "s", "DoRA": "^", "BitFit": "D"}
DPI = 150


def family(label: str) -> str:
    """'FLoRA (r=8), scale=4.0' -> 'FLoRA'; labels without a budget stay whole ('Head only')."""
    return label.split(" (")[0].split(",")[0]


def new_figure(panels: int, width: float = 4.2, height: float = 3.4) -> tuple[Figure, list]:
    """A row of panels; four go on a 2 x 2 grid so that each stays readable in the README."""
    plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    columns = 2 if panels == 4 else panels
    rows = -(-panels // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    return fig, list(axes.flat)


def save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """<stem>.png and <stem>.pdf, without timestamps so that an unchanged figure is an unchanged file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = []
    for fmt, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
        path = out_dir / f"{stem}.{fmt}"
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths
