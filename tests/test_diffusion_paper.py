"""The paper profile's dry run: Stable Diffusion v1.5's UNet from the committed config, counted on the meta device."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

pytest.importorskip("diffusers", reason="the diffusion stack: pip install -r requirements-diffusion.txt")

from experiments.config import REPO_ROOT  # noqa: E402
from experiments.diffusion.paper import count_rows, render  # noqa: E402
from experiments.diffusion.unets import SD15_PARAMETERS  # noqa: E402


def test_sd15_counts_offline_at_equal_budgets() -> None:
    cfg = OmegaConf.merge(OmegaConf.load(REPO_ROOT / "configs/diffusion/paper.yaml"), {"ranks": [4]})
    backbone, rows = count_rows(cfg)
    assert backbone == SD15_PARAMETERS
    counts = {row.method: row.counts["adapter"] for row in rows}
    assert all(row.layers == 218 for row in rows)  # 128 attention projections, 90 ResNet / projection convs
    assert counts["lora"] == 3_093_504 and counts["dora"] > counts["lora"]
    assert abs(counts["flora"] - counts["lora"]) <= 0.01 * counts["lora"]
    assert "| flora | 4 | 218 |" in render(backbone, rows)
