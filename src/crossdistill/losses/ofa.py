"""One-for-All KD: distillation between heterogeneous architectures in the logit space, where their
intermediate features need not be alike (a spectrogram CNN student of an image teacher)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.config import ConfigError
from crossdistill.data.batch import Batch
from crossdistill.losses.base import CLASSES, register_loss_module
from crossdistill.losses.logit import target_or_teacher


def ofa_loss(student: Tensor, teacher: Tensor, target: Tensor, *, eps: float = 1.0,
             temperature: float = 1.0) -> Tensor:
    """The OFA loss of one set of student logits: -sum_c w_c log p^S_c with w_c = (1 + p^T_c)^eps - 1 for the
    target class and (p^T_c)^eps for the others, p = softmax(z / T) (Hao et al., "One-for-All: Bridge the Gap
    Between Heterogeneous Architectures in Knowledge Distillation", NeurIPS 2023, eq. 7, in the form of the
    authors' code). eps > 1 strengthens the target class where the teacher is confident; at eps = 1 it is the
    cross-entropy with the teacher's distribution.

    student, teacher: (B, K) logits; target: (B,) class ids. Mean over the batch.
    """
    log_p_student = F.log_softmax(student / temperature, dim=1)  # (B, K)
    p_teacher = F.softmax(teacher / temperature, dim=1)  # (B, K)
    is_target = F.one_hot(target, student.shape[1]).to(p_teacher.dtype)  # (B, K)
    weights = (p_teacher + is_target).pow(eps) - is_target  # (B, K)
    return -(weights * log_p_student).sum(dim=1).mean()


class SeparableDownsample(nn.Module):
    """The authors' SepConv block: depthwise 3x3 stride 2, pointwise, BN, ReLU, depthwise 3x3, pointwise to
    ``out_channels``, BN, ReLU. Halves each spatial side (a side of 1 stays 1)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride=2, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, in_channels, 1, bias=False), nn.BatchNorm2d(in_channels), nn.ReLU(),
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)  # (B, C_out, ceil(H / 2), ceil(W / 2))


def logit_branch(probe: Tensor, num_classes: int, downsample_blocks: int = 2) -> nn.Module:
    """A branch from one student feature into the logit space. Feature maps (B, C, H, W): ``downsample_blocks``
    separable blocks doubling the channels, global average pooling, a linear layer (the authors' CNN projector);
    vectors (B, D): linear to 2K, ReLU, linear to K (the 1-d projector of the MST-Distill benchmark's OFA)."""
    if probe.dim() == 4:
        channels, blocks = probe.shape[1], []
        for _ in range(downsample_blocks):
            blocks.append(SeparableDownsample(channels, 2 * channels))
            channels *= 2
        return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))
    if probe.dim() == 2:
        return nn.Sequential(nn.Linear(probe.shape[1], 2 * num_classes), nn.ReLU(),
                             nn.Linear(2 * num_classes, num_classes))
    raise ConfigError(f"loss 'ofa': a branch reads a (B, D) vector or a (B, C, H, W) map, got {tuple(probe.shape)}")


@register_loss_module("ofa", reads=("logits", "embed"), teacher_reads="logits", needs=CLASSES)
class OneForAllKD(nn.Module):
    """OFA: the student's logits and a learned branch from each of its intermediate features into the logit
    space are each taught by the teacher's logits with ``ofa_loss``, summed (Hao et al., "One-for-All: Bridge the
    Gap Between Heterogeneous Architectures in Knowledge Distillation", NeurIPS 2023, section 3.2 and eq. 7).
    Defaults are the authors' CIFAR-100 ones: eps = 1, T = 1, every weight 1.

    student: (logits, feature, ...): the first read is the student's logits, each further one gets a branch (by
    default the embedding; ``reads: [logits, feats.audio.stage0, feats.audio.stage1, embed]`` puts one on each
    stage as the paper does). teacher: (B, K) logits. The target class is the label where the student's budget
    allows, else the teacher's prediction. The student's own cross-entropy is not included: add a ``ce`` term.
    Branches train with the student and are dropped at export.
    """

    def __init__(self, student: tuple[Tensor, ...], teacher: Tensor, *, eps: float = 1.0,
                 temperature: float = 1.0, downsample_blocks: int = 2) -> None:
        super().__init__()
        logits, *features = student
        if logits.dim() != 2 or teacher.dim() != 2 or logits.shape[1] != teacher.shape[1]:
            raise ConfigError(f"loss 'ofa': the first read must be the student's logits, of the teacher's width: "
                              f"got {tuple(logits.shape)} and teacher {tuple(teacher.shape)}")
        if eps <= 0:
            raise ConfigError(f"loss 'ofa': eps is a positive exponent, got {eps}")
        self.eps, self.temperature = eps, temperature
        self.branches = nn.ModuleList(logit_branch(f, logits.shape[1], downsample_blocks) for f in features)

    def forward(self, student: tuple[Tensor, ...], teacher: Tensor, batch: Batch | None = None) -> Tensor:
        logits, *features = student
        target = target_or_teacher(batch, teacher)  # (B,)
        branch_logits = [branch(f) for branch, f in zip(self.branches, features, strict=True)]  # each (B, K)
        return torch.stack([ofa_loss(z, teacher, target, eps=self.eps, temperature=self.temperature)
                            for z in [logits, *branch_logits]]).sum()
