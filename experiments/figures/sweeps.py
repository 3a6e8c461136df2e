"""Score against one swept hyper-parameter (FLoRA's scale s, or each method's rank), one panel per sweep.

A sweep's table has one row per swept value (per method, in a method grid); each table drawn in a panel is one
method's curve. The same curves, placed at their adapter parameter counts, go on quality_vs_params' panels.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes

from experiments.figures.sources import column_stat, primary_column
from experiments.figures.style import COLORS, MARKERS, family, new_figure, save
from experiments.tables import Table

Point = tuple[float, float, float]


def sweep_points(table: Table, by_params: bool = False) -> tuple[str, list[Point]]:
    """(method family, [(x, mean ×100, seed std ×100)]) of a sweep's rows that have records, x being the swept
    value, or the row's adapter parameter count when by_params."""
    column = primary_column(table)
    task = column.split("/")[0]
    points = []
    for row in table.rows:
        stat = column_stat(row, column)
        if stat is None or (by_params and task not in row.params):
            continue
        x = row.params[task]["adapter"] if by_params else float(row.value)
        points.append((x, 100 * stat.mean, 100 * stat.std))
    return family(table.rows[0].label), sorted(points)


def draw_panel(ax: Axes, title: str, tables: list[Table], xlabel: str) -> None:
    """Each table (one method's sweep) a curve with its seed spread as error bars; ticks at the swept values."""
    ticks: set[float] = set()
    for table in tables:
        name, points = sweep_points(table)
        xs, ys, errs = zip(*points, strict=True)
        ax.errorbar(xs, ys, yerr=errs, color=COLORS.get(name), marker=MARKERS.get(name, "o"), capsize=3,
                    linewidth=1.2, markersize=5, label=name)
        ticks.update(xs)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(ticks), [f"{x:g}" for x in sorted(ticks)])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{primary_column(tables[0])} (×100)")
    ax.set_title(title)
    ax.legend(fontsize=7)


def draw(panels: list[tuple[str, list[Table]]], out_dir: Path, stem: str, xlabel: str) -> list[Path]:
    """One panel per sweep."""
    fig, axes = new_figure(len(panels))
    for ax, (title, tables) in zip(axes, panels, strict=True):
        draw_panel(ax, title, tables, xlabel)
    return save(fig, out_dir, stem)
