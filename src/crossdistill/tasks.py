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
from crossdistill.models.dual import split_pair

TASK_LOSS = {"classification": "ce", "regression": "mse", "retrieval": "clip"}
# Test metrics in report order; the first is the headline (higher is better for every headline). Retrieval:
# recall@K and median rank at the run's level of positives, averaged over both directions, then R@1 at each level.
METRIC_NAMES = {"classification": ("accuracy", "macro_f1"), "regression": ("r2", "mae", "rmse"),
                "retrieval": ("r1", "r5", "r10", "median_rank", "instance_r1", "class_r1")}


def output_dim(info: DataInfo) -> int:
    """Width of a model's head: one logit per class, or one predicted value."""
    return info.num_classes if info.task == "classification" else 1


def has_label(target: Tensor) -> Tensor:
    """(N,) bool: rows that carry a label. Unlabelled pairs hold class -1 (classification) or NaN (regression)."""
    return ~torch.isnan(target) if target.is_floating_point() else target >= 0


def predictions(outputs: Tensor, task: str) -> Tensor:
    """(N, K) head outputs -> (N,) predicted classes, or (N,) predicted values (in standardised units)."""
    if task == "retrieval":
        raise ValueError("a retrieval model predicts no label: select on the validation split's own pairs")
    return outputs.argmax(dim=1) if task == "classification" else outputs[:, 0].float()


def validation_score(outputs: Tensor, targets: Tensor, task: str) -> float:
    """The score that selects an epoch (higher is better): accuracy, R^2 (unit-free), or for retrieval the mean
    R@1 of both directions. ``targets`` are the validation labels, the teacher's predictions when selecting by
    agreement with the teacher, or for retrieval the group ids that mark positives (``groups_for``)."""
    if task == "retrieval":
        from crossdistill.evaluate.retrieval import mean_of_directions, recall_report  # (evaluate imports tasks)

        query, gallery, _ = split_pair(outputs)
        return mean_of_directions(recall_report(query, gallery, targets))["r1"]
    predicted = predictions(outputs, task)
    if task == "classification":
        return float((predicted == targets).float().mean())
    residual = (predicted - targets).pow(2).sum()
    total = (targets - targets.mean()).pow(2).sum().clamp_min(1e-12)
    return float(1.0 - residual / total)

