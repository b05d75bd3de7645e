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


BLOCK_ROWS = 1024  # queries ranked at a time: memory O(block x N), not O(N x N)


def blocked_ranks(query: Tensor, gallery: Tensor, groups: Tensor) -> Tensor:
    """(N,) ``ranks`` of ``query`` (N, D) against ``gallery`` (N, D) (positives: the same group id), a block of
    queries at a time: a 100k-row test split would need 80 GB as one N x N matrix of doubles."""
    gallery_t = gallery.double().T  # (D, N)
    return torch.cat([ranks(query[i : i + BLOCK_ROWS].double() @ gallery_t,  # (B, N)
                            groups[i : i + BLOCK_ROWS, None] == groups[None, :])
                      for i in range(0, len(query), BLOCK_ROWS)])


def direction_report(query: Tensor, gallery: Tensor, groups: Tensor) -> dict[str, float]:
    """Recall@K and median rank of ``query`` against ``gallery`` (both (N, D))."""
    rank = blocked_ranks(query, gallery, groups).double()
    return {**{f"r{k}": float((rank <= k).double().mean()) for k in KS}, "median_rank": float(rank.median())}


def recall_report(query: Tensor, gallery: Tensor, groups: Tensor) -> dict[str, dict[str, float]]:
    """``query`` and ``gallery`` (N, D) normalised embeddings of the same N rows; row i's positives are the rows
    with its group id. Both directions: query -> gallery and gallery -> query."""
    return {"query_to_gallery": direction_report(query, gallery, groups),
            "gallery_to_query": direction_report(gallery, query, groups)}


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
