"""Run records -> a results table (markdown, CSV, LaTeX) for one experiment and profile.

The table's rows, tasks and seeds come from the experiment config; each cell's record is found by composing
that cell's config and computing its run id (the same function the runner names records with), so a table
only ever shows runs of exactly the configs it describes. The tasks of one table can train different models
(UperNet and Mask R-CNN on one backbone), so parameter counts and finished seeds are kept per task.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from experiments.atomic import atomic_write_text
from experiments.config import Cell, compose_config, record_path, table_cells
from experiments.records import STATUS_OK, UnreadableRecordError, read_record
from experiments.runner import current_fingerprint

MISSING = "–"
# Parameter counts the markdown/LaTeX show (with their column names) and the CSV keeps, and seed counts.
PARAM_KINDS = {"trainable": "Trainable", "adapter": "Adapter"}
PARAM_FIELDS = ("trainable", "adapter", "backbone", "trainable_pct", "adapter_pct")
SEED_FIELDS = ("ok", "failed", "expected")
NO_SELECTION = "none"
SETTINGS_HEADER = "Setting"


@dataclass
class Stat:
    """Mean and sample standard deviation of one figure over the seeds that finished."""

    values: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0 if self.values else math.nan


@dataclass
class Seeds:
    """The runs of one (row, task): how many finished ok, failed, and how many the table expects."""

    ok: int = 0
    failed: int = 0
    expected: int = 0

    def __str__(self) -> str:
        return f"{self.ok}/{self.expected}" + (f" ({self.failed} failed)" if self.failed else "")


@dataclass
class Row:
    """One table row (a method at one budget, or one sweep value of one method) aggregated over tasks and seeds."""

    key: str  # unique in its table: the row value, or "<method>/<row value>" in a method grid
    label: str
    tag: str
    value: str = ""  # the row_key's value (a figure's x); the key itself when left empty
    params: dict[str, dict[str, float]] = field(default_factory=dict)  # per task: its model's counts
    metrics: dict[str, Stat] = field(default_factory=dict)
    by_seed: dict[int, dict[str, float]] = field(default_factory=dict)  # seed -> column -> value (for the average)
    seconds_per_step: dict[str, Stat] = field(default_factory=dict)  # per task: tasks train different models
    peak_memory_mb: dict[str, Stat] = field(default_factory=dict)  # per task
    seeds: dict[str, Seeds] = field(default_factory=dict)  # per task
    code: set[str] = field(default_factory=set)  # code fingerprints of the ok records behind the row
    settings: dict[str, set[str]] = field(default_factory=dict)  # per task: the tuned knobs its records ran at
    selections: set[str] = field(default_factory=set)  # the selections its records' knobs come from
    stale: int = 0  # ok records made by other code than the current tree's
    stale_tasks: set[str] = field(default_factory=set)  # the tasks those records belong to
    unreadable: list[str] = field(default_factory=list)  # record files that exist but could not be read

    def __post_init__(self) -> None:
        self.value = self.value or self.key

    @property
    def ok(self) -> int:
        return sum(s.ok for s in self.seeds.values())

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.seeds.values())

    @property
    def expected(self) -> int:
        return sum(s.expected for s in self.seeds.values())


@dataclass
class Table:
    """Everything a renderer needs: rows in config order, the metric columns, the paper's values."""

    experiment: str
    profile: str
    backbone: str
    row_key: str
    tasks: list[str]
    split_note: str | None
    columns: list[str]
    rows: list[Row]
    paper_values: dict[str, dict[str, Any]]
    paper_source: str | None
    seeds: list[int]
    current_code: set[str] = field(default_factory=set)  # the current tree's fingerprint(s) for these tasks
    column_labels: dict[str, str] = field(default_factory=dict)  # column -> display name, in display order
    average: str | None = None  # display name of the average over the metric columns (the paper's "All Avg.")
    paper_inline: bool = False  # the paper's value in the same cell as ours, "ours (paper)"
    # Where a row's / column's paper value is filed in paper_values, when the paper's names differ from the
    # table's (a mini row standing for a paper budget, a mini column for a paper data set's metric).
    paper_rows: dict[str, str] = field(default_factory=dict)
    paper_column_keys: dict[str, str] = field(default_factory=dict)

    def paper_value(self, row: str, column: str) -> Any:
        """The paper's value of a cell, or None."""
        values = self.paper_values.get(self.paper_rows.get(row, row), {})
        return values.get(self.paper_column_keys.get(column, column))
    commits: dict[str, int] = field(default_factory=dict)  # commit -> number of ok records made from it

    @property
    def unreadable(self) -> list[str]:
        return [path for row in self.rows for path in row.unreadable]


