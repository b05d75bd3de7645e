"""Test metrics: classification metrics by name, regression metrics (scikit-learn does the arithmetic), retrieval
recall. Each task (``crossdistill.tasks``) picks its report."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, mean_absolute_error, r2_score, root_mean_squared_error
from torch import Tensor

from crossdistill.evaluate.retrieval import groups_for, mean_of_directions, recall_report
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


def regression_report(target: np.ndarray, predicted: np.ndarray) -> dict:
    """R^2 (coefficient of determination), mean absolute error and root mean squared error, in the target's
    units; no confusion matrix."""
    scores = {"r2": float(r2_score(target, predicted)), "mae": float(mean_absolute_error(target, predicted)),
              "rmse": float(root_mean_squared_error(target, predicted))}
    return {"metrics": scores, "confusion": None}


def retrieval_scores(query: Tensor, gallery: Tensor, target: Tensor, positives: str) -> dict:
    """Recall@1/5/10 and median rank, both directions, instance- and class-level; the headline metrics are the
    mean over directions at the run's level of ``positives``."""
    levels = {level: recall_report(query, gallery, groups_for(target, level)) for level in ("instance", "class")}
    scores = mean_of_directions(levels[positives])
    scores |= {f"{level}_r1": mean_of_directions(report)["r1"] for level, report in levels.items()}
    return {"metrics": scores, "confusion": None, "retrieval": levels}
