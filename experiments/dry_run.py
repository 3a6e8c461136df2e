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


def dry_run(cfg: DictConfig, cli_overrides: Sequence[str]) -> list[tuple[str, dict[str, float]]]:
    """Counts for every table row (or for cfg alone when it describes no table), printed as a table."""
    if cfg.table.rows:
        cells = [c for c in table_cells(cfg, cli_overrides, seeds=False) if c.task == cfg.table.tasks[0]]
        configs = [compose_config(c.overrides) for c in cells]
    else:
        configs = [cfg]
    rows = [(c.method.label, row_counts(c)) for c in tqdm(configs, desc="dry run", unit="row")]
    first = configs[0]
    print(
        f"\n{first.experiment_name} | profile {first.profile_name} | backbone {first.backbone.name} "
        f"({rows[0][1]['backbone']:,} params) | head sized for task {first.task.name}"
    )
    print(f"{'method':<24}{'trainable':>14}{'% backbone':>12}{'adapter':>14}{'% backbone':>12}")
    for label, n in rows:
        print(
            f"{label:<24}{n['trainable']:>14,}{n['trainable_pct']:>11.3f}%{n['adapter']:>14,}{n['adapter_pct']:>11.3f}%"
        )
    return rows