# Row keys whose value the method label already shows ("LoRA (r=8)"): no ", rank=8" after it.
LABELLED_ROW_KEYS = ("method", "method.rank")


def _row_label(cfg: DictConfig, row_key: str, row: str) -> str:
    return cfg.method.label if row_key in LABELLED_ROW_KEYS else f"{cfg.method.label}, {row_key.split('.')[-1]}={row}"


def _names_method(override: str) -> bool:
    return override.split("=", 1)[0].lstrip("+~") == "method"


def grid_methods(cfg: DictConfig, overrides: Sequence[str]) -> list[str | None]:
    """The methods a table's rows run for: `table.methods` (a method x row grid, such as a rank sweep), only the
    one a `method=` override names, or [None] for a table with no grid (its rows or the command line pick it)."""
    methods = cfg.table.get("methods")
    if not methods:
        return [None]
    named = [o.split("=", 1)[1] for o in overrides if _names_method(o)]
    return named[-1:] or [str(m) for m in methods]


def grid_cells(cfg: DictConfig, overrides: Sequence[str] = ()) -> Iterator[tuple[str | None, Cell]]:
    """Every (method, cell) of the table: table_cells once per grid method, with that method selected."""
    for method in grid_methods(cfg, overrides):
        if method is None:
            yield from ((None, cell) for cell in table_cells(cfg, overrides))
            continue
        selected = [*(o for o in overrides if not _names_method(o)), f"method={method}"]
        yield from ((method, cell) for cell in table_cells(cfg, selected))


def _number(value: float) -> str:
    """Three significant digits, so that a grid's 2.5e-4 never prints as a neighbour's 2e-4 or 3e-4."""
    return f"{value:.3g}".replace("e-0", "e-")


def run_settings(config: dict[str, Any]) -> str:
    """The knobs a selection tunes, as a run's record has them: learning rate, FLoRA's s, LoRA/DoRA's alpha/r (a
    sweep may set `method.scale` for every row; only FLoRA reads it)."""
    method = config.get("method", {})
    parts = [f"lr {_number(float(method['learning_rate']))}"] if "learning_rate" in method else []
    if method.get("name") == "flora" and "scale" in method:
        parts.append(f"s {_number(float(method['scale']))}")
    if method.get("name") in ("lora", "dora") and "alpha" in method and method.get("rank"):
        parts.append(f"α/r {_number(float(method['alpha']) / float(method['rank']))}")
    return ", ".join(parts) or MISSING


def selection_source(cfg: DictConfig) -> str:
    """The selection a cell's knobs come from: its name when it has an entry for the cell's row and task (a run id
    covers the knobs' values, so a record found for the cell ran at them), else none."""
    selection = cfg.get("selection")
    if not selection or OmegaConf.select(selection, f"rows.{cfg.method.tag}.{cfg.task.name}") is None:
        return NO_SELECTION
    return str(selection.name)


