"""Low-precision bases, torch.compile and DistributedDataParallel on injected models, and a training step."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
from torch import nn

import flora
from tests.flora_helpers import randomise, rel_err


def convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.GELU(),
        nn.Conv2d(16, 16, 5, padding=2, groups=16),
        nn.GELU(),
        nn.Conv2d(16, 16, 3, stride=2),
        nn.Flatten(),
        nn.LazyLinear(5),
    )


def injected(dtype: torch.dtype = torch.float32) -> nn.Module:
    model = convnet()
    model(torch.randn(1, 3, 12, 12))
    model = model.to(dtype)
    cfg = flora.FloraConfig(target_types=["Conv2d"], rank=4, kernel_rank=2, scale=2.0, modules_to_save=["6"])
    return flora.inject(model, cfg)


def batch(dtype: torch.dtype = torch.float32):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(8, 3, 12, 12, generator=gen).to(dtype), torch.randint(0, 5, (8,), generator=gen)


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = nn.functional.cross_entropy(model(x).float(), y)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def test_a_step_changes_only_adapters_and_head():
    model = injected()
    randomise(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_step(model, *batch())
    for name, param in model.named_parameters():
        changed = not torch.equal(param, before[name])
        assert changed == param.requires_grad, name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_base_with_fp32_adapters(dtype):
    model = injected(dtype)
    randomise(model)
    for _, layer in flora.adapter_layers(model):
        assert layer.core.dtype == torch.float32 and layer.base_layer.weight.dtype == dtype
    x, y = batch(dtype)
    out = model(x)
    assert out.dtype == dtype and torch.isfinite(out).all()
    reference = injected(torch.float32)
    randomise(reference)
    assert rel_err(out.float(), reference(x.float())) < 0.05
    train_step(model, x, y)
    grads = [p.grad for _, layer in flora.adapter_layers(model) for p in (layer.core, *layer.factors)]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_torch_compile_matches_eager():
    model = injected()
    randomise(model)
    x, _ = batch()
    eager = model(x)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    assert rel_err(compiled(x), eager) < 1e-5
    loss = compiled(x).square().mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_distributed_data_parallel_step():
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        model = injected()
        randomise(model)
        ddp = nn.parallel.DistributedDataParallel(model)
        x, y = batch()
        expected = model(x)
        assert rel_err(ddp(x), expected) < 1e-6
        loss = nn.functional.cross_entropy(ddp(x), y)
        loss.backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    finally:
        dist.destroy_process_group()
