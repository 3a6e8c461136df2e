"""Loading InternVisionModel checkpoints: a tiny InternViT written in the release's key layout (sharded safetensors,
an InternVL chat layout, a torch .bin) loads strictly into the timm build, whose forward matches a pure-torch
re-implementation of InternViT's forward run on the raw checkpoint tensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from experiments.errors import MissingAssetsError
from experiments.vision.internvit import InternViTArch, build_internvit
from experiments.vision.internvit_checkpoint import ENV_VAR, HF_REPO, fit_pos_embed, load_internvit_checkpoint
from experiments.weights import load_weights

TINY = InternViTArch(img_size=28, patch_size=7, embed_dim=24, depth=2, num_heads=3, mlp_ratio=2.0)
EPS = 1e-6
RELEASE = {"source": "internvit_6b_release"}


def release_state(arch: InternViTArch, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under InternVisionModel's names and shapes (non-trivial norms and layer scales)."""
    gen = torch.Generator().manual_seed(seed)
    dim, hidden, grid = arch.embed_dim, int(arch.embed_dim * arch.mlp_ratio), arch.img_size // arch.patch_size

    def rand(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return scale * torch.randn(*shape, generator=gen)

    state = {
        "embeddings.class_embedding": rand(1, 1, dim),
        "embeddings.patch_embedding.weight": rand(dim, 3, arch.patch_size, arch.patch_size),
        "embeddings.patch_embedding.bias": rand(dim),
        "embeddings.position_embedding": rand(1, grid * grid + 1, dim),
    }
    for i in range(arch.depth):
        layer = f"encoder.layers.{i}."
        state |= {
            layer + "norm1.weight": 1 + rand(dim),
            layer + "norm2.weight": 1 + rand(dim),
            layer + "ls1": rand(dim, scale=1.0),
            layer + "ls2": rand(dim, scale=1.0),
            layer + "attn.qkv.weight": rand(3 * dim, dim),
            layer + "attn.q_norm.weight": 1 + rand(dim),
            layer + "attn.k_norm.weight": 1 + rand(dim),
            layer + "attn.proj.weight": rand(dim, dim),
            layer + "attn.proj.bias": rand(dim),
            layer + "mlp.fc1.weight": rand(hidden, dim),
            layer + "mlp.fc1.bias": rand(hidden),
            layer + "mlp.fc2.weight": rand(dim, hidden),
            layer + "mlp.fc2.bias": rand(dim),
        }
    return state


def write_sharded(folder: Path, state: dict[str, torch.Tensor], shards: int = 3) -> Path:
    """A Hugging Face sharded safetensors folder with its model.safetensors.index.json."""
    folder.mkdir(parents=True)
    keys = list(state)
    weight_map = {}
    for n in range(shards):
        name = f"model-{n + 1:05d}-of-{shards:05d}.safetensors"
        part = keys[n::shards]
        save_file({k: state[k].contiguous() for k in part}, str(folder / name))
        weight_map |= dict.fromkeys(part, name)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype)


