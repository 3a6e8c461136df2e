"""The mini diffusion profile on a tiny UNet: equal budgets, seeded sampling, scoring, and the whole script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

pytest.importorskip("diffusers", reason="the diffusion stack: pip install -r requirements-diffusion.txt")
pytest.importorskip("torchmetrics", reason="the diffusion stack: pip install -r requirements-diffusion.txt")

from experiments.config import REPO_ROOT  # noqa: E402
from experiments.diffusion.budgets import lora_layer_budgets, method_config  # noqa: E402
from experiments.diffusion.classifier import FashionClassifier  # noqa: E402
from experiments.diffusion.sampling import sample  # noqa: E402
from experiments.diffusion.scoring import Scorer  # noqa: E402
from experiments.diffusion.unets import mini_unet, noise_scheduler  # noqa: E402
from experiments.methods import attach, parameter_counts  # noqa: E402

TINY = ["pretrain.steps=2", "finetune.steps=2", "classifier.steps=2", "sampling.steps=2", "sampling.score_per_class=3",
        "sampling.grid_per_class=2", "unet.block_out_channels=[8,16,16]", "unet.norm_num_groups=4",
        "unet.attention_head_dim=8"]


def tiny_cfg():
    return OmegaConf.merge(OmegaConf.load(REPO_ROOT / "configs/diffusion/mini.yaml"), OmegaConf.from_dotlist(TINY))


def test_adapter_budgets_are_equal() -> None:
    cfg = tiny_cfg()
    counts, targets = {}, None
    for method in ("lora", "dora", "flora"):
        model = mini_unet(cfg.unet)
        targets = lora_layer_budgets(model, cfg.targets, int(cfg.rank))
        counts[method] = parameter_counts(attach(model, method_config(method, model, cfg)), 1)["adapter"]
    assert counts["lora"] == sum(targets.values())
    outputs = sum(mini_unet(cfg.unet).get_submodule(name).weight.shape[0] for name in targets)
    assert counts["dora"] == counts["lora"] + outputs  # one magnitude per output channel
    assert abs(counts["flora"] - counts["lora"]) <= 0.03 * counts["lora"]


def test_sampling_is_seeded_per_sample_not_per_batch() -> None:
    cfg = tiny_cfg()
    torch.manual_seed(0)
    model, noise = mini_unet(cfg.unet), noise_scheduler(cfg.noise)
    labels = torch.tensor([5, 6, 7, 8, 9])
    whole = sample(model, labels, noise, steps=2, seed=7, batch_size=5)
    split = sample(model, labels, noise, steps=2, seed=7, batch_size=2)
    torch.testing.assert_close(whole, split, atol=1e-5, rtol=0)
    assert whole.shape == (5, 1, 16, 16) and 0 <= whole.min() and whole.max() <= 1
    assert not torch.allclose(whole, sample(model, labels, noise, steps=2, seed=8, batch_size=5))


def test_scorer_puts_real_images_at_zero_distance() -> None:
    torch.manual_seed(0)
    images = torch.rand(40, 1, 16, 16)
    classifier = FashionClassifier(5, 16).eval()
    scorer = Scorer(classifier, images)
    same = scorer(images, torch.zeros(40, dtype=torch.long))
    other = scorer(torch.rand(40, 1, 16, 16) * 0.2, torch.zeros(40, dtype=torch.long))
    assert same["frechet_distance"] == pytest.approx(0.0, abs=1e-3)
    assert other["frechet_distance"] > 10 * max(same["frechet_distance"], 1e-3)


def test_the_script_writes_the_report_and_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLORA_CACHE", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("reproduce_diffusion", REPO_ROOT / "scripts/reproduce_diffusion.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--results-dir", str(tmp_path / "results"), *TINY]) == 0
    report = (tmp_path / "results" / "diffusion.md").read_text()
    for label in ("Pretrained (no fine-tuning)", "Full fine-tuning", "LoRA", "DoRA", "FLoRA", "Real test images"):
        assert f"| {label} |" in report
    assert "![samples](figures/diffusion_grid.png)" in report
    assert {p.name for p in (tmp_path / "results" / "figures").iterdir()} == {"diffusion_grid.png",
                                                                               "diffusion_grid.pdf"}
    assert len(list((tmp_path / "cache" / "diffusion").glob("*.safetensors"))) == 2  # UNet and classifier, cached
