"""Tabular rows: standardised numeric columns and embedded categorical columns, through an MLP."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from crossdistill.models.vector import MLPEncoder


class TabularEncoder(nn.Module):
    """(B, numeric + categorical) -> MLP over [numbers, one embedding per categorical column]. Category ids
    arrive as floats in the same row (0 = a level unseen in training)."""

    def __init__(self, numeric: int, categories: list[int], embed_dim: int, hidden: list[int] | None) -> None:
        super().__init__()
        self.numeric = numeric
        self.embeddings = nn.ModuleList(nn.Embedding(levels, embed_dim) for levels in categories)
        self.mlp = MLPEncoder((numeric + embed_dim * len(categories),), hidden)
        self.out_dim = self.mlp.out_dim

    def forward(self, row: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        ids = row[:, self.numeric :].long()  # (B, n_categorical)
        parts = [row[:, : self.numeric]] + [embed(ids[:, j]) for j, embed in enumerate(self.embeddings)]
        return self.mlp(torch.cat(parts, dim=1))


def tabular_mlp(in_shape: tuple[int, ...], numeric: int | None = None, categories: list[int] | None = None,
                embed_dim: int = 8, hidden: list[int] | None = None) -> TabularEncoder:
    """MLP over standardised numeric columns and embedded categorical columns (default 128-64)."""
    categories = categories or []
    numeric = in_shape[0] - len(categories) if numeric is None else numeric
    return TabularEncoder(numeric, categories, embed_dim, hidden)
