"""A model of 'your own code' for the external-teacher tests (imported as external_models:small_cnn)."""

from torch import nn


def small_cnn(num_classes: int = 10, width: int = 8) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(16 * width, 32), nn.ReLU(), nn.Linear(32, num_classes))
