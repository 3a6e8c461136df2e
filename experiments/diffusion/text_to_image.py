"""The paper profile's diffusion run: Stable Diffusion's UNet fine-tuned on a captioned image set with one method,
then sampled with the poster's prompts.

The loop is the one diffusers' text-to-image example runs (frozen VAE and text encoder, the noise-prediction loss
on latents), with the method attached to the UNet. Every method sees the same batches, timesteps and noise (one
seeded generator) and samples from the same start latents, so rows of the grid differ only by what was learned.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from omegaconf import DictConfig, OmegaConf
from torchvision import transforms
from tqdm import tqdm
from transformers import CLIPTextModel, CLIPTokenizer

from experiments.diffusion.budgets import method_config
from experiments.diffusion.cache import freeze
from experiments.diffusion.training import optimizer_step
from experiments.errors import MissingAssetsError
from experiments.methods import attach, parameter_counts

SD_FOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


@dataclass
class StableDiffusionParts:
    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    vae: AutoencoderKL
    unet: UNet2DConditionModel
    noise: DDPMScheduler


@dataclass
class TextToImageResult:
    method: str
    params: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    train_seconds: float = 0.0
    final_loss: float | None = None
    losses: list[float] = field(default_factory=list)


def missing_assets(cfg: DictConfig) -> list[str]:
    """What is not on this machine, each with how to get it (empty when the run can start)."""
    problems = []
    model_dir = Path(str(cfg.model_dir))
    absent = [name for name in SD_FOLDERS if not (model_dir / name).is_dir()]
    if absent:
        problems.append(f"Stable Diffusion v1.5 is not at model_dir={model_dir} (no {', '.join(absent)}/): "
                        f"`huggingface-cli download {cfg.model_id} --local-dir {model_dir}` where the hub is "
                        "reachable, or pass model_dir=<folder with unet/ vae/ text_encoder/ tokenizer/ scheduler/>")
    data = str(cfg.data.path)
    if data.startswith(("/", ".")) and not Path(data).exists():
        problems.append(f"no captioned images at data.path={data}: a folder of images with a metadata.jsonl "
                        f"(file_name, {cfg.data.caption_column}) as datasets' imagefolder reads it, or a hub "
                        f"data set id such as {cfg.data.hub_example}")
    return problems


def load_parts(model_dir: Path, dtype: torch.dtype = torch.float32) -> StableDiffusionParts:
    """The five components from a diffusers folder; the VAE and text encoder frozen (they never train)."""
    return StableDiffusionParts(
        tokenizer=CLIPTokenizer.from_pretrained(model_dir / "tokenizer"),
        text_encoder=freeze(CLIPTextModel.from_pretrained(model_dir / "text_encoder", torch_dtype=dtype)),
        vae=freeze(AutoencoderKL.from_pretrained(model_dir / "vae", torch_dtype=dtype)),
        unet=UNet2DConditionModel.from_pretrained(model_dir / "unet"),
        noise=DDPMScheduler.from_pretrained(model_dir / "scheduler"),
    )


def captioned_images(cfg: DictConfig) -> datasets.Dataset:
    """The training pairs: a local imagefolder (with metadata.jsonl) or a hub data set, as datasets loads them."""
    data = cfg.data
    try:
        ds = datasets.load_dataset(str(data.path), split=str(data.split))
    except Exception as err:  # datasets raises several types for "not there / no network"
        raise MissingAssetsError([f"cannot load data.path={data.path} ({str(err).splitlines()[0]})"]) from err
    for column in (data.image_column, data.caption_column):
        if column not in ds.column_names:
            raise ValueError(f"data set {data.path} has no column {column!r} (it has {ds.column_names}); "
                             "set data.image_column / data.caption_column")
    return ds


def image_transform(resolution: int) -> transforms.Compose:
    """diffusers' text-to-image preprocessing without the random flip (so batches are the same for every method)."""
    return transforms.Compose([
        transforms.Resize(resolution, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(resolution),
        transforms.ToTensor(),
        transforms.Normalize([0.5], [0.5]),
    ])


def _batch(ds: datasets.Dataset, index: torch.Tensor, cfg: DictConfig, transform: Any) -> tuple[torch.Tensor, list]:
    rows = ds[index.tolist()]
    pixels = torch.stack([transform(image.convert("RGB")) for image in rows[cfg.data.image_column]])
    return pixels, [str(caption) for caption in rows[cfg.data.caption_column]]


def encode_prompts(parts: StableDiffusionParts, prompts: Sequence[str], device: torch.device) -> torch.Tensor:
    tok = parts.tokenizer
    ids = tok(list(prompts), padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids.to(device)
    return parts.text_encoder(ids)[0]


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[precision])


def train_unet(parts: StableDiffusionParts, ds: datasets.Dataset, cfg: DictConfig, method: str,
               device: torch.device) -> list[float]:
    """AdamW on the UNet's trainable parameters for cfg.train.steps batches; the losses."""
    t = cfg.train
    unet, noise = parts.unet, parts.noise
    if t.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    params = [p for p in unet.parameters() if p.requires_grad]
    lr = float(t.full_lr if method == "full" else t.lr)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=float(t.weight_decay))
    gen = torch.Generator().manual_seed(int(t.seed))
    transform = image_transform(int(cfg.resolution))
    timesteps = int(noise.config.num_train_timesteps)
    scaling = float(parts.vae.config.scaling_factor)
    unet.train()
    losses: list[float] = []
    bar = tqdm(range(int(t.steps)), desc=f"fine-tune {method}", unit="step")
    for step in bar:
        index = torch.randint(0, len(ds), (int(t.batch_size),), generator=gen)
        pixels, captions = _batch(ds, index, cfg, transform)
        with torch.no_grad():
            dtype = parts.vae.dtype
            latents = parts.vae.encode(pixels.to(device, dtype)).latent_dist.sample(generator=gen) * scaling
            hidden = encode_prompts(parts, captions, device)
        eps = torch.randn(latents.shape, generator=gen).to(device, latents.dtype)
        steps = torch.randint(0, timesteps, (len(index),), generator=gen).to(device)
        target = eps if noise.config.prediction_type == "epsilon" else noise.get_velocity(latents, eps, steps)
        with _autocast(device, str(t.precision)):
            pred = unet(noise.add_noise(latents, eps, steps), steps, hidden.to(latents.dtype)).sample
        losses.append(optimizer_step(optimizer, F.mse_loss(pred.float(), target.float()), step))
        bar.set_postfix(loss=f"{statistics.fmean(losses[-20:]):.4f}")
    unet.eval()
    return losses


