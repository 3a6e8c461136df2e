"""Pretrain the small ConvNeXt and InternViT-style ViT once (cached outside git); prints each weights file.

python scripts/pretrain_backbones.py                       # both, default recipe (a few CPU minutes each)
python scripts/pretrain_backbones.py internvit_mini --steps 50
Already cached weights are reused; --force retrains. See experiments/vision/pretrain.py for the task.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.vision.pretrain import BUILDERS, PretrainRecipe, ensure_pretrained, weights_file  # noqa: E402


def main(argv: list[str] | None = None) -> list[Path]:
    """Parse arguments and pretrain (or find) each named backbone."""
    default = PretrainRecipe()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backbones", nargs="*", choices=[*sorted(BUILDERS), []], help="default: all")
    parser.add_argument("--steps", type=int, default=default.steps)
    parser.add_argument("--batch-size", type=int, default=default.batch_size)
    parser.add_argument("--root", type=Path, default=None, help="weights folder (default: the flora cache)")
    parser.add_argument("--force", action="store_true", help="retrain even if cached")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be positive")
    recipe = PretrainRecipe(steps=args.steps, batch_size=args.batch_size)
    paths = []
    for name in args.backbones or sorted(BUILDERS):
        if args.force:
            weights_file(name, recipe, args.root).unlink(missing_ok=True)
        path = ensure_pretrained(name, recipe, args.root)
        meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
        print(path, json.dumps({k: meta[k] for k in ("final_loss", "test_accuracy", "train_seconds")}))
        paths.append(path)
    return paths


if __name__ == "__main__":
    main()
