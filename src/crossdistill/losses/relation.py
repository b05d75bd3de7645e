"""Relational distillation losses: the student matches how the teacher relates the samples of a batch, which
needs no adapter when the two embeddings differ in size (or in modality)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from crossdistill.data.batch import Batch
from crossdistill.losses.base import register_loss


@register_loss("sp", reads="embed")
def similarity_preserving(student: Tensor, teacher: Tensor, batch: Batch | None = None) -> Tensor:
    """Similarity-preserving KD: ||G_T - G_S||_F^2 / B^2, G = row-L2-normalised batch Gram matrix f f^T
    (Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019, the SP loss).

    student: (B, ...), teacher: (B, ...) features, flattened per sample.
    """
    gram = lambda f: F.normalize(f.flatten(1) @ f.flatten(1).t(), p=2, dim=1)  # noqa: E731  (B, B)
    batch_size = student.shape[0]
    return (gram(teacher) - gram(student)).pow(2).sum() / batch_size**2


@register_loss("pkt", reads="embed")
def probabilistic_kt(student: Tensor, teacher: Tensor, batch: Batch | None = None, *, eps: float = 1e-7) -> Tensor:
    """Probabilistic knowledge transfer: KL between the teacher's and the student's conditional distributions
    of sample similarity, from cosine kernels mapped to [0, 1] and normalised per row (Passalis & Tefas,
    "Learning Deep Representations with Probabilistic Knowledge Transfer", ECCV 2018, with the cosine kernel).

    student: (B, D_s), teacher: (B, D_t). Mean over the B x B entries.
    """
    def conditional(f: Tensor) -> Tensor:
        f = F.normalize(f.flatten(1), p=2, dim=1)
        similarity = (f @ f.t() + 1.0) / 2.0  # (B, B) in [0, 1]
        return similarity / similarity.sum(dim=1, keepdim=True)

    p_s, p_t = conditional(student), conditional(teacher)
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()


def _pairwise_distances(f: Tensor, eps: float = 1e-12) -> Tensor:
    squared = f.pow(2).sum(dim=1)
    distances = (squared[:, None] + squared[None, :] - 2.0 * f @ f.t()).clamp_min(eps).sqrt()
    return distances * (1.0 - torch.eye(len(f), device=f.device))  # (B, B), zero diagonal


def _angles(f: Tensor) -> Tensor:
    differences = F.normalize(f[None, :, :] - f[:, None, :], p=2, dim=2)  # (B, B, D): e_ij = (f_j - f_i) / ||.||
    return torch.bmm(differences, differences.transpose(1, 2)).flatten()  # cos of angle (j, i, k) for all i


@register_loss("rkd", reads="embed")
def relational_kd(student: Tensor, teacher: Tensor, batch: Batch | None = None, *, distance_weight: float = 25.0,
                  angle_weight: float = 50.0) -> Tensor:
    """Relational KD: w_d * Huber(distance potentials) + w_a * Huber(angle potentials), distances normalised by
    their mean over the batch (Park et al., "Relational Knowledge Distillation", CVPR 2019, RKD-D + RKD-A).

    student: (B, D_s), teacher: (B, D_t); teacher potentials carry no gradient.
    """
    s, t = student.flatten(1), teacher.flatten(1).detach()
    d_s, d_t = _pairwise_distances(s), _pairwise_distances(t)
    d_s = d_s / d_s[d_s > 0].mean()
    d_t = d_t / d_t[d_t > 0].mean()
    return (distance_weight * F.smooth_l1_loss(d_s, d_t)
            + angle_weight * F.smooth_l1_loss(_angles(s), _angles(t)))
