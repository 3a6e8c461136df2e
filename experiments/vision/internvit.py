"""InternViT's block design on timm's VisionTransformer: the paper's InternViT-6B and a small one for the CPU.

InternViT-6B (OpenGVLab/InternViT-6B-224px): patch 14, width 3200, 48 blocks, 25 heads, MLP 12800, QK-norm,
RMSNorm, layer scale, no qkv bias, a class token. timm expresses all of it; one difference is kept on purpose:
timm normalises q and k per head (RMSNorm over the head dim, 2 x 128 weights per block) where InternViT
normalises them over the whole width (2 x 3200), so the timm build has 48 x 6,144 = 294,912 fewer parameters
(0.005% of 5.9B). Loading the released checkpoint needs a key conversion onto these modules, which is not
written: no checkpoint is reachable offline to check it against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from timm.layers import RmsNorm
from timm.models.vision_transformer import VisionTransformer


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


def build_internvit(arch: InternViTArch, num_classes: int = 0, **kwargs: object) -> VisionTransformer:
    """A timm VisionTransformer with QK-norm, RMSNorm and layer scale; kwargs override timm arguments."""
    options = asdict(arch)
    options.update(kwargs)
    return VisionTransformer(num_classes=num_classes, qk_norm=True, norm_layer=RmsNorm, **options)
