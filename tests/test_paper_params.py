"""The paper profiles' #params on the meta device: Table 1's rows meet the paper's #Params column (read from the
experiment config, which cites the poster) within 1%, which is what says the paper-profile runs adapt the layers
the paper adapted; Table 2 has the same rows at the same ranks, at the counts its config derives."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from experiments.config import compose_config
from experiments.dry_run import in_backbone, row_counts

TABLE1 = "table1_convnext"
TABLE2 = "table2_internvit"
# The three budgets as (LoRA and DoRA's rank, FLoRA's rank), each budget's rows in the paper's order.
RANKS = [(48, 42), (96, 83), (192, 129)]
BUDGETS = [
    (method, rank) for lora, flora in RANKS for method, rank in (("lora", lora), ("dora", lora), ("flora", flora))
]
PRESETS = [f"{method}_r{rank}" for method, rank in BUDGETS]
ADAPTERS = ("lora", "dora", "flora")


def _paper(experiment: str, *overrides: str):
    """The experiment under the paper profile."""
    return compose_config([f"experiment={experiment}", "profile=paper", *overrides])


def _count(experiment: str, row: str) -> int:
    return in_backbone(row_counts(_paper(experiment, f"method={row}")))


@pytest.fixture(scope="module")
def table1() -> tuple[dict[str, float], dict[str, int]]:
    """The paper's #Params (millions) and this repository's count for every Table 1 row."""
    cfg = _paper(TABLE1)
    paper = OmegaConf.to_container(cfg.table.paper_params_millions)
    return paper, {str(row): _count(TABLE1, str(row)) for row in cfg.table.rows}


def test_table1_has_the_papers_rows_in_its_order_with_the_poster_cited() -> None:
    cfg = _paper(TABLE1)
    assert list(cfg.table.rows) == ["head", "full", "bitfit", *PRESETS]
    assert set(cfg.table.paper_params_millions) == set(cfg.table.rows) - {"head"}  # Base is "-" in the paper
    assert "ICLR 2025 poster" in cfg.table.paper_source


def test_table1_counts_meet_the_papers_params_column(table1: tuple[dict[str, float], dict[str, int]]) -> None:
    paper, ours = table1
    assert ours["head"] == 0
    for row, millions in paper.items():
        method = _paper(TABLE1, f"method={row}").method.name
        count = ours[row] / 1e6
        if method in ADAPTERS or method == "full":
            assert count == pytest.approx(millions, rel=0.01), f"{row}: {count:.3f}M vs the paper's {millions}M"
        else:  # BitFit's 0.2M is given to one decimal only
            assert round(count, 1) == millions, f"{row}: {count:.3f}M vs the paper's {millions}M"


def test_table2_has_table1s_rows_and_no_paper_column() -> None:
    table1_cfg = _paper(TABLE1)
    cfg = _paper(TABLE2)
    assert list(cfg.table.rows) == list(table1_cfg.table.rows)
    assert not cfg.table.paper_values and "paper_params_millions" not in cfg.table


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("lora_r48", 2_457_600 * 48),
        ("dora_r48", 2_457_600 * 48 + 1_382_400),
        ("flora_r42", 2_457_600 * 42 + 192 * 42**2),
    ],
)
def test_table2_counts_are_those_its_config_derives(row: str, expected: int) -> None:
    assert _count(TABLE2, row) == expected


@pytest.mark.parametrize(("method", "rank"), BUDGETS)
@pytest.mark.parametrize("experiment", [TABLE1, TABLE2])
def test_every_budget_preset_composes_in_both_paper_tables(experiment: str, method: str, rank: int) -> None:
    cfg = _paper(experiment, f"method={method}_r{rank}")
    OmegaConf.resolve(cfg)
    assert (cfg.method.name, cfg.method.rank, cfg.method.tag) == (method, rank, f"{method}_r{rank}")
    assert list(cfg.method.target_modules) == list(cfg.backbone.adapter_targets)
    if method != "flora":
        assert cfg.method.alpha == 2 * rank
