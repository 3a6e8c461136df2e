"""Property tests: every compute path of every layer family equals the materialised reference.

The reference is base(x) + op(x, delta_weight()) run by torch's own functional op ("dense" path). Forward
outputs and the gradients of the input and of every adapter tensor must agree to a relative error < 1e-5.
"""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

from flora import layers
from tests.flora_helpers import rel_err

CONV_CLASSES = {1: (nn.Conv1d, layers.Conv1d), 2: (nn.Conv2d, layers.Conv2d), 3: (nn.Conv3d, layers.Conv3d)}


def outputs_and_grads(layer: nn.Module, x: torch.Tensor, path: str, probe_seed: int = 1):
    layer.path = path
    x = x.detach().clone().requires_grad_(x.is_floating_point())
    out = layer(x)
    probe = 0.5 + torch.rand(out.shape, generator=torch.Generator().manual_seed(probe_seed))
    tensors = [layer.core, *layer.factors] + ([x] if x.requires_grad else [])
    grads = torch.autograd.grad((out * probe).sum(), tensors)
    return out.detach(), grads


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def assert_paths_agree(layer: nn.Module, x: torch.Tensor, paths=("factored", "merged")) -> None:
    """Outputs, the input gradient, and the adapter gradients (as one vector: a single tiny entry of a
    gradient summed over a batch can cancel to a few float32 ulps) agree to 1e-5 relative error with the
    reference computed in float64, so the reference's own rounding does not count against a path. Inputs and
    the output probe are positive so that batch sums do not cancel to a few ulps (ill-conditioning, not error)."""
    n_adapter = 1 + len(layer.factors)
    double_x = x.double() if x.is_floating_point() else x
    reference, reference_grads = outputs_and_grads(copy.deepcopy(layer).double(), double_x, "dense")
    for path in paths:
        out, grads = outputs_and_grads(layer, x, path)
        assert rel_err(out, reference) < 1e-5, path
        assert rel_err(flat(grads[:n_adapter]), flat(reference_grads[:n_adapter])) < 1e-5, path
        for got, want in zip(grads[n_adapter:], reference_grads[n_adapter:], strict=True):
            assert rel_err(got, want) < 1e-5, path
        for got, want in zip(grads[:n_adapter], reference_grads[:n_adapter], strict=True):
            assert rel_err(got, want) < 1e-3, path


def randomise_core(layer: nn.Module, seed: int) -> None:
    with torch.no_grad():
        layer.core.copy_(torch.randn(layer.core.shape, generator=torch.Generator().manual_seed(seed)))