def _add_record(
    table_commits: dict[str, int], row: Row, record: dict[str, Any], cell: Cell, current: str
) -> None:
    task = cell.task
    seeds = row.seeds[task]
    if record.get("status") != STATUS_OK:
        seeds.failed += 1
        return
    seeds.ok += 1
    if "params" in record:
        row.params[task] = record["params"]
    for name, value in record.get("metrics", {}).items():
        if value is not None:
            row.metrics.setdefault(f"{task}/{name}", Stat()).values.append(float(value))
            row.by_seed.setdefault(cell.seed, {})[f"{task}/{name}"] = float(value)
    seconds = record.get("timing", {}).get("seconds_per_step")
    if seconds is not None:  # a run resumed at its last checkpoint trained nothing here: no timing
        row.seconds_per_step.setdefault(task, Stat()).values.append(float(seconds))
    row.peak_memory_mb.setdefault(task, Stat()).values.append(float(record["memory"]["peak_memory_mb"]))
    row.settings.setdefault(task, set()).add(run_settings(record.get("config", {})))
    code = (record.get("fingerprint") or {}).get("code", "none")
    row.code.add(code)
    if code != current:
        row.stale += 1
        row.stale_tasks.add(task)
    commit = record.get("git_commit", "unknown")
    table_commits[commit] = table_commits.get(commit, 0) + 1


def collect(overrides: Sequence[str]) -> Table:
    """Compose the experiment, find every cell's record and aggregate them per row.

    A record file that exists but cannot be read is listed in its row (row.unreadable), never taken for a
    missing run in silence.
    """
    cfg = compose_config(overrides)
    if not cfg.table.rows:
        raise ValueError("this config describes no table: pass experiment=<name> (see configs/experiment/)")
    rows: dict[str, Row] = {}
    columns: list[str] = []
    commits: dict[str, int] = {}
    current_code: set[str] = set()
    cells = list(grid_cells(cfg, overrides))
    for method, cell in tqdm(cells, desc=f"table {cfg.experiment_name}", unit="run"):
        cell_cfg = compose_config(cell.overrides)
        key = cell.row if method is None else f"{method}/{cell.row}"
        label = _row_label(cell_cfg, cfg.table.row_key, cell.row)
        row = rows.setdefault(key, Row(key, label, cell_cfg.method.tag, value=cell.row))
        row.seeds.setdefault(cell.task, Seeds()).expected += 1
        columns += [f"{cell.task}/{m}" for m in cell_cfg.task.report if f"{cell.task}/{m}" not in columns]
        current = current_fingerprint(cell_cfg)
        current_code.add(current)
        try:
            record = read_record(record_path(cell_cfg))
        except UnreadableRecordError as err:
            row.unreadable.append(str(err))
            continue
        if record is not None:
            row.selections.add(selection_source(cell_cfg))
            _add_record(commits, row, record, cell, current)
    labels = [str(k) for k in (cfg.table.get("column_labels") or {})]
    columns.sort(key=lambda c: labels.index(c) if c in labels else len(labels))
    return Table(
        experiment=cfg.experiment_name,
        profile=cfg.profile_name,
        backbone=cfg.backbone.name,
        row_key=cfg.table.row_key,
        tasks=[str(t) for t in cfg.table.tasks],
        split_note=cfg.table.get("split_note"),
        columns=columns,
        rows=list(rows.values()),
        paper_values={str(k): dict(v) for k, v in (cfg.table.paper_values or {}).items()},
        paper_source=cfg.table.get("paper_source"),
        seeds=list(cfg.table.seeds),
        current_code=current_code,
        commits=commits,
        column_labels={str(k): str(v) for k, v in (cfg.table.get("column_labels") or {}).items()},
        average=cfg.table.get("average"),
        paper_inline=bool(cfg.table.get("paper_inline", False)),
        paper_rows={str(k): str(v) for k, v in (cfg.table.get("paper_rows") or {}).items()},
        paper_column_keys={str(k): str(v) for k, v in (cfg.table.get("paper_columns") or {}).items()},
    )


def _fmt(stat: Stat | None, scale: float = 100.0, digits: int = 2) -> str:
    """mean ± sample std over seeds; a single seed prints its value alone (no spread to show)."""
    if stat is None or not stat.values:
        return MISSING
    if len(stat.values) == 1:
        return f"{stat.mean * scale:.{digits}f}"
    return f"{stat.mean * scale:.{digits}f} ± {stat.std * scale:.{digits}f}"


