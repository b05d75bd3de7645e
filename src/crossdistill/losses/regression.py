"""Distillation losses on predicted values (regression heads): the teacher's prediction as a soft target."""

from __future__ import annotations

from torch import Tensor

from crossdistill.data.batch import Batch
from crossdistill.losses.base import HEAD, VALUES, register_loss
from crossdistill.losses.task import budget_rows


@register_loss("pred_mse", needs=HEAD)
def prediction_mse(student: Tensor, teacher: Tensor, batch: Batch | None = None) -> Tensor:
    """Prediction MSE: mean over samples of sum_k (z_k^T - z_k^S)^2 of the head outputs, the student regressing
    the teacher's outputs (mimic learning, Ba & Caruana, "Do Deep Nets Really Need to be Deep?", NeurIPS 2014,
    which matches class logits this way). For a regression head it is the teacher's prediction as the target,
    the form of KD that needs no label and no class distribution.

    student, teacher: (B, K) head outputs (K = 1 for regression).
    """
    return (student - teacher).pow(2).sum(dim=1).mean()


@register_loss("teacher_bounded", needs=VALUES)
def teacher_bounded_regression(student: Tensor, teacher: Tensor, batch: Batch | None = None, *,
                               margin: float = 0.0) -> Tensor:
    """Teacher-bounded regression loss: ||R_s - y||^2 where it exceeds ||R_t - y||^2 - m, else 0 (Chen et al.,
    "Learning Efficient Object Detection Models with Knowledge Distillation", NeurIPS 2017, section 3.2): the
    teacher is an upper bound the student must reach, not a target it must copy, so a teacher's errors are never
    taught. Mean over the rows of the label budget (it needs y); 0 on a batch with none.

    student, teacher: (B, 1) predictions in standardised units; ``margin`` m in those units.
    """
    rows = budget_rows(batch)  # (B,) bool
    if not bool(rows.any()):
        return student.sum() * 0.0
    target = batch.target[rows].unsqueeze(1)  # (R, 1)
    student_error = (student[rows] - target).pow(2).sum(dim=1)  # (R,)
    teacher_error = (teacher[rows] - target).pow(2).sum(dim=1)
    return (student_error * (student_error + margin > teacher_error)).mean()
