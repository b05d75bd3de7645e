"""Writing one shard of a decoded store, wherever it runs (the building process or a worker process): its rows
decoded, each modality's block (its values, or their exact integer codes: ``store_codes``) filled in place and
written at its place in the modality's file (straight to the disk where aligned: ``store_io``), and its record
(which rows decoded, which have each modality, the problems, a SHA-256 per block) written last."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from crossdistill.atomic import is_disk_full, space_problem, write_text_atomic
from crossdistill.data.columns import COLUMN_KINDS
from crossdistill.data.manifest_options import ModalityColumns
from crossdistill.data.store_codes import Codes
from crossdistill.data.store_files import StoreError, data_offset, pack_bits, row_bytes
from crossdistill.data.store_io import aligned_zeros, new_rows_file, write_rows
from crossdistill.data.table import ManifestError

Decoded = tuple[dict[str, Any] | None, str | None]  # a row's decoded cells, or the problem with it
DecodeRows = Callable[[list[dict[str, Any]]], list[Decoded]]  # rows -> theirs, in order (picklable)


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold ``<folder>.lock`` (other processes wait)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f"{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class InexactCodes(Exception):
    """A row whose values the modality's integer codes cannot hold exactly (a resampled clip after 16-bit ones):
    the builder stores the modality as float32 and decodes again."""

    def __init__(self, modality: str, row: int) -> None:
        super().__init__(modality, row)
        self.modality, self.row = modality, row


def shard_record(folder: Path, shard: int) -> Path:
    return folder / "shards" / f"{shard}.json"


def write_shard(folder: Path, total: int, modalities: dict[str, ModalityColumns], what: str, decode: DecodeRows,
                shard: int, start: int, rows: list[dict[str, Any]]) -> int:
    """Decode ``rows`` (table rows ``start`` ...) and write them as shard ``shard`` of the store being built in
    ``folder`` (``total`` rows in all); returns how many rows it wrote."""
    _ShardWriter(folder, total, modalities, what).write(shard, start, rows, decode(rows))
    return len(rows)


class _ShardWriter:
    def __init__(self, folder: Path, total: int, modalities: dict[str, ModalityColumns], what: str) -> None:
        self.folder, self.total, self.modalities, self.what = folder, total, modalities, what
        plan = folder / "build.json"
        self.layout: dict[str, Any] = json.loads(plan.read_text()) if plan.is_file() else {"modalities": {}}

    def write(self, shard: int, start: int, rows: list[dict[str, Any]], decoded: list[Decoded]) -> None:
        ok = np.asarray([bad is None for _, bad in decoded])
        record: dict[str, Any] = {"ok": pack_bits(ok), "problems": [bad for _, bad in decoded if bad is not None],
                                  "present": {}, "digests": {}, "extra": {}}
        for modality, spec in self.modalities.items():
            given = [i for i, (cells, _) in enumerate(decoded) if cells is not None and cells[modality] is not None]
            record["present"][modality] = pack_bits(np.isin(np.arange(len(decoded)), given))
            values: list[np.ndarray] = []
            if given:  # (a pretrained model runs here, a shard at a time)
                decoded_all, record["extra"][modality] = COLUMN_KINDS.get(spec.kind).decode_all(
                    spec, [decoded[i][0][modality] for i in given])
                values = [np.asarray(v) for v in decoded_all]
                for i, value in zip(given, values, strict=True):
                    self._file(modality, value, rows[i]["_row"])
            if modality in self.layout["modalities"]:  # (rows without it are zeros, written all the same)
                numbers = [rows[i]["_row"] for i in given]
                record["digests"][modality] = self._write_block(modality, start, len(decoded), given, values,
                                                                numbers)
        write_text_atomic(shard_record(self.folder, shard), json.dumps(record))

    def _file(self, modality: str, sample: np.ndarray, row: int) -> Path:
        """The modality's ``.npy`` file, made (and its space reserved) on the first row that has it."""
        path = self.folder / f"{modality}.npy"
        known = self.layout["modalities"].get(modality)
        if known is None:
            with locked(self.folder):  # (under torchrun another rank may have made it)
                return self._new_file(modality, sample, row)
        dtype = np.dtype(np.float32).str if known.get("scale") else known["dtype"]
        if list(sample.shape) != known["shape"] or sample.dtype.str != dtype:
            raise ManifestError(f"{self.what}: data row {row}, modality {modality!r}: shape {sample.shape}, but "
                                f"data row {known['first_row']} has {tuple(known['shape'])}; every row must give the "
                                "same shape")
        return path

    def _new_file(self, modality: str, sample: np.ndarray, row: int) -> Path:
        """Make the modality's file (and reserve its space), or take the one another rank has just made."""
        plan = self.folder / "build.json"
        if plan.is_file():
            self.layout["modalities"] |= json.loads(plan.read_text())["modalities"]
        if modality in self.layout["modalities"]:
            return self._file(modality, sample, row)
        path, codes = self.folder / f"{modality}.npy", self._codes(modality)
        codes = codes if codes is not None and codes.encode(sample) is not None else None
        dtype = np.dtype(codes.dtype) if codes is not None else sample.dtype
        problem = space_problem(self.folder, self.total * sample.size * dtype.itemsize,
                                f"{self.what}: the decoded store of modality {modality!r}")
        if problem:
            raise StoreError(f"{problem}: free space or point $CROSSDISTILL_CACHE at a larger disk")
        new_rows_file(path, dtype, (self.total, *sample.shape))
        try:
            with path.open("r+b") as handle:
                os.posix_fallocate(handle.fileno(), 0, path.stat().st_size)  # (a full disk fails here)
        except OSError as error:
            if is_disk_full(error):
                raise
        self.layout["modalities"][modality] = {"shape": list(sample.shape), "dtype": dtype.str, "first_row": row,
                                               "scale": codes.scale if codes is not None else None}
        write_text_atomic(plan, json.dumps(self.layout))
        return path

    def _codes(self, modality: str) -> Codes | None:
        """The integer codes the modality's kind may be held as (none once a row was found they cannot hold)."""
        if modality in self.layout.get("plain", []):
            return None
        return COLUMN_KINDS.get(self.modalities[modality].kind).codes

    def _write_block(self, modality: str, start: int, size: int, given: list[int], values: list[np.ndarray],
                     numbers: list[int]) -> str:
        """Write rows ``start`` .. ``start + size`` of the modality's file (rows ``given`` hold ``values``, data
        rows ``numbers``; the others zeros); returns their SHA-256."""
        layout = self.layout["modalities"][modality]
        codes = self._codes(modality) if layout.get("scale") else None
        block = aligned_zeros((size, *layout["shape"]), np.dtype(layout["dtype"]))  # (size, ...) as stored
        for i, value, number in zip(given, values, numbers, strict=True):
            stored = value if codes is None else codes.encode(value)
            if stored is None:
                raise InexactCodes(modality, number)
            block[i] = stored
        path = self.folder / f"{modality}.npy"
        write_rows(path, data_offset(path) + start * row_bytes(layout), block)  # (not synced here: _Builder._run)
        return hashlib.sha256(block).hexdigest()
