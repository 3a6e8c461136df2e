"""Table 5: training time and memory of FLoRA vs LoRA, DoRA, materialised FLoRA and full FT against the floor.

    python scripts/benchmark_efficiency.py [--quick] [--device cpu|cuda] [--threads 2] [--out-dir results]

Per layer: forward + backward of one adapted layer; per step: a whole mini backbone's training step. Methods run
interleaved in one process; the table reports medians, interquartile ranges, ratios to the frozen floor, the
extra memory over the floor, and whether the efficiency targets (time and memory against the floor) are met.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the runner's method registry (experiments/)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from bench import report  # noqa: E402
from bench.layers import layer_cases  # noqa: E402
from bench.methods import METHOD_LABELS  # noqa: E402
from bench.models import model_specs  # noqa: E402
from bench.runner import Row, run_layer_case, run_model_spec  # noqa: E402
from tqdm import tqdm  # noqa: E402


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _header(args: argparse.Namespace, device: torch.device, load_before: str, seconds: float) -> dict[str, str]:
    if device.type == "cuda":
        machine = f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}); timing by CUDA events"
        memory = "torch.cuda.max_memory_allocated during the step minus memory allocated before it"
    else:
        machine = f"{_cpu_name()}, {os.cpu_count()} logical CPUs; wall time by perf_counter, CPU time by process_time"
        memory = "bytes of distinct tensors saved for backward (parameters excluded) + gradients + optimizer state"
    return {
        "device": f"{device.type}: {machine}",
        "threads": f"torch.set_num_threads({torch.get_num_threads()})",
        "versions": f"torch {torch.__version__}, python {platform.python_version()}, {platform.platform()}",
        "commit": _commit(),
        "repetitions": (
            f"{args.warmup} warm-up + {args.reps} timed rounds per layer, {args.step_reps} per model; "
            "methods interleaved in each round"
        ),
        "memory": memory,
        "load average": f"{load_before} before, {' '.join(f'{x:.2f}' for x in os.getloadavg())} after",
        "mode": ("quick (tiny shapes, CI smoke test)" if args.quick else "full") + f"; took {seconds:.0f} s",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few repetitions (CI)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (torch.set_num_threads). 1 by default: on a small machine shared with other jobs, OpenMP "
        "threads wait at every barrier for a descheduled sibling, which makes small-op steps slow and erratic",
    )
    parser.add_argument("--reps", type=int, default=None, help="timed rounds (default 15, quick 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 3, quick 1)")
    parser.add_argument("--sections", default="layer,step", help="comma list of layer, step")
    parser.add_argument("--methods", default=",".join(METHOD_LABELS), help="comma list of methods")
    parser.add_argument("--out-dir", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    args.reps = args.reps or (2 if args.quick else 15)
    args.step_reps = max(3, (2 * args.reps) // 3 + 1)
    args.warmup = args.warmup or 1 if args.quick else (args.warmup or 3)
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    methods = args.methods.split(",")
    sections = args.sections.split(",")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    start = time.perf_counter()
    rows: list[Row] = []
    cases = layer_cases(args.quick) if "layer" in sections else []
    for case in tqdm(cases, desc="layers"):
        rows += run_layer_case(case, methods, device, args.reps, args.warmup)
    specs = model_specs(args.quick) if "step" in sections else []
    for spec in tqdm(specs, desc="steps"):
        rows += run_model_spec(spec, methods, device, args.step_reps, args.warmup)
    header = _header(args, device, load_before, time.perf_counter() - start)
    kernels = {case.name: case.kernel_size for case in cases if case.is_conv}
    checks = report.verdicts(rows, kernels)
    figures = args.out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    report.write_csv(rows, args.out_dir / "table5_efficiency.csv")
    table = args.out_dir / "table5_efficiency.md"
    table.write_text(report.markdown(rows, header, checks))
    report.bar_chart(rows, figures / "table5_efficiency.png", f"{device.type}, torch threads {torch.get_num_threads()}")
    print(table.read_text())
    return table


if __name__ == "__main__":
    main()
