"""Convolutional encoders for 2-D inputs: small images (C, H, W) and log-mel spectrograms (1, F, T)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvEncoder(nn.Module):
    """Stages of ``convs_per_stage`` x (3x3 conv, BatchNorm, ReLU) then 2x2 max-pool (skipped once a side is
    1), global average pooling. Each stage's map is exposed as a feature ``stage<i>``."""

    def __init__(self, in_shape: tuple[int, ...], channels: list[int], convs_per_stage: int = 1,
                 dropout: float = 0.0, pool: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"ConvEncoder expects a (C, H, W) input, got shape {tuple(in_shape)}")
        stages, width, size = [], in_shape[0], list(in_shape[1:])
        for out in channels:
            layers: list[nn.Module] = []
            for _ in range(convs_per_stage):
                layers += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
                width = out
            stage_pool = (2 if size[0] > 1 else 1, 2 if size[1] > 1 else 1)  # (not ``pool``: the final grid)
            size = [max(1, size[0] // stage_pool[0]), max(1, size[1] // stage_pool[1])]
            layers.append(nn.MaxPool2d(stage_pool))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout2d(dropout) if dropout else nn.Identity()
        self.pool = tuple(pool)  # final adaptive average pooling grid; (1, 1) is global average pooling
        self.out_dim = width * self.pool[0] * self.pool[1]

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        feats = {}
        for i, stage in enumerate(self.stages):
            x = stage(x)  # (B, C_i, H_i, W_i)
            feats[f"stage{i}"] = x
        pooled = nn.functional.adaptive_avg_pool2d(self.dropout(x), self.pool)  # (B, C, ph, pw)
        return torch.flatten(pooled, 1), feats  # (B, C * ph * pw)


def image_cnn(in_shape: tuple[int, ...], channels: list[int] | None = None, convs_per_stage: int = 1,
              dropout: float = 0.0, pool: tuple[int, int] = (1, 1)) -> ConvEncoder:
    """Small CNN for images (default 32-64-128 channels, global average pooling)."""
    return ConvEncoder(in_shape, channels or [32, 64, 128], convs_per_stage, dropout, pool)


def spec_cnn(in_shape: tuple[int, ...], channels: list[int] | None = None, convs_per_stage: int = 1,
             dropout: float = 0.0, pool: tuple[int, int] = (2, 4)) -> ConvEncoder:
    """CNN for (1, mels, frames) spectrograms (default 16-32-64 channels). The final map is pooled to a coarse
    (2 bands x 4 time steps) grid rather than to one vector: a spoken digit is a sequence of sounds, and
    global averaging would throw their order away."""
    return ConvEncoder(in_shape, channels or [16, 32, 64], convs_per_stage, dropout, pool)
