"""Evaluation: task metrics, efficiency, modality ablation."""

from __future__ import annotations

import torch
from torch import nn

from crossdistill.data.batch import DataInfo, SplitData
from crossdistill.data.loader import BatchLoader
from crossdistill.data.rows import zeros_like_inputs
from crossdistill.evaluate.metrics import METRICS
from crossdistill.evaluate.predict import predict


def evaluate_split(model: nn.Module, data: SplitData, info: DataInfo, batch_size: int = 256,
                   zero: str | None = None) -> dict:
    """The task's metrics (+ confusion matrix for classes) of ``model`` on ``data``, and its per-row arrays
    (``rows``: what the paired bootstrap resamples); ``zero`` names a modality
    removed: its input zeroed and marked missing (the modality-ablation test: what does the model lose without
    it?)."""
    if zero is not None:
        inputs = {k: zeros_like_inputs(v) if k == zero else v for k, v in data.inputs.items()}
        inputs[f"{zero}.present"] = torch.zeros(len(data), dtype=torch.bool)
        data = SplitData(inputs, data.target, data.index, data.groups)
    outputs = predict(model, BatchLoader(data, batch_size), info.task)
    return {**info.task.score(outputs, data.target, info), "rows": info.task.test_rows(outputs, data.target, info)}


def modality_ablation(model: nn.Module, data: SplitData, info: DataInfo) -> dict[str, dict]:
    """Scores with each modality the model reads zeroed in turn: what each modality carries (with a single
    modality, the floor the model falls to without its input)."""
    return {m: evaluate_split(model, data, info, zero=m)["metrics"] for m in model.modalities}



__all__ = ["METRICS", "evaluate_split", "modality_ablation"]
