"""Every row of a LLaVA table built on the meta device, #params printed under both conventions: % of the
pretrained model (the suite's tables) and % of all parameters including the adapter (the DoRA paper's LLaVA
table, whose LoRA/DoRA rows read 4.61% / 4.63%), beside the paper's figure where the experiment cites one.

  python -m experiments.multimodal.budgets experiment=table4_llava_paper profile=paper
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

from tqdm import tqdm

from experiments.config import compose_config, table_cells
from experiments.engines.llava import meta_counts


def two_decimals_cut(pct: float) -> str:
    """A percentage cut (not rounded) to two decimals: the DoRA paper's 4.61% is 4.6158% cut."""
    return f"{math.floor(pct * 100) / 100:.2f}%"


def budget_rows(overrides: Sequence[str]) -> list[tuple[str, str, dict[str, float]]]:
    cfg = compose_config(overrides)
    cells = [c for c in table_cells(cfg, overrides, seeds=False) if c.task == cfg.table.tasks[0]]
    rows = []
    for cell in tqdm(cells, desc="meta build", unit="row"):
        cell_cfg = compose_config(cell.overrides)
        rows.append((cell.row, cell_cfg.method.label, meta_counts(cell_cfg)))
    return rows


def render(overrides: Sequence[str]) -> str:
    cfg = compose_config(overrides)
    paper = dict(cfg.table.get("paper_trainable_pct") or {})
    rows = budget_rows(overrides)
    lines = [
        f"{cfg.experiment_name} | backbone {cfg.backbone.name} ({rows[0][2]['backbone']:,} params)",
        f"{'method':<20}{'trainable':>15}{'% model':>10}{'% all (exact)':>15}{'% all, 2 d.p. cut':>19}"
        f"{'DoRA paper':>12}",
    ]
    for key, label, n in rows:
        cited = f"{paper[key]}%" if key in paper else "-"
        lines.append(
            f"{label:<20}{n['trainable']:>15,}{n['trainable_pct']:>9.3f}%{n['trainable_pct_of_all']:>14.4f}%"
            f"{two_decimals_cut(n['trainable_pct_of_all']):>19}{cited:>12}"
        )
    lines.append(
        "% all = trainable / all parameters including the adapter (projector trained, CLIP frozen). The DoRA paper's"
        " 4.61% / 4.63% are these values cut to two decimals (rounding would give 4.62% for LoRA)."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(sys.argv[1:]))
