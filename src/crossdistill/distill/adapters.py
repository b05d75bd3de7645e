"""Learned adapters mapping a student feature into the teacher's feature space, sized by probing one batch."""

from __future__ import annotations

from torch import Tensor, nn

from crossdistill.config import ConfigError


class MapAdapter(nn.Module):
    """(B, C_s, H_s, W_s) -> (B, C_t, H_t, W_t): 1x1 convolution, then adaptive average pooling to the
    teacher's spatial size."""

    def __init__(self, in_channels: int, out_channels: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(size)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.conv(x))


def make_adapter(student: Tensor, teacher: Tensor) -> nn.Module:
    """An adapter from the shape of ``student`` to that of ``teacher`` (probe tensors, batch first)."""
    if student.shape[1:] == teacher.shape[1:]:
        return nn.Identity()
    if student.dim() == 2 and teacher.dim() == 2:
        return nn.Linear(student.shape[1], teacher.shape[1])  # (B, D_s) -> (B, D_t)
    if student.dim() == 4 and teacher.dim() == 4:
        return MapAdapter(student.shape[1], teacher.shape[1], tuple(teacher.shape[2:]))
    raise ConfigError(f"no adapter from a student feature of shape {tuple(student.shape[1:])} "
                     f"to a teacher feature of shape {tuple(teacher.shape[1:])}")
