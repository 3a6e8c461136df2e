"""Score against one swept hyper-parameter (FLoRA's scale s, or the rank of each method), one panel per sweep."""

from __future__ import annotations

from pathlib import Path

from experiments.figures.quality import primary_column
from experiments.figures.sources import column_stat
from experiments.figures.style import COLORS, MARKERS, family, new_figure, save
from experiments.tables import Table


def sweep_points(table: Table) -> tuple[str, list[tuple[float, float, float]]]:
    """(method family, [(swept value, mean ×100, seed std ×100)]) of a table whose rows are one key's values."""
    column = primary_column(table)
    points = []
    for row in table.rows:
        stat = column_stat(row, column)
        if stat is not None:
            points.append((float(row.key), 100 * stat.mean, 100 * stat.std))
    return family(table.rows[0].label), sorted(points)


def draw(panels: list[tuple[str, list[Table]]], out_dir: Path, stem: str, xlabel: str) -> list[Path]:
    """One panel per entry; each table in it (one per method) a curve."""
    fig, axes = new_figure(len(panels))
    for ax, (title, tables) in zip(axes, panels, strict=True):
        for table in tables:
            name, points = sweep_points(table)
            xs, ys, errs = zip(*points, strict=True)
            ax.errorbar(xs, ys, yerr=errs, color=COLORS.get(name), marker=MARKERS.get(name, "o"), capsize=3,
                        linewidth=1.2, markersize=5, label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{primary_column(tables[0])} (×100)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    return save(fig, out_dir, stem)
