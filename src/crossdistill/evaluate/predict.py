"""Run a model over a loader and collect its logits."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from crossdistill.data.batch import Batch


@torch.no_grad()
def predict_logits(model: nn.Module, batches: Iterable[Batch], device: torch.device | None = None) -> Tensor:
    """(N, K) logits in loader order, model in eval mode (its mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    logits = [model(batch.to(device)).logits.float().cpu() for batch in batches]
    model.train(was_training)
    return torch.cat(logits)
