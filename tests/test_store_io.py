"""The decoded store's file writes: page-aligned rows, blocks written straight to the disk where aligned, and
through the page cache where not (or where the file system refuses direct writes), the same bytes either way."""

import errno
import os

import numpy as np
import pytest

import crossdistill.data.store_io as store_io
from crossdistill.data.store_files import data_offset
from crossdistill.data.store_io import ALIGN, aligned_zeros, new_rows_file, write_rows


@pytest.fixture
def direct_bytes(monkeypatch):
    """How many bytes each write sent straight to the disk (a list, one entry per aligned write)."""
    written: list[int] = []
    real = store_io._write_direct

    def counted(path, offset, data):
        written.append(real(path, offset, data))
        return written[-1]

    monkeypatch.setattr(store_io, "_write_direct", counted)
    return written


def takes_direct_writes(folder) -> bool:
    """Whether ``folder``'s file system opens files for direct writes (tmpfs before Linux 6.6 does not)."""
    try:
        os.close(os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | getattr(os, "O_DIRECT", 0)))
    except OSError:
        return False
    return hasattr(os, "O_DIRECT")


@pytest.mark.parametrize("shape", [(10, 3, 16, 16), (7, 4000), (5, 1), (3, 2000, 7)])
def test_a_rows_file_is_an_npy_file_whose_rows_start_on_a_page(tmp_path, shape):
    path = tmp_path / "rows.npy"
    new_rows_file(path, np.dtype(np.int16), shape)
    assert data_offset(path) % ALIGN == 0 and path.stat().st_size == data_offset(path) + np.prod(shape) * 2
    read = np.load(path, mmap_mode="r")
    assert read.shape == shape and read.dtype == np.int16 and not read.any()


def test_aligned_blocks_go_straight_to_the_disk_and_others_through_the_page_cache(tmp_path, direct_bytes):
    """Rows of 2,048 bytes: shards of 2 rows fill whole pages (direct), the last shard of 1 row does not (page
    cache); a shard at an offset that is not a page's start is never written directly. The file holds every row."""
    rng = np.random.default_rng(0)
    rows = rng.integers(-2**15, 2**15, size=(5, 1024), dtype=np.int16)  # 2,048 bytes a row
    path = tmp_path / "audio.npy"
    new_rows_file(path, np.dtype(np.int16), rows.shape)
    start = data_offset(path)
    for first in (0, 2, 4):  # shards of 2 rows; the last has 1
        block = aligned_zeros(rows[first : first + 2].shape, np.dtype(np.int16))
        block[:] = rows[first : first + 2]
        write_rows(path, start + first * 2048, block)
    assert direct_bytes == [4096, 4096] if takes_direct_writes(tmp_path) else [0, 0]  # (the 1-row shard: page cache)
    assert np.array_equal(np.load(path, mmap_mode="r"), rows)
    block = aligned_zeros((1, 1024), np.dtype(np.int16))
    block[:] = 7
    write_rows(path, start + 2048, block)  # (a half page: page cache)
    assert len(direct_bytes) == 2 and (np.load(path)[1] == 7).all() and np.array_equal(np.load(path)[2], rows[2])


def test_a_file_system_that_refuses_direct_writes_gets_the_same_bytes(tmp_path, monkeypatch, direct_bytes):
    real_open = os.open

    def no_direct(path, flags, *args):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(store_io.os, "open", no_direct)
    rows = np.arange(4 * 3 * 32 * 32, dtype=np.uint8).reshape(4, 3, 32, 32)  # 3,072 bytes a row: 4 rows, 3 pages
    path = tmp_path / "image.npy"
    new_rows_file(path, np.dtype(np.uint8), rows.shape)
    block = aligned_zeros(rows.shape, np.dtype(np.uint8))
    block[:] = rows
    write_rows(path, data_offset(path), block)
    assert direct_bytes == [0] and np.array_equal(np.load(path), rows)


def test_aligned_zeros_start_on_a_page():
    for shape in [(3, 5), (1024, 16000), (1,)]:
        block = aligned_zeros(shape, np.dtype(np.float32))
        assert block.ctypes.data % ALIGN == 0 and block.shape == shape and not block.any()
        assert block.flags.c_contiguous and block.flags.writeable


def test_rows_read_from_a_store_file_are_those_of_its_memory_map(tmp_path, monkeypatch):
    """read_rows reads a whole map's rows from its file (runs of consecutive rows in one read each), gives what
    numpy's indexing gives, and leaves in-memory arrays and views of a map to numpy."""
    from crossdistill.data import stored_rows
    from crossdistill.data.stored_rows import read_rows

    values = np.random.default_rng(1).integers(-2**15, 2**15, size=(300, 7, 5), dtype=np.int16)
    path = tmp_path / "rows.npy"
    new_rows_file(path, np.dtype(np.int16), values.shape)
    np.load(path, mmap_mode="r+")[:] = values
    mapped = np.load(path, mmap_mode="r")
    reads: list[int] = []
    real = stored_rows.os.preadv
    monkeypatch.setattr(stored_rows.os, "preadv", lambda *a: reads.append(1) or real(*a))
    rows = np.array([0, 1, 2, 3, 10, 11, 150, 298, 299])
    assert np.array_equal(read_rows(mapped, rows), values[rows]) and len(reads) == 4  # (4 runs)
    every = np.arange(300)
    assert np.array_equal(read_rows(mapped, every), values) and len(reads) == 5
    reads.clear()
    assert np.array_equal(read_rows(mapped[100:], np.array([0, 5])), values[[100, 105]]) and not reads  # (a view)
    assert np.array_equal(read_rows(values, rows), values[rows]) and not reads
    assert read_rows(mapped, np.array([], dtype=np.int64)).shape == (0, 7, 5)
    path.rename(tmp_path / "moved.npy")  # (another process repairing the store: the map keeps its file)
    assert np.array_equal(read_rows(mapped, rows), values[rows]) and not reads
    path = tmp_path / "moved.npy"
    mapped = np.load(path, mmap_mode="r")
    os.truncate(path, data_offset(path) + 200 * 70)  # (rows 200-299 gone from the file, still in the map's shape)
    with pytest.raises(OSError, match="moved.npy: the file ends before row 299"):
        read_rows(mapped, np.array([5, 299]))
