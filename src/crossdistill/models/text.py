"""Text encoders over token ids (0 = padding): a bag of embeddings, a GRU/LSTM, a small transformer. Each
returns a (B, out_dim) embedding and its per-token states as the feature ``tokens`` (B, L, D)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _masked_mean(states: Tensor, ids: Tensor) -> Tensor:
    mask = (ids != 0).unsqueeze(-1).float()  # (B, L, 1)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)  # (B, D)


class BagOfEmbeddings(nn.Module):
    """Mean of the token embeddings (fastText-style), then a linear layer with ReLU."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.project = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        self.out_dim = dim

    def forward(self, ids: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        states = self.embed(ids)  # (B, L, dim)
        return self.project(_masked_mean(states, ids)), {"tokens": states}


class RecurrentText(nn.Module):
    """Embedding, then a (bidirectional) GRU or LSTM; the embedding is the mean of its states over the tokens."""

    def __init__(self, vocab_size: int, dim: int, hidden: int, cell: str, bidirectional: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn(dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, ids: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        lengths = (ids != 0).sum(dim=1).clamp_min(1).cpu()  # packed: the backward direction starts at the last
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True,  # real token
                                                   enforce_sorted=False)
        states, _ = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True,
                                                     total_length=ids.shape[1])  # (B, L, out_dim)
        return _masked_mean(states, ids), {"tokens": states}


class TransformerText(nn.Module):
    """Embedding + learned positions, a few pre-norm transformer layers, masked mean pooling."""

    def __init__(self, vocab_size: int, max_length: int, dim: int, layers: int, heads: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(1, max_length, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out_dim = dim

    def forward(self, ids: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        x = self.embed(ids) + self.position[:, : ids.shape[1]]  # (B, L, dim)
        states = self.encoder(x, src_key_padding_mask=ids == 0)
        return _masked_mean(states, ids), {"tokens": states}


def text_bag(in_shape: tuple[int, ...], vocab_size: int, dim: int = 64) -> BagOfEmbeddings:
    """Bag of token embeddings (mean), then linear + ReLU."""
    return BagOfEmbeddings(vocab_size, dim)


def text_gru(in_shape: tuple[int, ...], vocab_size: int, dim: int = 64, hidden: int = 64, cell: str = "gru",
             bidirectional: bool = True) -> RecurrentText:
    """Token embeddings through a bidirectional GRU (or ``cell: lstm``), mean over tokens."""
    return RecurrentText(vocab_size, dim, hidden, cell, bidirectional)


def text_transformer(in_shape: tuple[int, ...], vocab_size: int, dim: int = 64, layers: int = 2,
                     heads: int = 4) -> TransformerText:
    """A small transformer encoder over token embeddings with learned positions, mean over tokens."""
    return TransformerText(vocab_size, in_shape[0], dim, layers, heads)
