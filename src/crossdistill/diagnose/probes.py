"""Cheap linear probes for the diagnosis: features of a modality, a softmax probe fitted to any target
distribution (one-hot labels or a teacher's soft labels), ridge regression onto a teacher's embedding, linear CKA.
Everything is cross-validated: fitted on some rows, scored on the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from crossdistill.data.batch import ModalitySpec
from crossdistill.losses.functional import soft_cross_entropy

MAX_DIM = 512  # wider inputs (images, spectrograms, vocabularies) are reduced by PCA fitted on the probe's rows
L2_GRID = (1e-4, 1e-2, 1.0)  # ridge strengths tried by every probe (the best cross-validated one is kept)


def raw_features(inputs: dict[str, Tensor], modalities: list[str], specs: dict[str, ModalitySpec]) -> Tensor:
    """(N, D) float features of ``modalities``: vectors flattened; token ids as log bag-of-words counts."""
    parts = []
    for name in modalities:
        x = inputs[name]
        if specs[name].dtype == "int64":  # (N, L) token ids -> (N, V) counts, padding (0) dropped
            vocab = int(specs[name].meta.get("vocab_size", int(x.max()) + 1))
            counts = torch.zeros(x.shape[0], vocab).scatter_add_(1, x, torch.ones_like(x, dtype=torch.float32))
            counts[:, 0] = 0
            parts.append(torch.log1p(counts))
        else:
            parts.append(x.flatten(1).float())
    return torch.cat(parts, dim=1)


@dataclass
class Standardizer:
    """Centre, scale and (for wide inputs) PCA-project, with statistics of the fitting rows only."""

    mean: Tensor
    std: Tensor
    basis: Tensor | None

    @classmethod
    def fit(cls, x: Tensor, max_dim: int = MAX_DIM) -> Standardizer:
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
        basis = None
        if x.shape[1] > max_dim:
            z = (x - mean) / std
            _, _, v = torch.pca_lowrank(z, q=min(max_dim, *z.shape), center=False, niter=3)
            basis = v  # (D, q)
        return cls(mean, std, basis)

    def __call__(self, x: Tensor) -> Tensor:
        z = (x - self.mean) / self.std
        return z if self.basis is None else z @ self.basis


def folds_of(n: int, k: int, seed: int) -> list[Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return list(order.chunk(k))


def fit_softmax_probe(x: Tensor, target: Tensor, l2: float, steps: int = 100) -> torch.nn.Linear:
    """Multinomial logistic regression on a target distribution (N, K), full-batch L-BFGS with an L2 penalty."""
    probe = torch.nn.Linear(x.shape[1], target.shape[1])
    optimizer = torch.optim.LBFGS(probe.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = soft_cross_entropy(probe(x), target) + l2 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return probe


def kl_rows(p: Tensor, log_q: Tensor) -> Tensor:
    """(N,) KL(p_i || q_i); 0 log 0 = 0."""
    return (p * (torch.log(p.clamp_min(1e-12)) - log_q)).sum(1)


@dataclass
class ProbeScore:
    explained: float  # 1 - KL(P || probe) / KL(P || prior), held out: the share of the target's information reached
    kl: float  # mean held-out KL(P || probe), nats
    agreement: float  # held-out accuracy of the probe's argmax against the target's argmax
    l2: float


def reachability(features: Tensor, target: Tensor, k: int = 5, seed: int = 0) -> ProbeScore:
    """How much of a target distribution (N, K) a linear probe on ``features`` (N, D) reaches, k-fold
    cross-validated; the L2 strength is the best of ``L2_GRID`` by the same cross-validation."""
    best: ProbeScore | None = None
    for l2 in L2_GRID:
        kl_sum = prior_sum = correct = 0.0
        for held in folds_of(len(features), k, seed):
            fit = torch.ones(len(features), dtype=torch.bool)
            fit[held] = False
            scale = Standardizer.fit(features[fit])
            with torch.enable_grad():
                probe = fit_softmax_probe(scale(features[fit]), target[fit], l2)
            with torch.no_grad():
                log_q = F.log_softmax(probe(scale(features[held])), 1)
            prior = target[fit].mean(0, keepdim=True).clamp_min(1e-6)
            kl_sum += float(kl_rows(target[held], log_q).sum())
            prior_sum += float(kl_rows(target[held], prior.log().expand_as(log_q)).sum())
            correct += float((log_q.argmax(1) == target[held].argmax(1)).sum())
        score = ProbeScore(1.0 - kl_sum / max(prior_sum, 1e-12), kl_sum / len(features), correct / len(features), l2)
        if best is None or score.explained > best.explained:
            best = score
    assert best is not None
    return best


def ridge_r2(features: Tensor, target: Tensor, k: int = 5, seed: int = 0) -> Tensor:
    """(C,) held-out R^2 of each target column (N, C) from ``features`` (N, D) by ridge regression, k-fold
    cross-validated; the ridge strength is the best of ``L2_GRID`` (scaled by N) on the mean R^2."""
    best, best_mean = None, -np.inf
    for l2 in L2_GRID:
        sse = torch.zeros(target.shape[1], dtype=torch.float64)
        sst = torch.zeros_like(sse)
        for held in folds_of(len(features), k, seed):
            fit = torch.ones(len(features), dtype=torch.bool)
            fit[held] = False
            scale = Standardizer.fit(features[fit])
            x, x_held = scale(features[fit]).double(), scale(features[held]).double()
            x, x_held = F.pad(x, (0, 1), value=1.0), F.pad(x_held, (0, 1), value=1.0)  # intercept column
            y = target[fit].double()
            gram = x.T @ x + l2 * len(x) * torch.eye(x.shape[1], dtype=torch.float64)
            weights = torch.linalg.solve(gram, x.T @ y)  # (D + 1, C)
            sse += ((x_held @ weights - target[held].double()) ** 2).sum(0)
            sst += ((target[held].double() - y.mean(0)) ** 2).sum(0)
        r2 = 1.0 - sse / sst.clamp_min(1e-12)
        if float(r2.mean()) > best_mean:
            best, best_mean = r2, float(r2.mean())
    assert best is not None
    return best.float()


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear centred kernel alignment of two representations of the same N samples (Kornblith et al.,
    "Similarity of Neural Network Representations Revisited", ICML 2019, eq. 5): in [0, 1], invariant to
    rotations and isotropic scaling; widths may differ."""
    x = (x - x.mean(0)).double()
    y = (y - y.mean(0)).double()
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    return float(cross / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)).clamp_min(1e-12))
