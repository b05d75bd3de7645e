"""Checks that a run's models can do what the run asks of them, with thresholds documented in docs/guide.md
("Warnings a run gives"): a teacher whose soft labels carry little information (KD then silently does nothing),
and a student whose validation curve is still rising at its last epoch (undertrained)."""

from __future__ import annotations

import math

import torch
from torch import nn

from crossdistill.data.batch import DataInfo, SplitData
from crossdistill.evaluate.predict import predict

FLAT_ENTROPY = 0.9  # mean entropy of the soft labels, as a share of log(K), above which a teacher is "flat"
RISING_BY = 0.01  # the last epoch's validation score beats every epoch before the final fifth by this much
PROBE_ROWS = 2000  # training rows the soft labels are measured on (a seeded subsample)


@torch.no_grad()
def soft_label_information(teacher: nn.Module, train: SplitData, info: DataInfo, seed: int = 0) -> dict | None:
    """The teacher's soft labels at T = 1 on (up to ``PROBE_ROWS``) training rows: mean top probability and mean
    entropy as a share of the maximum log(K); None for a task without classes."""
    if "classes" not in info.task.provides or info.num_classes < 2:
        return None
    rows = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:PROBE_ROWS].sort().values
    logits = predict(teacher, (train.batch(chunk) for chunk in rows.split(256)), info.task)  # (n, K)
    probs = logits.float().softmax(dim=1)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(dim=1) / math.log(info.num_classes)  # (n,) in [0, 1]
    top = float(probs.max(dim=1).values.mean())
    return {"mean_top_probability": top, "normalised_entropy": float(entropy.mean()), "rows": len(rows),
            "flat": bool(entropy.mean() > FLAT_ENTROPY)}


def flat_teacher_warning(name: str, fold: int, soft: dict, num_classes: int) -> str:
    return (f"teacher {name!r} (fold {fold}): its soft labels are nearly uniform (mean top probability "
            f"{soft['mean_top_probability']:.2f} over {num_classes} classes, entropy {soft['normalised_entropy']:.2f}"
            f" of the maximum, above {FLAT_ENTROPY}): distillation from it can do little. Train it longer or select "
            "its last epoch (teacher: {train: {select_on: last}})")


def still_rising(scores: list[float]) -> bool:
    """Whether a validation curve (one score per epoch) is still rising at its end: its last score is its best
    and beats every score before the final fifth of the epochs by ``RISING_BY``. Fewer than 5 scores: never."""
    if len(scores) < 5:
        return False
    before = scores[: max(1, int(0.8 * len(scores)))]
    return scores[-1] >= max(scores) and scores[-1] - max(before) > RISING_BY
