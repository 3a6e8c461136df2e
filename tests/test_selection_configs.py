"""The selection configs: tune_* experiments compose with equal trials per row on held-out data, the tables are
unchanged without a selection, and a written selection reaches every row's run config (and its record)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from experiments.config import REPO_ROOT, compose_config, record_path, run_id, table_cells
from experiments.selection.choose import Choice, choose, reported_overlap
from experiments.selection.report import budget_styles, render_markdown, score_column, selection_option, trial_rows
from experiments.selection.trials import Trial, judged_by, trial_cells, trial_indices, tune_config

TUNES = {"tune_table3_glue": "table3_glue", "tune_table1_effnet": "table1_effnet",
         "tune_table1_convnext": "table1_convnext", "tune_table2_internvit": "table2_internvit"}


# The paper GLUE selection on two of its eight tasks (each composes the same way; all eight take minutes).
@pytest.mark.parametrize(
    "experiment,overrides",
    [*((experiment, ["profile=mini"]) for experiment in sorted(TUNES)),
     ("tune_table3_glue", ["profile=paper", "table.tasks=[cola,mnli]"]),
     ("tune_table1_convnext", ["profile=paper"]), ("tune_table2_internvit", ["profile=paper"])],
)
def test_every_row_gets_the_same_number_of_distinct_trials_on_held_out_data(experiment: str,
                                                                              overrides: list[str]) -> None:
    overrides = [f"experiment={experiment}", *overrides]
    cfg = tune_config(overrides)
    assert cfg.tune.table == TUNES[experiment] and list(cfg.table.seeds) == [0]
    n = len(trial_indices(cfg))
    assert all(len(grid) == n for grid in cfg.tune.grid.values()), "every method family needs one entry per trial"
    per_row: dict[tuple[str, str], set[str]] = {}
    for trial in trial_cells(cfg, overrides):
        trial_cfg = compose_config(trial.overrides)
        OmegaConf.to_container(trial_cfg, resolve=True)  # what the record stores must resolve
        assert trial_cfg.paths.runs_dir.endswith(f"selection/{TUNES[experiment]}/runs")
        per_row.setdefault((trial.row, trial.task), set()).add(run_id(trial_cfg))
    assert set(per_row) == {(row, task) for row in cfg.table.rows for task in cfg.table.tasks}
    assert {len(ids) for ids in per_row.values()} == {n}, "trials of a row must be distinct runs, as many per row"
    assert reported_overlap(cfg, overrides) == set()


@pytest.mark.parametrize("experiment", ["tune_table1_convnext", "tune_table2_internvit"])
def test_the_paper_vision_selection_holds_out_the_last_ade20k_training_images(experiment: str) -> None:
    cfg = compose_config([f"experiment={experiment}", "profile=paper", "method=lora_r48", "task=ade20k_seg"])
    assert list(cfg.table.tasks) == ["ade20k_seg"]
    loaders = cfg.task.mm_overrides
    assert loaders.train_dataloader.dataset.indices == 18210
    assert list(loaders.val_dataloader.dataset.indices) == list(range(18210, 20210))
    assert loaders.val_dataloader.dataset.data_prefix.img_path == "images/training"


@pytest.mark.parametrize("task,metric", [("cola", "holdout_mcc"), ("stsb", "holdout_pearson"),
                                         ("mnli", "holdout_accuracy"), ("sst2", "holdout_accuracy")])
def test_the_paper_glue_trials_train_on_90_percent_of_train_and_score_on_the_rest(task: str, metric: str) -> None:
    cfg = compose_config(["experiment=tune_table3_glue", "profile=paper", "method=flora_r2", f"task={task}"])
    assert OmegaConf.to_container(cfg.task.holdout) == {"split": "train_holdout", "size": 0.1, "seed": 0}
    assert OmegaConf.to_container(cfg.task.eval_splits, resolve=True) == {"holdout": "train_holdout"}
    assert cfg.tune.metric == metric and list(cfg.task.report) == [metric]
    table = compose_config(["experiment=table3_glue", "profile=paper", "method=flora_r2", f"task={task}"])
    assert table.task.get("holdout") is None, "the table's runs train on the whole training set"


def test_glue_trials_scoring_on_the_dev_sets_the_table_reports_are_refused() -> None:
    overrides = ["experiment=tune_table3_glue", "profile=paper", "tune.eval_splits.holdout=validation"]
    assert reported_overlap(tune_config(overrides), overrides) == {"split validation"}


def test_the_mini_trials_carry_no_holdout_so_their_run_ids_stay_those_of_the_committed_records() -> None:
    cfg = compose_config(["experiment=tune_table3_glue", "method=flora_r2", "tune.trial=4"])
    assert "holdout" not in cfg.task and cfg.tune.metric == "validation_accuracy"
    assert record_path(cfg).is_file(), f"{run_id(cfg)}: no committed trial record"


@pytest.mark.parametrize("experiment", ["table3_glue", "table1_effnet"])
def test_every_cell_of_a_selected_table_runs_at_its_choice_and_has_its_committed_record(experiment: str) -> None:
    cfg = compose_config([f"experiment={experiment}"])
    assert cfg.selection.name == experiment
    for cell in table_cells(cfg, [f"experiment={experiment}"]):
        cell_cfg = compose_config(cell.overrides)
        chosen = cell_cfg.selection.rows[cell_cfg.method.tag][cell.task]
        assert cell_cfg.method.learning_rate == chosen.learning_rate
        assert record_path(cell_cfg).is_file(), f"{run_id(cell_cfg)}: no committed record at the selection's values"


def test_selection_none_runs_every_row_at_its_defaults() -> None:
    cfg = compose_config(["experiment=table3_glue", "selection=none", "method=flora_r2"])
    assert cfg.selection is None and not cfg.hparams
    assert cfg.method.learning_rate == cfg.task.lr.adapter and cfg.method.scale == 1.0


def test_paper_profiles_default_to_the_published_scales() -> None:
    convnext = compose_config(["experiment=table1_convnext", "profile=paper", "method=flora_r42"])
    internvit = compose_config(["experiment=table2_internvit", "profile=paper", "method=flora_r8"])
    assert convnext.method.scale == 4.0 and internvit.method.scale == 0.04


def test_a_written_selection_sets_each_rows_values_and_is_carried_by_the_config(tmp_path: Path) -> None:
    def chosen(row: str, hparams: dict) -> Choice:
        return Choice(Trial(row, "bbcnews", 3, (), tag=row, hparams=hparams, metric="validation_accuracy"), 0.9, 9)

    choices = {("lora_r8", "bbcnews"): chosen("lora_r8", {"learning_rate": 0.004, "alpha_per_rank": 8}),
               ("flora_r2", "bbcnews"): chosen("flora_r2", {"learning_rate": 0.00025, "scale": 16.0}),
               ("head", "bbcnews"): chosen("head", {"learning_rate": 0.012})}
    (tmp_path / "selection").mkdir()
    text = selection_option("demo", {"table": "table3_glue"}, choices, "test")
    (tmp_path / "selection" / "demo.yaml").write_text(text)
    base = [f"hydra.searchpath=[file://{tmp_path}]", "selection=demo", "experiment=table3_glue"]
    lora = compose_config([*base, "method=lora_r8"])
    assert (lora.method.learning_rate, lora.method.alpha) == (0.004, 64)
    flora = compose_config([*base, "method=flora_r2"])
    assert (flora.method.learning_rate, flora.method.scale) == (0.00025, 16.0)
    assert compose_config([*base, "method=head"]).method.learning_rate == 0.012
    untouched = compose_config([*base, "method=dora_r2"])
    assert (untouched.method.learning_rate, untouched.method.alpha) == (1e-3, 4)
    carried = OmegaConf.to_container(lora, resolve=True)["selection"]
    assert carried["name"] == "demo" and carried["scores"]["lora_r8"]["bbcnews"]["trial"] == 3
    assert carried["metric"] == "validation_accuracy"
    assert carried["scores"]["lora_r8"]["bbcnews"]["validation_accuracy"] == 0.9
    assert REPO_ROOT.joinpath("configs/selection/none.yaml").is_file()


@pytest.mark.parametrize("table", ["table1_effnet", "table1_convnext", "table2_internvit"])
def test_the_head_lr_every_row_shares_scores_within_two_points_of_head_onlys_best(table: str) -> None:
    """New modules train at task.lr.head under every method, and head-only's learning rate is its head's: on the
    committed held-out trials, head-only at the shared value must come within 2 points of its best, or every other
    row was selected (and reported) with an undertrained head."""
    trials = REPO_ROOT / "results" / "selection" / table / f"{table}_trials.csv"
    metric = compose_config([f"experiment=tune_{table}"]).tune.metric
    head: dict[str, dict[float, float]] = {}
    for row in csv.DictReader(trials.open()):
        if row["row"] == "head" and row["status"] == "ok":
            head.setdefault(row["task"], {})[float(row["learning_rate"])] = float(row[metric])
    assert head, f"{trials}: no head-only trial"
    for task, scores in head.items():
        shared = compose_config([f"experiment={table}", f"task={task}"]).task.lr.head
        assert shared in scores, f"{task}: head-only's grid has no trial at the shared head lr {shared}"
        assert max(scores.values()) - scores[shared] <= 0.02, f"{task}: head-only {scores}, the rows share {shared}"


def test_each_budget_of_a_method_has_its_own_line_style_the_largest_solid() -> None:
    labels = ["Head only", "LoRA (r=2)", "FLoRA (r=2)", "LoRA (r=4)", "FLoRA (r=4)", "LoRA (r=8)", "FLoRA (r=8)"]
    styles = budget_styles(labels)
    assert styles["Head only"] == styles["LoRA (r=8)"] == styles["FLoRA (r=8)"] == "-"
    assert styles["LoRA (r=4)"] == "--" and styles["LoRA (r=2)"] == styles["FLoRA (r=2)"] == ":"


def test_trials_of_tasks_with_different_metrics_are_each_judged_by_their_own() -> None:
    def trial(task: str, index: int, metric: str, value: float) -> Trial:
        distractor = {"holdout_accuracy": 1.0 - value} if metric != "holdout_accuracy" else {}  # would flip cola
        record = {"status": "ok", "metrics": {**distractor, metric: value}}
        return Trial("flora_r2", task, index, (), tag="flora_r2", label="FLoRA (r=2)", hparams={"learning_rate": 1e-3},
                     metric=metric, record=record)

    trials = [trial("cola", 0, "holdout_mcc", 0.2), trial("cola", 1, "holdout_mcc", 0.5),
              trial("sst2", 0, "holdout_accuracy", 0.9), trial("sst2", 1, "holdout_accuracy", 0.8)]
    choices = choose(trials)
    assert choices["flora_r2", "cola"].trial.index == 1 and choices["flora_r2", "sst2"].trial.index == 0
    assert judged_by(trials) == "holdout_mcc (cola), holdout_accuracy (sst2)"
    rows = trial_rows(trials, choices)
    assert [(r["metric"], r["score"]) for r in rows] == [("holdout_mcc", 0.2), ("holdout_mcc", 0.5),
                                                         ("holdout_accuracy", 0.9), ("holdout_accuracy", 0.8)]
    assert "| Metric |" in render_markdown(rows, score_column(trials), "t", "n")
    option = yaml.safe_load(selection_option("demo", {}, choices, "test"))["selection"]
    assert option["scores"]["flora_r2"]["cola"]["holdout_mcc"] == 0.5
