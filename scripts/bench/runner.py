"""Build every (case, method) pair, time them interleaved, measure memory, and return table rows."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from bench.layers import LayerCase, Single
from bench.memory import MemoryRecord, measure_memory
from bench.methods import METHOD_LABELS, NotApplicable, apply_method
from bench.models import ModelSpec, logits_of
from bench.profiling import extra_ops, mac_bounds
from bench.timing import Summary, time_interleaved

WITH_DEPTHWISE = "flora_auto_dw"
LABELS = {**METHOD_LABELS, WITH_DEPTHWISE: "FLoRA auto, + depthwise convs"}


@dataclass
class Row:
    """One cell group of the table: a method on a layer or model."""

    section: str
    case: str
    method: str
    params: int = 0
    note: str = ""
    timing: Summary | None = None
    memory: MemoryRecord | None = None
    reason: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return LABELS[self.method]


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _measure(rows: list[Row], steps: dict[str, Callable[[], None]], modules: dict, device, reps, warmup, desc):
    summaries = time_interleaved(steps, device, reps=reps, warmup=warmup, desc=desc)
    for row in rows:
        if row.method in steps:
            row.timing = summaries[row.method]
            module, optimizer = modules[row.method]
            row.memory = measure_memory(module, steps[row.method], device, optimizer)


def run_layer_case(case: LayerCase, methods: list[str], device: torch.device, reps: int, warmup: int) -> list[Row]:
    """Forward + backward of one layer under every method, interleaved."""
    torch.manual_seed(0)
    base = case.make().to(device)
    x = torch.randn(case.input_shape, device=device, requires_grad=True)
    with torch.no_grad():
        grad_out = torch.randn_like(base(x))
    rows, steps, modules = [], {}, {}
    for method in methods:
        row = Row("layer", case.name, method)
        rows.append(row)
        if method == "flora_factored" and getattr(base, "groups", 1) > 1:
            row.reason = "skipped: on a depthwise conv the factored path runs r_out x the base op (see its bound)"
            continue
        try:
            model, row.note = apply_method(Single(copy.deepcopy(base)), method, ["layer"], case.budget, head=[])
        except NotApplicable as err:
            row.reason = str(err)
            continue
        params = _trainable(model)
        row.params = sum(p.numel() for p in params)

        def step(model=model, params=params) -> None:
            for p in params:
                p.grad = None
            x.grad = None
            model(x).backward(grad_out)

        steps[method], modules[method] = step, (model, None)
        if method == "flora_auto":
            row.extra["mac_bounds"] = mac_bounds(model.layer)
    _measure(rows, steps, modules, device, reps, warmup, case.name)
    for row in rows:
        if row.method == "floor" and row.memory is not None:
            # A frozen Linear saves nothing for backward; its input is the activation it keeps alive in a network.
            row.extra["activation_ref"] = max(row.memory.activations, x.nbytes)
        if row.method == "flora_auto" and "floor" in steps and row.timing is not None:
            row.extra["profile"] = extra_ops(steps["floor"], steps["flora_auto"], device)
    return rows


def run_model_spec(spec: ModelSpec, methods: list[str], device: torch.device, reps: int, warmup: int) -> list[Row]:
    """One training step (forward, loss, backward, AdamW step) of a whole backbone under every method."""
    torch.manual_seed(0)
    reference = spec.build().to(device)
    inputs, labels = spec.make_batch(reference)
    inputs = {k: v.to(device).requires_grad_(v.is_floating_point()) for k, v in inputs.items()}
    labels = labels.to(device)
    has_grouped = len(spec.targets(reference, grouped=True)) > len(spec.targets(reference, grouped=False))
    wanted = [*methods, WITH_DEPTHWISE] if has_grouped and "flora_auto" in methods else methods
    rows, steps, modules = [], {}, {}
    for method in tqdm(wanted, desc=f"build {spec.name}", leave=False):
        row = Row("step", spec.name, method)
        rows.append(row)
        model = copy.deepcopy(reference)
        targets = spec.targets(model, grouped=method == WITH_DEPTHWISE)
        try:
            model, row.note = apply_method(
                model, "flora_auto" if method == WITH_DEPTHWISE else method, targets, spec.budget, spec.head
            )
        except NotApplicable as err:
            row.reason = str(err)
            continue
        model.train()
        params = _trainable(model)
        row.params = sum(p.numel() for p in params)
        row.extra["adapted_layers"] = 0 if method in ("floor", "full") else len(targets)
        optimizer = torch.optim.AdamW(params, lr=1e-4, foreach=True)

        def step(model=model, optimizer=optimizer) -> None:
            optimizer.zero_grad(set_to_none=True)
            for tensor in inputs.values():
                tensor.grad = None
            F.cross_entropy(logits_of(model, inputs), labels).backward()
            optimizer.step()

        steps[method], modules[method] = step, (model, optimizer)
    _measure(rows, steps, modules, device, reps, warmup, spec.name)
    return rows
