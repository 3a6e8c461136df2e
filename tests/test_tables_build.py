"""Tables from fixture records: aggregation over seeds, unknown paper values, missing and failed cells, tasks
whose models differ in size, and the three output formats. Records are placed where the runner would write them
for each table cell."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from experiments.config import REPO_ROOT, compose_config, record_path, run_id, table_cells
from experiments.records import write_record
from experiments.runner import current_fingerprint
from experiments.tables import (
    Table,
    average_note,
    average_stat,
    collect,
    param_groups,
    update_documents,
    update_readme,
    write_tables,
)

TEMPLATE = json.loads((Path(__file__).parent / "fixtures" / "run_record.json").read_text())
ACCURACY = {"head": 0.80, "full": 0.95, "flora_r8": 0.93}


def _write_fixture_records(runs_dir: Path, missing: set[str] = frozenset(), failed: set[str] = frozenset()) -> None:
    overrides = ["experiment=table3_glue", f"paths.runs_dir={runs_dir}"]
    for cell in table_cells(compose_config(overrides), overrides):
        cfg = compose_config(cell.overrides)
        if cell.row in missing:
            continue
        record = json.loads(json.dumps(TEMPLATE)) | {"run_id": run_id(cfg), "method": cfg.method.tag, "seed": cell.seed}
        record["fingerprint"]["code"] = current_fingerprint(cfg)
        record["metrics"]["test_accuracy"] = ACCURACY.get(cell.row, 0.9) + 0.01 * cell.seed
        if cell.row in failed and cell.seed == 0:
            record = _failed(record)
        write_record(record_path(cfg), record)


def _failed(record: dict) -> dict:
    return {k: record[k] for k in ("run_id", "config")} | {"status": "failed", "error": "NonFiniteLossError: step 3"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tables")
    _write_fixture_records(root / "runs", missing={"dora_r2"}, failed={"lora_r2"})
    return root


@pytest.fixture(scope="module")
def table(results: Path) -> Table:
    return collect(["experiment=table3_glue", f"paths.runs_dir={results / 'runs'}"])


def test_rows_aggregate_seeds_in_config_order(table: Table) -> None:
    assert [r.key for r in table.rows] == list(compose_config(["experiment=table3_glue"]).table.rows)
    flora = next(r for r in table.rows if r.key == "flora_r8")
    accs = flora.metrics["bbcnews/test_accuracy"]
    assert accs.values == pytest.approx([0.93, 0.94, 0.95])
    assert accs.mean == pytest.approx(0.94) and accs.std == pytest.approx(statistics.stdev([0.93, 0.94, 0.95]))
    assert (flora.ok, flora.failed, flora.expected) == (3, 0, 3)
    lora = next(r for r in table.rows if r.key == "lora_r2")
    assert (lora.ok, lora.failed) == (2, 1)
    assert next(r for r in table.rows if r.key == "dora_r2").ok == 0


def test_outputs_leave_out_paper_columns_without_values_and_mark_missing_cells(table: Table, tmp_path: Path) -> None:
    md, csv_path, tex = write_tables(table, tmp_path, "make_tables test")
    text = md.read_text()
    assert md.name == "table3_glue.md" and "(paper)" not in text and "make_tables test" in text
    flora_line = next(line for line in text.splitlines() if line.startswith("| FLoRA (r=8)"))
    assert "94.00 ± 1.00" in flora_line and "+13.00" in flora_line and "-2.00" in flora_line
    assert "0/3" in next(line for line in text.splitlines() if line.startswith("| DoRA (r=2)"))
    assert "| 2/3 (1 failed) |" in next(line for line in text.splitlines() if line.startswith("| LoRA (r=2)"))
    assert "Metrics ×100 on the BBC News test split (mini profile) or the GLUE dev sets (paper profile)," in text
    assert "| Trainable (% backbone) | Adapter (% backbone) |" in text and "| Seeds ok |" in text
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == len(table.rows)
    assert {"trainable", "adapter", "ok", "failed", "expected"} <= set(rows[0])
    head = next(r for r in rows if r["row"] == "head")
    assert float(head["bbcnews/test_accuracy_mean"]) == pytest.approx(0.81)
    assert "bbcnews/test_accuracy_paper" not in head and head["bbcnews/test_accuracy_n"] == "3"
    latex = tex.read_text()
    assert latex.startswith(r"\begin{tabular}") and r"$\pm$" in latex and r"\bottomrule" in latex


TWO_TASKS = ["experiment=table3_glue", "table.tasks=[bbcnews,rte]", "table.rows=[head,flora_r8]"]


def _write_two_task_records(runs_dir: Path) -> None:
    """bbcnews (5 labels) and rte (2 labels) heads differ in size, the adapters do not; rte's flora_r8 has one
    failed seed and one missing."""
    overrides = [*TWO_TASKS, f"paths.runs_dir={runs_dir}"]
    for cell in table_cells(compose_config(overrides), overrides):
        cfg = compose_config(cell.overrides)
        if (cell.task, cell.row, cell.seed) == ("rte", "flora_r8", 2):
            continue
        record = json.loads(json.dumps(TEMPLATE)) | {"run_id": run_id(cfg), "method": cfg.method.tag}
        record["fingerprint"]["code"] = current_fingerprint(cfg)
        head = 5 if cell.task == "bbcnews" else 2
        adapter = 0 if cell.row == "head" else 800
        record["params"] |= {"trainable": head + adapter, "trainable_pct": head / 100, "adapter": adapter}
        record["params"]["adapter_pct"] = adapter / 100
        record["metrics"] = {name: 0.5 for name in cfg.task.report}
        if (cell.task, cell.row, cell.seed) == ("rte", "flora_r8", 1):
            record = _failed(record)
        write_record(record_path(cfg), record)


def test_tasks_with_different_models_get_their_own_counts(tmp_path: Path) -> None:
    _write_two_task_records(tmp_path / "runs")
    table = collect([*TWO_TASKS, f"paths.runs_dir={tmp_path / 'runs'}"])
    assert param_groups(table, "trainable") == [["bbcnews"], ["rte"]]
    assert param_groups(table, "adapter") == [["bbcnews", "rte"]]
    flora = next(r for r in table.rows if r.key == "flora_r8")
    assert (flora.seeds["bbcnews"].ok, flora.seeds["rte"].ok, flora.seeds["rte"].failed) == (3, 1, 1)
    md, csv_path, tex = write_tables(table, tmp_path, "make_tables test")
    text = md.read_text()
    assert (
        "| Method | Trainable on bbcnews (% backbone) | Trainable on rte (% backbone) | Adapter (% backbone) |" in text
    )
    assert "| Seeds ok (bbcnews, rte) |" in text
    flora_line = next(line for line in text.splitlines() if line.startswith("| FLoRA (r=8)"))
    assert flora_line.startswith("| FLoRA (r=8) | 805 (0.050%) | 802 (0.020%) | 800 (8.000%) |")
    assert "| 3/3, 1/3 (1 failed) |" in flora_line
    head_line = next(line for line in text.splitlines() if line.startswith("| Head only"))
    assert "| 3/3, 3/3 |" in head_line
    rows = {r["row"]: r for r in csv.DictReader(csv_path.open())}
    line = rows["flora_r8"]
    fields = ("bbcnews/trainable", "rte/trainable", "rte/ok", "rte/failed", "rte/expected")
    assert " ".join(line[k] for k in fields) == "805 802 1 1 3"
    assert "trainable" not in line and "ok" not in line
    assert r"Trainable on rte (\% backbone)" in tex.read_text()


def test_tasks_with_equal_models_share_one_count_column(tmp_path: Path) -> None:
    _write_two_task_records(tmp_path / "runs")
    table = collect([*TWO_TASKS, f"paths.runs_dir={tmp_path / 'runs'}"])
    for row in table.rows:
        row.params["rte"] = dict(row.params["bbcnews"])
    del next(r for r in table.rows if r.key == "head").params["rte"]  # a task with no record joins any group
    assert param_groups(table, "trainable") == [["bbcnews", "rte"]]


def test_records_of_other_configs_are_not_mixed_in(results: Path) -> None:
    tiny = compose_config(["method=flora_r8", "trainer.max_steps=1", f"paths.runs_dir={results / 'runs'}"])
    write_record(record_path(tiny), json.loads(json.dumps(TEMPLATE)) | {"metrics": {"test_accuracy": 0.0}})
    table = collect(["experiment=table3_glue", f"paths.runs_dir={results / 'runs'}"])
    flora = next(r for r in table.rows if r.key == "flora_r8")
    assert min(flora.metrics["bbcnews/test_accuracy"].values) == pytest.approx(0.93)


def test_cli_writes_the_table_and_says_what_is_missing(results: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "scripts/make_tables.py",
            "experiment=table3_glue",
            f"paths.runs_dir={results / 'runs'}",
            f"paths.results_dir={tmp_path}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "table3_glue.md").exists() and (tmp_path / "table3_glue.tex").exists()
    assert "runs have no ok record yet" in result.stdout


def test_a_table_without_any_record_exits_nonzero(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "scripts/make_tables.py",
            "experiment=sweep_rank",
            f"paths.runs_dir={tmp_path}",
            f"paths.results_dir={tmp_path}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and not (tmp_path / "sweep_rank.md").exists()
    assert "no ok run record" in result.stderr and "nothing was written" in result.stderr


def test_readme_block_is_replaced_and_other_text_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:t3 -->\nold\n<!-- /results:t3 -->\noutro\n")
    assert update_readme(readme, "t3", "# title\n\n| a |\n|---|\n| 1 |\n")
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and "| 1 |" in text
    assert "# title" not in text and not update_readme(readme, "other", "x")


def test_a_tables_block_is_refreshed_in_the_docs_too(tmp_path: Path) -> None:
    block = "<!-- results:t4 -->\nold\n<!-- /results:t4 -->\n"
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("no block here\n")
    (tmp_path / "docs" / "t4.md").write_text(block)
    (tmp_path / "docs" / "other.md").write_text("nothing\n")
    assert update_documents(tmp_path, "t4", "| 1 |\n") == [tmp_path / "docs" / "t4.md"]
    assert "| 1 |" in (tmp_path / "docs" / "t4.md").read_text()


def _make_tables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/make_tables.py", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "content,problem",
    [("", "empty"), ('{"status": "ok", "metr', "not JSON"), ('{"hello": 1}', "not a run record"), (None, "run")],
)
def test_an_unreadable_record_is_named_and_the_table_refuses_to_publish(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    runs = tmp_path / "runs"
    _write_fixture_records(runs)
    cfg = compose_config(["experiment=table3_glue", "method=flora_r8", "seed=1", f"paths.runs_dir={runs}"])
    bad = record_path(cfg)
    if content is None:  # a foreign record: another run's record under this run's name
        other = compose_config(["experiment=table3_glue", "method=flora_r2", "seed=1", f"paths.runs_dir={runs}"])
        bad.write_text(record_path(other).read_text())
    else:
        bad.write_text(content)
    out = tmp_path / "out"
    result = _make_tables("experiment=table3_glue", f"paths.runs_dir={runs}", f"paths.results_dir={out}")
    assert result.returncode == 1 and bad.name in result.stderr and problem in result.stderr
    assert not out.exists(), "nothing may be written over a table when a record is unreadable"
    if content != "":
        return
    allowed = _make_tables(
        "experiment=table3_glue", f"paths.runs_dir={runs}", f"paths.results_dir={out}", "--allow-unreadable"
    )
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    text = (out / "table3_glue.md").read_text()
    flora_line = next(line for line in text.splitlines() if line.startswith("| FLoRA (r=8)"))
    assert flora_line.split("|")[1].strip().endswith("‡") and "| 2/3 |" in flora_line


def test_a_missing_runs_folder_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _make_tables("experiment=table3_glue", f"paths.runs_dir={tmp_path / 'nope'}", f"paths.results_dir={out}")
    assert result.returncode == 1 and not out.exists()


def test_a_mistyped_table_name_is_one_line(tmp_path: Path) -> None:
    result = _make_tables("experiment=table3_gleu", f"paths.results_dir={tmp_path}")
    assert result.returncode == 1 and "table3_gleu" in result.stderr and "Traceback" not in result.stderr


def test_records_of_other_code_are_marked_and_code_versions_stated(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _write_fixture_records(runs)
    old = record_path(compose_config(["experiment=table3_glue", "method=flora_r8", "seed=2", f"paths.runs_dir={runs}"]))
    record = json.loads(old.read_text())
    record["fingerprint"]["code"] = "0123456789ab"
    write_record(old, record)
    table = collect(["experiment=table3_glue", f"paths.runs_dir={runs}"])
    assert [r.key for r in table.rows if r.stale] == ["flora_r8"]
    text = write_tables(table, tmp_path, "t")[0].read_text()
    assert "| FLoRA (r=8)† |" in text and "| FLoRA (r=2) |" in text and "records made at commit(s) fixture" in text
    assert "current code fingerprint" in text and "other code than the current tree (FLoRA (r=8))" in text


def test_in_a_table_of_several_tasks_only_the_cells_of_other_code_are_marked(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _write_two_task_records(runs)
    overrides = [*TWO_TASKS, "method=flora_r8", "task=rte", "seed=0", f"paths.runs_dir={runs}"]
    old = record_path(compose_config(overrides))
    record = json.loads(old.read_text())
    record["fingerprint"]["code"] = "0123456789ab"
    write_record(old, record)
    table = collect([*TWO_TASKS, f"paths.runs_dir={runs}"])
    text = write_tables(table, tmp_path, "t")[0].read_text()

    def cells(start: str) -> list[str]:
        return [cell.strip() for cell in next(line for line in text.splitlines() if line.startswith(start)).split("|")]

    header, flora = cells("| Method"), cells("| FLoRA (r=8)†")
    marked = {name for name, cell in zip(header[2:], flora[2:], strict=True) if cell.endswith("†")}
    assert marked and all(name.startswith("rte/") for name in marked), marked
    assert not any(cell.endswith("†") for cell in cells("| Head only"))
    assert "the cells of the tasks such records went into (rte)" in text


def test_single_seed_rows_print_no_spread_and_timing_is_per_task(tmp_path: Path) -> None:
    _write_two_task_records(tmp_path / "runs")
    table = collect([*TWO_TASKS, "table.seeds=[0]", f"paths.runs_dir={tmp_path / 'runs'}"])
    text = write_tables(table, tmp_path, "t")[0].read_text()
    head_line = next(line for line in text.splitlines() if line.startswith("| Head only"))
    assert "±" not in head_line and "| 50.00 |" in head_line
    assert "| s / step (bbcnews) | s / step (rte) | Peak mem (MB) (bbcnews) | Peak mem (MB) (rte) |" in text


def test_paper_values_come_from_the_experiment_config_with_their_citation(results: Path, tmp_path: Path) -> None:
    table = collect(
        [
            "experiment=table3_glue",
            f"paths.runs_dir={results / 'runs'}",
            "++table.paper_values={flora_r8: {bbcnews/test_accuracy: 91.5}}",
            "++table.paper_source='Si et al. 2024, Table 9'",
        ]
    )
    text = write_tables(table, tmp_path, "t")[0].read_text()
    assert "bbcnews/test_accuracy (paper)" in text and "Paper values: Si et al. 2024, Table 9." in text
    assert "| 91.5 |" in next(line for line in text.splitlines() if line.startswith("| FLoRA (r=8)"))
    assert "bbcnews/test_f1_macro (paper)" not in text, "a column with no paper value is left out"


def test_each_row_shows_the_knobs_its_records_ran_at_and_the_selection_they_came_from(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    overrides = ["experiment=table3_glue", "table.rows=[head,lora_r8,flora_r8]", "table.seeds=[0]",
                 f"paths.runs_dir={runs}", "hparams={learning_rate: 0.00025, scale: 4.0, alpha_per_rank: 8}",
                 "++method.scale=4.0",
                 "++selection={name: fixture_choice, rows: {head: {bbcnews: {}}, lora_r8: {bbcnews: {}}, "
                 "flora_r8: {bbcnews: {}}}}"]
    for cell in table_cells(compose_config(overrides), overrides):
        cfg = compose_config(cell.overrides)
        record = json.loads(json.dumps(TEMPLATE)) | {"run_id": run_id(cfg), "method": cfg.method.tag, "seed": 0}
        record["config"] = OmegaConf.to_container(cfg, resolve=True)
        record["fingerprint"]["code"] = current_fingerprint(cfg)
        write_record(record_path(cfg), record)
    md, csv_path, _ = write_tables(collect(overrides), tmp_path, "t")
    lines = md.read_text().splitlines()
    assert "| Setting |" in next(line for line in lines if line.startswith("| Method"))
    assert "| lr 0.00025 |" in next(line for line in lines if line.startswith("| Head only"))
    assert "| lr 0.00025, α/r 8 |" in next(line for line in lines if line.startswith("| LoRA (r=8)"))
    assert "| lr 0.00025, s 4 |" in next(line for line in lines if line.startswith("| FLoRA (r=8)"))
    assert "Setting: chosen per row on validation data by `selection=fixture_choice`" in md.read_text()
    rows = {r["row"]: r for r in csv.DictReader(csv_path.open())}
    assert rows["flora_r8"]["settings"] == "lr 0.00025, s 4" and rows["flora_r8"]["selection"] == "fixture_choice"


def test_the_table_says_whether_its_rows_ran_at_a_selection_or_the_defaults(table: Table, tmp_path: Path) -> None:
    chosen = write_tables(table, tmp_path / "chosen", "t")[0].read_text()
    assert "Setting: chosen per row on validation data by `selection=table3_glue`" in chosen
    defaults = collect(["experiment=table3_glue", "selection=none", f"paths.runs_dir={tmp_path / 'none'}"])
    text = write_tables(defaults, tmp_path / "defaults", "t")[0].read_text()
    assert "no selection was run for these records" in text


PAPER_LAYOUT = [
    "experiment=table3_glue",
    "table.tasks=[bbcnews,rte]",
    "table.rows=[head,flora_r8]",
    "table.average=All Avg.",
    "table.paper_inline=true",
    "table.paper_source=a poster",
    "~table.paper_rows",
    "+table.paper_rows={flora_r8: flora_1}",
    "~table.paper_columns",
    "+table.paper_columns={bbcnews/test_accuracy: acc, rte/validation_accuracy: rte_acc, average: all}",
    "~table.column_labels",
    "+table.column_labels={bbcnews/test_accuracy: BBC acc, rte/validation_accuracy: RTE acc}",
    "~table.paper_values",
    "+table.paper_values={flora_1: {acc: 90.0, rte_acc: 70.0, all: 80.0}}",
]


def test_paper_layout_averages_per_seed_and_shows_the_papers_value_in_each_cell(tmp_path: Path) -> None:
    """A table laid out like the paper's: display names, the paper's value in the same cell, its rows and columns
    mapped onto the paper's keys, and an average over the metric columns taken per seed (seed 1 of rte's FLoRA
    failed, so FLoRA's average has seeds 0 and 2 only)."""
    overrides = [*PAPER_LAYOUT, f"paths.runs_dir={tmp_path / 'runs'}"]
    for cell in table_cells(compose_config(overrides), overrides):
        cfg = compose_config(cell.overrides)
        record = json.loads(json.dumps(TEMPLATE)) | {"run_id": run_id(cfg), "method": cfg.method.tag}
        record["fingerprint"]["code"] = current_fingerprint(cfg)
        base = 0.6 if cell.task == "bbcnews" else 0.4
        record["metrics"] = {name: base + 0.1 * cell.seed + (0.2 if cell.row == "flora_r8" else 0.0)
                             for name in cfg.task.report}
        if (cell.task, cell.row, cell.seed) == ("rte", "flora_r8", 1):
            record = _failed(record)
        write_record(record_path(cfg), record)
    table = collect(overrides)
    text = write_tables(table, tmp_path, "make_tables test")[0].read_text()
    assert "| BBC acc (ours (paper)) | RTE acc (ours (paper)) | bbcnews/test_f1_macro |" in text, "labels set the order"
    assert "| All Avg. (ours (paper)) |" in text
    assert "| Δ vs head (All Avg.) | Δ vs full (All Avg.) |" in text
    flora = next(line for line in text.splitlines() if line.startswith("| FLoRA (r=8)")).split(" | ")
    # bbcnews (accuracy and F1) seeds 0.8 / 0.9 / 1.0; rte ok seeds 0.6 / 0.8: per-seed averages of the three
    # columns (0.8 + 0.8 + 0.6) / 3 and (1.0 + 1.0 + 0.8) / 3.
    assert "90.00 ± 10.00 (90.0)" in flora and "70.00 ± 14.14 (70.0)" in flora
    assert "83.33 ± 14.14 (80.0)" in flora
    head = next(line for line in text.splitlines() if line.startswith("| Head only")).split(" | ")
    assert "70.00 ± 10.00 (–)" in head and "50.00 ± 10.00 (–)" in head and "63.33 ± 10.00 (–)" in head
    assert "+20.00" in flora
    rows = {r["row"]: r for r in csv.DictReader((tmp_path / "table3_glue.csv").open())}
    assert float(rows["flora_r8"]["average_mean"]) == pytest.approx(2.5 / 3)
    assert rows["flora_r8"]["average_paper"] == "80.0" and rows["flora_r8"]["average_n"] == "2"
    assert "All Avg.: the mean of the 3 metric columns, per seed." in text


