"""Losses for dual encoders (cross-modal retrieval): CLIP's contrastive task loss and the distillation terms of
CLIP-KD (Yang et al., "CLIP-KD: An Empirical Study of CLIP Model Distillation", CVPR 2024) and TinyCLIP (Wu et
al., "TinyCLIP: CLIP Distillation via Affinity Mimicking and Weight Inheritance", ICCV 2023).

Every loss reads the dual encoder's towers, ``(z_query, z_gallery, log s)`` = ``(feats.query, feats.gallery,
feats.log_scale)`` (see ``models.dual``); the in-batch similarity matrix ``s * z_query @ z_gallery^T`` (B, B) is
what retrieval ranks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.config import ConfigError
from crossdistill.data.batch import Batch, has_label
from crossdistill.losses.base import TOWERS, register_loss, register_loss_module
from crossdistill.losses.functional import soft_cross_entropy
from crossdistill.models.dual import TOWER_OUTPUTS, logit_scale

Towers = tuple[Tensor, Tensor, Tensor]  # z_query (B, D), z_gallery (B, D), log s (B, 1)


def in_batch_logits(towers: Towers) -> Tensor:
    """Towers -> (B, B) scaled similarities, rows: queries, columns: gallery items."""
    query, gallery, log_scale = towers
    return logit_scale(log_scale) * query @ gallery.T


def positive_targets(batch: Batch | None, positives: str, logits: Tensor) -> Tensor:
    """(B, B) target distribution over the batch's gallery items: its own pair (instance), or uniform over the
    rows of its class (rows without a label: their own pair)."""
    eye = torch.eye(len(logits), device=logits.device)
    if positives == "instance" or batch is None or batch.target is None or batch.target.is_floating_point():
        return eye
    known = has_label(batch.target)
    same = (batch.target[:, None] == batch.target[None, :]) & known[:, None] & known[None, :]
    same = same.float().maximum(eye)
    return same / same.sum(dim=1, keepdim=True)


@register_loss("clip", reads=TOWER_OUTPUTS, needs_teacher=False, needs=TOWERS)
def clip_contrastive(student: Towers, teacher: Towers | None, batch: Batch | None = None, *,
                     positives: str = "instance") -> Tensor:
    """Symmetric InfoNCE over the batch with the model's learnable temperature (Radford et al., "Learning
    Transferable Visual Models From Natural Language Supervision", ICML 2021): cross-entropy of each query over
    the gallery items and of each gallery item over the queries, averaged; with ``positives: class`` every row of
    the query's class is a positive (uniform target), as in supervised contrastive learning.

    student: the dual encoder's towers.
    """
    if positives not in ("instance", "class"):
        raise ConfigError(f"loss 'clip': positives must be instance or class, got {positives!r}")
    logits = in_batch_logits(student)  # (B, B)
    target = positive_targets(batch, positives, logits)
    return (soft_cross_entropy(logits, target) + soft_cross_entropy(logits.T, target.T)) / 2


class _Projectors(nn.Module):
    """Student embeddings -> the teacher's width, per tower (identity when the widths match), re-normalised."""

    def __init__(self, student: Towers, teacher: Towers) -> None:
        super().__init__()
        s_dim, t_dim = student[0].shape[1], teacher[0].shape[1]
        make = (lambda: nn.Identity()) if s_dim == t_dim else (lambda: nn.Linear(s_dim, t_dim, bias=False))
        self.query, self.gallery = make(), make()

    def student_side(self, towers: Towers) -> tuple[Tensor, Tensor]:
        query, gallery, _ = towers
        return F.normalize(self.query(query), dim=1), F.normalize(self.gallery(gallery), dim=1)


def teacher_side(towers: Towers) -> tuple[Tensor, Tensor]:
    """The teacher's normalised embeddings (a dual encoder's already are: normalising is a safeguard)."""
    query, gallery, _ = towers
    return F.normalize(query, dim=1), F.normalize(gallery, dim=1)


@register_loss_module("clip_fd", reads=TOWER_OUTPUTS, needs=TOWERS)
class FeatureDistillation(_Projectors):
    """CLIP-KD feature distillation: mean over samples of ||P(z_s) - z_t||^2 for the query and the gallery tower,
    summed, on normalised embeddings; P a learned linear projector when the widths differ (Yang et al., CVPR
    2024, section 3.3, "FD").

    student, teacher: the dual encoders' towers.
    """

    def forward(self, student: Towers, teacher: Towers, batch: Batch | None = None) -> Tensor:
        s_query, s_gallery = self.student_side(student)
        t_query, t_gallery = teacher_side(teacher)
        return ((s_query - t_query).pow(2).sum(1) + (s_gallery - t_gallery).pow(2).sum(1)).mean()


@register_loss_module("clip_icl", reads=TOWER_OUTPUTS, needs=TOWERS)
class InteractiveContrastive(_Projectors):
    """CLIP-KD interactive contrastive learning: the student's queries contrasted against the teacher's gallery
    embeddings and the student's gallery items against the teacher's queries (InfoNCE, own pair positive),
    averaged, with a learnable temperature initialised at 0.07 (Yang et al., CVPR 2024, section 3.4, "ICL").

    student, teacher: the dual encoders' towers.
    """

    def __init__(self, student: Towers, teacher: Towers) -> None:
        super().__init__(student, teacher)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / 0.07)))

    def forward(self, student: Towers, teacher: Towers, batch: Batch | None = None) -> Tensor:
        s_query, s_gallery = self.student_side(student)
        t_query, t_gallery = teacher_side(teacher)
        scale = self.log_scale.clamp(max=math.log(100.0)).exp()
        own = torch.arange(len(s_query), device=s_query.device)
        return (F.cross_entropy(scale * s_query @ t_gallery.T, own)
                + F.cross_entropy(scale * s_gallery @ t_query.T, own)) / 2


@register_loss("clip_crd", reads=TOWER_OUTPUTS, needs=TOWERS)
def contrastive_relational(student: Towers, teacher: Towers, batch: Batch | None = None) -> Tensor:
    """CLIP-KD contrastive relational distillation: KL(p_t || p_s) between the teacher's and the student's
    in-batch query -> gallery distributions (softmax of each model's scaled similarities), and the same for
    gallery -> query, averaged (Yang et al., CVPR 2024, section 3.2, "CRD").

    student, teacher: towers (widths may differ: only B x B similarities are compared).
    """
    s_logits, t_logits = in_batch_logits(student), in_batch_logits(teacher)  # (B, B)

    def kl(s: Tensor, t: Tensor) -> Tensor:
        return F.kl_div(F.log_softmax(s, 1), F.log_softmax(t, 1), reduction="batchmean", log_target=True)

    return (kl(s_logits, t_logits) + kl(s_logits.T, t_logits.T)) / 2


@register_loss("affinity", reads=TOWER_OUTPUTS, needs=TOWERS)
def affinity_mimicking(student: Towers, teacher: Towers, batch: Batch | None = None) -> Tensor:
    """TinyCLIP affinity mimicking: cross-entropy of the student's query -> gallery affinities (softmax of its
    scaled in-batch similarities) against the teacher's, plus the same for gallery -> query (Wu et al., ICCV
    2023, section 3.1). Its gradient is CRD's times two; the value adds the teacher affinities' entropy.

    student, teacher: the dual encoders' towers.
    """
    s_logits, t_logits = in_batch_logits(student), in_batch_logits(teacher)  # (B, B)
    return (soft_cross_entropy(s_logits, F.softmax(t_logits, 1))
            + soft_cross_entropy(s_logits.T, F.softmax(t_logits.T, 1)))
