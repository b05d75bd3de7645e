"""What a model costs: parameters, FLOPs (``torch.utils.flop_counter``), CPU latency, size on disk."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from crossdistill.data.batch import ModalitySpec


def example_inputs(model: nn.Module, specs: dict[str, ModalitySpec], batch: int) -> dict[str, Tensor]:
    return {m: specs[m].example(batch) for m in model.modalities}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, specs: dict[str, ModalitySpec]) -> int:
    """FLOPs of one forward pass on one sample (a multiply-add counts as 2)."""
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(example_inputs(model, specs, 1))
    return int(counter.get_total_flops())


@torch.no_grad()
def latency_ms(model: nn.Module, specs: dict[str, ModalitySpec], batch: int, repeats: int) -> float:
    """Median wall time (ms) of a CPU forward pass at ``batch``, after warm-up."""
    model = model.cpu().eval()
    inputs = example_inputs(model, specs, batch)
    for _ in range(3):
        model(inputs)
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        model(inputs)
        times.append((time.perf_counter() - tic) * 1000.0)
    return statistics.median(times)


def efficiency(model: nn.Module, specs: dict[str, ModalitySpec], weights: Path, repeats: int) -> dict:
    """Cost of ``model``. A modality computed by a frozen pretrained model at preprocessing (a text embedding)
    is part of the model that reads it: its parameters are counted in ``params`` (and shown apart) and its
    float32 weights in ``size_bytes`` (a deployment ships them); its FLOPs and latency are not measured here
    (``latency_excludes_pretrained`` says so, and the report)."""
    frozen = sum(specs[m].meta.get("pretrained_params", 0) for m in model.modalities)
    towers = getattr(model, "towers", None)  # a dual encoder: each tower is deployed (and exported) on its own
    per_tower = {} if towers is None else {"towers": {m: tower_costs(tower, m, specs[m], repeats)
                                                      for m, tower in towers.items()}}
    return {**per_tower,
        "params": count_params(model) + frozen,
        "frozen_pretrained_params": frozen,
        "flops": count_flops(model, specs),
        "latency_ms": {"batch1": latency_ms(model, specs, 1, repeats),
                       "batch64": latency_ms(model, specs, 64, max(3, repeats // 3))},
        "size_bytes": (weights.stat().st_size + 4 * frozen) if weights.is_file() else None,
        "latency_excludes_pretrained": bool(frozen),
    }


class _OneInput(nn.Module):
    """A tower as a model of one named modality (what the cost functions above take)."""

    def __init__(self, tower: nn.Module, modality: str) -> None:
        super().__init__()
        self.tower, self.modalities = tower, [modality]

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.tower(inputs[self.modalities[0]])[0]


def tower_costs(tower: nn.Module, modality: str, spec: ModalitySpec, repeats: int) -> dict:
    """Parameters (with a frozen pretrained encoder's), FLOPs and batch-1 CPU latency of one retrieval tower."""
    model, specs = _OneInput(tower, modality), {modality: spec}
    return {"params": count_params(model) + spec.meta.get("pretrained_params", 0),
            "flops": count_flops(model, specs), "latency_ms_batch1": latency_ms(model, specs, 1, repeats)}
