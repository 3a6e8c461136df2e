"""Where figures read from: an experiment's table (experiments.tables.collect) or its records cell by cell.

A source is the Hydra overrides that select an experiment's runs, exactly as scripts/make_tables.py takes them,
so a figure finds the same records as the table of that experiment and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from experiments.config import Cell, compose_config, record_path, table_cells
from experiments.records import STATUS_OK, UnreadableRecordError, read_record
from experiments.tables import Row, Stat, Table, collect


@dataclass(frozen=True)
class Source:
    """One experiment's records."""

    overrides: tuple[str, ...]

    def with_overrides(self, extra: Sequence[str]) -> list[str]:
        return [*self.overrides, *extra]

    def __str__(self) -> str:
        return " ".join(self.overrides)


@dataclass(frozen=True)
class Panel:
    """One panel of a figure: its title and the sources drawn in it (one curve each, where that applies)."""

    title: str
    sources: tuple[Source, ...]


class UnreadableRecords(ValueError):
    """Some of a source's record files exist but cannot be read: the source is not drawn (as tables refuse)."""


def load_table(source: Source, extra: Sequence[str]) -> Table | None:
    """The experiment's table, or None when not one of its records is ok."""
    table = collect(source.with_overrides(extra))
    if table.unreadable:
        raise UnreadableRecords(f"{len(table.unreadable)} unreadable record(s), first: {table.unreadable[0]}")
    return table if any(row.ok for row in table.rows) else None


def incomplete_rows(table: Table) -> list[str]:
    """Rows with fewer ok seeds than the table expects (drawn from the seeds they have, and said so)."""
    return [f"{row.label} ({row.ok}/{row.expected})" for row in table.rows if row.ok < row.expected]


def primary_column(table: Table) -> str:
    """The metric the table's Δ columns use: its first."""
    return table.columns[0]


def column_stat(row: Row, column: str) -> Stat | None:
    stat = row.metrics.get(column)
    return stat if stat is not None and stat.values else None


def ok_records(source: Source, extra: Sequence[str]) -> list[tuple[Cell, dict[str, Any]]]:
    """Every cell's ok record (records the tables aggregate away, such as time series, are read from these)."""
    overrides = source.with_overrides(extra)
    cfg = compose_config(overrides)
    found = []
    for cell in table_cells(cfg, overrides):
        try:
            record = read_record(record_path(compose_config(cell.overrides)))
        except UnreadableRecordError as err:
            raise UnreadableRecords(str(err)) from err
        if record is not None and record.get("status") == STATUS_OK:
            found.append((cell, record))
    return found
