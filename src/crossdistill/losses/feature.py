"""Feature-consistency losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from crossdistill.config import ConfigError
from crossdistill.data.batch import Batch
from crossdistill.losses.base import register_loss


@register_loss("feature_mse", reads="embed", adapter=True)
def feature_mse(student: Tensor, teacher: Tensor, batch: Batch | None = None) -> Tensor:
    """Feature consistency: 1/2 ||f^T - A(f^S)||^2, the student's feature mapped by a learned adapter A into the
    teacher's space (the hint loss of FitNets, Romero et al. 2015, eq. 3; the original design's L_cons).

    student: A(f^S), teacher: f^T, same shape (B, ...). Mean over the batch of the per-sample squared norm.
    """
    return 0.5 * (teacher - student).pow(2).flatten(1).sum(dim=1).mean()


@register_loss("cosine", reads="embed", adapter=True)
def cosine_embedding(student: Tensor, teacher: Tensor, batch: Batch | None = None) -> Tensor:
    """Cosine embedding distance: 1 - cos(A(f^S), f^T), batch mean; aligns the direction of the adapted student
    embedding with the teacher's and ignores its norm. Half the squared distance of the L2-normalised embeddings,
    the form of the feature distillation term of CLIP-KD (Yang et al., "CLIP-KD", CVPR 2024).

    student: A(f^S), teacher: f^T, same shape (B, D).
    """
    return (1.0 - F.cosine_similarity(student.flatten(1), teacher.flatten(1), dim=1)).mean()


@register_loss("fitnet", reads="feats", adapter=True)
def fitnet_hint(student: Tensor, teacher: Tensor, batch: Batch | None = None) -> Tensor:
    """FitNets hint: ``feature_mse`` on a named intermediate map, through a learned 1x1-conv regressor
    (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015, eq. 3).

    student: A(f^S), teacher: f^T, (B, C_t, H_t, W_t) maps (``reads``/``teacher_reads`` name them).
    """
    return feature_mse(student, teacher, batch)


@register_loss("at", reads="feats")
def attention_transfer(student: Tensor, teacher: Tensor, batch: Batch | None = None, *, p: float = 2.0) -> Tensor:
    """Attention transfer: mean squared difference of the L2-normalised spatial attention maps
    Q = vec(mean_c |A_c|^p) of a student and a teacher feature map (Zagoruyko & Komodakis, "Paying More
    Attention to Attention", ICLR 2017, activation-based attention with p = 2, in the form of the authors' code).

    student: (B, C_s, H_s, W_s), teacher: (B, C_t, H_t, W_t); the student's map is average-pooled to the
    teacher's spatial size when they differ (e.g. a spectrogram map against an image map).
    """
    if student.dim() != 4 or teacher.dim() != 4:
        raise ConfigError(f"loss 'at' needs spatial feature maps (B, C, H, W), got {tuple(student.shape)} and "
                          f"{tuple(teacher.shape)}: set reads/teacher_reads to feats.<modality>.stage<i>")
    a_s = student.abs().pow(p).mean(dim=1, keepdim=True)  # (B, 1, H_s, W_s)
    a_t = teacher.abs().pow(p).mean(dim=1, keepdim=True)  # (B, 1, H_t, W_t)
    if a_s.shape[-2:] != a_t.shape[-2:]:
        a_s = F.adaptive_avg_pool2d(a_s, a_t.shape[-2:])
    return (F.normalize(a_s.flatten(1), dim=1) - F.normalize(a_t.flatten(1), dim=1)).pow(2).mean()
