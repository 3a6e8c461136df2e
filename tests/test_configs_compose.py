"""Every config file composes through Hydra's compose API, overrides behave, bad names list the valid ones."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from experiments.config import CONFIG_DIR, compose_config, record_path, run_id, table_cells
from experiments.engines.registry import ENGINES, engine_for

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
PROFILES = sorted(p.stem for p in (CONFIG_DIR / "profile").glob("*.yaml"))
GROUPS = ("backbone", "method", "task", "trainer", "logger", "launcher")


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def test_there_is_a_language_table_and_two_profiles() -> None:
    assert "table3_glue" in EXPERIMENTS
    assert {"mini", "paper"} <= set(PROFILES)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_group_option_composes_and_resolves(group: str, option: str) -> None:
    cfg = compose_config([f"{group}={option}"])
    OmegaConf.resolve(cfg)
    assert cfg.method.tag and cfg.task.name and cfg.backbone.name


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("profile", PROFILES)
def test_every_experiment_composes_every_cell(experiment: str, profile: str) -> None:
    overrides = [f"experiment={experiment}", f"profile={profile}"]
    cfg = compose_config(overrides)
    assert cfg.experiment_name == experiment and cfg.table.rows and cfg.table.tasks
    cells = list(table_cells(cfg, overrides, seeds=False))
    assert len(cells) == len(cfg.table.rows) * len(cfg.table.tasks)
    # Every row on the first task and every task on the first row: each file is composed at least once.
    first_row, first_task = str(cfg.table.rows[0]), str(cfg.table.tasks[0])
    cells = [c for c in cells if c.row == first_row or c.task == first_task]
    ids = set()
    for cell in cells:
        cell_cfg = compose_config(cell.overrides)
        OmegaConf.resolve(cell_cfg)
        assert cell_cfg.task.name == cell.task
        assert cell_cfg.trainer.learning_rate > 0
        ids.add(run_id(cell_cfg))
    assert len(ids) == len(cells), "every cell of a table must be a distinct run"


@pytest.mark.parametrize("task", _options("task"))
def test_every_task_names_a_registered_engine(task: str) -> None:
    assert engine_for(compose_config([f"task={task}"]).task) in ENGINES.values()


# Metric prefix -> words its table's split note must contain (one of them).
SPLIT_WORDS = {
    "test": ("test",),
    "validation": ("validation", "dev"),
    "val": ("validation", "test split"),  # mmengine names its evaluation loader val, whatever split it reads
    "matched": ("dev",),
    "mismatched": ("dev",),
}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_table_says_which_split_its_metrics_come_from(experiment: str) -> None:
    """The note must name the split of each reported metric (its prefix), so a table cannot claim the wrong one."""
    cfg = compose_config([f"experiment={experiment}"])
    note = cfg.table.split_note.lower()
    for task in cfg.table.tasks:
        task_cfg = compose_config([f"experiment={experiment}", f"task={task}"]).task
        overridden = bool(task_cfg.get("mm_overrides"))
        for metric in task_cfg.report:
            prefix = metric.split("/")[0].split("_")[0]
            words = ("held-out", "held out") if overridden else SPLIT_WORDS.get(prefix)
            if words:
                assert any(w in note for w in words), f"{metric}: the split note should say {words}: {note!r}"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_sweeper_params_come_from_the_table(experiment: str) -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params[cfg.table.row_key] == ",".join(str(r) for r in cfg.table.rows)
    assert params.seed == ",".join(str(s) for s in cfg.table.seeds)
    assert params.task == ",".join(str(t) for t in cfg.table.tasks)


def test_method_overrides_reach_the_method_config() -> None:
    cfg = compose_config(["method=flora", "method.rank=16", "method.scale=4"])
    assert (cfg.method.name, cfg.method.rank, cfg.method.scale, cfg.method.tag) == ("flora", 16, 4, "flora_r16")


def test_budget_presets_extend_their_method() -> None:
    cfg = compose_config(["method=lora_r2"])
    assert (cfg.method.name, cfg.method.rank, cfg.method.alpha) == ("lora", 2, 4)
    assert list(cfg.method.target_modules) == list(cfg.backbone.adapter_targets)


@pytest.mark.parametrize("method", ["lora", "dora"])
@pytest.mark.parametrize("rank", [1, 4, 128])
def test_a_rank_override_keeps_lora_alpha_at_twice_the_rank(method: str, rank: int) -> None:
    cfg = compose_config([f"method={method}", f"method.rank={rank}"])
    assert cfg.method.alpha == 2 * rank
    assert compose_config([f"method={method}", f"method.rank={rank}", "method.alpha=3"]).method.alpha == 3


def test_profiles_pick_backbone_and_task_and_the_command_line_wins() -> None:
    assert compose_config([]).backbone.name == "minilm_l6"
    paper = compose_config(["profile=paper", "task=rte"])
    assert (paper.backbone.name, paper.task.name, paper.trainer.learning_rate) == ("deberta_v3_base", "rte", 1.2e-3)
    assert compose_config(["profile=paper", "method=full", "task=rte"]).trainer.learning_rate == 2e-5


def test_run_id_changes_with_what_changes_the_result_only() -> None:
    base = compose_config([])
    assert run_id(base) == run_id(compose_config(["logger=none", "launcher=slurm"]))
    assert run_id(base) != run_id(compose_config(["seed=1"]))
    assert run_id(base) != run_id(compose_config(["method.scale=2"]))
    assert record_path(base).parent == CONFIG_DIR.parent / "results" / "runs"


def test_slurm_launcher_uses_submitit() -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["launcher=slurm"], return_hydra_config=True)
    assert "submitit" in cfg.hydra.launcher._target_ and cfg.hydra.launcher.gpus_per_node == 1


@pytest.mark.parametrize(
    "group,bad,valid",
    [
        ("backbone", "resnet", "minilm_l6"),
        ("method", "adalora", "flora_r8"),
        ("task", "imagenet", "cola"),
        ("experiment", "table99", "table3_glue"),
        ("profile", "huge", "paper"),
    ],
)
def test_unknown_names_list_the_valid_ones(group: str, bad: str, valid: str) -> None:
    with pytest.raises(MissingConfigException) as err:
        compose_config([f"{group}={bad}"])
    message = str(err.value)
    assert bad in message and valid in message and "Available options" in message


# Each experiment in the profile its paper values are for (table3_glue's are GLUE's, which only the paper profile
# runs); Table 1 maps the poster's values onto its rows and columns in both.
PAPER_VALUE_CASES = [
    (e, "paper" if e.endswith("_paper") or e == "table3_glue" else "mini") for e in EXPERIMENTS
] + [("table1_convnext", "paper")]


@pytest.mark.parametrize(("experiment", "profile"), PAPER_VALUE_CASES)
def test_paper_values_name_rows_and_columns_the_table_has_and_cite_their_source(experiment: str, profile: str) -> None:
    cfg = compose_config([f"experiment={experiment}", f"profile={profile}"])
    values = cfg.table.paper_values
    if not values:
        return
    assert cfg.table.get("paper_source"), "paper values must carry their citation"
    columns = {
        f"{task}/{metric}"
        for task in cfg.table.tasks
        for metric in compose_config([f"experiment={experiment}", f"profile={profile}", f"task={task}"]).task.report
    }
    paper_rows = {str(v): str(k) for k, v in (cfg.table.get("paper_rows") or {}).items()}
    paper_columns = {str(v): str(k) for k, v in (cfg.table.get("paper_columns") or {}).items()}
    columns |= {"average"} if cfg.table.get("average") else set()
    for row, cells in values.items():
        row = paper_rows.get(str(row), str(row))
        assert row in [str(r) for r in cfg.table.rows], f"paper row {row} is not a row of {experiment}"
        named = {paper_columns.get(str(c), str(c)) for c in cells}
        assert named <= columns, f"{experiment} {row}: {named - columns} are not columns of the table"


@pytest.mark.parametrize(
    ("experiment", "mini", "paper"),
    [
        ("table1_convnext", ("convnext_atto", "scenes_seg"), ("convnext_large", "ade20k_seg")),
        ("table2_internvit", ("internvit_mini", "scenes_seg"), ("internvit_6b", "ade20k_seg")),
    ],
)
def test_one_experiment_per_table_its_profile_choosing_backbone_and_data(
    experiment: str, mini: tuple[str, str], paper: tuple[str, str]
) -> None:
    for profile, (backbone, task) in (("mini", mini), ("paper", paper)):
        cfg = compose_config([f"experiment={experiment}", f"profile={profile}"])
        assert (cfg.experiment_name, cfg.profile_name) == (experiment, profile)
        assert (cfg.backbone.name, cfg.task.name) == (backbone, task)
        assert task in cfg.table.tasks
    assert set(cfg.table.tasks) == {"coco_det", "ade20k_seg", "dota"}  # the paper profile, composed last


@pytest.mark.parametrize(
    ("group", "alias", "target"),
    [
        ("backbone", "convnext_mini", "convnext_atto"),
        ("backbone", "convnext_paper", "convnext_large"),
        ("backbone", "internvit_paper", "internvit_6b"),
        ("task", "segmentation_mini", "scenes_seg"),
        ("task", "segmentation_paper", "ade20k_seg"),
    ],
)
def test_a_profiles_alias_is_its_target_so_runs_keep_their_ids(group: str, alias: str, target: str) -> None:
    """The options an experiment picks by profile (`convnext_${profile}`) add nothing to what they stand for."""
    via_alias = compose_config([f"{group}={alias}"])
    direct = compose_config([f"{group}={target}"])
    assert OmegaConf.to_container(via_alias[group]) == OmegaConf.to_container(direct[group])
    assert run_id(via_alias) == run_id(direct)


@pytest.mark.parametrize("task", ["scenes_det", "scenes_seg", "scenes_dota"])
def test_table2_trains_each_tasks_heads_at_its_own_lr_but_the_vits_segmentation_heads(task: str) -> None:
    """Table 2's mini profile maps every task to its head learning rate (the ViT's segmentation heads peak lower
    than the ConvNeXt's): the detection entries must follow the task configs, or a change there would not reach
    Table 2."""
    composed = compose_config(["experiment=table2_internvit", f"task={task}"]).task.lr.head
    own = OmegaConf.load(CONFIG_DIR / "task" / f"{task}.yaml").lr.head
    if task == "scenes_seg":
        assert composed < own
    else:
        assert composed == own
