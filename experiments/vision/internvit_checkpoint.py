"""The released InternViT-6B checkpoint (HF remote-code InternVisionModel) loaded into experiments.vision.internvit.

Keys are renamed onto timm's modules (encoder.layers.N -> blocks.N, ls1 -> ls1.gamma, embeddings.* -> cls_token,
patch_embed.proj, pos_embed); InternVL chat checkpoints keep the vision model under `vision_model.` next to
the language model, whose keys are skipped. Tensors are read one at a time (safetensors' lazy loading) and
copied straight into the model, so a 6B checkpoint is never held in memory beside the model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from timm.layers import resample_abs_pos_embed
from torch import nn

from experiments.errors import MissingAssetsError
from experiments.vision.cache import cache_root

HF_REPO = "OpenGVLab/InternViT-6B-224px"
ENV_VAR = "FLORA_INTERNVIT_6B"
VISION_PREFIX = "vision_model."

# (InternVisionModel key pattern, timm name template), tried in order; each must match the whole key.
RENAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (r"embeddings\.class_embedding", "cls_token"),
        (r"embeddings\.position_embedding", "pos_embed"),
        (r"embeddings\.patch_embedding\.(weight|bias)", r"patch_embed.proj.\1"),
        (r"encoder\.layers\.(\d+)\.(ls[12])", r"blocks.\1.\2.gamma"),
        (r"encoder\.layers\.(\d+)\.(norm[12]\.weight)", r"blocks.\1.\2"),
        (r"encoder\.layers\.(\d+)\.(attn\.(?:qkv|proj)\.(?:weight|bias))", r"blocks.\1.\2"),
        (r"encoder\.layers\.(\d+)\.(attn\.[qk]_norm\.weight)", r"blocks.\1.\2"),
        (r"encoder\.layers\.(\d+)\.(mlp\.fc[12]\.(?:weight|bias))", r"blocks.\1.\2"),
    )
)


def checkpoint_dir() -> Path:
    """$FLORA_INTERNVIT_6B, or <cache>/weights/InternViT-6B-224px next to the other pretrained weights."""
    return Path(os.environ.get(ENV_VAR, cache_root() / "weights" / HF_REPO.split("/")[1]))


def convert_key(key: str) -> str | None:
    """timm name of an InternVisionModel key (None if no rule covers it)."""
    for pattern, template in RENAMES:
        if pattern.fullmatch(key):
            return pattern.sub(template, key)
    return None


def checkpoint_files(folder: Path) -> list[Path]:
    """The weight files of a Hugging Face model folder: the shards an index names, or the single file."""
    if not folder.is_dir():
        raise MissingAssetsError(
            [
                f"InternViT-6B checkpoint: no folder {folder}; get it with network access: "
                f"`huggingface-cli download {HF_REPO} --local-dir {folder}` (or set ${ENV_VAR} to a copy)"
            ]
        )
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [folder / shard for shard in shards]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (folder / single).is_file():
            return [folder / single]
    raise MissingAssetsError([f"InternViT-6B checkpoint: no model.safetensors or pytorch_model.bin in {folder}"])


def read_keys(path: Path) -> list[str]:
    """The tensor names of one weight file, without reading the tensors."""
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return list(handle.keys())
    return list(torch.load(path, map_location="cpu", weights_only=True, mmap=True))


def iter_checkpoint(files: list[Path]) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, tensor) of every tensor in the weight files, read one at a time."""
    for path in files:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    yield key, handle.get_tensor(key)
        else:
            yield from torch.load(path, map_location="cpu", weights_only=True, mmap=True).items()


def vision_tensors(files: list[Path]) -> Iterator[tuple[str, torch.Tensor]]:
    """The vision model's tensors under their InternVisionModel names. An InternVL chat checkpoint keeps them under
    `vision_model.` (stripped here) beside the language model and projector, whose keys are skipped."""
    chat = any(key.startswith(VISION_PREFIX) for path in files for key in read_keys(path))
    for key, tensor in iter_checkpoint(files):
        if not chat:
            yield key, tensor
        elif key.startswith(VISION_PREFIX):
            yield key.removeprefix(VISION_PREFIX), tensor


def fit_pos_embed(tensor: torch.Tensor, target: torch.Size) -> torch.Tensor:
    """The checkpoint's position embedding resized to the model's grid as InternViT resizes it (bicubic, no
    antialiasing, the class position kept), when the model's image size differs from the checkpoint's."""
    if tensor.shape == target:
        return tensor
    old = int(round((tensor.shape[1] - 1) ** 0.5))
    new = int(round((target[1] - 1) ** 0.5))
    if old * old + 1 != tensor.shape[1] or new * new + 1 != target[1] or tensor.shape[2] != target[2]:
        raise ValueError(f"pos_embed {tuple(tensor.shape)} cannot be resized to {tuple(target)}")
    return resample_abs_pos_embed(tensor, [new, new], [old, old], num_prefix_tokens=1, antialias=False)


@torch.no_grad()
def load_internvit_checkpoint(model: nn.Module, folder: Path | None = None) -> None:
    """Copy the checkpoint in `folder` (default checkpoint_dir()) into model tensor by tensor; every backbone tensor
    must be covered and every vision key converted, else ValueError naming a few offenders."""
    folder = folder or checkpoint_dir()
    params = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    wanted = {name for name in params if not name.startswith("head.")}
    unconverted, unexpected, loaded = [], [], set()
    for key, tensor in vision_tensors(checkpoint_files(folder)):
        name = convert_key(key)
        if name is None:
            unconverted.append(key)
        elif name not in params:
            unexpected.append(f"{key} -> {name}")
        else:
            if name == "pos_embed":
                tensor = fit_pos_embed(tensor, params[name].shape)
            if tensor.shape != params[name].shape:
                raise ValueError(f"{key} -> {name}: {tuple(tensor.shape)} != {tuple(params[name].shape)}")
            params[name].copy_(tensor)
            loaded.add(name)
    missing = sorted(wanted - loaded)
    if unconverted or unexpected or missing:
        raise ValueError(
            f"InternViT checkpoint {folder} does not fit {type(model).__name__}: "
            f"unconverted {unconverted[:5]}, unexpected {unexpected[:5]}, missing {missing[:5]}"
        )
