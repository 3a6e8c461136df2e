"""The lmms-eval hand-off: the fine-tuned model merged into a plain llava-hf folder (with its processor and chat
template), and the lmms-eval command that scores it on the seven LLaVA benchmarks with its `llava_hf` model.

lmms-eval is an optional install (scripts/setup_multimodal.sh puts it in with a few of its dependencies, since its
own pins would downgrade the suite's wandb); nothing here imports it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from torch import nn

import flora


def merge_adapters(model: nn.Module) -> nn.Module:
    """Every FLoRA and PEFT LoRA/DoRA update merged into its base weight, the wrappers removed."""
    model = flora.merge_and_unload(model)
    for name, module in list(model.named_modules()):
        if hasattr(module, "merge") and hasattr(module, "get_base_layer") and name:
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, module.get_base_layer())
    return model


def export_for_eval(model: nn.Module, processor: Any, out_dir: Path) -> Path:
    """A llava-hf folder lmms-eval (or anyone) loads with from_pretrained."""
    merged = merge_adapters(model)
    merged.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def lmms_eval_command(model_dir: Path, tasks: list[str], output_dir: Path, dtype: str = "bfloat16") -> list[str]:
    """`python -m lmms_eval --model llava_hf ...` for model_dir (add `accelerate launch` for several GPUs)."""
    return [
        sys.executable, "-m", "lmms_eval",
        "--model", "llava_hf",
        "--model_args", f"pretrained={model_dir},dtype={dtype},device_map=auto",
        "--tasks", ",".join(tasks),
        "--batch_size", "1",
        "--output_path", str(output_dir),
    ]  # fmt: skip


def read_results(output_dir: Path) -> dict[str, float]:
    """lmms-eval's newest *_results.json as {task/metric: value} (stderr entries left out)."""
    files = sorted(output_dir.glob("**/*_results.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no lmms-eval results under {output_dir}")
    results = json.loads(files[-1].read_text())["results"]
    return {
        f"{task}/{metric.split(',')[0]}": float(value)
        for task, metrics in results.items()
        for metric, value in metrics.items()
        if isinstance(value, int | float) and "stderr" not in metric and metric != "alias"
    }


def run_lmms_eval(model_dir: Path, tasks: list[str], output_dir: Path) -> dict[str, float]:
    """Run the benchmarks in a child process (lmms-eval sets up its own accelerator) and read its scores."""
    subprocess.run(lmms_eval_command(model_dir, tasks, output_dir), check=True)
    return read_results(output_dir)