AVERAGE_KEY = "average"  # the paper_values key of the paper's own average


def average_stat(table: Table, row: Row) -> Stat:
    """The mean over the table's metric columns, per seed, then mean ± std over the seeds of this row that have
    every column (a seed or a row missing a run would average other columns). A column no row has (a metric a data
    set cannot have) is left out for every row alike."""
    reported = _reported_columns(table)
    per_seed = [vals for vals in row.by_seed.values() if reported and reported <= set(vals)]
    return Stat([statistics.fmean(vals[c] for c in reported) for vals in per_seed])


def _reported_columns(table: Table) -> set[str]:
    return {c for c in table.columns if any(c in row.metrics for row in table.rows)}


def average_note(table: Table) -> str | None:
    """Which columns the average covers (those some row has), and that a seed lacking one of them does not count."""
    if not table.average:
        return None
    reported = _reported_columns(table)
    absent = [c for c in table.columns if c not in reported]
    if absent:
        names = ", ".join(_label(table, c) for c in absent)
        note = (f"{table.average}: the mean of the metric columns a row has, per seed; without {names} (no value: "
                "see the task's config).")
    else:
        note = f"{table.average}: the mean of the {len(table.columns)} metric columns, per seed."
    if any(not reported <= set(vals) for row in table.rows for vals in row.by_seed.values()):
        note += " Only seeds with a value in every one of them count; a row without such a seed has none."
    return note


def _label(table: Table, column: str) -> str:
    if column == AVERAGE_KEY and table.average:
        return table.average
    return table.column_labels.get(column, column)


def _paper(table: Table, row: Row, column: str) -> str:
    value = table.paper_value(row.key, column)
    return MISSING if value is None else f"{value}"


def paper_columns(table: Table) -> list[str]:
    """The metric columns (and the average) for which the experiment config gives at least one paper value."""
    columns = [*table.columns, *([AVERAGE_KEY] if table.average else [])]
    rows = [*table.paper_values, *table.paper_rows]
    return [c for c in columns if any(table.paper_value(row, c) is not None for row in rows)]


def _summary_column(table: Table) -> str:
    """The column the Δ columns compare: the average where the table has one, else the first metric."""
    return AVERAGE_KEY if table.average else table.columns[0]


def _summary_stat(table: Table, row: Row) -> Stat | None:
    return average_stat(table, row) if table.average else row.metrics.get(table.columns[0])


def _delta(table: Table, row: Row, ref: Row | None) -> str:
    if ref is None or row is ref:
        return MISSING
    ours, theirs = _summary_stat(table, row), _summary_stat(table, ref)
    if ours is None or theirs is None or not ours.values or not theirs.values:
        return MISSING
    return f"{100 * (ours.mean - theirs.mean):+.2f}"


def _reference(table: Table, tag: str) -> Row | None:
    return next((r for r in table.rows if r.tag == tag), None)


def param_groups(table: Table, kind: str) -> list[list[str]]:
    """The table's tasks grouped so that every row has one `kind` count per group (tasks with no record yet in
    a row join any group): one group and one column when all tasks train equally sized models."""
    groups: list[tuple[list[str], dict[str, tuple[float, float]]]] = []
    for task in table.tasks:
        counts = {r.key: (r.params[task][kind], r.params[task][f"{kind}_pct"]) for r in table.rows if task in r.params}
        for tasks, known in groups:
            if all(known.get(key, value) == value for key, value in counts.items()):
                tasks.append(task)
                known.update(counts)
                break
        else:
            groups.append(([task], counts))
    return [tasks for tasks, _ in groups]


def _param_headers(table: Table) -> list[str]:
    cols = []
    for kind, name in PARAM_KINDS.items():
        groups = param_groups(table, kind)
        if len(groups) == 1:
            cols.append(f"{name} (% backbone)")
        else:
            cols += [f"{name} on {', '.join(tasks)} (% backbone)" for tasks in groups]
    return cols