def test_a_row_missing_a_task_has_no_average(tmp_path: Path) -> None:
    """An average over fewer columns than the other rows' would not compare with theirs: no value instead."""
    overrides = [*PAPER_LAYOUT, f"paths.runs_dir={tmp_path / 'runs'}"]
    for cell in table_cells(compose_config(overrides), overrides):
        if (cell.task, cell.row) == ("rte", "flora_r8"):
            continue
        cfg = compose_config(cell.overrides)
        record = json.loads(json.dumps(TEMPLATE)) | {"run_id": run_id(cfg), "method": cfg.method.tag}
        record["fingerprint"]["code"] = current_fingerprint(cfg)
        record["metrics"] = {name: 0.5 for name in cfg.task.report}
        write_record(record_path(cfg), record)
    table = collect(overrides)
    flora = next(r for r in table.rows if r.key == "flora_r8")
    head = next(r for r in table.rows if r.key == "head")
    assert average_stat(table, flora).values == [] and average_stat(table, head).values == [0.5] * 3
    note = average_note(table)
    assert "(no value" not in note and note.endswith("a row without such a seed has none.")


def test_a_task_without_records_does_not_count_as_run_at_the_defaults(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    overrides = ["experiment=table3_glue", "table.tasks=[bbcnews,rte]", "table.rows=[head]", "table.seeds=[0]",
                 f"paths.runs_dir={runs}", "++selection={name: fixture_choice, rows: {head: {bbcnews: {}}}}"]
    cells = {cell.task: compose_config(cell.overrides) for cell in table_cells(compose_config(overrides), overrides)}

    def write(cfg: object) -> None:
        record = json.loads(json.dumps(TEMPLATE)) | {"run_id": run_id(cfg), "method": cfg.method.tag, "seed": 0}
        record["fingerprint"]["code"] = current_fingerprint(cfg)
        write_record(record_path(cfg), record)

    write(cells["bbcnews"])
    text = write_tables(collect(overrides), tmp_path / "one", "t")[0].read_text()
    assert "`selection=fixture_choice`" in text and "ran at the defaults" not in text
    write(cells["rte"])
    text = write_tables(collect(overrides), tmp_path / "both", "t")[0].read_text()
    assert "Some rows ran at the defaults instead." in text
