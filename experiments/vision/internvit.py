"""InternViT on timm's VisionTransformer, exact to InternVisionModel: the paper's InternViT-6B and a small one.

InternViT-6B (OpenGVLab/InternViT-6B-224px): patch 14 conv with bias, class token, learned position embedding
(with a class position), 48 pre-norm blocks of width 3200 with 25 heads, RMSNorm (eps 1e-6), layer scale, no
qkv bias, GELU MLP 12800, and no norm after the last block. Two details differ from timm's ViT and are built
here: q and k are RMS-normalised over the whole width before the split into heads (timm normalises per head),
and the position grid is resized bicubically without antialiasing for other input sizes (timm antialiases).
Module names stay timm's (blocks.N.attn.qkv, attn.proj, mlp.fc1, mlp.fc2), which adapter targets and the key
conversion of experiments.vision.internvit_checkpoint rely on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import RmsNorm, resample_abs_pos_embed
from timm.layers.attention import Attention
from timm.models.vision_transformer import VisionTransformer
from torch import nn

RMS_EPS = 1e-6


@dataclass(frozen=True)
class InternViTArch:
    """Architecture hyper-parameters (no weights)."""

    img_size: int
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    init_values: float = 0.1
    qkv_bias: bool = False


INTERNVIT_6B = InternViTArch(img_size=224, patch_size=14, embed_dim=3200, depth=48, num_heads=25, mlp_ratio=4.0)
# Small enough to pretrain in minutes on 2 CPU cores at 64 px (8 x 8 = 64 tokens).
INTERNVIT_MINI = InternViTArch(img_size=64, patch_size=8, embed_dim=192, depth=6, num_heads=3, mlp_ratio=4.0)
ARCHS = {"internvit_6b": INTERNVIT_6B, "internvit_mini": INTERNVIT_MINI}


class InternAttention(Attention):
    """timm's attention with InternViT's QK-norm: one RMSNorm over all heads' q (and k), weights of width dim."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, **kwargs: object) -> None:
        kwargs.update(qk_norm=False, norm_layer=None)
        super().__init__(dim, num_heads=num_heads, qkv_bias=qkv_bias, **kwargs)
        factory = {"device": self.qkv.weight.device, "dtype": self.qkv.weight.dtype}
        self.q_norm = RmsNorm(self.attn_dim, eps=RMS_EPS, **factory)
        self.k_norm = RmsNorm(self.attn_dim, eps=RMS_EPS, **factory)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        batch, tokens, _ = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.reshape(batch, tokens, self.num_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        dropout = self.attn_drop.p if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout, is_causal=is_causal)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(batch, tokens, self.attn_dim)))


class InternViT(VisionTransformer):
    """VisionTransformer whose position grid is resized at other input sizes as InternViT does (bicubic, no
    antialiasing, class position kept), so features at the 512 px crops of segmentation match the original."""

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        if not self.dynamic_img_size:
            return super()._pos_embed(x)
        batch, height, width, dim = x.shape
        pos_embed = resample_abs_pos_embed(
            self.pos_embed, [height, width], list(self.patch_embed.grid_size), num_prefix_tokens=1, antialias=False
        )
        x = torch.cat([self.cls_token.expand(batch, -1, -1), x.view(batch, -1, dim)], dim=1)
        return self.pos_drop(x + pos_embed)


def build_internvit(arch: InternViTArch, num_classes: int = 0, **kwargs: object) -> nn.Module:
    """An InternViT (class token, RMSNorm, layer scale, full-width QK-norm, no final norm); kwargs override timm
    VisionTransformer arguments (img_size, dynamic_img_size, ...)."""
    options = asdict(arch)
    options.update(kwargs)
    norm = partial(RmsNorm, eps=RMS_EPS)
    return InternViT(num_classes=num_classes, norm_layer=norm, attn_layer=InternAttention, final_norm=False, **options)
