"""Rename run records to the current run-id scheme, recomputed from the config each record stores.

  python scripts/migrate_records.py [RUNS_DIR]      # default results/runs

The run id hashes only what decides a result; when that definition changes, records keep their numbers but
their file names no longer match the ids the runner and the tables look for. This renames each record (and its
run_id / run_key fields) without touching anything else: records made before code fingerprints existed stay
marked as made by other code, so tables flag them (†) and `make reference-table-N` reruns them. A stored
`backbone.weights` in the old spelling (a bare vision source name) is rewritten to its {source, name} form first,
as the run id hashes it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omegaconf import OmegaConf  # noqa: E402

from experiments.config import REPO_ROOT, run_key  # noqa: E402
from experiments.records import read_record, write_record  # noqa: E402

# Vision weight sources as backbone configs named them before experiments/weights.py, in its schema.
LEGACY_WEIGHTS = {
    "fmnist04_convnext_atto": {"source": "pretrained_here", "name": "convnext_atto"},
    "fmnist04_internvit_mini": {"source": "pretrained_here", "name": "internvit_mini"},
    "timm_hub": {"source": "timm_hub", "name": None},
    "efficientnet_lite0_package": {"source": "efficientnet_lite0_package", "name": None},
    "internvit_6b_release": {"source": "internvit_6b_release", "name": None},
}


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """The stored config with an old-style backbone.weights in its {source, name} form (others unchanged)."""
    weights = config.get("backbone", {}).get("weights")
    if not isinstance(weights, str) or weights not in LEGACY_WEIGHTS:
        return config
    return config | {"backbone": config["backbone"] | {"weights": LEGACY_WEIGHTS[weights]}}


def migrate(runs_dir: Path) -> tuple[int, int]:
    """(renamed, unchanged) over the records in runs_dir; an unreadable file stops with its name."""
    renamed = unchanged = 0
    for path in sorted(runs_dir.glob("*.jsonl")):
        record = read_record(path)
        config = upgrade_config(record["config"])
        cfg = OmegaConf.create(config)
        key = run_key(cfg)
        new_id = f"{cfg.task.name}-{cfg.method.tag}-seed{cfg.seed}-{key}"
        if new_id == path.stem:
            unchanged += 1
            continue
        target = path.with_name(f"{new_id}.jsonl")
        if target.exists():
            raise FileExistsError(f"{path.name} and {target.name} both map to run {new_id}: resolve by hand")
        write_record(target, record | {"config": config, "run_id": new_id, "run_key": key})
        path.unlink()
        renamed += 1
    return renamed, unchanged


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT / "results" / "runs"
    done, kept = migrate(folder)
    print(f"{folder}: renamed {done} record(s), {kept} already current")
