"""Build the Fashion-MNIST scene data set (segmentation + detection) into the cache; prints its folder.

python scripts/make_scenes.py                      # the mini profile's scenes (64 px, 400 train / 100 val)
python scripts/make_scenes.py --canvas 96 --n-train 1000 --root /tmp/scenes
Deterministic: the same arguments give byte-identical files. See experiments/vision/scenes.py for the layout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.vision.scenes import SceneSpec, ensure_scenes  # noqa: E402


def main(argv: list[str] | None = None) -> Path:
    """Parse arguments, build (or find cached) scenes, print the folder."""
    default = SceneSpec()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvas", type=int, default=default.canvas, help="scene side in pixels")
    parser.add_argument("--n-train", type=int, default=default.n_train)
    parser.add_argument("--n-val", type=int, default=default.n_val)
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.add_argument("--root", type=Path, default=None, help="parent folder (default: the flora cache)")
    args = parser.parse_args(argv)
    if args.canvas < 28:
        parser.error("--canvas must be at least 28 (one Fashion-MNIST item)")
    if args.n_train < 1 or args.n_val < 1:
        parser.error("--n-train and --n-val must be positive")
    spec = SceneSpec(canvas=args.canvas, n_train=args.n_train, n_val=args.n_val, seed=args.seed)
    folder = ensure_scenes(spec, args.root)
    print(folder)
    return folder


if __name__ == "__main__":
    main()