def _param_cells(groups: dict[str, list[list[str]]], row: Row) -> list[str]:
    cells = []
    for kind, kind_groups in groups.items():
        for tasks in kind_groups:
            p = next((row.params[t] for t in tasks if t in row.params), None)
            cells.append(f"{p[kind]:,} ({p[f'{kind}_pct']:.3f}%)" if p else MISSING)
    return cells


def settings_cell(table: Table, row: Row) -> str:
    """The row's knobs; per task only where the tasks ran at different ones."""
    per_task = {task: " / ".join(sorted(row.settings[task])) for task in table.tasks if task in row.settings}
    if len(set(per_task.values())) <= 1:
        return next(iter(per_task.values()), MISSING)
    return "; ".join(f"{task}: {value}" for task, value in per_task.items())


def settings_line(table: Table) -> str:
    """Where the Setting column's values come from: a selection on validation data, or the methods' defaults."""
    names = sorted({name for row in table.rows for name in row.selections})
    chosen = [n for n in names if n != NO_SELECTION]
    if not chosen:
        return (f"{SETTINGS_HEADER}: each method's default learning rate, s (FLoRA) and alpha/r (LoRA, DoRA); no "
                "selection was run for these records.")
    sources = ", ".join(f"`selection={n}` (results/selection/{n}.yaml, its trials in results/selection/{n}/)"
                        for n in chosen)
    mixed = " Some rows ran at the defaults instead." if NO_SELECTION in names else ""
    return f"{SETTINGS_HEADER}: chosen per row on validation data by {sources}.{mixed}"


def _seeds_header(table: Table) -> str:
    return "Seeds ok" if len(table.tasks) == 1 else f"Seeds ok ({', '.join(table.tasks)})"


def _per_task(table: Table, name: str) -> list[str]:
    return [name] if len(table.tasks) == 1 else [f"{name} ({task})" for task in table.tasks]


def _metric_headers(table: Table, column: str, with_paper: set[str]) -> list[str]:
    name = _label(table, column)
    if column not in with_paper:
        return [name]
    return [f"{name} (ours (paper))"] if table.paper_inline else [f"{name} (ours)", f"{name} (paper)"]


def _cell_mark(table: Table, row: Row, column: str) -> str:
    """† on a cell that records of other code went into, where a row spans several tasks (one task: the row's
    own † says it); the average takes the mark of any of its tasks."""
    if len(table.tasks) < 2:
        return ""
    tasks = row.stale_tasks if column == AVERAGE_KEY else row.stale_tasks & {column.split("/", 1)[0]}
    return "†" if tasks else ""


def _metric_cells(table: Table, row: Row, column: str, stat: Stat | None, with_paper: set[str]) -> list[str]:
    ours = _fmt(stat)
    if ours != MISSING:
        ours += _cell_mark(table, row, column)
    if column not in with_paper:
        return [ours]
    paper = _paper(table, row, column)
    return [f"{ours} ({paper})"] if table.paper_inline else [ours, paper]


def header(table: Table) -> list[str]:
    """Column names shared by the markdown and LaTeX renderings."""
    cols = ["Method", *_param_headers(table), SETTINGS_HEADER]
    with_paper = set(paper_columns(table))
    for column in table.columns:
        cols += _metric_headers(table, column, with_paper)
    if table.average:
        cols += _metric_headers(table, AVERAGE_KEY, with_paper)
    if table.row_key == "method" and table.columns:
        summary = _label(table, _summary_column(table))
        cols += [f"Δ vs head ({summary})", f"Δ vs full ({summary})"]
    return cols + [_seeds_header(table), *_per_task(table, "s / step"), *_per_task(table, "Peak mem (MB)")]


def _row_label_with_marks(row: Row) -> str:
    marks = ("†" if row.stale else "") + ("‡" if row.unreadable else "")
    return row.label + marks


