"""The paper profile's #params: Stable Diffusion v1.5's UNet with each method, built on the meta device."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from experiments.diffusion.budgets import method_config
from experiments.diffusion.unets import sd15_on_meta
from experiments.methods import attach, parameter_counts
from flora.model import find_targets


@dataclass(frozen=True)
class CountRow:
    method: str
    rank: int
    layers: int
    counts: dict[str, float]


def count_rows(cfg: DictConfig) -> tuple[int, list[CountRow]]:
    """(UNet parameters, one row per method and rank): a fresh meta UNet per row, nothing allocated."""
    backbone = sum(p.numel() for p in sd15_on_meta().parameters())
    rows = []
    for rank in cfg.ranks:
        row_cfg = OmegaConf.merge(cfg, {"rank": int(rank), "alpha": float(cfg.alpha_per_rank) * int(rank),
                                        "modules_to_save": []})
        for method in ("lora", "dora", "flora"):
            model = sd15_on_meta()
            layers = len(find_targets(model, row_cfg.targets))
            attach(model, method_config(method, model, row_cfg))
            rows.append(CountRow(method, int(rank), layers, parameter_counts(model, backbone)))
    return backbone, rows


def render(backbone: int, rows: list[CountRow]) -> str:
    lines = [f"Stable Diffusion v1.5 UNet: {backbone:,} parameters (meta device, configs/diffusion/sd15-unet.json)",
             "", "| Method | LoRA rank | Adapted layers | Adapter params | % of UNet |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.method} | {row.rank} | {row.layers} | {int(row.counts['adapter']):,} | "
                     f"{row.counts['adapter_pct']:.3f}% |")
    return "\n".join(lines) + "\n"
