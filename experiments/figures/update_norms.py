"""The paper's Figure 4: ||dW||_F and the feature amplification factor over training, per method.

The series come from the records' ``update_norms`` block (experiments/analysis/, written when a run is trained
with analysis.update_norms_every > 0): the model-level norm (of all adapted layers' updates together) and the mean
amplification factor over layers. A row's seeds are averaged step by step, with their range as a band.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.config import Cell
from experiments.figures.style import COLORS, family, new_figure, save

LINESTYLES = ("-", "--", ":", "-.")
SERIES = {"total_norm": "‖ΔW‖_F (all adapted layers)", "mean_amplification": "amplification factor (layer mean)"}


@dataclass
class RowSeries:
    """One table row's series over its seeds (seeds with the same measured steps only)."""

    label: str
    steps: list[int]
    values: dict[str, list[list[float]]] = field(default_factory=dict)  # series name -> one list per seed

    @property
    def seeds(self) -> int:
        return len(next(iter(self.values.values()), []))


def row_series(records: list[tuple[Cell, dict[str, Any]]]) -> list[RowSeries]:
    """Rows, in table order, whose records carry update-norm series."""
    rows: dict[str, RowSeries] = {}
    for cell, record in records:
        block = record.get("update_norms")
        if not block or not block.get("steps"):
            continue
        row = rows.setdefault(cell.row, RowSeries(record.get("label", cell.row), list(block["steps"])))
        if block["steps"] != row.steps:
            continue
        for name in SERIES:
            row.values.setdefault(name, []).append(list(block["summary"][name]))
    return list(rows.values())


def draw(panels: list[tuple[str, list[list[RowSeries]]]], out_dir: Path, stem: str) -> list[Path]:
    """Two panels (norm, amplification) for the first source; rows as lines, seed range as bands."""
    title, (rows,) = panels[0]
    fig, axes = new_figure(len(SERIES))
    for ax, (name, ylabel) in zip(axes, SERIES.items(), strict=True):
        budgets: dict[str, int] = {}  # rows drawn so far per method: its budgets get successive line styles
        for row in rows:
            values = np.asarray(row.values[name])
            method = family(row.label)
            color, linestyle = COLORS.get(method), LINESTYLES[budgets.get(method, 0) % len(LINESTYLES)]
            budgets[method] = budgets.get(method, 0) + 1
            ax.plot(row.steps, values.mean(axis=0), color=color, linestyle=linestyle, label=row.label)
            if row.seeds > 1:
                ax.fill_between(row.steps, values.min(axis=0), values.max(axis=0), color=color, alpha=0.12)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=7)
    return save(fig, out_dir, stem)
