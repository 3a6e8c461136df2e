"""Test-wide settings: offline hubs, no W&B traffic, deterministic torch, a bounded hypothesis profile."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
settings.register_profile(
    "repo", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repo"))

VISION_TEST_PREFIX = "test_vision_"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Vision test modules (test_vision_*.py) run on the vision set-up (OpenMMLab with mmcv's compiled ops, the
    Debian Fashion-MNIST): without it they skip, saying what is missing and that `make setup-vision` installs it."""
    vision = [item for item in items if item.path.name.startswith(VISION_TEST_PREFIX)]
    if not vision:
        return
    from experiments.vision.stack import SETUP_COMMAND, missing_vision_stack

    problem = missing_vision_stack()
    if problem is not None:
        skip = pytest.mark.skip(reason=f"vision set-up incomplete: missing {problem}; `{SETUP_COMMAND}` installs it")
        for item in vision:
            item.add_marker(skip)

# One code fingerprint for the whole session (and the subprocesses it starts), as a launch takes it: files edited
# while the tests run must not make a record written by one test look stale to the next.
from experiments.provenance import mark_launch  # noqa: E402

mark_launch()
