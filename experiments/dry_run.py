"""Dry run: every row of a table built on the meta device with its method attached, #params printed.

Checks a paper-scale table (configs, architectures, target modules, budgets) in seconds, with no weights,
no data and no memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig
from tqdm import tqdm

from experiments.config import compose_config, table_cells
from experiments.engines.registry import engine_for


def row_counts(cfg: DictConfig) -> dict[str, float]:
    """#params of the run cfg describes, built on the meta device by its task's engine."""
    return engine_for(cfg.task).meta_counts(cfg)


def in_backbone(n: dict[str, float]) -> int:
    """What trains inside the backbone, its own weights and the adapter: the paper's #Params column. Every row
    trains its task head in full, so that is the trainable count less all that is neither backbone nor adapter."""
    return int(n["trainable"] - (n["total"] - n["backbone"] - n["adapter"]))


def paper_cells(count: int, paper_millions: float | None) -> str:
    """The paper's #Params (in millions, as the paper prints it) and how far the row's count is from it."""
    if paper_millions is None:
        return f"{'-':>10}{'-':>9}"
    return f"{paper_millions:>9g}M{100 * (count / (paper_millions * 1e6) - 1):>+8.2f}%"


def dry_run(cfg: DictConfig, cli_overrides: Sequence[str]) -> list[tuple[str, dict[str, float]]]:
    """Counts for every table row (or for cfg alone when it describes no table), printed as a table."""
    if cfg.table.rows:
        cells = [c for c in table_cells(cfg, cli_overrides, seeds=False) if c.task == cfg.table.tasks[0]]
        keys = [c.row for c in cells]
        configs = [compose_config(c.overrides) for c in cells]
    else:
        keys, configs = [""], [cfg]
    paper = cfg.table.get("paper_params_millions") or {}
    rows = [(c.method.label, row_counts(c)) for c in tqdm(configs, desc="dry run", unit="row")]
    first = configs[0]
    print(
        f"\n{first.experiment_name} | profile {first.profile_name} | backbone {first.backbone.name} "
        f"({rows[0][1]['backbone']:,} params) | head sized for task {first.task.name}"
    )
    paper_header = f"{'paper':>10}{'diff':>9}" if paper else ""
    print(
        f"{'method':<24}{'trainable':>14}{'% backbone':>12}{'adapter':>14}{'% backbone':>12}{'in backbone':>15}"
        + paper_header
    )
    for key, (label, n) in zip(keys, rows, strict=True):
        count = in_backbone(n)
        print(
            f"{label:<24}{n['trainable']:>14,}{n['trainable_pct']:>11.3f}%{n['adapter']:>14,}{n['adapter_pct']:>11.3f}%"
            f"{count:>15,}" + (paper_cells(count, paper.get(key)) if paper else "")
        )
    if paper:
        print(f"paper: {cfg.table.get('paper_source')}; 'in backbone' is the paper's #Params (weights and adapter)")
    return rows
