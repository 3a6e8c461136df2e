"""Quality against parameters, one panel per table: the picture behind "as good as LoRA with fewer parameters".

Each adapter row is a point at its adapter parameter count (what the method adds to the backbone; the task head,
trained by every row, is left out) with its seed spread as an error bar; rows of one method are joined in budget
order. Head-only and full fine-tuning add no adapter parameters and are drawn as horizontal lines (their seed
spread as a band).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes

from experiments.figures.sources import column_stat
from experiments.figures.style import COLORS, MARKERS, family, new_figure, save
from experiments.tables import Table

REFERENCE_TAGS = ("head", "full")


def primary_column(table: Table) -> str:
    """The metric the table's Δ columns use: its first."""
    return table.columns[0]


def draw_panel(ax: Axes, title: str, table: Table) -> None:
    column = primary_column(table)
    task = column.split("/")[0]
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for row in table.rows:
        stat = column_stat(row, column)
        if stat is None:
            continue
        name = family(row.label)
        if row.tag in REFERENCE_TAGS:
            color = COLORS.get(name, "tab:gray")
            ax.axhline(100 * stat.mean, color=color, linestyle="--", linewidth=1, label=row.label)
            ax.axhspan(100 * (stat.mean - stat.std), 100 * (stat.mean + stat.std), color=color, alpha=0.08)
        elif task in row.params:
            curves.setdefault(name, []).append((row.params[task]["adapter"], 100 * stat.mean, 100 * stat.std))
    for name, points in curves.items():
        xs, ys, errs = zip(*sorted(points), strict=True)
        ax.errorbar(xs, ys, yerr=errs, color=COLORS.get(name), marker=MARKERS.get(name, "o"), capsize=3,
                    linewidth=1.2, markersize=5, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("adapter parameters")
    ax.set_ylabel(f"{column} (×100)")
    ax.set_title(title)
    ax.legend(fontsize=7)


def draw(panels: list[tuple[str, list[Table]]], out_dir: Path, stem: str) -> list[Path]:
    """One panel per table (each panel has one)."""
    fig, axes = new_figure(len(panels))
    for ax, (title, (table,)) in zip(axes, panels, strict=True):
        draw_panel(ax, title, table)
    return save(fig, out_dir, stem)