def reference_forward(state: dict[str, torch.Tensor], arch: InternViTArch, pixels: torch.Tensor) -> torch.Tensor:
    """InternVisionModel's last hidden state, written from its modeling code's semantics on the raw tensors."""
    s, heads = state, arch.num_heads
    patches = F.conv2d(
        pixels, s["embeddings.patch_embedding.weight"], s["embeddings.patch_embedding.bias"], arch.patch_size
    )
    batch, dim, height, width = patches.shape
    x = torch.cat([s["embeddings.class_embedding"].expand(batch, 1, dim), patches.flatten(2).transpose(1, 2)], 1)
    pos = s["embeddings.position_embedding"]
    grid = arch.img_size // arch.patch_size
    grid_pos = pos[:, 1:].reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
    grid_pos = F.interpolate(grid_pos, size=(height, width), mode="bicubic", align_corners=False)
    x = x + torch.cat([pos[:, :1], grid_pos.reshape(1, dim, -1).permute(0, 2, 1)], 1)
    for i in range(arch.depth):
        p = {k.removeprefix(f"encoder.layers.{i}."): v for k, v in s.items() if k.startswith(f"encoder.layers.{i}.")}
        h = rms_norm(x, p["norm1.weight"])
        qkv = F.linear(h, p["attn.qkv.weight"]).reshape(batch, -1, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = rms_norm(q.transpose(1, 2).flatten(-2), p["attn.q_norm.weight"]).view(batch, -1, heads, dim // heads)
        k = rms_norm(k.transpose(1, 2).flatten(-2), p["attn.k_norm.weight"]).view(batch, -1, heads, dim // heads)
        attn = ((q.transpose(1, 2) * (dim // heads) ** -0.5) @ k.transpose(1, 2).transpose(-2, -1)).softmax(-1)
        out = (attn @ v).transpose(1, 2).reshape(batch, -1, dim)
        x = x + F.linear(out, p["attn.proj.weight"], p["attn.proj.bias"]) * p["ls1"]
        h = F.gelu(F.linear(rms_norm(x, p["norm2.weight"]), p["mlp.fc1.weight"], p["mlp.fc1.bias"]))
        x = x + F.linear(h, p["mlp.fc2.weight"], p["mlp.fc2.bias"]) * p["ls2"]
    return x


@pytest.mark.parametrize("size", [28, 42])
def test_sharded_release_loads_and_matches_reference(tmp_path: Path, size: int) -> None:
    state = release_state(TINY)
    folder = write_sharded(tmp_path / "ckpt", state)
    model = build_internvit(TINY, dynamic_img_size=True).eval()
    load_internvit_checkpoint(model, folder)
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, expected = model.forward_features(pixels), reference_forward(state, TINY, pixels)
    assert got.shape == expected.shape == (2, (size // 7) ** 2 + 1, 24)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_chat_checkpoint_skips_language_keys(tmp_path: Path) -> None:
    state = release_state(TINY)
    chat = {f"vision_model.{k}": v for k, v in state.items()}
    chat |= {"language_model.model.embed_tokens.weight": torch.randn(10, 4), "mlp1.0.weight": torch.randn(4)}
    folder = write_sharded(tmp_path / "chat", chat, shards=2)
    model = build_internvit(TINY).eval()
    load_internvit_checkpoint(model, folder)
    torch.testing.assert_close(model.blocks[1].attn.k_norm.weight, state["encoder.layers.1.attn.k_norm.weight"])
    torch.testing.assert_close(model.blocks[0].ls2.gamma, state["encoder.layers.0.ls2"])


def test_single_file_and_torch_bin(tmp_path: Path) -> None:
    state = release_state(TINY)
    (tmp_path / "st").mkdir()
    save_file(state, str(tmp_path / "st" / "model.safetensors"))
    (tmp_path / "bin").mkdir()
    torch.save(state, tmp_path / "bin" / "pytorch_model.bin")
    for folder in (tmp_path / "st", tmp_path / "bin"):
        model = build_internvit(TINY)
        load_internvit_checkpoint(model, folder)
        torch.testing.assert_close(model.pos_embed, state["embeddings.position_embedding"])


def test_registered_source_reads_env_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = release_state(TINY)
    monkeypatch.setenv(ENV_VAR, str(write_sharded(tmp_path / "ckpt", state)))
    model = build_internvit(TINY, num_classes=4)  # a new task head stays initialised
    load_weights(model, RELEASE)
    torch.testing.assert_close(model.cls_token, state["embeddings.class_embedding"])


def test_missing_folder_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(MissingAssetsError, match=f"huggingface-cli download {HF_REPO} --local-dir .*nowhere"):
        load_weights(build_internvit(TINY), RELEASE)


def test_wrong_and_missing_keys_are_listed(tmp_path: Path) -> None:
    state = release_state(TINY)
    state["encoder.layers.0.attn.rope.freqs"] = state.pop("encoder.layers.0.attn.k_norm.weight")
    folder = write_sharded(tmp_path / "ckpt", state)
    with pytest.raises(ValueError, match=r"unconverted \['encoder.layers.0.attn.rope.freqs'\].*blocks.0.attn.k_norm"):
        load_internvit_checkpoint(build_internvit(TINY), folder)


def test_position_embedding_resampled_to_model_grid(tmp_path: Path) -> None:
    state = release_state(TINY)  # 4 x 4 grid + class position
    resized = fit_pos_embed(state["embeddings.position_embedding"], torch.Size([1, 6 * 6 + 1, 24]))
    assert resized.shape == (1, 37, 24)
    torch.testing.assert_close(resized[:, :1], state["embeddings.position_embedding"][:, :1])
    model = build_internvit(TINY, img_size=42)
    load_internvit_checkpoint(model, write_sharded(tmp_path / "ckpt", state))
    torch.testing.assert_close(model.pos_embed, resized)
    with pytest.raises(ValueError, match="cannot be resized"):
        fit_pos_embed(state["embeddings.position_embedding"], torch.Size([1, 30, 24]))