@st.composite
def conv_case(draw):
    dims = draw(st.sampled_from([1, 2, 2, 3]))
    depthwise = draw(st.booleans())
    groups = draw(st.integers(1, 3))
    in_per_group = 1 if depthwise else draw(st.integers(1, 3))
    out_per_group = draw(st.integers(1, 3))
    max_kernel = 3 if dims < 3 else 2
    kernel = tuple(draw(st.integers(1, max_kernel)) for _ in range(dims))
    stride = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.sampled_from([0, 1, 2, "same", "valid"]))
    assume(not (padding == "same" and stride > 1))
    padding_mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    size = 7 if dims < 3 else 5
    out_ch, in_ch = groups * out_per_group, groups * in_per_group
    ranks = (draw(st.integers(1, out_ch)), draw(st.integers(1, in_per_group)))
    ranks += tuple(draw(st.integers(1, k)) for k in kernel)
    return {
        "dims": dims,
        "in_ch": in_ch,
        "out_ch": out_ch,
        "kernel": kernel,
        "stride": stride,
        "dilation": dilation,
        "padding": padding,
        "padding_mode": padding_mode,
        "groups": groups,
        "size": size,
        "ranks": ranks,
        "scale": draw(st.floats(0.05, 4.0)),
        "bias": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


def build_conv(case):
    torch.manual_seed(case["seed"])
    base_cls, flora_cls = CONV_CLASSES[case["dims"]]
    base = base_cls(
        case["in_ch"],
        case["out_ch"],
        case["kernel"],
        stride=case["stride"],
        padding=case["padding"],
        dilation=case["dilation"],
        groups=case["groups"],
        bias=case["bias"],
        padding_mode=case["padding_mode"],
    )
    base.requires_grad_(False)
    layer = flora_cls(base_layer=base, ranks=case["ranks"], scale=case["scale"])
    randomise_core(layer, case["seed"])
    x = torch.rand(2, case["in_ch"], *(case["size"],) * case["dims"]) + 0.1
    return layer, x


@given(conv_case())
def test_conv_paths_match_reference(case):
    layer, x = build_conv(case)
    assert layer.delta_weight().shape == layer.base_layer.weight.shape
    assert_paths_agree(layer, x)


@given(conv_case())
def test_conv_merge_and_unmerge(case):
    layer, x = build_conv(case)
    original = layer.base_layer.weight.detach().clone()
    layer.path = "factored"
    expected = layer(x).detach()
    layer.merge()
    assert rel_err(layer(x), expected) < 1e-5
    layer.unmerge()
    assert (layer.base_layer.weight - original).abs().max() <= 1e-6 * max(1.0, original.abs().max().item())


@given(conv_case())
def test_fresh_conv_adapter_is_exactly_the_base(case):
    layer, x = build_conv(case)
    with torch.no_grad():
        layer.core.zero_()
    for path in ("factored", "merged", "dense"):
        layer.path = path
        assert torch.equal(layer(x), layer.base_layer(x)), path


@st.composite
def matrix_case(draw):
    return {
        "in": draw(st.integers(1, 12)),
        "out": draw(st.integers(1, 12)),
        "seed": draw(st.integers(0, 2**16)),
        "scale": draw(st.floats(0.01, 4.0)),
        "bias": draw(st.booleans()),
        "r_out": draw(st.integers(1, 12)),
        "r_in": draw(st.integers(1, 12)),
    }


@given(matrix_case())
def test_linear_paths_match_reference(case):
    torch.manual_seed(case["seed"])
    base = nn.Linear(case["in"], case["out"], bias=case["bias"]).requires_grad_(False)
    ranks = (min(case["r_out"], case["out"]), min(case["r_in"], case["in"]))
    layer = layers.Linear(base_layer=base, ranks=ranks, scale=case["scale"])
    randomise_core(layer, case["seed"])
    assert_paths_agree(layer, torch.rand(3, 2, case["in"]) + 0.1)


@given(matrix_case())
def test_transformers_conv1d_paths_match_reference(case):
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(case["seed"])
    base = Conv1D(case["out"], case["in"]).requires_grad_(False)
    assert base.weight.shape == (case["in"], case["out"])
    ranks = (min(case["r_in"], case["in"]), min(case["r_out"], case["out"]))
    layer = layers.Conv1D(base_layer=base, ranks=ranks, scale=case["scale"])
    randomise_core(layer, case["seed"])
    x = torch.rand(3, case["in"]) + 0.1
    layer.path = "dense"
    expected = base(x) + x @ layer.delta_weight()
    assert rel_err(layer(x), expected) < 1e-5
    assert_paths_agree(layer, x)


@given(matrix_case())
def test_embedding_paths_match_reference(case):
    torch.manual_seed(case["seed"])
    padding_idx = 0 if case["bias"] else None
    base = nn.Embedding(case["in"] + 1, case["out"], padding_idx=padding_idx).requires_grad_(False)
    ranks = (min(case["r_in"], case["in"] + 1), min(case["r_out"], case["out"]))
    layer = layers.Embedding(base_layer=base, ranks=ranks, scale=case["scale"])
    randomise_core(layer, case["seed"])
    indices = torch.randint(0, case["in"] + 1, (4, 5))
    assert_paths_agree(layer, indices)
    layer.path = "factored"
    expected = base.weight[indices] + layer.delta_weight()[indices]
    assert rel_err(layer(indices), expected) < 1e-5


def test_auto_path_prefers_factored_on_dense_convs_and_merged_on_depthwise():
    dense = layers.Conv2d(base_layer=nn.Conv2d(256, 256, 3, padding=1), ranks=(16, 16, 2, 2), scale=1.0)
    depthwise = layers.Conv2d(base_layer=nn.Conv2d(96, 96, 7, padding=3, groups=96), ranks=(16, 1, 2, 2), scale=1.0)
    big_linear = layers.Linear(base_layer=nn.Linear(1024, 4096), ranks=(16, 16), scale=1.0)
    assert dense.path == "factored"
    assert depthwise.path == "merged"
    assert big_linear.path == "factored"


def test_dropout_rules_out_merged_path():
    base = nn.Conv2d(8, 8, 5, padding=2, groups=8)
    assert layers.Conv2d(base_layer=base, ranks=(4, 1, 2, 2), scale=1.0, dropout=0.1).path == "dense"
    with pytest.raises(ValueError, match="cannot apply dropout"):
        layers.Conv2d(base_layer=base, ranks=(4, 1, 2, 2), scale=1.0, dropout=0.1, path="merged")


def test_transposed_conv_is_refused_with_a_clear_error():
    with pytest.raises(TypeError, match="transposed convolution"):
        layers.Conv2d(base_layer=nn.ConvTranspose2d(4, 4, 3), ranks=(2, 2, 2, 2), scale=1.0)


@st.composite
def depthwise_case(draw):
    """Depthwise kernels with zero padding: the merged path's custom weight gradient (flora.layers.fused)."""
    dims = draw(st.sampled_from([1, 2, 2, 3]))
    channels = draw(st.integers(2, 5))
    max_kernel = 5 if dims < 3 else 3
    kernel = tuple(draw(st.integers(1, max_kernel)) for _ in range(dims))
    stride = draw(st.integers(1, 3))
    padding = draw(st.sampled_from([0, 1, 2, 3]))
    return {
        "dims": dims,
        "in_ch": channels,
        "out_ch": channels,
        "kernel": kernel,
        "stride": stride,
        "dilation": draw(st.integers(1, 2)),
        "padding": padding,
        "padding_mode": "zeros",
        "groups": channels,
        "size": 9 if dims < 3 else 6,
        "ranks": (draw(st.integers(1, channels)), 1, *(min(2, k) for k in kernel)),
        "scale": draw(st.floats(0.05, 4.0)),
        "bias": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


@given(depthwise_case())
def test_depthwise_merged_path_matches_reference(case):
    layer, x = build_conv(case)
    assume(all(case["size"] + 2 * case["padding"] >= case["dilation"] * (k - 1) + 1 for k in case["kernel"]))
    assert_paths_agree(layer, x, paths=("merged",))
