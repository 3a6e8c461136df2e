"""Task metrics by name (GLUE conventions), turned into a transformers compute_metrics function."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

MetricFn = Callable[[np.ndarray, np.ndarray], float]

METRICS: dict[str, MetricFn] = {
    "accuracy": lambda p, y: float(accuracy_score(y, p)),
    "f1": lambda p, y: float(f1_score(y, p)),
    "f1_macro": lambda p, y: float(f1_score(y, p, average="macro")),
    "mcc": lambda p, y: float(matthews_corrcoef(y, p)),
    "pearson": lambda p, y: float(pearsonr(p, y)[0]),
    "spearman": lambda p, y: float(spearmanr(p, y)[0]),
}


def check_metric_names(names: Sequence[str]) -> None:
    """Fail early, listing the valid names, when a task asks for an unknown metric."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; valid: {sorted(METRICS)}")


def make_compute_metrics(names: Sequence[str], regression: bool) -> Callable[[object], dict[str, float]]:
    """compute_metrics for transformers.Trainer: logits -> class ids (or scores for regression) -> metrics."""
    check_metric_names(names)

    def compute(eval_pred: object) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        preds = logits.squeeze(-1) if regression else logits.argmax(-1)
        return {name: METRICS[name](preds, labels) for name in names}

    return compute
