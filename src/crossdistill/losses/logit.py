"""Soft-label (logit) distillation losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from crossdistill.config import ConfigError
from crossdistill.data.batch import Batch
from crossdistill.losses.base import CLASSES, register_loss
from crossdistill.losses.functional import non_target_kl


@register_loss("kd", needs=CLASSES)
def hinton_kd(student: Tensor, teacher: Tensor, batch: Batch | None = None, *, temperature: float = 4.0) -> Tensor:
    """Hinton KD: T^2 * KL(p^T || p^S), p = softmax(z / T) (Hinton, Vinyals & Dean 2015, "Distilling the
    Knowledge in a Neural Network": the softened softmax of eq. 1, with the T^2 scaling of section 2.1).

    student, teacher: (B, K) logits. Mean over the batch of the per-sample KL divergence.
    """
    log_p_student = F.log_softmax(student / temperature, dim=1)  # (B, K)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=1)  # (B, K)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


@register_loss("soft_mse", needs=CLASSES)
def soft_label_mse(student: Tensor, teacher: Tensor, batch: Batch | None = None, *, temperature: float = 1.0) -> Tensor:
    """Soft-label MSE of the original crossdistill design: mean over samples of sum_j (k_j^T - k_j^S)^2,
    k = softmax(z / T) the soft labels (cf. the L2 logit matching of Ba & Caruana 2014).

    student, teacher: (B, K) logits.
    """
    k_student = F.softmax(student / temperature, dim=1)  # (B, K)
    k_teacher = F.softmax(teacher / temperature, dim=1)  # (B, K)
    return (k_teacher - k_student).pow(2).sum(dim=1).mean()


def target_or_teacher(batch: Batch | None, teacher: Tensor) -> Tensor:
    """Each sample's class: its label where the student may use it, else the teacher's prediction (paired data
    without a label has no other ground truth)."""
    guess = teacher.argmax(dim=1)
    if batch is None or batch.target is None:
        return guess
    if batch.labeled is None:
        return batch.target
    return torch.where(batch.labeled, batch.target, guess)


@register_loss("dkd", needs=CLASSES)
def decoupled_kd(student: Tensor, teacher: Tensor, batch: Batch | None = None, *, alpha: float = 1.0, beta: float = 8.0,
                 temperature: float = 4.0) -> Tensor:
    """Decoupled KD: alpha * TCKD + beta * NCKD, both scaled by T^2 (Zhao et al., "Decoupled Knowledge
    Distillation", CVPR 2022). TCKD is the KL between the binary (target, rest) probabilities, NCKD the KL
    between the distributions over the non-target classes.

    student, teacher: (B, K) logits. The target is the label where the budget allows, else the teacher's argmax.
    """
    target = target_or_teacher(batch, teacher)  # (B,)
    gt = F.one_hot(target, student.shape[1]).bool()  # (B, K)
    p_s = F.softmax(student / temperature, dim=1)
    p_t = F.softmax(teacher / temperature, dim=1)
    binary_s = torch.stack([(p_s * gt).sum(1), (p_s * ~gt).sum(1)], dim=1)  # (B, 2)
    binary_t = torch.stack([(p_t * gt).sum(1), (p_t * ~gt).sum(1)], dim=1)
    tckd = F.kl_div(torch.log(binary_s.clamp_min(1e-12)), binary_t, reduction="batchmean")
    nckd = non_target_kl(student, teacher, target, temperature).mean()
    return (alpha * tckd + beta * nckd) * temperature**2


def _pearson_rows(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


@register_loss("dist", needs=CLASSES)
def dist_kd(student: Tensor, teacher: Tensor, batch: Batch | None = None, *, beta: float = 1.0, gamma: float = 1.0,
            temperature: float = 1.0) -> Tensor:
    """DIST: T^2 * (beta * (1 - mean inter-class Pearson) + gamma * (1 - mean intra-class Pearson)) of the
    probabilities at temperature T (Huang et al., "Knowledge Distillation from A Stronger Teacher", NeurIPS
    2022): the student matches the teacher's ranking of classes per sample and of samples per class.

    student, teacher: (B, K) logits.
    """
    y_s = F.softmax(student / temperature, dim=1)  # (B, K)
    y_t = F.softmax(teacher / temperature, dim=1)
    inter = 1.0 - _pearson_rows(y_s, y_t).mean()  # over classes, per sample
    intra = 1.0 - _pearson_rows(y_s.t(), y_t.t()).mean()  # over samples, per class
    return temperature**2 * (beta * inter + gamma * intra)


def _standardize(logits: Tensor) -> Tensor:
    return (logits - logits.mean(dim=1, keepdim=True)) / (logits.std(dim=1, keepdim=True) + 1e-7)


@register_loss("ls_kd", needs=CLASSES)
def logit_standardized_kd(student: Tensor, teacher: Tensor, batch: Batch | None = None, *,
                          temperature: float = 2.0) -> Tensor:
    """Logit-standardised KD: KD on Z-score standardised logits, so the student matches the teacher's logit
    relations rather than their magnitude (Sun et al., "Logit Standardization in Knowledge Distillation",
    CVPR 2024, Algorithm 1).

    student, teacher: (B, K) logits.
    """
    return hinton_kd(_standardize(student), _standardize(teacher), batch, temperature=temperature)


MLLD_TEMPERATURES = (2.0, 3.0, 4.0, 5.0, 6.0)


@register_loss("mlld", needs=CLASSES)
def multi_level_logit_kd(student: Tensor, teacher: Tensor, batch: Batch | None = None, *,
                         temperatures: tuple[float, ...] = MLLD_TEMPERATURES, class_norm: str = "paper") -> Tensor:
    """Multi-level logit distillation: for each temperature T of the prediction augmentation, instance-level
    T^2 KL(p^T || p^S), plus batch-level ||P_T P_T^t - P_S P_S^t||_F^2 / B (how alike the model finds each pair of
    samples) and class-level ||P_T^t P_T - P_S^t P_S||_F^2 / K (how classes co-occur), summed over T
    (Jin, Wang & Lin, "Multi-Level Logit Distillation", CVPR 2023, section 3; the authors' code uses T = 2..6
    and these normalisations).

    class_norm "samples" divides the class correlations by B first (||P^t P / B - ...||^2 / K): the paper's term
    grows as B^2 / K: at batch 128 with 10 classes it outweighs the rest (the methods benchmark compares both,
    docs/methods.md); the paper's setting was batch 64 with 100 classes.

    student, teacher: (B, K) logits; P = softmax(z / T), (B, K).
    """
    if class_norm not in ("paper", "samples"):
        raise ConfigError(f"loss 'mlld': class_norm is 'paper' or 'samples', got {class_norm!r}")
    batch_size, num_classes = student.shape
    per = batch_size if class_norm == "samples" else 1
    total = student.new_zeros(())
    for temperature in temperatures:
        instance = hinton_kd(student, teacher, batch, temperature=temperature)
        p_s = F.softmax(student / temperature, dim=1)  # (B, K)
        p_t = F.softmax(teacher / temperature, dim=1)
        batch_level = (p_t @ p_t.t() - p_s @ p_s.t()).pow(2).sum() / batch_size  # (B, B) Gram matrices
        class_level = ((p_t.t() @ p_t - p_s.t() @ p_s) / per).pow(2).sum() / num_classes  # (K, K) class correlations
        total = total + instance + batch_level + class_level
    return total
