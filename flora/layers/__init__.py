"""Adapter layers, one module per family, sharing ``FloraLayer``."""

from flora.layers.base import FloraLayer, GeometryDelta
from flora.layers.conv import Conv1d, Conv2d, Conv3d, ConvDelta
from flora.layers.embedding import Embedding, EmbeddingDelta
from flora.layers.linear import Conv1D, Linear, LinearDelta
from flora.layers.parameter import ParameterDelta

__all__ = [
    "Conv1D",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvDelta",
    "Embedding",
    "EmbeddingDelta",
    "FloraLayer",
    "GeometryDelta",
    "Linear",
    "LinearDelta",
    "ParameterDelta",
]
