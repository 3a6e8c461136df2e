"""Every figure `make figures` draws: its file stem, panels, the records each panel reads, how it is drawn.

A panel whose records are missing is left out, and a figure with no panel left is skipped; both are said in
the notes, never drawn from anything but records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from experiments.figures import quality, sweeps, update_norms
from experiments.figures.sources import Panel, Source, UnreadableRecords, incomplete_rows, load_table, ok_records
from experiments.tables import Table

Loader = Callable[[Source, Sequence[str]], Any]
Drawer = Callable[[list[tuple[str, list[Any]]], Path, str], list[Path]]


def load_update_norms(source: Source, extra: Sequence[str]) -> list[update_norms.RowSeries] | None:
    rows = update_norms.row_series(ok_records(source, extra))
    return rows or None


@dataclass(frozen=True)
class FigureSpec:
    stem: str
    panels: tuple[Panel, ...]
    load: Loader
    draw: Drawer


@dataclass
class Outcome:
    """What building one figure did: the files written (none when skipped) and every note worth printing."""

    stem: str
    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _panel(title: str, *experiments: str) -> Panel:
    return Panel(title, tuple(Source(tuple(e.split())) for e in experiments))


# Rank sweeps are loaded one method at a time, so that a method without records is a note and no curve.
RANK_METHODS = ("flora", "lora", "dora")


def _rank_sweep(experiment: str) -> tuple[str, ...]:
    return tuple(f"experiment={experiment} method={method}" for method in RANK_METHODS)


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "quality_vs_params",
        (
            _panel("MiniLM-L6 / BBC News (table3_glue)", "experiment=table3_glue", *_rank_sweep("sweep_rank")),
            _panel("EfficientNet-Lite0 / Fashion-MNIST (table1_effnet)", "experiment=table1_effnet",
                   *_rank_sweep("sweep_rank_effnet")),
            _panel(
                "ConvNeXt / scene segmentation (table1_convnext)",
                "experiment=table1_convnext table.tasks=[scenes_seg] ~table.column_labels",
            ),
            _panel(
                "ViT / scene segmentation (table2_internvit)",
                "experiment=table2_internvit table.tasks=[scenes_seg] ~table.column_labels",
            ),
        ),
        load_table,
        quality.draw,
    ),
    FigureSpec(
        "sweep_scale",
        (
            _panel("MiniLM-L6 / BBC News test (sweep_scale)", "experiment=sweep_scale"),
            _panel("EfficientNet-Lite0 / held-out (sweep_scale_effnet)", "experiment=sweep_scale_effnet"),
            _panel("ViT / held-out scenes (sweep_scale_internvit)", "experiment=sweep_scale_internvit"),
        ),
        load_table,
        partial(sweeps.draw, xlabel="FLoRA's scale s"),
    ),
    FigureSpec(
        "sweep_rank",
        (
            _panel("MiniLM-L6 / BBC News test (sweep_rank)", *_rank_sweep("sweep_rank")),
            _panel("EfficientNet-Lite0 / held-out (sweep_rank_effnet)", *_rank_sweep("sweep_rank_effnet")),
        ),
        load_table,
        partial(sweeps.draw, xlabel="rank r"),
    ),
    FigureSpec(
        "figure4_update_norms",
        (_panel("MiniLM-L6 / BBC News (figure4_update_norms)", "experiment=figure4_update_norms"),),
        load_update_norms,
        update_norms.draw,
    ),
)


def build(spec: FigureSpec, extra: Sequence[str], out_dir: Path) -> Outcome:
    """Load every panel's sources, draw what has records, say what was left out and why."""
    outcome = Outcome(spec.stem)
    panels: list[tuple[str, list[Any]]] = []
    for panel in spec.panels:
        found = []
        for source in panel.sources:
            try:
                data = spec.load(source, extra)
            except UnreadableRecords as err:
                outcome.notes.append(f"`{source}` not drawn: {err}")
                continue
            if data is None:
                outcome.notes.append(f"no records for `{source}`: left out of panel '{panel.title}'")
                continue
            if isinstance(data, Table):
                outcome.notes += [f"`{source}`: {row} seeds ok" for row in incomplete_rows(data)]
            found.append(data)
        if found:
            panels.append((panel.title, found))
    if panels:
        outcome.paths = spec.draw(panels, out_dir, spec.stem)
    else:
        outcome.notes.append("skipped: none of its records exist")
    return outcome


def input_problems(spec: FigureSpec, extra: Sequence[str] = ()) -> list[str]:
    """What keeps the figure from being drawn in full: sources without records, rows short of seeds."""
    problems = []
    for panel in spec.panels:
        for source in panel.sources:
            try:
                data = spec.load(source, extra)
            except UnreadableRecords as err:
                problems.append(f"`{source}`: {err}")
                continue
            if data is None:
                problems.append(f"`{source}`: no records")
            elif isinstance(data, Table):
                problems += [f"`{source}`: {row} seeds ok" for row in incomplete_rows(data)]
    return problems
