"""`python -m experiments.run [overrides]`: the Hydra entry point of every experiment.

python -m experiments.run method=flora method.rank=16 method.scale=4          # one run (mini profile)
python -m experiments.run -m experiment=table3_glue                           # a whole table, resumable
python -m experiments.run experiment=table3_glue profile=paper dry_run=true   # #params of every row
"""

from __future__ import annotations

from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from experiments.config import CONFIG_DIR
from experiments.dry_run import dry_run
from experiments.runner import execute


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> dict[str, Any] | None:
    """Dry run, or one run whose failure stops a single run but not the other jobs of a multirun."""
    hydra_cfg = HydraConfig.get()
    if cfg.dry_run:
        dry_run(cfg, list(hydra_cfg.overrides.task))
        return None
    return execute(cfg, tolerate_failure=hydra_cfg.mode == RunMode.MULTIRUN)


if __name__ == "__main__":
    main()
