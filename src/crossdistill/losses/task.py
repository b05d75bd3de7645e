"""Task losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from crossdistill.data.batch import Batch
from crossdistill.losses.base import register_loss


@register_loss("ce", needs_teacher=False)
def cross_entropy(student: Tensor, teacher: Tensor | None, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy on the samples whose label the student may use (its label budget).

    student: (B, K) logits. Mean over the labelled rows of the batch; 0 (with a gradient path) when the batch
    holds none, so a label-free batch contributes only the distillation terms.
    """
    if batch.target is None:
        raise ValueError("the 'ce' loss needs labels, but the batch has no target")
    rows = batch.labeled if batch.labeled is not None else batch.target.new_ones(len(batch), dtype=bool)
    if not bool(rows.any()):
        return student.sum() * 0.0
    return F.cross_entropy(student[rows], batch.target[rows], label_smoothing=label_smoothing)
