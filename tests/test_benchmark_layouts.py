"""The fused fast paths written for the efficiency benchmark agree with the materialised way on every layout.

timm's ConvNeXt feeds its convs channels-last (permuted) tensors, which the fused conv node handles as row
matrices; these cases are not in the layer property tests, which use contiguous inputs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from flora import layers
from tests.flora_helpers import rel_err


def _outputs_and_grads(layer: nn.Module, x: torch.Tensor, path: str):
    layer.path = path
    x = x.detach().clone().requires_grad_(True)
    out = layer(x)
    probe = torch.rand(out.shape, generator=torch.Generator().manual_seed(0)) + 0.5
    grads = torch.autograd.grad((out * probe).sum(), [x, layer.core, *layer.factors])
    return out, grads


def _assert_matches_dense(layer: nn.Module, x: torch.Tensor, path: str) -> None:
    out, grads = _outputs_and_grads(layer, x, path)
    ref_out, ref_grads = _outputs_and_grads(layer, x, "dense")
    assert rel_err(out, ref_out) < 1e-5
    for got, want in zip(grads, ref_grads, strict=True):
        assert rel_err(got, want) < 1e-4


def _randomised(layer: nn.Module) -> nn.Module:
    with torch.no_grad():
        layer.core.normal_(generator=torch.Generator().manual_seed(1))
    return layer


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("c_in", "k", "stride", "padding"),
    [(6, 3, 1, 1), (6, 2, 2, 0), (3, 4, 4, 0), (5, 1, 1, 0), (32, 3, 1, 1), (32, 1, 1, 0)],
)
def test_fused_factored_conv_on_every_layout(channels_last, c_in, k, stride, padding):
    torch.manual_seed(0)
    base = nn.Conv2d(c_in, 8, k, stride=stride, padding=padding).requires_grad_(False)
    # r_in = 2 on 32 channels is small enough that the fused node keeps the projection instead of recomputing
    r_in = 2 if c_in >= 32 else min(3, c_in)
    layer = _randomised(
        layers.Conv2d(base_layer=base, ranks=(4, r_in, 2 if k > 1 else 1, 2 if k > 1 else 1), scale=2.0)
    )
    x = torch.randn(2, c_in, 8, 8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    _assert_matches_dense(layer, x, "factored")


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), (2, 1), (1, 2)])
def test_depthwise_merged_on_every_layout(channels_last, stride, dilation):
    torch.manual_seed(0)
    base = nn.Conv2d(6, 6, 5, stride=stride, padding=2 * dilation, dilation=dilation, groups=6).requires_grad_(False)
    layer = _randomised(layers.Conv2d(base_layer=base, ranks=(4, 1, 2, 2), scale=2.0))
    x = torch.randn(2, 6, 9, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    _assert_matches_dense(layer, x, "merged")


def test_fused_linear_on_a_non_contiguous_input():
    torch.manual_seed(0)
    layer = _randomised(layers.Linear(base_layer=nn.Linear(6, 10).requires_grad_(False), ranks=(4, 4), scale=1.0))
    x = torch.randn(6, 3, 5).transpose(0, 2)
    _assert_matches_dense(layer, x, "factored")
