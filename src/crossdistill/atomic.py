"""Atomic file writes, the one way this package writes a file others may read while it is written: readers see
the old file or the complete new one, never a half-written one, and a crash leaves no stray temporary file."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that add one, such as numpy, keep it; the
    process id in its name keeps concurrent writers apart); it replaces ``path`` in one step when the block
    ends without error, and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def space_problem(folder: Path, need: int, what: str) -> str | None:
    """None when ``folder``'s disk can hold ``need`` more bytes, else a sentence with the numbers."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # (the disk a folder yet to be made will be on)
    free = shutil.disk_usage(folder).free
    if need <= free:
        return None
    return f"{what} needs {need / 1e9:.2f} GB but {folder} has {free / 1e9:.2f} GB free"


def is_disk_full(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, errno.EDQUOT)
