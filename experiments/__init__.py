"""Experiment runner of the FLoRA reproduction suite: Hydra configs in, trained runs and run records out.

Hub access is off unless the user turns it on (HF_HUB_OFFLINE=0): a hub miss then fails at once with a
message instead of hanging, and the mini profile never needs the network. Set before any HF import.
"""

import os

_hub_offline = os.environ.setdefault("HF_HUB_OFFLINE", "1")
for _name in ("TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_name, _hub_offline)
