"""Task losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from crossdistill.config import ConfigError
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


@register_loss("soft_target", needs_teacher=False)
def soft_target_ce(student: Tensor, teacher: Tensor | None, batch: Batch, source: str = "") -> Tensor:
    """Soft-target cross-entropy: -sum_k q_k log p_k with q a class distribution the data gives, such as the
    share of human raters per class (learning from human label distributions, Peterson et al., "Human
    Uncertainty Makes Classification More Robust", ICCV 2019).

    student: (B, K) logits; ``source`` names the distribution column, (B, K) in ``batch.inputs``.
    """
    if source not in batch.inputs:
        raise ConfigError(f"loss 'soft_target': source {source!r} is not a column of the batch; set kwargs: "
                          f"{{source: <distribution modality>}} (batch has: {', '.join(sorted(batch.inputs))})")
    q = batch.inputs[source]  # (B, K)
    return -(q * F.log_softmax(student, dim=1)).sum(dim=1).mean()
