"""Quality against parameters, one panel per table: the picture behind "as good as LoRA with fewer parameters".

Each adapter row is a point at its adapter parameter count (what the method adds to the backbone; the task head,
trained by every row, is left out) with its seed spread as an error bar; rows of one method are joined in budget
order. BitFit adds nothing and trains the backbone's biases: its point sits at their count. Head-only and full
fine-tuning add no adapter parameters and are drawn as horizontal lines (their seed spread as a band). A panel's
other sources are rank sweeps of the same task: each method's sweep is a dotted curve through its ranks' adapter
counts, so the table's budgets are seen on the method's whole rank curve. A sweep scored on other images than the
table (a held-out split) is starred, its split written under the panel.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.ticker import NullFormatter

from experiments.dry_run import in_backbone
from experiments.figures.sources import column_stat, primary_column
from experiments.figures.style import COLORS, MARKERS, family, new_figure, save
from experiments.figures.sweeps import sweep_points
from experiments.tables import Table

REFERENCE_TAGS = ("head", "full")


def is_method_table(table: Table) -> bool:
    """A table whose rows are methods at their budgets (not one sweep's values)."""
    return table.row_key == "method"


def draw_table(ax: Axes, table: Table) -> None:
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
            params = row.params[task]
            trained = params["adapter"] or in_backbone(params)  # BitFit adds nothing: it trains the biases
            curves.setdefault(name, []).append((trained, 100 * stat.mean, 100 * stat.std))
    for name, points in curves.items():
        xs, ys, errs = zip(*sorted(points), strict=True)
        ax.errorbar(xs, ys, yerr=errs, color=COLORS.get(name), marker=MARKERS.get(name, "o"), capsize=3,
                    linewidth=1.2, markersize=5, label=name)


def draw_sweep(ax: Axes, sweep: Table, star: bool) -> None:
    """One method's rank sweep as a dotted curve over adapter parameters (one seed: no error bars)."""
    name, points = sweep_points(sweep, by_params=True)
    if not points:
        return
    xs, ys, _ = zip(*points, strict=True)
    ax.plot(xs, ys, color=COLORS.get(name), marker=MARKERS.get(name, "o"), linestyle=":", linewidth=1,
            markersize=3, markerfacecolor="none", label=f"{name} over rank ({sweep.experiment}){' *' if star else ''}")


def draw_panel(ax: Axes, title: str, tables: list[Table]) -> None:
    """The method table's points and lines, then every sweep's curve; the y label is the method table's metric."""
    reference = next((t for t in tables if is_method_table(t)), tables[0])
    other_splits = set()
    for table in tables:
        if is_method_table(table):
            draw_table(ax, table)
            continue
        star = reference is not table and table.split_note != reference.split_note
        draw_sweep(ax, table, star)
        if star:
            other_splits.add(f"* {table.experiment}: {table.split_note}")
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    if high / low > 10:  # a decade or more: the majors label it; labelled minor ticks would overprint each other
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("backbone parameters trained (adapter; BitFit: biases)")
    if other_splits:
        note = textwrap.fill(" ".join(sorted(other_splits)), width=80)
        ax.annotate(note, xy=(0.5, 0), xycoords=ax.xaxis.label, xytext=(0, -2), textcoords="offset points",
                    ha="center", va="top", fontsize=6)
    ax.set_ylabel(f"{primary_column(reference)} (×100)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6)


def draw(panels: list[tuple[str, list[Table]]], out_dir: Path, stem: str) -> list[Path]:
    """One panel per table, with the rank sweeps of its task where they have records."""
    fig, axes = new_figure(len(panels))
    for ax, (title, tables) in zip(axes, panels, strict=True):
        draw_panel(ax, title, tables)
    return save(fig, out_dir, stem)