def finetune_method(cfg: DictConfig, method: str, device: torch.device) -> tuple[StableDiffusionParts,
                                                                                 TextToImageResult]:
    """Fresh parts with ``method`` on the UNet (none for `pretrained`), trained unless pretrained."""
    parts = load_parts(Path(str(cfg.model_dir)))
    backbone = sum(p.numel() for p in parts.unet.parameters())
    if method == "pretrained":
        freeze(parts.unet)
    else:
        method_cfg = OmegaConf.merge(cfg, {"alpha": float(cfg.alpha_per_rank) * int(cfg.rank)})
        parts.unet = attach(parts.unet, method_config(method, parts.unet, method_cfg))
    for module in (parts.unet, parts.vae, parts.text_encoder):
        module.to(device)
    result = TextToImageResult(method, params=parameter_counts(parts.unet, backbone))
    if method != "pretrained":
        start = time.perf_counter()
        result.losses = train_unet(parts, captioned_images(cfg), cfg, method, device)
        result.train_seconds = time.perf_counter() - start
        result.steps = len(result.losses)
        result.final_loss = statistics.fmean(result.losses[-50:])
    return parts, result


@torch.no_grad()
def sample_prompts(parts: StableDiffusionParts, cfg: DictConfig, device: torch.device) -> torch.Tensor:
    """[prompts x per_prompt, 3, H, W] in [0, 1]: sample j of every prompt starts from the latents of seed + j."""
    s = cfg.sampling
    pipe = StableDiffusionPipeline(vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer,
                                   unet=parts.unet, scheduler=parts.noise, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    images = []
    for prompt in tqdm(list(s.prompts), desc="sample prompts", unit="prompt"):
        for j in range(int(s.per_prompt)):
            gen = torch.Generator().manual_seed(int(s.seed) + j)
            out = pipe(prompt, num_inference_steps=int(s.steps), guidance_scale=float(s.guidance_scale),
                       height=int(cfg.resolution), width=int(cfg.resolution), generator=gen, output_type="pt")
            images.append(out.images[0].float().cpu())
    return torch.stack(images)

