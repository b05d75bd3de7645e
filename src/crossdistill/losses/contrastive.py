"""Contrastive distillation: the student's embedding must pick its own paired teacher embedding out of many
others. Both losses own projection heads (trained with the student); ``crd`` also owns queues of negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.data.batch import Batch
from crossdistill.losses.base import register_loss_module


class FeatureQueue(nn.Module):
    """A first-in first-out queue of ``size`` detached vectors (MoCo's queue, He et al., CVPR 2020), a buffer so
    it is checkpointed with the run. Starts full of random unit vectors, as CRD's memory bank starts random."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        self.register_buffer("items", F.normalize(torch.randn(size, dim), dim=1))  # (size, dim)
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))  # the next slot to overwrite

    @property
    def size(self) -> int:
        return self.items.shape[0]

    @torch.no_grad()
    def push(self, vectors: Tensor) -> None:
        """Append ``vectors`` (B, dim), dropping the oldest; only the newest ``size`` are kept if B > size."""
        vectors = vectors.detach()[-self.size:]
        slots = (self.pointer + torch.arange(len(vectors), device=vectors.device)) % self.size
        self.items[slots] = vectors.to(self.items.dtype)
        self.pointer.copy_((self.pointer + len(vectors)) % self.size)

    def ordered(self) -> Tensor:
        """The contents, oldest first: (size, dim)."""
        return torch.roll(self.items, shifts=-int(self.pointer), dims=0)


class Embed(nn.Module):
    """CRD's embedding head: linear projection, then L2 normalisation. (B, D_in) -> (B, dim) unit vectors."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.linear(x.flatten(1)), dim=1)


def nce_loss(positive: Tensor, negatives: Tensor, noise: float) -> Tensor:
    """CRD's NCE objective: -E[log h(pos)] - sum_negatives E[log(1 - h(neg))], h(x) = x / (x + noise), with
    ``noise`` = K * P_n in the units of x (Tian et al. 2020; the ContrastLoss of the authors' code).

    positive: (B,), negatives: (B, K) unnormalised probabilities exp(s / tau) / Z. Mean over the batch.
    """
    eps = 1e-7
    log_d1 = torch.log(positive / (positive + noise + eps))  # (B,)
    log_d0 = torch.log(noise / (negatives + noise + eps))  # (B, K)
    return -(log_d1 + log_d0.sum(dim=1)).mean()


@register_loss_module("crd")
class ContrastiveRepresentationDistillation(nn.Module):
    """Contrastive representation distillation: NCE between the projected, L2-normalised student and teacher
    embeddings, the paired sample positive and ``queue_size`` earlier ones negative, in both directions (student
    anchor vs teacher queue, teacher anchor vs student queue) (Tian, Krishnan & Isola, "Contrastive
    Representation Distillation", ICLR 2020).

    Departures, on purpose: the negatives come from a FIFO queue of the last ``queue_size`` = K embeddings instead
    of a momentum memory bank of one entry per training sample (O(N d), which does not scale). The authors divide
    exp(s / tau) by Z = N * mean (estimated on the first batch, then fixed) and use K * P_n = K / N; multiplying
    both by N gives the same h with x = exp(s / tau) / mean and noise K, so the data set size N drops out.
    Keep ``queue_size`` below the number of training samples so the queue rarely holds an earlier view of the
    anchor itself.

    student: (B, D_s), teacher: (B, D_t) embeddings. The teacher's projection head trains; the teacher does not.
    """

    def __init__(self, student: Tensor, teacher: Tensor, *, feat_dim: int = 128, queue_size: int = 1024,
                 temperature: float = 0.07) -> None:
        super().__init__()
        self.embed_student = Embed(student.flatten(1).shape[1], feat_dim)
        self.embed_teacher = Embed(teacher.flatten(1).shape[1], feat_dim)
        self.teacher_queue = FeatureQueue(queue_size, feat_dim)  # negatives for a student anchor
        self.student_queue = FeatureQueue(queue_size, feat_dim)  # negatives for a teacher anchor
        self.temperature = temperature
        self.register_buffer("z", torch.zeros(2))  # normalising constants (student anchor, teacher anchor)

    def _side(self, anchor: Tensor, positive: Tensor, queue: FeatureQueue, side: int) -> Tensor:
        pos = torch.exp((anchor * positive).sum(dim=1) / self.temperature)  # (B,)
        neg = torch.exp(anchor @ queue.items.clone().t() / self.temperature)  # (B, K); a copy: push() writes
        if self.z[side] == 0:
            self.z[side] = torch.cat([pos[:, None], neg], dim=1).mean().detach()
        z = float(self.z[side])  # a constant: the buffer is written in place
        return nce_loss(pos / z, neg / z, noise=float(queue.size))

    def forward(self, student: Tensor, teacher: Tensor, batch: Batch | None = None) -> Tensor:
        s = self.embed_student(student)  # (B, feat_dim)
        t = self.embed_teacher(teacher.detach())  # (B, feat_dim)
        loss = self._side(s, t, self.teacher_queue, 0) + self._side(t, s, self.student_queue, 1)
        if self.training:
            self.teacher_queue.push(t)
            self.student_queue.push(s)
        return loss


@register_loss_module("infonce")
class InfoNCEAlignment(nn.Module):
    """Symmetric InfoNCE: between projected, L2-normalised student and teacher embeddings of the same batch:
    each student embedding must pick its paired teacher embedding among the batch's, and vice versa (van den
    Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding", eq. 4; the symmetric form of
    CLIP, Radford et al. 2021), a cross-modal alignment of the student to the teacher.

    student: (B, D_s), teacher: (B, D_t). Projection heads on both sides train with the student.
    """

    def __init__(self, student: Tensor, teacher: Tensor, *, feat_dim: int = 128, temperature: float = 0.1) -> None:
        super().__init__()
        self.embed_student = Embed(student.flatten(1).shape[1], feat_dim)
        self.embed_teacher = Embed(teacher.flatten(1).shape[1], feat_dim)
        self.temperature = temperature

    def forward(self, student: Tensor, teacher: Tensor, batch: Batch | None = None) -> Tensor:
        s, t = self.embed_student(student), self.embed_teacher(teacher.detach())  # (B, feat_dim) each
        logits = s @ t.t() / self.temperature  # (B, B): row i = student i against every teacher embedding
        pairs = torch.arange(len(s), device=s.device)
        return 0.5 * (F.cross_entropy(logits, pairs) + F.cross_entropy(logits.t(), pairs))
