"""The functional core against independent references, and the paper's worked parameter counts."""

import string

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from flora.functional import (
    flora_num_params,
    largest_rank_within_budget,
    lora_num_params,
    mode_product,
    tucker_to_tensor,
)
from tests.flora_helpers import rel_err


@st.composite
def tucker_case(draw):
    order = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 6)) for _ in range(order)]
    ranks = [draw(st.integers(1, size)) for size in shape]
    seed = draw(st.integers(0, 2**16))
    return shape, ranks, seed


def einsum_reference(core, factors):
    letters = string.ascii_lowercase
    core_idx = letters[: core.dim()]
    out_idx = letters[13 : 13 + core.dim()]
    spec = core_idx + "," + ",".join(o + c for o, c in zip(out_idx, core_idx, strict=True)) + "->" + out_idx
    return torch.einsum(spec, core, *factors)


@given(tucker_case())
def test_tucker_to_tensor_matches_einsum(case):
    shape, ranks, seed = case
    gen = torch.Generator().manual_seed(seed)
    core = torch.randn(ranks, generator=gen, dtype=torch.float64)
    factors = [torch.randn(s, r, generator=gen, dtype=torch.float64) for s, r in zip(shape, ranks, strict=True)]
    assert rel_err(tucker_to_tensor(core, factors), einsum_reference(core, factors)) < 1e-12


def test_mode_product_matches_unfolding_definition():
    tensor = torch.randn(3, 4, 5, dtype=torch.float64)
    matrix = torch.randn(7, 4, dtype=torch.float64)
    result = mode_product(tensor, matrix, 1)
    expected = torch.einsum("ajc,bj->abc", tensor, matrix)
    assert result.shape == (3, 7, 5)
    assert rel_err(result, expected) < 1e-12


def test_mode_product_rejects_mismatched_matrix():
    with pytest.raises(ValueError, match="mode-1 product needs a matrix of shape"):
        mode_product(torch.zeros(3, 4), torch.zeros(2, 5), 1)


def test_paper_worked_example_conv_counts():
    shape = (512, 256, 3, 3)
    assert flora_num_params(shape, (32, 32, 2, 2)) == 28_684
    assert lora_num_params(shape, 32, convention="paper") == 73_728
    assert largest_rank_within_budget(shape, 73_728, kernel_rank=2) == 70
    assert flora_num_params(shape, (70, 70, 2, 2)) == 73_372
    assert flora_num_params(shape, (71, 71, 2, 2)) == 74_704


def test_linear_flora_has_r_squared_more_than_lora():
    flora_count = flora_num_params((512, 256), (32, 32))
    lora_count = lora_num_params((512, 256), 32)
    assert flora_count - lora_count == 32 * 32
    assert round(100 * (flora_count / lora_count - 1), 2) == 4.17


def test_lora_conventions_differ_on_kernels_only():
    assert lora_num_params((512, 256, 3, 3), 8, "flatten") == 8 * (512 + 256 * 9)
    assert lora_num_params((512, 256), 8, "paper") == lora_num_params((512, 256), 8, "flatten")
    with pytest.raises(ValueError, match="unknown LoRA convention"):
        lora_num_params((4, 4), 2, "rows")
