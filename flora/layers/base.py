"""What every module-wrapping FLoRA adapter shares: path choice, the adapted forward, merge and unmerge.

A geometry subclass (linear, conv, embedding) supplies three things: the update computed in activation
space (``factored_output``), the base op run with another weight (``weight_forward``), and the
multiply-adds per output element of both, which drive the per-layer choice of path.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from flora import merging
from flora.targets import has_own_forward
from flora.tucker import TuckerDelta

# A frozen op's backward computes only the input gradient; training the weight adds a weight-gradient op of the
# same size, and each small op of the factored path costs about its forward three times (forward, input
# gradient, weight gradient). These factors turn forward multiply-adds into training cost.
FACTORED_TRAINING_COST = 3.0


class GeometryDelta(TuckerDelta):
    """A Tucker update that knows the geometry of the op it adapts.

    A subclass of a torch layer with its own forward (timm's Conv2dSame pads on the fly, StdConv standardises
    its weight) is run through that forward with W + dW (``custom_forward``): exactly what merging computes.
    """

    def __init__(self, base_layer: nn.Module, ranks: Sequence[int], scale: float, **kwargs) -> None:
        super().__init__(tuple(base_layer.weight.shape), ranks, scale, **kwargs)
        self.custom_forward = has_own_forward(base_layer)

    @abstractmethod
    def factored_output(self, x: torch.Tensor) -> torch.Tensor:
        """dW applied to x without materialising dW (scale included)."""

    def factored_forward(self, base_layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """base(x) + dW applied to dropout(x); geometries may fuse the two (see ``flora.layers.fused``)."""
        result = base_layer(x)
        return result + self.factored_output(self.dropout(x)).to(result.dtype)

    @abstractmethod
    def weight_forward(self, base_layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The base op (with its bias) run on x with ``weight`` in place of the base weight."""

    @abstractmethod
    def factored_macs(self) -> float:
        """Forward multiply-adds of the factored path per output position."""

    @abstractmethod
    def weight_grad_macs(self) -> float:
        """Multiply-adds per output position of the base op's weight gradient (the merged path's extra)."""

    def resolve_path(self) -> str:
        """Pick the cheaper training path for this layer's shape unless the user fixed one.

        ``factored`` keeps the update in activation space; ``merged`` runs one base op with W + dW (its cost is
        the weight gradient of the full op); ``dense`` is the official code's way, a second full op on dW, kept
        as a reference. Dropout on the adapter input rules out ``merged``.
        """
        has_dropout = not isinstance(self.dropout, nn.Identity)
        if self.custom_forward:
            if has_dropout or self.requested_path not in ("auto", "merged"):
                raise ValueError(
                    "this layer's class has its own forward, which FLoRA runs with W + dW (path 'merged'); it cannot "
                    f"take path={self.requested_path!r} or adapter dropout"
                )
            return "merged"
        if self.requested_path == "merged" and has_dropout:
            raise ValueError("path='merged' cannot apply dropout to the adapter input; use 'factored' or 'dense'")
        if self.requested_path != "auto":
            return self.requested_path
        if FACTORED_TRAINING_COST * self.factored_macs() <= self.weight_grad_macs():
            return "factored"
        return "dense" if has_dropout else "merged"

    def adapted_forward(self, base_layer: nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.custom_forward:
            weight = base_layer.weight
            adapted = weight + self.delta_weight().to(weight.dtype)
            return functional_call(base_layer, {"weight": adapted}, (x, *args), kwargs)
        if args or kwargs:
            raise TypeError(f"{type(base_layer).__name__}.forward takes one input, got {1 + len(args + tuple(kwargs))}")
        path = self.path
        if path == "merged" and self.training and not isinstance(self.dropout, nn.Identity):
            path = "dense"
        if path == "factored":
            return self.factored_forward(base_layer, x)
        weight = base_layer.weight
        delta = self.delta_weight().to(weight.dtype)
        if path == "merged":
            return self.weight_forward(base_layer, x, weight + delta)
        result = base_layer(x)
        return result + self.dense_output(base_layer, self.dropout(x), delta)

    @abstractmethod
    def dense_output(self, base_layer: nn.Module, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """dW applied to x by the base op's functional form (no bias)."""


class StandsInForBase(nn.Module):
    """A wrapper that reads the attributes it lacks (``weight``, ``in_features``, ...) from the layer it wraps,
    because model code reads them off whatever sits at the wrapped layer's name (T5, ViT, Whisper, CLIP)."""

    def wrapped_layer(self) -> nn.Module:
        """The layer whose attributes this wrapper forwards."""
        return self._modules["base_layer"]

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get("_modules") or {}
            if name.startswith("__") or "base_layer" not in modules:
                raise
            return getattr(self.wrapped_layer(), name)


class FloraLayer(StandsInForBase):
    """Mixin for adapters that own their frozen ``base_layer``: the public face of the library.

    Concrete classes list it first, before their geometry: ``class Linear(FloraLayer, LinearDelta)``. The wrapper
    stands in for the module it wraps: attributes it lacks (``weight``, ``bias``, ``in_features``,
    ``num_embeddings``, ...) are read from the base layer, because model code reads them (T5, ViT, Whisper, CLIP).
    """

    def __init__(self, base_layer: nn.Module, **kwargs) -> None:
        super().__init__(base_layer=base_layer, **kwargs)
        self.base_layer = base_layer
        self.merged = False
        self.disabled = False
        self.register_buffer("base_before_merge", None, persistent=False)
        self.path = self.resolve_path()
        merging.register_state_hooks(self)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.merged or self.disabled:
            return self.base_layer(x, *args, **kwargs)
        return self.adapted_forward(self.base_layer, x, *args, **kwargs)

    def merge(self, keep_base: bool = True) -> None:
        """W <- W + dW; with ``keep_base`` a copy of W is kept so that ``unmerge`` restores it bit for bit."""
        merging.merge_into(self, self.base_layer.weight, keep_base)

    def unmerge(self) -> None:
        merging.unmerge_from(self, self.base_layer.weight)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, path={self.path}, merged={self.merged}"
