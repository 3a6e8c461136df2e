"""Whether the OpenMMLab stack the vision engine runs on is installed, checked before anything loads or trains.

Without it, mmseg and mmdet fail deep inside config loading or model building with an import traceback that
names neither the cause nor the fix; this names both in one line. Nothing here imports mmengine itself.
"""

from __future__ import annotations

import importlib
import importlib.util

from experiments.errors import MissingSetupError

SETUP_COMMAND = "make setup-vision"
# Importable names of the packages the vision set-up installs (scripts/setup_vision.sh), besides mmcv.
PACKAGES = ("mmengine", "mmseg", "mmdet")


def missing_vision_stack() -> str | None:
    """What of the vision stack is missing, in a few words, or None when all of it is in place.

    mmcv is imported with its compiled ops (mmcv._ext): mmcv-lite or a build made for another torch imports as
    mmcv, then fails when mmseg/mmdet models load their ops.
    """
    for name in PACKAGES:
        if importlib.util.find_spec(name) is None:
            return f"{name} (not installed)"
    try:
        import mmcv
    except ImportError as err:
        return f"mmcv 2.1.0 with compiled ops (mmcv does not import: {err})"
    try:
        importlib.import_module("mmcv._ext")
    except (ImportError, OSError) as err:
        return f"mmcv's compiled ops (mmcv {mmcv.__version__} has no usable mmcv._ext: {err})"
    return None


def require_vision_stack() -> None:
    """Raise MissingSetupError, naming what is missing and `make setup-vision`, unless the whole stack is in place."""
    problem = missing_vision_stack()
    if problem is not None:
        raise MissingSetupError(problem, SETUP_COMMAND)
