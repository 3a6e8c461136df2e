"""Fused autograd nodes for conv adapters: the factored update with its base conv, and a depthwise conv.

Autograd on the three small convs would keep both rank-sized hidden tensors alive until backward (for a 256-channel
conv at rank 16 that is 2 x 16/256 = 12.5% of the input activation, beyond the library's 10% budget for adapter
activations), and on the CPU the backward of a 1x1 conv goes through oneDNN's generic convolution, which is slower
than the batched matmul it really is. This node saves only the input (which the frozen base conv keeps anyway) and
the small weights, recomputes the hidden tensors in backward (a few percent of the base op's multiply-adds; the
caller may keep the rank-sized projection instead when it is a small fraction of the input), runs the pointwise
projections as batched matmuls, and accumulates the update into the base output (and its input gradient into the
base input gradient) in place with ``baddbmm_`` instead of separate full-size adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _rows(t: torch.Tensor) -> torch.Tensor | None:
    """[N, C, *S] as a [N * prod(S), C] view when channels are the fastest axis (channels-last), else None.

    timm's ConvNeXt hands its pointwise convs permuted (channels-last) tensors; treating them as row matrices
    keeps every projection a single GEMM on a view instead of a layout copy.
    """
    moved = t.movedim(1, -1)
    return moved.reshape(-1, t.shape[1]) if moved.is_contiguous() else None


def _project(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """1x1 map over channels: weight [r, C] applied to x [N, C, *S] -> [N, r, *S], in x's memory layout.

    Channels-first inputs use an explicit bmm over the broadcast weight: ``torch.matmul`` would fold
    [N, C, L] into [N * L, C] and copy the whole activation twice.
    """
    rows = _rows(x)
    if rows is not None:
        return (rows @ weight.t()).reshape(x.shape[0], *x.shape[2:], -1).movedim(-1, 1)
    n = x.shape[0]
    out = torch.bmm(weight.expand(n, -1, -1), x.reshape(n, x.shape[1], -1))
    return out.reshape(n, -1, *x.shape[2:])


def _outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum over batch and positions of a [N, P, *S] times b [N, Q, *S] -> [P, Q], without full-size copies."""
    rows_a, rows_b = _rows(a), _rows(b)
    if rows_a is not None and rows_b is not None:
        return rows_a.t() @ rows_b
    if a.is_contiguous() and b.is_contiguous():
        n = a.shape[0]
        return torch.bmm(a.reshape(n, a.shape[1], -1), b.reshape(n, b.shape[1], -1).transpose(1, 2)).sum(0)
    return a.movedim(1, -1).reshape(-1, a.shape[1]).t() @ b.movedim(1, -1).reshape(-1, b.shape[1])