def formatted_rows(table: Table) -> list[list[str]]:
    """Every row as display strings (metrics ×100, mean ± sample std over seeds)."""
    head, full = _reference(table, "head"), _reference(table, "full")
    groups = {kind: param_groups(table, kind) for kind in PARAM_KINDS}
    with_paper = set(paper_columns(table))
    out = []
    for row in table.rows:
        cells = [_row_label_with_marks(row), *_param_cells(groups, row), settings_cell(table, row)]
        for column in table.columns:
            cells += _metric_cells(table, row, column, row.metrics.get(column), with_paper)
        if table.average:
            cells += _metric_cells(table, row, AVERAGE_KEY, average_stat(table, row), with_paper)
        if table.row_key == "method" and table.columns:
            cells += [_delta(table, row, head), _delta(table, row, full)]
        cells += [", ".join(str(row.seeds.get(task, Seeds())) for task in table.tasks)]
        cells += [_fmt(row.seconds_per_step.get(task), scale=1.0, digits=3) for task in table.tasks]
        cells += [_fmt(row.peak_memory_mb.get(task), scale=1.0, digits=0) for task in table.tasks]
        out.append(cells)
    return out


def provenance_lines(table: Table) -> list[str]:
    """Which code produced the rows: commits, code fingerprints, and which rows another tree made."""
    commits = ", ".join(f"{c[:12]}{' (dirty)' if c.endswith('-dirty') else ''} ({n} run{'s' * (n != 1)})"
                        for c, n in sorted(table.commits.items(), key=lambda kv: -kv[1]))
    lines = [f"Code: records made at commit(s) {commits or 'none'}; current code fingerprint "
             f"{', '.join(sorted(table.current_code))}."]
    stale = [r.label for r in table.rows if r.stale]
    if stale:
        lines.append(f"† rows with records made by other code than the current tree ({', '.join(stale)}): rerun "
                     "them with the table's make target (KEEP_STALE=1 kept them on purpose).")
        if len(table.tasks) > 1:
            stale_tasks = sorted({task for row in table.rows for task in row.stale_tasks})
            lines.append(f"In those rows † marks the cells of the tasks such records went into "
                         f"({', '.join(stale_tasks)}); every other cell is from the current code.")
    if table.unreadable:
        lines.append(f"‡ rows built without {len(table.unreadable)} unreadable record(s) (--allow-unreadable).")
    return lines


def render_markdown(table: Table, command: str) -> str:
    """A GitHub markdown table with a short header saying what the numbers are."""
    cols = header(table)
    paper = (f" Paper values: {table.paper_source}." if paper_columns(table) and table.paper_source else "")
    lines = [
        f"# {table.experiment} ({table.profile} profile, backbone {table.backbone})",
        "",
        f"Metrics ×100{f' on {table.split_note}' if table.split_note else ''}, mean ± sample std over seeds "
        f"{table.seeds} (a single seed shows its value alone); time and memory per task.{paper}",
        f"Generated by `{command}` from the run records; do not edit by hand.",
        settings_line(table),
        *([note] if (note := average_note(table)) else []),
        *provenance_lines(table),
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in formatted_rows(table)]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for old, new in (("\\", r"\textbackslash{}"), ("%", r"\%"), ("_", r"\_"), ("&", r"\&"), ("#", r"\#")):
        text = text.replace(old, new)
    text = text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("–", "--")
    return text.replace("†", r"$^\dagger$").replace("‡", r"$^\ddagger$")


def render_latex(table: Table) -> str:
    """A booktabs tabular of the same cells."""
    cols = header(table)
    lines = [
        r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}",
        r"\toprule",
        " & ".join(_tex_escape(c) for c in cols) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_tex_escape(c) for c in cells) + r" \\" for cells in formatted_rows(table)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _task_prefixes(table: Table) -> dict[str, str]:
    """CSV field prefix per task: none for a one-task table, `<task>/` when each task has its own counts."""
    return {table.tasks[0]: ""} if len(table.tasks) == 1 else {t: f"{t}/" for t in table.tasks}


