"""Run a model over a loader and collect the outputs its task reads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from crossdistill.data.batch import Batch


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable[Batch], task: Any, device: torch.device | None = None) -> Any:
    """The outputs ``task.outputs`` names, over every batch in loader order, as ``task.collect`` gives them
    ((N, K) logits for a head; the towers of a dual encoder). The model is run in eval mode (its mode is restored
    afterwards)."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    parts: dict[str, list] = {name: [] for name in task.outputs}
    for batch in batches:
        out = model(batch.to(device))
        for name in task.outputs:
            parts[name].append(out.read(name).float().cpu())
    model.train(was_training)
    return task.collect({name: torch.cat(values) for name, values in parts.items()})