def _accumulate(target: torch.Tensor, weight: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """target += weight @ hidden over channels, in place when target's layout allows it (target is ours)."""
    rows = _rows(target)
    if rows is not None:
        hidden_rows = _rows(hidden)
        if hidden_rows is None:
            hidden_rows = hidden.movedim(1, -1).reshape(-1, hidden.shape[1])
        rows.addmm_(hidden_rows, weight.t())
        return target
    if target.is_contiguous():
        n = target.shape[0]
        target.view(n, target.shape[1], -1).baddbmm_(weight.expand(n, -1, -1), hidden.reshape(n, hidden.shape[1], -1))
        return target
    return target + _project(weight, hidden)


class FactoredConv(torch.autograd.Function):
    """conv(x, weight, bias) + w_out @ conv(w_in @ x, kernel) for an ungrouped, zero-padded conv.

    ``w_in`` may be None (folded into ``kernel``); ``kernel`` may be None for a pointwise conv, whose core is
    then folded into ``w_out`` (the update is two thin matmuls, as for a Linear). Owning the base conv lets the
    update be accumulated in place into the base output, and the adapter's input gradient in place into the
    base conv's input gradient, so neither needs a full-size temporary or a separate add.
    """

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        w_in: torch.Tensor | None,
        kernel: torch.Tensor | None,
        w_out: torch.Tensor,
        geometry: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]],
        keep_projection: bool = False,
    ) -> torch.Tensor:
        stride, padding, dilation = geometry
        conv = _CONV_FN[x.dim() - 2]
        out = conv(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
        projected = x if w_in is None else _project(w_in, x)
        hidden = (
            projected if kernel is None else conv(projected, kernel, stride=stride, padding=padding, dilation=dilation)
        )
        out = _accumulate(out, w_out, hidden)
        ctx.geometry = geometry
        ctx.has_bias = bias is not None
        kept = projected if keep_projection and w_in is not None else None
        ctx.save_for_backward(x, weight, w_in, kernel, w_out, kept)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, w_in, kernel, w_out, kept = ctx.saved_tensors
        stride, padding, dilation = ctx.geometry
        need = ctx.needs_input_grad
        no_output_padding = [0] * len(stride)
        grad_x, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            grad,
            x,
            weight,
            [weight.shape[0]] if ctx.has_bias else None,
            stride,
            padding,
            dilation,
            False,
            no_output_padding,
            1,
            [need[0], need[1], ctx.has_bias and need[2]],
        )
        projected = kept if kept is not None else (x if w_in is None else _project(w_in, x))
        conv = _CONV_FN[x.dim() - 2]
        hidden = (
            projected if kernel is None else conv(projected, kernel, stride=stride, padding=padding, dilation=dilation)
        )
        grad_w_out = _outer(grad, hidden) if need[5] else None
        grad_hidden = _project(w_out.t(), grad)
        need_projected = need[0] or (w_in is not None and need[3])
        if kernel is None:
            grad_projected, grad_kernel = grad_hidden, None
        else:
            grad_projected, grad_kernel, _ = torch.ops.aten.convolution_backward(
                grad_hidden,
                projected,
                kernel,
                None,
                stride,
                padding,
                dilation,
                False,
                no_output_padding,
                1,
                [need_projected, need[4], False],
            )
        grad_w_in = None
        if w_in is None:
            if need[0]:
                grad_x = grad_x + grad_projected
        elif grad_projected is not None:
            if need[0]:
                grad_x = _accumulate(grad_x, w_in.t(), grad_projected)
            if need[3]:
                grad_w_in = _outer(grad_projected, x)
        return grad_x, grad_weight, grad_bias, grad_w_in, grad_kernel, grad_w_out, None, None


def depthwise_weight_grad(
    x: torch.Tensor, grad: torch.Tensor, kernel: Sequence[int], stride, padding, dilation
) -> torch.Tensor:
    """Weight gradient of a depthwise conv [C, 1, *k], computed as a depthwise conv *forward*.

    Folding the batch into the channels turns sum_n corr(x[n, c], grad[n, c]) into one grouped conv of the
    input (a view, zero-padded by the conv itself) with the output gradient as kernel (stride and dilation
    swap roles). On the CPU this runs at the speed of the forward, about 10x faster than oneDNN's depthwise
    weight-gradient kernel.
    """
    n, c = x.shape[:2]
    taps = _CONV_FN[x.dim() - 2](
        x.reshape(1, n * c, *x.shape[2:]),
        grad.reshape(n * c, 1, *grad.shape[2:]),
        padding=padding,
        stride=dilation,
        dilation=stride,
        groups=n * c,
    )
    taps = taps.reshape(n, c, *taps.shape[2:]).sum(0)
    return taps[(slice(None), *(slice(0, k) for k in kernel))].unsqueeze(1)


class DepthwiseConv(torch.autograd.Function):
    """conv(x, weight, bias) for a depthwise kernel [C, 1, *k] with zero padding and a fast CPU weight gradient.

    On other devices the weight gradient is the library's own (cuDNN's depthwise kernels are not the bottleneck).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        ctx.geometry = (stride, padding, dilation)
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        dims = x.dim() - 2
        return _CONV_FN[dims](x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.geometry
        grad = grad.contiguous()
        fast_weight_grad = ctx.needs_input_grad[1] and x.device.type == "cpu"
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1] and not fast_weight_grad, False]
        grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
            grad, x, weight, None, stride, padding, dilation, False, [0] * len(stride), x.shape[1], mask
        )
        if fast_weight_grad:
            grad_w = depthwise_weight_grad(x, grad, weight.shape[2:], stride, padding, dilation)
        grad_b = None
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum([0, *range(2, grad.dim())])
        return grad_x, grad_w, grad_b, None, None, None
