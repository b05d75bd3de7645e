"""Retrieval metrics: recall@K and median rank in both directions, for a gallery of the whole test split, with
one positive per query (its own paired row) or class-level positives (every row of its class)."""

from __future__ import annotations

import torch
from torch import Tensor

KS = (1, 5, 10)


def ranks(similarity: Tensor, positive: Tensor) -> Tensor:
    """(Q, G) similarities and (Q, G) bool positives -> (Q,) 1-based rank of each query's best-ranked positive:
    1 + the number of gallery items scored strictly higher (ties count in the query's favour)."""
    best = similarity.masked_fill(~positive, float("-inf")).max(dim=1).values  # (Q,)
    return 1 + (similarity > best[:, None]).sum(dim=1)


def direction_report(similarity: Tensor, positive: Tensor) -> dict[str, float]:
    rank = ranks(similarity, positive).double()
    return {**{f"r{k}": float((rank <= k).double().mean()) for k in KS}, "median_rank": float(rank.median())}


def recall_report(query: Tensor, gallery: Tensor, groups: Tensor) -> dict[str, dict[str, float]]:
    """``query`` and ``gallery`` (N, D) normalised embeddings of the same N rows; row i's positives are the rows
    with its group id. Both directions: query -> gallery and gallery -> query."""
    similarity = query.double() @ gallery.double().T  # (N, N)
    positive = groups[:, None] == groups[None, :]
    return {"query_to_gallery": direction_report(similarity, positive),
            "gallery_to_query": direction_report(similarity.T, positive.T)}


def mean_of_directions(report: dict[str, dict[str, float]]) -> dict[str, float]:
    first, second = report.values()
    return {name: (first[name] + second[name]) / 2 for name in first}


def groups_for(target: Tensor, positives: str) -> Tensor:
    """Group ids whose equality marks positives: each row its own group (instance), or its class; rows without a
    label are their own group either way."""
    own = -1 - torch.arange(len(target))
    if positives == "instance" or target.is_floating_point():
        return own
    return torch.where(target >= 0, target, own)
