"""Task metrics by name (scikit-learn does the arithmetic)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from crossdistill.registry import Registry

Metric = Callable[[np.ndarray, np.ndarray, int], float]
METRICS: Registry[Metric] = Registry("metric")


@METRICS.register("accuracy")
def accuracy(target: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    return float(np.mean(target == predicted))


@METRICS.register("macro_f1")
def macro_f1(target: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over all ``num_classes`` classes (absent classes count as 0)."""
    return float(f1_score(target, predicted, labels=list(range(num_classes)), average="macro", zero_division=0))


def classification_report(target: np.ndarray, predicted: np.ndarray, num_classes: int) -> dict:
    """Every registered metric plus the confusion matrix (rows: true class, columns: predicted)."""
    scores = {name: METRICS.get(name)(target, predicted, num_classes) for name in METRICS.names()}
    matrix = confusion_matrix(target, predicted, labels=list(range(num_classes)))
    return {"metrics": scores, "confusion": matrix.tolist()}
