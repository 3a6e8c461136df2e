"""Build every cache (generated scenes, the weights a backbone's source prepares in experiments/weights.py, the
mini LLaVA's stage 1) that a table's runs read, before its workers start.

python scripts/prepare_caches.py experiment=table1_convnext          # the same overrides as the run / table
python scripts/prepare_caches.py experiment=table2_internvit task.scenes.n_train=1000
Prints each cache's path. Caches already built are reused; runs of language tasks read none. Each cache is also
safe to build from concurrent workers, but building it here keeps minutes of pretraining out of the runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omegaconf import DictConfig  # noqa: E402

from experiments.config import compose_config, table_cells  # noqa: E402
from experiments.errors import MissingAssetsError  # noqa: E402


def run_configs(overrides: list[str]) -> list[DictConfig]:
    """The config of every run the overrides describe: each cell of the table, or the one run."""
    cfg = compose_config(overrides)
    if not cfg.table.rows:
        return [cfg]
    return [compose_config(cell.overrides) for cell in table_cells(cfg, overrides)]


def _vision_caches(cfg: DictConfig) -> list[Path]:
    from experiments.vision.inputs import prepare_run_caches

    return list(prepare_run_caches(cfg))


def _llava_caches(cfg: DictConfig) -> list[Path]:
    """The mini LLaVA's stage-1 folder (GGUF conversion, vision tower, projector alignment: minutes of CPU)."""
    if cfg.backbone.get("builder") != "mini":
        return []
    from experiments.multimodal.mini_model import ensure_stage1

    return [ensure_stage1(cfg.backbone)]


# engine name -> the caches its runs read
CACHE_BUILDERS = {"mmengine": _vision_caches, "llava": _llava_caches}


def prepare(overrides: list[str]) -> list[Path]:
    """Build the caches of every run the overrides describe; returns their paths, each once."""
    paths: list[Path] = []
    for cfg in run_configs(overrides):
        builder = CACHE_BUILDERS.get(cfg.task.get("engine"))
        if builder is not None:
            paths.extend(p for p in builder(cfg) if p not in paths)
    return paths


def main(argv: list[str] | None = None) -> list[Path]:
    """Parse Hydra overrides, build the caches, print their paths."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    if any(o in ("-h", "--help") for o in overrides):
        print(__doc__)
        return []
    try:
        paths = prepare(overrides)
    except MissingAssetsError as err:
        raise SystemExit(f"prepare_caches: {err}") from err
    for path in paths:
        print(path)
    if not paths:
        print("prepare_caches: these runs read no cache built here")
    return paths


if __name__ == "__main__":
    main()
