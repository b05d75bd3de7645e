"""Rows of a decoded store's memory-mapped arrays, read on demand, and what is computed over them a bounded chunk at
a time (numpy only: the store's build workers import this without PyTorch)."""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass

import numpy as np

from crossdistill.data.store_codes import scale_codes


@dataclass(frozen=True)
class Rows:
    """Rows of one or more (N_p, ...) arrays (memory maps), as one (len(local), ...) array: row i is
    ``parts[part[i]][local[i]]``, or, for a part the store holds as integer codes (``scales[p]`` not None), the
    float32 values those codes stand for. Selecting rows reads nothing; ``read`` does."""

    parts: tuple[np.ndarray, ...]
    part: np.ndarray  # (K,) which part each row is in
    local: np.ndarray  # (K,) its row within that part
    scales: tuple[float | None, ...]  # per part: its codes' scale (crossdistill.data.store_codes), or None

    @classmethod
    def of(cls, array: np.ndarray, rows: np.ndarray, scale: float | None = None) -> Rows:
        return cls((array,), np.zeros(len(rows), dtype=np.int64), np.asarray(rows, dtype=np.int64), (scale,))

    def __len__(self) -> int:
        return len(self.local)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.parts[0].shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32) if self.scales[0] is not None else self.parts[0].dtype

    @property
    def nbytes(self) -> int:
        return len(self) * int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def take(self, rows: np.ndarray) -> Rows:
        return Rows(self.parts, self.part[rows], self.local[rows], self.scales)

    def concat(self, other: Rows) -> Rows:
        return Rows(self.parts + other.parts, np.concatenate([self.part, other.part + len(self.parts)]),
                    np.concatenate([self.local, other.local]), self.scales + other.scales)

    def read(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), ...) in memory: rows in increasing order within each part (sequential reads on disk)."""
        part, local = (self.part, self.local) if rows is None else (self.part[rows], self.local[rows])
        out = np.empty((len(local), *self.shape[1:]), dtype=self.dtype)
        for p in np.unique(part):
            where = np.flatnonzero(part == p)
            order = np.argsort(local[where], kind="stable")
            out[where[order]] = read_rows(self.parts[p], local[where[order]])  # (codes become float32 exactly)
            scale = self.scales[p]
            if scale is not None and where.size == len(out):
                scale_codes(out, scale)
            elif scale is not None:  # (rows of several parts: this part's rows only)
                values = out[where]
                scale_codes(values, scale)
                out[where] = values
        return out


def read_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` (``rows`` increasing). From a whole ``.npy`` memory map, the rows' bytes are read from its
    file with one ``pread`` per run of consecutive rows and the kernel's readahead off, not by faulting the map
    in: a fault reads up to 128 KB around a row, so random batches from a store larger than memory read several
    times their bytes and push out the rows cached for the next (measured in docs/performance.md)."""
    if not (isinstance(array.base, mmap.mmap) and isinstance(array, np.memmap) and array.flags.c_contiguous
            and len(rows) and hasattr(os, "preadv")):
        return array[rows]  # (in memory, a view of a map, or not Linux: numpy reads it)
    try:
        handle = os.open(array.filename, os.O_RDONLY)
    except FileNotFoundError:  # (the store was moved or rebuilt by another process: the map still has its file)
        return array[rows]
    out = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    size, into = out[0].nbytes, memoryview(out).cast("B")
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(handle, 0, 0, os.POSIX_FADV_RANDOM)
        for first, stop in zip(np.r_[0, cuts], np.r_[cuts, len(rows)], strict=True):
            start, end = int(first) * size, int(stop) * size
            at = array.offset + int(rows[first]) * size
            while start < end:  # (a read may return less than asked)
                got = os.preadv(handle, [into[start:end]], at)
                if got == 0:
                    raise OSError(f"{array.filename}: the file ends before row {int(rows[stop - 1])}")
                start, at = start + got, at + got
    finally:
        os.close(handle)
    return out


def chunks_of(rows: np.ndarray, row_bytes: int, budget: int = 256 << 20) -> list[np.ndarray]:
    """``rows`` cut into chunks of at most ``budget`` bytes of data each (at least one row per chunk)."""
    size = max(1, budget // max(1, row_bytes))
    return [rows[i : i + size] for i in range(0, len(rows), size)] or [rows]


MOMENTS_CHUNK_BYTES = 64 << 20  # of rows read at a time: their float64 temporaries take twice that again


def moments(values: np.ndarray | Rows, rows: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """float64 mean and std of ``values[rows]`` over ``axes`` (kept), read in chunks of bounded size: one chunk
    is numpy's own mean and std; several are combined exactly in float64 (Chan, Golub and LeVeque, 1979)."""
    read = values.read if isinstance(values, Rows) else values.__getitem__
    row_bytes = int(np.prod(values.shape[1:], dtype=np.int64)) * values.dtype.itemsize
    chunks = chunks_of(rows, row_bytes, MOMENTS_CHUNK_BYTES)
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