def render_csv(table: Table) -> str:
    """Machine-readable figures: one line per row, mean/std/n per metric, raw parameter and seed counts (per task
    when the table has several)."""
    prefixes = _task_prefixes(table)
    fields = ["row", "label", "tag", *(pre + k for pre in prefixes.values() for k in PARAM_FIELDS)]
    with_paper = set(paper_columns(table))
    stat_columns = [*table.columns, *([AVERAGE_KEY] if table.average else [])]
    for column in stat_columns:
        fields += [f"{column}_mean", f"{column}_std", f"{column}_n"]
        fields += [f"{column}_paper"] if column in with_paper else []
    fields += [pre + k for pre in prefixes.values() for k in SEED_FIELDS]
    fields += [pre + k for pre in prefixes.values() for k in ("seconds_per_step_mean", "peak_memory_mb_mean")]
    fields += ["settings", "selection", "code", "stale", "unreadable"]
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=fields)
    writer.writeheader()
    for row in table.rows:
        line: dict[str, Any] = {"row": row.key, "label": row.label, "tag": row.tag}
        for task, pre in prefixes.items():
            line.update({pre + k: row.params.get(task, {}).get(k, "") for k in PARAM_FIELDS})
            seeds = row.seeds.get(task, Seeds())
            line.update({pre + k: getattr(seeds, k) for k in SEED_FIELDS})
        for column in stat_columns:
            stat = average_stat(table, row) if column == AVERAGE_KEY else row.metrics.get(column, Stat())
            line[f"{column}_mean"] = "" if not stat.values else stat.mean
            line[f"{column}_std"] = "" if not stat.values else stat.std
            line[f"{column}_n"] = len(stat.values)
            if column in with_paper:
                line[f"{column}_paper"] = _paper(table, row, column)
        for task, pre in prefixes.items():
            for name, stats in (("seconds_per_step", row.seconds_per_step), ("peak_memory_mb", row.peak_memory_mb)):
                stat = stats.get(task)
                line[f"{pre}{name}_mean"] = "" if stat is None or not stat.values else stat.mean
        line.update(settings=settings_cell(table, row), selection=" ".join(sorted(row.selections)),
                    code=" ".join(sorted(row.code)), stale=row.stale, unreadable=len(row.unreadable))
        writer.writerow(line)
    return handle.getvalue()


def table_stem(table: Table) -> str:
    """results/<experiment> for the default mini profile, results/<experiment>_<profile> otherwise."""
    return table.experiment if table.profile == "mini" else f"{table.experiment}_{table.profile}"


def write_tables(table: Table, out_dir: Path, command: str) -> list[Path]:
    """Write <stem>.md, .csv and .tex; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / table_stem(table)
    paths = [stem.with_suffix(".md"), stem.with_suffix(".csv"), stem.with_suffix(".tex")]
    atomic_write_text(paths[0], render_markdown(table, command))
    atomic_write_text(paths[1], render_csv(table))
    atomic_write_text(paths[2], render_latex(table))
    return paths


def update_readme(readme: Path, stem: str, markdown: str) -> bool:
    """Replace the README block between `<!-- results:STEM -->` and `<!-- /results:STEM -->` with the table,
    so the README shows exactly what the last table command produced. False when the README has no block."""
    start, end = f"<!-- results:{stem} -->", f"<!-- /results:{stem} -->"
    text = readme.read_text() if readme.exists() else ""
    if start not in text or end not in text:
        return False
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    body = "\n".join(line for line in markdown.splitlines() if not line.startswith("# "))
    atomic_write_text(readme, f"{before}{start}\n{body.strip()}\n{end}{after}")
    return True


def update_documents(root: Path, stem: str, markdown: str) -> list[Path]:
    """Refresh the table's block wherever the project's documents have one (README.md, docs/*.md): the
    documents that were updated."""
    documents = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [doc for doc in documents if update_readme(doc, stem, markdown)]
