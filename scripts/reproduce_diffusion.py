"""The mini diffusion profile end to end: results/diffusion.md and results/figures/diffusion_grid.{png,pdf}.

  python scripts/reproduce_diffusion.py                               # configs/diffusion/mini.yaml
  python scripts/reproduce_diffusion.py finetune.steps=300 rank=8     # any key as key=value
  python scripts/reproduce_diffusion.py --results-dir /tmp/out        # somewhere else than results/

The pretrained UNet and the scoring classifier are cached under $FLORA_CACHE/diffusion (built on first use).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from omegaconf import OmegaConf  # noqa: E402

from experiments.atomic import atomic_write_text  # noqa: E402
from experiments.config import REPO_ROOT  # noqa: E402
from experiments.diffusion.pipeline import run_mini  # noqa: E402
from experiments.diffusion.report import render  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "diffusion" / "mini.yaml")
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "results")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the config")
    args = parser.parse_args(argv)
    cfg = OmegaConf.merge(OmegaConf.load(args.config), OmegaConf.from_dotlist(args.overrides))
    outcome = run_mini(cfg, args.results_dir / "figures")
    command = " ".join(["python scripts/reproduce_diffusion.py", *args.overrides]).strip()
    grid = outcome.grid_paths[0].relative_to(args.results_dir)
    markdown = render(cfg, outcome, grid, command)
    report = args.results_dir / "diffusion.md"
    atomic_write_text(report, markdown)
    print(markdown)
    print("wrote " + ", ".join(str(p) for p in [report, *outcome.grid_paths]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
