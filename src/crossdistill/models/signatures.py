"""Deployable signatures of our models: positional modality tensors in, one tensor out (what ONNX export
traces and what a device runs)."""

from __future__ import annotations

from torch import Tensor, nn


class LogitsOnly(nn.Module):
    """Positional modality tensors (in ``model.modalities`` order) -> logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.model(dict(zip(self.model.modalities, inputs, strict=True))).logits


class TowerOnly(nn.Module):
    """One tower of a dual encoder: its modality's tensor -> the normalised embedding (what a search deploys)."""

    def __init__(self, model: nn.Module, modality: str) -> None:
        super().__init__()
        self.model, self.modalities = model, [modality]

    def forward(self, *inputs: Tensor) -> Tensor:  # (one input; varargs like ``LogitsOnly`` for the exporter)
        return self.model.embed_one(self.modalities[0], inputs[0])
