"""Task losses: cross-entropy on classes, squared error on values, soft targets from the data."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from crossdistill.config import ConfigError
from crossdistill.data.batch import Batch, has_label
from crossdistill.losses.base import CLASSES, VALUES, register_loss
from crossdistill.losses.functional import soft_cross_entropy


def budget_rows(batch: Batch | None, loss: str = "this loss") -> Tensor:
    """(B,) bool: rows whose label the student may use (its budget) and that carry one."""
    if batch is None or batch.target is None:
        raise ValueError(f"{loss} needs labels, but the batch has no target")
    rows = has_label(batch.target)
    return rows if batch.labeled is None else rows & batch.labeled


@register_loss("ce", needs_teacher=False, needs=CLASSES)
def cross_entropy(student: Tensor, teacher: Tensor | None, batch: Batch | None = None, *,
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy on the samples whose label the student may use (its label budget).

    student: (B, K) logits. Mean over the labelled rows of the batch; 0 (with a gradient path) when the batch
    holds none, so a label-free batch contributes only the distillation terms.
    """
    rows = budget_rows(batch, "ce")
    if not bool(rows.any()):
        return student.sum() * 0.0
    return F.cross_entropy(student[rows], batch.target[rows], label_smoothing=label_smoothing)


@register_loss("mse", needs_teacher=False, needs=VALUES)
def regression_task_loss(student: Tensor, teacher: Tensor | None, batch: Batch | None = None, *,
                         huber_delta: float = 0.0) -> Tensor:
    """Squared error to the regression target (standardised on the training split) on the rows of the label
    budget; with ``huber_delta`` > 0 the Huber loss (Huber, "Robust Estimation of a Location Parameter", 1964),
    quadratic within delta and linear beyond, for targets with outliers.

    student: (B, 1) predictions. 0 (with a gradient path) when the batch holds no usable label.
    """
    rows = budget_rows(batch, "mse")
    if not bool(rows.any()):
        return student.sum() * 0.0
    predicted, target = student[rows, 0], batch.target[rows]  # (R,)
    if huber_delta > 0:
        return F.huber_loss(predicted, target, delta=huber_delta)
    return F.mse_loss(predicted, target)


@register_loss("soft_target", needs_teacher=False, needs=CLASSES)
def soft_target_ce(student: Tensor, teacher: Tensor | None, batch: Batch | None = None, *, source: str = "") -> Tensor:
    """Soft-target cross-entropy: -sum_k q_k log p_k with q a class distribution the data gives, such as the
    share of human raters per class (learning from human label distributions, Peterson et al., "Human
    Uncertainty Makes Classification More Robust", ICCV 2019).

    student: (B, K) logits; ``source`` names the distribution column, (B, K) in ``batch.inputs``.
    """
    columns = sorted(batch.inputs) if batch is not None else []
    if source not in columns:
        raise ConfigError(f"loss 'soft_target': source {source!r} is not a column of the batch; set kwargs: "
                          f"{{source: <distribution modality>}} (batch has: {', '.join(columns) or 'no batch'})")
    return soft_cross_entropy(student, batch.inputs[source])  # q: (B, K)
