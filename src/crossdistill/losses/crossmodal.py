"""Losses made for the cross-modal case, where the student's modality cannot see all the teacher knows:
``c2kd`` bridges the gap with proxy heads and a teacher that learns alongside the student; ``mgkd`` distils only
the part of the teacher's knowledge that the student's modality can reach."""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.config import ConfigError
from crossdistill.data.batch import Batch
from crossdistill.data.loader import BatchLoader
from crossdistill.losses.base import CLASSES, register_loss_module
from crossdistill.losses.functional import channel_permutation_scores, kl_at_temperature, non_target_kl
from crossdistill.losses.logit import hinton_kd, target_or_teacher
from crossdistill.losses.task import budget_rows

log = logging.getLogger("crossdistill")


def kendall_tau(a: Tensor, b: Tensor) -> Tensor:
    """Kendall rank correlation (tau-a) of each row of ``a`` with the same row of ``b``: the mean over class
    pairs of sign(a_j - a_k) * sign(b_j - b_k). a, b: (B, K) -> (B,) in [-1, 1]. Vectorised, O(B K^2)."""
    k = a.shape[1]
    sign_a = torch.sign(a[:, :, None] - a[:, None, :])  # (B, K, K)
    sign_b = torch.sign(b[:, :, None] - b[:, None, :])
    return (sign_a * sign_b).sum(dim=(1, 2)) / (k * (k - 1))


class ProxyHead(nn.Module):
    """C2KD's proxy classifier on a model's embedding: linear, BatchNorm, LeakyReLU(0.1), linear to the classes
    (the authors' 1x1 conv + BN + LeakyReLU + fc on the pooled last feature map)."""

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(in_dim, in_dim), nn.BatchNorm1d(in_dim), nn.LeakyReLU(0.1),
                                    nn.Linear(in_dim, num_classes))

    def forward(self, embed: Tensor) -> Tensor:
        return self.layers(embed.flatten(1))  # (B, K)


@register_loss_module("c2kd", reads=("logits", "embed"), trains_teacher=True, needs=CLASSES)
class CrossModalC2KD(nn.Module):
    """C2KD: proxy heads on the student and the teacher exchange knowledge by a bidirectional KL over the
    non-target classes, kept only for samples whose two proxies rank the classes alike (Kendall tau above
    ``tau_threshold``, on-the-fly selection); each proxy and its own model distil into each other; the teacher
    trains jointly (its cross-entropy on the labels plus its KL terms) (Huo et al., "C2KD: Bridging the Modality
    Gap for Cross-Modal Knowledge Distillation", CVPR 2024, following the authors' training code).

    student, teacher: (logits, embed) of each model. The student's own cross-entropy is not included:
    add a ``ce`` term. The non-target class is the label where the student's budget allows, else the teacher's
    prediction; the teacher's cross-entropy uses every training label, as the teacher was trained on them (none
    on unlabelled data).
    Departure: the authors' code zeroes the target logit, this removes the target class from the softmax.
    """

    def __init__(self, student: tuple[Tensor, Tensor], teacher: tuple[Tensor, Tensor], *, temperature: float = 1.0,
                 tau_threshold: float = 0.0) -> None:
        super().__init__()
        (s_logits, s_embed), (_, t_embed) = student, teacher
        num_classes = s_logits.shape[1]
        self.proxy_student = ProxyHead(s_embed.flatten(1).shape[1], num_classes)
        self.proxy_teacher = ProxyHead(t_embed.flatten(1).shape[1], num_classes)
        self.temperature, self.tau_threshold = temperature, tau_threshold
        self.register_buffer("selected_share", torch.zeros(()))  # share of the last batch kept, for the logs

    def forward(self, student: tuple[Tensor, Tensor], teacher: tuple[Tensor, Tensor],
                batch: Batch | None = None) -> Tensor:
        t = self.temperature
        (z_s, e_s), (z_t, e_t) = student, teacher  # (B, K) logits, the teacher's with a gradient (trained jointly)
        p_s, p_t = self.proxy_student(e_s), self.proxy_teacher(e_t)  # (B, K) proxies
        with torch.no_grad():
            keep = (kendall_tau(p_t, p_s) > self.tau_threshold).float()  # (B,) on-the-fly selection
            self.selected_share.copy_(keep.mean())
        target = target_or_teacher(batch, z_t.detach())
        labels = batch.target if batch is not None else None
        # the rows whose label the student's budget allows (unlabelled pairs carry class -1): the teacher's
        # fine-tuning must not read labels the student may not
        known = budget_rows(batch, "c2kd") if labels is not None else None
        teacher_ce = (F.cross_entropy(z_t[known], labels[known]) if known is not None and bool(known.any())
                      else z_t.sum() * 0.0)
        kl = kl_at_temperature
        teacher_side = (teacher_ce + kl(p_t, z_t.detach(), t).mean() + kl(z_t, p_t.detach(), t).mean()
                        + (keep * non_target_kl(p_t, p_s.detach(), target, t)).mean())
        student_side = (kl(p_s, z_s.detach(), t).mean() + kl(z_s, p_s.detach(), t).mean()
                        + (keep * non_target_kl(p_s, p_t.detach(), target, t)).mean())
        return teacher_side + student_side


