"""Rank sweeps run every method x rank cell (a method grid: table.methods x table.rows), the Hydra sweep and the
tables see the same cells, and the tables print one row per method and rank."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from experiments.config import CONFIG_DIR, compose_config, run_id
from experiments.tables import collect, grid_cells, grid_methods, param_groups, write_tables
from tests.grid_helpers import SMALL_RANK_SWEEP, fake_accuracy, write_grid_records

RANK_SWEEPS = ("sweep_rank", "sweep_rank_effnet")
METHODS = ["flora", "lora", "dora"]


def _sweeper_jobs(experiment: str) -> set[frozenset[str]]:
    """The jobs `python -m experiments.run -m experiment=<experiment>` launches, as sets of overrides."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)
    return {frozenset(job) for batch in batches for job in batch}


@pytest.mark.parametrize("experiment", RANK_SWEEPS)
def test_a_rank_sweep_runs_every_method_at_every_rank(experiment: str) -> None:
    overrides = [f"experiment={experiment}"]
    cfg = compose_config(overrides)
    assert list(cfg.table.methods) == METHODS and cfg.table.row_key == "method.rank"
    cells = list(grid_cells(cfg, overrides))
    assert [(m, int(c.row)) for m, c in cells] == [(m, int(r)) for m in METHODS for r in cfg.table.rows]
    ids = set()
    for method, cell in cells:
        run = compose_config(cell.overrides)
        assert (run.method.name, run.method.rank, run.method.tag) == (method, int(cell.row), f"{method}_r{cell.row}")
        if method != "flora":
            assert run.method.alpha == 2 * run.method.rank
        ids.add(run_id(run))
    assert len(ids) == len(cells), "every method x rank cell must be a distinct run"
    expected_jobs = {frozenset(cell.overrides) - {overrides[0]} for _, cell in cells}
    assert _sweeper_jobs(experiment) == expected_jobs, "the multirun must launch exactly the table's cells"


def test_the_conv_rank_sweep_is_judged_like_the_scale_sweep_at_the_tables_scale() -> None:
    rank = compose_config(["experiment=sweep_rank_effnet"])
    assert rank.task.mm_overrides == compose_config(["experiment=sweep_scale_effnet"]).task.mm_overrides
    assert rank.method.scale == compose_config(["experiment=table1_effnet", "selection=none"]).method.scale


def test_a_method_override_narrows_the_grid_and_tables_without_one_are_untouched() -> None:
    cfg = compose_config(["experiment=sweep_rank"])
    assert grid_methods(cfg, ["experiment=sweep_rank", "method=lora"]) == ["lora"]
    assert grid_methods(cfg, ["experiment=sweep_rank"]) == METHODS
    assert grid_methods(compose_config(["experiment=sweep_scale"]), ["method=lora"]) == [None]
    cells = list(grid_cells(cfg, ["experiment=sweep_rank", "method=dora"]))
    assert {m for m, _ in cells} == {"dora"} and all(c.overrides.count("method=dora") == 1 for _, c in cells)


def test_a_method_by_rank_table_has_one_row_per_cell(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_grid_records(runs, skip=["dora"])
    table = collect([*SMALL_RANK_SWEEP, f"paths.runs_dir={runs}"])
    keys = [f"{m}/{r}" for m in METHODS for r in (2, 16)]
    assert [r.key for r in table.rows] == keys and [r.value for r in table.rows] == ["2", "16"] * 3
    assert [r.label for r in table.rows][:2] == ["FLoRA (r=2)", "FLoRA (r=16)"]
    lora16 = next(r for r in table.rows if r.key == "lora/16")
    assert lora16.metrics["bbcnews/test_accuracy"].values == pytest.approx([fake_accuracy("lora", 16)])
    assert [r.ok for r in table.rows] == [1, 1, 1, 1, 0, 0]
    assert param_groups(table, "adapter") == [["bbcnews"]]
    md, csv_path, _ = write_tables(table, tmp_path, "t")
    text = md.read_text()
    assert "| LoRA (r=16) | " in text and "| 91.60 |" in text and "| DoRA (r=2) | – |" in text
    assert "Δ vs head" not in text
    assert "lora/16,LoRA (r=16),lora_r16," in csv_path.read_text()
