"""Folds of generated (synthetic) data sets: independent train / val / test draws from seeded streams, each sample
a row of named vectors and a binary label, as the synthetic experiments of the papers we reproduce are built."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from crossdistill.data.batch import DataInfo, FoldData, ModalitySpec, SplitData

if TYPE_CHECKING:
    from crossdistill.tasks import Task

SPLITS = ("train", "val", "test")
Draw = Callable[[int, np.random.Generator], dict[str, np.ndarray]]  # n, rng -> {modality: (n, C), "y": (n,)}


def fold_streams(seed: int, fold: int) -> tuple[np.random.Generator, list[np.random.SeedSequence]]:
    """The fold's plan generator (hyperplane, feature sets) and the train / val / test sample streams."""
    streams = np.random.SeedSequence([seed, fold]).spawn(4)
    return np.random.default_rng(streams[0]), streams[1:]


def generated_fold(fold: int, sizes: dict[str, int], streams: list[np.random.SeedSequence], draw: Draw,
                   dims: dict[str, int], task: Task, key: str, description: str) -> FoldData:
    """A fold of ``sizes[split]`` samples per split drawn by ``draw`` (binary labels); ``dims``: each modality's
    width; ``key``: what makes the fold what it is (its fingerprint)."""
    splits, start = {}, 0
    for split, stream in zip(SPLITS, streams, strict=True):
        arrays = draw(sizes[split], np.random.default_rng(stream))
        splits[split] = SplitData({m: torch.from_numpy(arrays[m]) for m in dims}, torch.from_numpy(arrays["y"]),
                                  torch.arange(start, start + sizes[split]))  # (ids unique across the splits)
        start += sizes[split]
    raw = {"serving": {"kind": "features"}}  # the generated vectors, fed as they are
    info = DataInfo(sizes, 2, {m: ModalitySpec((d,), meta=raw) for m, d in dims.items()}, task,
                    class_names=["0", "1"])
    return FoldData(fold, splits, info, description, hashlib.sha256(key.encode()).hexdigest()[:20])
