"""The paper profile's Stable Diffusion fine-tuning, end to end on a tiny Stable Diffusion made here (same
component classes, random weights) and a four-image captioned folder: every method trains and samples the
prompts, a rerun reads the finished methods back, and missing weights stop the run with what to download."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from experiments.config import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "finetune_sd.py"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _tiny_stable_diffusion(root: Path) -> Path:
    """The five diffusers folders of a Stable Diffusion, at toy sizes (a character-level CLIP tokenizer)."""
    torch.manual_seed(0)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, **{c: 2 + i for i, c in enumerate(LETTERS)},
             **{f"{c}</w>": 28 + i for i, c in enumerate(LETTERS)}}
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=8).save_pretrained(
        root / "sd" / "tokenizer")
    CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, max_position_embeddings=8, bos_token_id=0, eos_token_id=1,
                                 pad_token_id=1)).save_pretrained(root / "sd" / "text_encoder")
    AutoencoderKL(block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4,
                  sample_size=16).save_pretrained(root / "sd" / "vae")
    UNet2DConditionModel(sample_size=8, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                         down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                         attention_head_dim=4).save_pretrained(root / "sd" / "unet")
    DDPMScheduler(num_train_timesteps=100).save_pretrained(root / "sd" / "scheduler")
    return root / "sd"


def _captioned_folder(root: Path) -> Path:
    folder = root / "captions"
    folder.mkdir()
    lines = []
    for i, colour in enumerate(["red", "green", "blue", "yellow"]):
        Image.new("RGB", (20, 20), colour).save(folder / f"{i}.png")
        lines.append(json.dumps({"file_name": f"{i}.png", "text": f"a {colour} cat"}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def _finetune(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900,
                          env={"PATH": "", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "HOME": str(REPO_ROOT)},
                          cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("sd")
    args = ["--results-dir", str(root / "results"), f"model_dir={_tiny_stable_diffusion(root)}",
            f"data.path={_captioned_folder(root)}", "device=cpu", "resolution=16", "train.steps=2",
            "train.batch_size=2", "train.precision=fp32", "train.gradient_checkpointing=false", "rank=2",
            "sampling.steps=2", "sampling.per_prompt=1", "methods=[pretrained,lora,dora,flora]"]
    done = _finetune(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "results", args


def test_every_method_trains_and_samples_the_prompts(finished: tuple[Path, list[str]]) -> None:
    results, _ = finished
    report = (results / "diffusion_paper.md").read_text()
    for label in ("Pretrained (no fine-tuning)", "LoRA", "DoRA", "FLoRA"):
        assert f"| {label} |" in report
    records = {json.loads(p.read_text())["method"]: json.loads(p.read_text())
               for p in (results / "diffusion_paper_runs").glob("*.json")}
    assert records["pretrained"]["params"]["trainable"] == 0 and records["pretrained"]["steps"] == 0
    for method in ("lora", "dora", "flora"):
        assert records[method]["steps"] == 2 and records[method]["params"]["adapter"] > 0
        assert all(torch.isfinite(torch.tensor(records[method]["losses"])))
    assert (results / "figures" / "diffusion_paper_grid.png").stat().st_size > 0


def test_a_rerun_reads_finished_methods_back(finished: tuple[Path, list[str]]) -> None:
    results, args = finished
    before = {p.name: p.stat().st_mtime_ns for p in (results / "diffusion_paper_runs").iterdir()}
    again = _finetune(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "fine-tune" not in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (results / "diffusion_paper_runs").iterdir()} == before


def test_missing_weights_stop_before_loading_and_say_what_to_download(tmp_path: Path) -> None:
    done = _finetune("--results-dir", str(tmp_path), f"model_dir={tmp_path / 'nowhere'}",
                     f"data.path={tmp_path / 'no-data'}")
    assert done.returncode == 2
    assert "huggingface-cli download stable-diffusion-v1-5/stable-diffusion-v1-5" in done.stderr
    assert "no captioned images at data.path=" in done.stderr
    assert not (tmp_path / "diffusion_paper.md").exists()
