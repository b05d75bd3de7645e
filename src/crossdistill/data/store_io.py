"""Writing the decoded store's ``.npy`` files: rows that start on a 4096-byte boundary, and blocks of rows written
straight to the disk (``O_DIRECT``) wherever their place and length are aligned.

Why straight to the disk: a buffered write copies each block into newly allocated page-cache pages and holds the
file's lock while it does, so two workers writing one modality file take turns, and the pages are then written
back and sit in memory: ``benchmarks/store_io.py`` measures two processes writing 32 MB blocks to one file both
ways (docs/performance.md has the numbers: several times faster directly, with almost no kernel CPU). Where a
block is not aligned (a last, shorter shard; rows of an odd byte size) or the file system refuses ``O_DIRECT``,
the block is written through the page cache as before. A page is only ever written one way: a direct block covers
whole pages that no other shard touches. Durability is unchanged: the building process syncs the files as shards
complete (``crossdistill.data.store``), which also commits the metadata of the blocks written directly. The
build thus leaves the store on disk, not in the page cache: ``stored_rows.read_rows`` reads it back.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

ALIGN = 4096  # bytes: a page, and a multiple of every disk's logical block size


def new_rows_file(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """An ``.npy`` file of ``shape`` (zeros, sparse) whose header is padded so that its rows start at a multiple
    of ``ALIGN``: any shard whose rows fill whole pages can then be written directly. numpy reads it as any other
    ``.npy`` file (the format allows a padded header)."""
    header = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)})
    prefix = len(np.lib.format.MAGIC_PREFIX) + 4  # magic, version (1, 0), uint16 header length
    start = -(-(prefix + len(header) + 1) // ALIGN) * ALIGN
    padded = header + " " * (start - prefix - len(header) - 1) + "\n"
    with path.open("wb") as handle:
        handle.write(np.lib.format.MAGIC_PREFIX + bytes([1, 0]) + len(padded).to_bytes(2, "little"))
        handle.write(padded.encode("latin1"))
        handle.truncate(start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)


def aligned_zeros(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Zeros of ``shape`` whose buffer starts at a multiple of ``ALIGN`` (what a direct write needs)."""
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.zeros(size + ALIGN, dtype=np.uint8)
    skip = -raw.ctypes.data % ALIGN
    return raw[skip : skip + size].view(dtype).reshape(shape)


def write_rows(path: Path, offset: int, block: np.ndarray) -> None:
    """Write ``block`` (C-contiguous) at byte ``offset`` of ``path``: directly where it is aligned, else (or what a
    short direct write left) through the page cache. A full disk raises ``OSError`` (ENOSPC) either way."""
    data = memoryview(block).cast("B")
    aligned = offset % ALIGN == 0 and len(data) % ALIGN == 0 and block.ctypes.data % ALIGN == 0
    done = _write_direct(path, offset, data) if aligned else 0
    if done < len(data):
        with path.open("r+b") as handle:
            handle.seek(offset + done)
            handle.write(data[done:])  # (the array's own buffer: no copy)


def _write_direct(path: Path, offset: int, data: memoryview) -> int:
    """How many bytes were written directly: 0 where the file system refuses direct writes."""
    try:
        handle = os.open(path, os.O_WRONLY | getattr(os, "O_DIRECT", 0))  # (not Linux: no O_DIRECT, buffered)
    except OSError as error:
        if error.errno == errno.EINVAL:
            return 0
        raise
    try:
        return os.pwrite(handle, data, offset)
    except OSError as error:
        if error.errno == errno.EINVAL:
            return 0  # (a file system that opens O_DIRECT but refuses the write)
        raise
    finally:
        os.close(handle)
