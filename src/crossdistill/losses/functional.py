"""Building blocks several losses (and ``diagnose``) share, each written once: soft cross-entropy, the KL
divergence at a temperature, the KL over the non-target classes, and the channel-permutation test."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """-sum_k q_k log softmax(z)_k, mean over rows. logits, target: (B, K), target rows sum to 1."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def kl_at_temperature(student_logits: Tensor, target_logits: Tensor, temperature: float) -> Tensor:
    """KL(softmax(target / T) || softmax(student / T)) per sample: (B, K), (B, K) -> (B,)."""
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    log_q = F.log_softmax(target_logits / temperature, dim=1)
    return F.kl_div(log_p, log_q, reduction="none", log_target=True).sum(dim=1)


def non_target_kl(student_logits: Tensor, target_logits: Tensor, target: Tensor, temperature: float = 1.0) -> Tensor:
    """KL between the distributions over the non-target classes (the target class removed before the softmax),
    per sample: (B, K), (B, K), (B,) -> (B,). DKD's NCKD (Zhao et al., CVPR 2022, eq. 7) and C2KD's
    non-target exchange (Huo et al., CVPR 2024) both use it."""
    drop = F.one_hot(target, student_logits.shape[1]).bool()  # (B, K)
    keep_s = student_logits.masked_fill(drop, -1e4)
    keep_t = target_logits.masked_fill(drop, -1e4)
    return kl_at_temperature(keep_s, keep_t, temperature)


@torch.no_grad()
def channel_permutation_scores(embed: Tensor, head: nn.Module, reference: Tensor, repeats: int,
                               generator: torch.Generator) -> Tensor:
    """The permutation test of Xue et al. (ICLR 2023, Algorithm 1): for each embedding channel j, shuffle it
    across samples (one permutation per repeat, shared by the channels), run ``head`` and measure the mean squared
    distance of its outputs to ``reference``; mean over ``repeats``.

    embed: (N, D), reference: (N, K) -> (D,) scores (mimic-matching saliency when ``reference`` is a mimic's
    logits; how decisive each channel is when it is the head's own outputs).
    """
    n, d = embed.shape
    scores = torch.zeros(d)
    for _ in range(repeats):
        order = torch.randperm(n, generator=generator)
        for j in range(d):
            shuffled = embed.clone()
            shuffled[:, j] = embed[order, j]
            scores[j] += F.mse_loss(head(shuffled), reference)
    return scores / repeats
