"""Feature-consistency losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from crossdistill.data.batch import Batch
from crossdistill.losses.base import register_loss


@register_loss("feature_mse", reads="embed", adapter=True)
def feature_mse(student: Tensor, teacher: Tensor, batch: Batch) -> Tensor:
    """Feature consistency 1/2 ||f^T - A(f^S)||^2, the student's feature mapped by a learned adapter A into the
    teacher's space (the hint loss of FitNets, Romero et al. 2015, eq. 3; the original design's L_cons).

    student: A(f^S), teacher: f^T, same shape (B, ...). Mean over the batch of the per-sample squared norm.
    """
    return 0.5 * (teacher - student).pow(2).flatten(1).sum(dim=1).mean()


@register_loss("cosine", reads="embed", adapter=True)
def cosine_embedding(student: Tensor, teacher: Tensor, batch: Batch) -> Tensor:
    """1 - cos(A(f^S), f^T), batch mean: aligns the direction of the adapted student embedding with the
    teacher's and ignores its norm. Half the squared distance of the L2-normalised embeddings, the form of the
    feature distillation term of CLIP-KD (Yang et al., "CLIP-KD", CVPR 2024).

    student: A(f^S), teacher: f^T, same shape (B, D).
    """
    return (1.0 - F.cosine_similarity(student.flatten(1), teacher.flatten(1), dim=1)).mean()
