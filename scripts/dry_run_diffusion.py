"""Print the paper profile's #params offline: Stable Diffusion v1.5's UNet on the meta device with LoRA, DoRA and
FLoRA (each layer at the rank whose count is nearest LoRA's) on its convs and attention projections.

  python scripts/dry_run_diffusion.py                 # configs/diffusion/paper.yaml
  python scripts/dry_run_diffusion.py 'ranks=[4]'     # any key as key=value
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from omegaconf import OmegaConf  # noqa: E402

from experiments.config import REPO_ROOT  # noqa: E402
from experiments.diffusion.paper import count_rows, render  # noqa: E402

CONFIG = REPO_ROOT / "configs" / "diffusion" / "paper.yaml"


def main(argv: list[str]) -> int:
    cfg = OmegaConf.merge(OmegaConf.load(CONFIG), OmegaConf.from_dotlist(argv))
    backbone, rows = count_rows(cfg)
    print(render(backbone, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
