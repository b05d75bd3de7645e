"""Encoders for vectors (tabular rows, pre-extracted features): an MLP, or the vector itself."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class MLPEncoder(nn.Module):
    """Flatten, then Linear-LayerNorm-ReLU blocks; each block's output is a feature ``layer<i>``."""

    def __init__(self, in_shape: tuple[int, ...], hidden: list[int] | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        width, blocks = math.prod(in_shape), []
        for out in hidden or [128, 64]:
            blocks.append(nn.Sequential(nn.Linear(width, out), nn.LayerNorm(out), nn.ReLU(), nn.Dropout(dropout)))
            width = out
        self.blocks = nn.ModuleList(blocks)
        self.out_dim = width

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        x, feats = torch.flatten(x, 1), {}
        for i, block in enumerate(self.blocks):
            x = block(x)  # (B, hidden_i)
            feats[f"layer{i}"] = x
        return x, feats


def mlp(in_shape: tuple[int, ...], hidden: list[int] | None = None, dropout: float = 0.0) -> MLPEncoder:
    """MLP for vectors (default 128-64)."""
    return MLPEncoder(in_shape, hidden, dropout)


class Flatten(nn.Module):
    """The raw vector as the embedding (no parameters)."""

    def __init__(self, in_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.out_dim = math.prod(in_shape)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return torch.flatten(x, 1), {}  # (B, D)


def identity(in_shape: tuple[int, ...]) -> Flatten:
    """No encoder: the input vector itself. With ``fusion: identity`` and ``dropout: 0`` the model is one
    ``nn.Linear``, the linear models of controlled studies (Xue et al.'s synthetic Gaussian data)."""
    return Flatten(in_shape)
