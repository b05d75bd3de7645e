"""What a model predicts: a class, or a real number. This one module decides, for each task, the width of the
head, the task loss, how outputs become predictions, the validation score that selects an epoch and the names
of the test metrics (``evaluate.metrics.score_outputs`` computes them), so the pipeline, the training loop and
the report never branch on the task themselves.

Regression targets are standardised on the training split (z-scores) by the data set, so heads and losses work
at unit scale whatever the target's units; ``DataInfo.target_scale`` (mean, std) turns predictions back into
the target's units for the test metrics.
"""

from __future__ import annotations

import torch
from torch import Tensor

from crossdistill.data.batch import DataInfo

TASKS = ("classification", "regression")
TASK_LOSS = {"classification": "ce", "regression": "mse"}
# Test metrics in report order; the first is the headline (higher is better for both headlines).
METRIC_NAMES = {"classification": ("accuracy", "macro_f1"), "regression": ("r2", "mae", "rmse")}


def output_dim(info: DataInfo) -> int:
    """Width of a model's head: one logit per class, or one predicted value."""
    return info.num_classes if info.task == "classification" else 1


def has_label(target: Tensor) -> Tensor:
    """(N,) bool: rows that carry a label. Unlabelled pairs hold class -1 (classification) or NaN (regression)."""
    return ~torch.isnan(target) if target.is_floating_point() else target >= 0


def predictions(outputs: Tensor, task: str) -> Tensor:
    """(N, K) head outputs -> (N,) predicted classes, or (N,) predicted values (in standardised units)."""
    return outputs.argmax(dim=1) if task == "classification" else outputs[:, 0].float()


def validation_score(outputs: Tensor, targets: Tensor, task: str) -> float:
    """The score that selects an epoch (higher is better): accuracy, or R^2 (unit-free). ``targets`` are the
    validation labels, or the teacher's predictions when selecting by agreement with the teacher."""
    predicted = predictions(outputs, task)
    if task == "classification":
        return float((predicted == targets).float().mean())
    residual = (predicted - targets).pow(2).sum()
    total = (targets - targets.mean()).pow(2).sum().clamp_min(1e-12)
    return float(1.0 - residual / total)

