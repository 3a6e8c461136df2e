"""Build every cache (generated scenes, pretrained backbones) that a table's runs read, before its workers start.

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

ENGINE = "mmengine"


def run_configs(overrides: list[str]) -> list[DictConfig]:
    """The config of every run the overrides describe: each cell of the table, or the one run."""
    cfg = compose_config(overrides)
    if not cfg.table.rows:
        return [cfg]
    return [compose_config(cell.overrides) for cell in table_cells(cfg, overrides)]


def prepare(overrides: list[str]) -> list[Path]:
    """Build the caches of every vision run the overrides describe; returns their paths, each once."""
    from experiments.vision.inputs import prepare_run_caches

    paths: list[Path] = []
    for cfg in run_configs(overrides):
        if cfg.task.get("engine") == ENGINE:
            paths.extend(p for p in prepare_run_caches(cfg) if p not in paths)
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
