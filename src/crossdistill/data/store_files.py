"""The decoded store's files, read side: the layout of ``store.json`` and the ``.npy`` files (built by
``crossdistill.data.store``)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossdistill.data.table import ManifestError

STORE_FORMAT = 2  # 2: images and 16-bit audio held as their integer codes


class StoreError(ManifestError):
    """The store cannot be built (no space on its disk); names the folder and the numbers."""


def pack_bits(mask: np.ndarray) -> str:
    return base64.b64encode(np.packbits(mask.astype(bool)).tobytes()).decode()


def unpack_bits(text: str, count: int) -> np.ndarray:  # (the inverse of pack_bits)
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:count].astype(bool)


def row_bytes(layout: dict[str, Any]) -> int:
    return int(np.prod(layout["shape"], dtype=np.int64)) * np.dtype(layout["dtype"]).itemsize


def data_offset(path: Path) -> int:
    """Where the rows start in an ``.npy`` file (after its header)."""
    with path.open("rb") as handle:
        major, _ = np.lib.format.read_magic(handle)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        read(handle)
        return handle.tell()


@dataclass
class DecodedStore:
    """A complete store, read-only: ``values(m)`` (N, ...) memory map over every table row (zeros where a row is
    bad or lacks the modality), ``ok`` (N,) rows that decoded, ``present(m)`` (N,), the problems met."""

    folder: Path
    meta: dict[str, Any]

    @property
    def rows(self) -> int:
        return int(self.meta["rows"])

    @property
    def ok(self) -> np.ndarray:
        return unpack_bits(self.meta["ok"], self.rows)

    @property
    def problems(self) -> list[str]:
        return list(self.meta["problems"])

    def values(self, modality: str) -> np.ndarray:
        """(N, ...) memory map of what is stored: the values, or their integer codes (see ``scale``)."""
        return np.load(self.folder / f"{modality}.npy", mmap_mode="r")

    def scale(self, modality: str) -> float | None:
        """The scale of the modality's integer codes (``crossdistill.data.store_codes``), or None: stored as is."""
        return self.meta["modalities"][modality].get("scale")

    def present(self, modality: str) -> np.ndarray:
        return unpack_bits(self.meta["present"][modality], self.rows)

    def extra(self, modality: str) -> dict[str, Any]:
        return dict(self.meta["extra"].get(modality, {}))


def bad_shards(folder: Path, meta: dict[str, Any], full_check: bool) -> dict[int, str]:
    """Shard -> what is wrong with it: its bytes missing (a file shorter than the rows need; cheap) or, with
    ``full_check``, not those recorded at build. Nothing is changed here."""
    bad: dict[int, str] = {}
    count, per_shard = meta["rows"], meta["shard_rows"]
    for modality, layout in meta["modalities"].items():
        path = folder / f"{modality}.npy"
        per_row = row_bytes(layout)
        if not path.is_file():
            return dict.fromkeys(range(len(meta["shards"])), f"{path.name} is missing")
        offset, size = data_offset(path), path.stat().st_size
        for shard, record in enumerate(meta["shards"]):
            start, stop = shard * per_shard, min((shard + 1) * per_shard, count)
            if size < offset + stop * per_row:
                bad[shard] = f"shard {shard} (rows {start + 1}-{stop}) of {path.name} is truncated"
            elif full_check:
                with path.open("rb") as handle:
                    handle.seek(offset + start * per_row)
                    digest = hashlib.sha256(handle.read((stop - start) * per_row)).hexdigest()
                if digest != record["digests"][modality]:
                    bad[shard] = f"shard {shard} (rows {start + 1}-{stop}) of {path.name} was altered"
        if size > offset + count * per_row:
            return dict.fromkeys(range(len(meta["shards"])), f"{path.name} is longer than its rows")
    return bad
