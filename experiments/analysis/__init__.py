"""Measurements of trained adapters: ||dW||_F and the feature amplification factor (the paper's Figure 4).

`update_norms` holds the math on matrices, `layers` finds every adapted layer of a model, `recorder` keeps the
time series, and `hf_callback` / `mm_hook` call it from the two training engines.
"""

from experiments.analysis.layers import AdaptedUpdate, adapted_updates, model_update_stats
from experiments.analysis.recorder import UpdateNormRecorder, summarise
from experiments.analysis.update_norms import UpdateStats, update_stats

__all__ = [
    "AdaptedUpdate",
    "UpdateNormRecorder",
    "UpdateStats",
    "adapted_updates",
    "model_update_stats",
    "summarise",
    "update_stats",
]
