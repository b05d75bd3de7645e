"""Soft-label (logit) distillation losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from crossdistill.data.batch import Batch
from crossdistill.losses.base import register_loss


@register_loss("kd")
def hinton_kd(student: Tensor, teacher: Tensor, batch: Batch, temperature: float = 4.0) -> Tensor:
    """Hinton KD: T^2 * KL(p^T || p^S), p = softmax(z / T) (Hinton, Vinyals & Dean 2015, "Distilling the
    Knowledge in a Neural Network", eq. 2 with the T^2 gradient scaling of section 2).

    student, teacher: (B, K) logits. Mean over the batch of the per-sample KL divergence.
    """
    log_p_student = F.log_softmax(student / temperature, dim=1)  # (B, K)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=1)  # (B, K)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


@register_loss("soft_mse")
def soft_label_mse(student: Tensor, teacher: Tensor, batch: Batch, temperature: float = 1.0) -> Tensor:
    """Soft-label MSE of the original crossdistill design: mean over samples of sum_j (k_j^T - k_j^S)^2,
    k = softmax(z / T) the soft labels (cf. the L2 logit matching of Ba & Caruana 2014).

    student, teacher: (B, K) logits.
    """
    k_student = F.softmax(student / temperature, dim=1)  # (B, K)
    k_teacher = F.softmax(teacher / temperature, dim=1)  # (B, K)
    return (k_teacher - k_student).pow(2).sum(dim=1).mean()
