"""MST-Distill's masking networks, and where they act: a learned sigmoid gate per channel of one layer's output,
applied through a forward hook, so that a teacher's modality-specific channels can be suppressed before it
teaches (Li et al., ACM MM 2025, section 3.3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from crossdistill.config import ConfigError
from crossdistill.data.batch import Batch


class ChannelMask(nn.Module):
    """The masking network of one layer: each of the D channels becomes a token (a learned linear embedding of
    the whole feature into D tokens of ``hidden`` dims), multi-head self-attention over them, a linear read-out
    and a sigmoid give one gate in (0, 1) per channel. A feature map (B, C, H, W) is first reduced to (B, C) by a
    depthwise stride-2 conv, a pointwise conv, BatchNorm, ReLU and global pooling (the authors' MaskNet_1d/2d).

    hidden = D // (2 heads) * heads (about D / 2, a multiple of the heads), as in the authors' code.
    """

    def __init__(self, probe: Tensor, heads: int = 3) -> None:
        super().__init__()
        channels = probe.shape[1]
        self.reduce = None
        if probe.dim() == 4:
            self.reduce = nn.Sequential(
                nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=channels, bias=False),
                nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten())
        elif probe.dim() != 2:
            raise ConfigError(f"loss 'mst': a masked layer outputs (B, D) or (B, C, H, W), got {tuple(probe.shape)}")
        self.channels, self.hidden = channels, max(1, channels // (2 * heads)) * heads
        self.embed = nn.Linear(channels, self.hidden * channels)
        self.attention = nn.MultiheadAttention(self.hidden, heads, batch_first=True)
        self.readout = nn.Linear(self.hidden, 1)

    def forward(self, feature: Tensor) -> Tensor:
        x = self.reduce(feature) if self.reduce is not None else feature  # (B, D)
        tokens = self.embed(x).view(len(x), self.channels, self.hidden)  # (B, D, hidden)
        attended, _ = self.attention(tokens, tokens, tokens)  # (B, D, hidden)
        gate = torch.sigmoid(self.readout(attended).squeeze(-1))  # (B, D)
        return gate.view(*gate.shape, *([1] * (feature.dim() - 2)))  # broadcastable over the map


def mask_points(model: nn.Module, count: int) -> list[str]:
    """Where a model's specialised teachers are masked, deepest first: its fused representation (the fusion
    module's output, what the head reads), then the last stage map of each encoder that has stages."""
    points = ["fusion"] if hasattr(model, "fusion") else []
    for name, encoder in getattr(model, "encoders", {}).items():
        if hasattr(encoder, "stages"):
            points.append(f"encoders.{name}.stages.{len(encoder.stages) - 1}")
    if len(points) < count:
        raise ConfigError(f"loss 'mst': mask_layers={count} but the model offers {len(points)} layers to mask "
                          f"({', '.join(points) or 'none'})")
    return points[:count]


@contextmanager
def masked(model: nn.Module, point: str, mask: ChannelMask) -> Iterator[None]:
    """Run ``model`` with ``mask``'s gate multiplied into the output of its submodule ``point``."""
    handle = model.get_submodule(point).register_forward_hook(lambda _m, _i, out: out * mask(out))
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def output_of(model: nn.Module, point: str, batch: Batch) -> Tensor:
    """The output of submodule ``point`` of ``model`` on ``batch`` (to size its masking network)."""
    seen: list[Tensor] = []
    handle = model.get_submodule(point).register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        was_training = model.training
        model.eval()(batch)
        model.train(was_training)
    finally:
        handle.remove()
    return seen[0]