def permutation_saliency(student_logits: Tensor, teacher_embed: Tensor, head: nn.Module, repeats: int = 10,
                         seed: int = 0) -> Tensor:
    """Algorithm 1 of Xue et al. (ICLR 2023), on the teacher's embedding: for each channel j, shuffle it across
    samples, recompute the teacher's logits and measure their mean squared distance to the logits of a
    student-modality model trained to mimic the teacher; average over ``repeats`` shuffles, min-max normalise.
    A channel the student's modality predicts is matched before shuffling and not after, so it scores high
    (modality-general); a channel it cannot predict was never matched, and scores low (modality-specific).

    student_logits: (N, K), teacher_embed: (N, D) -> (D,) in [0, 1].
    """
    generator = torch.Generator().manual_seed(seed)
    scores = channel_permutation_scores(teacher_embed, head, student_logits, repeats, generator)
    span = scores.max() - scores.min()
    return (scores - scores.min()) / span if span > 0 else torch.ones(len(scores))


@register_loss_module("mgkd", reads="logits", teacher_reads="embed", single_teacher=True, needs=CLASSES)
class ModalityGeneralKD(nn.Module):
    """Modality-general KD: Hinton KD from the teacher with its modality-specific embedding channels frozen at
    their mean, so only knowledge the student's modality can reach is distilled (Xue et al., "The Modality
    Focusing Hypothesis: Towards Understanding Crossmodal Knowledge Distillation", ICLR 2023, Algorithm 1).

    Before training (``prepare``): a model of the student's architecture learns to mimic the teacher's logits
    (MSE, no labels) on the paired training data, then ``permutation_saliency`` scores the teacher's embedding
    channels and the ``ratio`` least general are frozen at their training mean (default 0.25; the authors' script
    defaults to 0.75, which left our av-digits image teacher at chance, 0.993 -> 0.100 training accuracy, and 0.5
    at 0.716; 0.25 keeps 0.983. The log line says how much the freezing costs on the training split).
    Departures: the teacher is given (the authors train it jointly with the mimic), and frozen channels take the
    training-split mean rather than each batch's.

    student: (B, K) logits, teacher: (B, D) the teacher's embedding (cacheable); the teacher's head maps it.
    """

    def __init__(self, student: Tensor, teacher: Tensor, *, ratio: float = 0.25, temperature: float = 4.0,
                 repeats: int = 10, mimic_epochs: int = 10) -> None:
        super().__init__()
        if teacher.dim() != 2:
            raise ConfigError(f"loss 'mgkd' reads the teacher's embedding (B, D), got {tuple(teacher.shape)}")
        if not 0 <= ratio < 1:
            raise ConfigError(f"loss 'mgkd': ratio is the share of channels frozen, in [0, 1), got {ratio}")
        self.ratio, self.temperature, self.repeats, self.mimic_epochs = ratio, temperature, repeats, mimic_epochs
        dim = teacher.shape[1]
        self.register_buffer("saliency", torch.zeros(dim))  # (D,) modality-general score per channel
        self.register_buffer("general", torch.ones(dim, dtype=torch.bool))  # (D,) channels kept
        self.register_buffer("means", torch.zeros(dim))  # (D,) training means of the frozen channels
        self.head: nn.Module | None = None
        self.prepared = False

    def prepare(self, teacher: nn.Module, context) -> None:  # noqa: ANN001  (a PrepareContext)
        if not hasattr(teacher, "head"):
            raise ConfigError("loss 'mgkd' needs a teacher with a `head` mapping its embedding to logits")
        self.head = copy.deepcopy(teacher.head).eval().requires_grad_(False)
        train = BatchLoader(context.train, 256)
        with torch.no_grad():
            teacher.eval()
            embeds = torch.cat([teacher(b).embed for b in train])  # (N, D)
            teacher_logits = self.head(embeds)  # (N, K)
        mimic = self._fit_mimic(context, teacher_logits)
        self.saliency.copy_(permutation_saliency(mimic, embeds, self.head, self.repeats, context.seed))
        frozen = self.saliency.argsort()[: int(self.ratio * len(self.saliency))]
        self.general.fill_(True)
        self.general[frozen] = False
        self.means.copy_(embeds.mean(dim=0))
        self.prepared = True
        if context.train.target is not None:  # how much the frozen channels cost the teacher, for the log
            frozen_logits = self.head(torch.where(self.general, embeds, self.means))
            before, after = (float((z.argmax(1) == context.train.target).float().mean())
                             for z in (teacher_logits, frozen_logits))
            log.info("mgkd: %d of %d teacher channels modality-general; teacher train accuracy %.3f -> %.3f with "
                     "the rest frozen", int(self.general.sum()), len(self.general), before, after)

    def _fit_mimic(self, context, teacher_logits: Tensor) -> Tensor:  # noqa: ANN001
        """A student-architecture model regressing the teacher's logits; returns its logits on the train split."""
        # Its own seeded draws (initialisation, dropout): the caller's random stream is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(context.seed)
            generator = torch.Generator().manual_seed(context.seed)
            mimic = context.new_student().train()
            optimizer = torch.optim.AdamW(mimic.parameters(), lr=3e-3)
            n = len(context.train)
            for _ in range(self.mimic_epochs):
                order = torch.randperm(n, generator=generator)
                for start in range(0, n - 1, 64):  # (n - 1: no batch of one sample for BatchNorm)
                    rows = order[start : start + 64]
                    loss = F.mse_loss(mimic(context.train.batch(rows)).logits, teacher_logits[rows])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
            with torch.no_grad():
                return torch.cat([mimic.eval()(b).logits for b in BatchLoader(context.train, 256)])

    def train(self, mode: bool = True) -> ModalityGeneralKD:
        super().train(mode)
        if self.head is not None:
            self.head.eval()  # the teacher's head stays in inference mode
        return self

    @property
    def general_share(self) -> float:
        return float(self.general.float().mean())

    def forward(self, student: Tensor, teacher: Tensor, batch: Batch | None = None) -> Tensor:
        if not self.prepared or self.head is None:
            raise RuntimeError("mgkd has not scored the teacher's channels: call Distiller.prepare(context)")
        kept = torch.where(self.general, teacher, self.means)  # (B, D): specific channels at their mean
        with torch.no_grad():
            teacher_logits = self.head(kept)  # (B, K)
        return hinton_kd(student, teacher_logits, batch, temperature=self.temperature)
