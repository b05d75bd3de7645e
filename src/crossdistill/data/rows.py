"""Rows read on demand: decoded arrays that stay on disk (memory-mapped) and are read, and turned into model inputs,
a batch at a time. A split's inputs are either whole tensors in memory or these views; ``SplitData`` and the
loaders treat both alike (``view[rows]`` -> a tensor), so data larger than memory trains with bounded memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from crossdistill.data.stored_rows import Rows


def as_index(rows: Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    return rows.numpy() if isinstance(rows, Tensor) else np.asarray(rows, dtype=np.int64)


@dataclass(frozen=True)
class TransformedRows:
    """A modality's model inputs, made a batch at a time: decoded rows read from disk, then ``transform`` (a column
    kind's, with the state fitted on the training rows); rows without the modality are zeros. ``view[rows]`` is
    a tensor; ``take`` selects rows without reading."""

    values: Rows
    present: np.ndarray  # (K,) bool
    transform: Callable[[np.ndarray], Tensor]
    sample_shape: tuple[int, ...]  # the shape of one transformed row
    dtype: torch.dtype
    identity: str  # what makes these inputs what they are (the store, the state): part of the data fingerprint

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.values), *self.sample_shape)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, rows: Tensor | np.ndarray) -> Tensor:
        index = as_index(rows)
        if index.size == 0:
            return torch.zeros((0, *self.sample_shape), dtype=self.dtype)
        tensor = self.transform(self.values.read(index))
        missing = ~self.present[index]
        if missing.any():
            tensor[torch.from_numpy(missing)] = 0
        return tensor

    def take(self, rows: np.ndarray) -> TransformedRows:
        return TransformedRows(self.values.take(rows), self.present[rows], self.transform, self.sample_shape,
                               self.dtype, self.identity)

    def zeroed(self) -> TransformedRows:
        """The same rows, every one without the modality (the modality-ablation test)."""
        return TransformedRows(self.values, np.zeros_like(self.present), self.transform, self.sample_shape,
                               self.dtype, self.identity + ":zeroed")

    def digest_bytes(self) -> bytes:
        rows = hashlib.sha256(self.values.part.tobytes() + self.values.local.tobytes() + self.present.tobytes())
        return (self.identity + rows.hexdigest()).encode()


Inputs = Tensor | TransformedRows  # a modality's (N, ...) inputs in a split


def select_rows(inputs: Inputs, rows: np.ndarray) -> Inputs:
    """The inputs of ``rows`` (a view stays a view: nothing is read)."""
    return inputs.take(rows) if isinstance(inputs, TransformedRows) else inputs[torch.from_numpy(rows)]


def zeros_like_inputs(inputs: Inputs) -> Inputs:
    return inputs.zeroed() if isinstance(inputs, TransformedRows) else torch.zeros_like(inputs)


def digest_bytes(inputs: Inputs) -> bytes:
    """What a data fingerprint hashes of a modality's inputs: the values in memory, or a view's identity."""
    return inputs.digest_bytes() if isinstance(inputs, TransformedRows) else inputs.numpy().tobytes()
