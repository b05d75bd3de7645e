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


def as_index(rows: Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    return rows.numpy() if isinstance(rows, Tensor) else np.asarray(rows, dtype=np.int64)


@dataclass(frozen=True)
class Rows:
    """Rows of one or more (N_p, ...) arrays (memory maps), as one (len(local), ...) array: row i is
    ``parts[part[i]][local[i]]``. Selecting rows reads nothing; ``read`` does."""

    parts: tuple[np.ndarray, ...]
    part: np.ndarray  # (K,) which part each row is in
    local: np.ndarray  # (K,) its row within that part

    @classmethod
    def of(cls, array: np.ndarray, rows: np.ndarray) -> Rows:
        return cls((array,), np.zeros(len(rows), dtype=np.int64), np.asarray(rows, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.local)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.parts[0].shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.parts[0].dtype

    @property
    def nbytes(self) -> int:
        return len(self) * int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def take(self, rows: np.ndarray) -> Rows:
        return Rows(self.parts, self.part[rows], self.local[rows])

    def concat(self, other: Rows) -> Rows:
        return Rows(self.parts + other.parts, np.concatenate([self.part, other.part + len(self.parts)]),
                    np.concatenate([self.local, other.local]))

    def read(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), ...) in memory: rows in increasing order within each part (sequential reads on disk)."""
        part, local = (self.part, self.local) if rows is None else (self.part[rows], self.local[rows])
        out = np.empty((len(local), *self.shape[1:]), dtype=self.dtype)
        for p in np.unique(part):
            where = np.flatnonzero(part == p)
            order = np.argsort(local[where], kind="stable")
            out[where[order]] = self.parts[p][local[where[order]]]
        return out


def chunks_of(rows: np.ndarray, row_bytes: int, budget: int = 256 << 20) -> list[np.ndarray]:
    """``rows`` cut into chunks of at most ``budget`` bytes of data each (at least one row per chunk)."""
    size = max(1, budget // max(1, row_bytes))
    return [rows[i : i + size] for i in range(0, len(rows), size)] or [rows]


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


def moments(values: np.ndarray | Rows, rows: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """float64 mean and std of ``values[rows]`` over ``axes`` (kept), read in chunks of bounded size: one chunk
    is numpy's own mean and std; several are combined exactly in float64 (Chan, Golub and LeVeque, 1979)."""
    read = values.read if isinstance(values, Rows) else values.__getitem__
    row_bytes = int(np.prod(values.shape[1:], dtype=np.int64)) * values.dtype.itemsize
    chunks = chunks_of(rows, row_bytes)
    if len(chunks) == 1:
        fitted = read(rows)
        return (fitted.mean(axis=axes, keepdims=True, dtype=np.float64),
                fitted.std(axis=axes, keepdims=True, dtype=np.float64))
    count, mean, m2 = 0, np.float64(0.0), np.float64(0.0)
    for chunk in chunks:
        x = read(chunk)
        n = x.size // int(np.prod([s for a, s in enumerate(x.shape) if a not in axes], dtype=np.int64))
        chunk_mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
        chunk_m2 = ((x - chunk_mean) ** 2).sum(axis=axes, keepdims=True)
        delta, total = chunk_mean - mean, count + n
        mean = mean + delta * (n / total)
        m2 = m2 + chunk_m2 + delta**2 * (count * n / total)
        count = total
    return mean, np.sqrt(m2 / count)


def fits_in_memory(nbytes: int, share: float = 0.25) -> bool:
    """Whether ``nbytes`` of data may be held in memory: at most ``share`` of the memory available now (Linux's
    MemAvailable; where it cannot be read, yes)."""
    try:
        with open("/proc/meminfo") as handle:
            available = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return True
    return nbytes <= share * available
