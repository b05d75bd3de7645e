"""The decoded store: a table's decoded rows on disk, one memory-mapped ``.npy`` file per modality, so that data
larger than memory is decoded once and then read a batch at a time.

Why ``.npy`` memory maps: fixed-shape rows read at any index with no decoding step (docs/performance.md has the
measurement against Arrow). The store is keyed by the manifest's fingerprint (its bytes, its options, every file's
size and time) and is:
- written in shards of ``SHARD_ROWS`` rows, never a whole split in memory; each shard's bytes are written with
  plain file writes (a full disk is an error, not a crash) and recorded, with a SHA-256 per modality, in
  ``shards/<i>.json`` once on disk;
- atomic: it is built in ``<name>.building`` and renamed to ``<name>`` when complete, so a half-built store is
  never read;
- resumable: a build that stops (killed, disk full) continues from its recorded shards;
- checked: opening compares each file's size with what the rows need (no pass over the data); ``full_check``
  re-hashes every shard. A truncated or altered shard is named in the log and decoded again, nothing else is.
A store written by another format version is rebuilt (said in the log). Processes opening the same store wait
for the one building it (a file lock).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from crossdistill.atomic import is_disk_full, space_problem, write_text_atomic
from crossdistill.data.columns import COLUMN_KINDS
from crossdistill.data.manifest_options import ModalityColumns
from crossdistill.data.table import ManifestError

log = logging.getLogger("crossdistill")
STORE_FORMAT = 1
SHARD_ROWS = 1024
Decoded = tuple[dict[str, Any] | None, str | None]  # a row's decoded cells, or the problem with it
Decode = Callable[[list[dict[str, Any]], int], Iterator[Decoded]]  # (rows, the table's row count) -> in order


class StoreError(ManifestError):
    """The store cannot be built (no space on its disk); names the folder and the numbers."""


def _bits(mask: np.ndarray) -> str:
    return base64.b64encode(np.packbits(mask.astype(bool)).tobytes()).decode()


def _unbits(text: str, count: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:count].astype(bool)


def _row_bytes(layout: dict[str, Any]) -> int:
    return int(np.prod(layout["shape"], dtype=np.int64)) * np.dtype(layout["dtype"]).itemsize


def _data_offset(path: Path) -> int:
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
        return _unbits(self.meta["ok"], self.rows)

    @property
    def problems(self) -> list[str]:
        return list(self.meta["problems"])

    def values(self, modality: str) -> np.ndarray:
        return np.load(self.folder / f"{modality}.npy", mmap_mode="r")

    def present(self, modality: str) -> np.ndarray:
        return _unbits(self.meta["present"][modality], self.rows)

    def extra(self, modality: str) -> dict[str, Any]:
        return dict(self.meta["extra"].get(modality, {}))


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f"{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # (another process building this store: wait for it)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def open_store(folder: Path, rows: list[dict[str, Any]], modalities: dict[str, ModalityColumns], decode: Decode,
               what: str, full_check: bool = False) -> DecodedStore:
    """The store of ``rows`` at ``folder``: opened (checked), repaired, resumed or built, whichever applies."""
    building = folder.with_name(folder.name + ".building")
    with _locked(folder):
        if (folder / "store.json").is_file():
            meta = json.loads((folder / "store.json").read_text())
            if meta.get("format") != STORE_FORMAT or meta.get("rows") != len(rows):
                log.info("%s: decoded store from another version (format %s; this one reads %s): rebuilt", folder,
                         meta.get("format"), STORE_FORMAT)
                shutil.rmtree(folder)
            else:
                bad = _bad_shards(folder, meta, full_check)
                if not bad:
                    return DecodedStore(folder, meta)
                log.warning("%s: %s; decoding those rows again", folder, "; ".join(bad.values()))
                shutil.rmtree(building, ignore_errors=True)
                folder.rename(building)
                (building / "store.json").unlink()
                for shard in bad:
                    (building / "shards" / f"{shard}.json").unlink(missing_ok=True)
        elif folder.exists():
            shutil.rmtree(folder)  # (not a store: nothing this version wrote)
        _Builder(building, rows, modalities, what).build(decode)
        building.rename(folder)
        return DecodedStore(folder, json.loads((folder / "store.json").read_text()))


def _bad_shards(folder: Path, meta: dict[str, Any], full_check: bool) -> dict[int, str]:
    """Shard -> what is wrong with it: its bytes missing (a file shorter than the rows need; cheap) or, with
    ``full_check``, not those recorded at build. A file is extended back to its size for the rebuild."""
    bad: dict[int, str] = {}
    count, per_shard = meta["rows"], meta["shard_rows"]
    for modality, layout in meta["modalities"].items():
        path = folder / f"{modality}.npy"
        row_bytes = _row_bytes(layout)
        if not path.is_file():
            return dict.fromkeys(range(len(meta["shards"])), f"{path.name} is missing")
        offset, size = _data_offset(path), path.stat().st_size
        for shard, record in enumerate(meta["shards"]):
            start, stop = shard * per_shard, min((shard + 1) * per_shard, count)
            if size < offset + stop * row_bytes:
                bad[shard] = f"shard {shard} (rows {start + 1}-{stop}) of {path.name} is truncated"
            elif full_check:
                with path.open("rb") as handle:
                    handle.seek(offset + start * row_bytes)
                    digest = hashlib.sha256(handle.read((stop - start) * row_bytes)).hexdigest()
                if digest != record["digests"][modality]:
                    bad[shard] = f"shard {shard} (rows {start + 1}-{stop}) of {path.name} was altered"
        if size != offset + count * row_bytes:
            os.truncate(path, offset + count * row_bytes)
    return bad


class _Builder:
    """Writes the shards a store still lacks, then its ``store.json``."""

    def __init__(self, folder: Path, rows: list[dict[str, Any]], modalities: dict[str, ModalityColumns],
                 what: str) -> None:
        self.folder, self.rows, self.modalities, self.what = folder, rows, modalities, what
        (folder / "shards").mkdir(parents=True, exist_ok=True)
        plan = folder / "build.json"
        self.layout: dict[str, Any] = json.loads(plan.read_text()) if plan.is_file() else {
            "format": STORE_FORMAT, "rows": len(rows), "shard_rows": SHARD_ROWS, "modalities": {}}
        self.per_shard = int(self.layout["shard_rows"])

    def _shard_path(self, shard: int) -> Path:
        return self.folder / "shards" / f"{shard}.json"

    def build(self, decode: Decode) -> None:
        count = -(-len(self.rows) // self.per_shard)
        todo = [s for s in range(count) if not self._shard_path(s).is_file()]
        if todo and len(todo) < count:
            log.info("%s: resuming a decoded store: %d of %d shards to go", self.folder, len(todo), count)
        stream = decode([r for s in todo for r in self.rows[s * self.per_shard : (s + 1) * self.per_shard]],
                        len(self.rows))
        try:
            for shard in todo:
                start, stop = shard * self.per_shard, min((shard + 1) * self.per_shard, len(self.rows))
                self._write_shard(shard, start, list(islice(stream, stop - start)))
        except OSError as error:
            if not is_disk_full(error):
                raise
            raise StoreError(f"{self.what}: the disk of {self.folder} filled while decoding ({error}); the store "
                             f"needs {self._need() / 1e9:.2f} GB: free space and run again (it resumes)") from None
        self._finish(count)

    def _need(self) -> int:
        return sum(len(self.rows) * _row_bytes(m) for m in self.layout["modalities"].values())

    def _file(self, modality: str, sample: np.ndarray, row: int) -> Path:
        """The modality's ``.npy`` file, made (and its space reserved) on the first row that has it."""
        path = self.folder / f"{modality}.npy"
        known = self.layout["modalities"].get(modality)
        if known is None:
            known = {"shape": list(sample.shape), "dtype": sample.dtype.str, "first_row": row}
            self.layout["modalities"][modality] = known
            need = len(self.rows) * sample.nbytes
            problem = space_problem(self.folder, need, f"{self.what}: the decoded store of modality {modality!r}")
            if problem:
                raise StoreError(f"{problem}: free space or point $CROSSDISTILL_CACHE at a larger disk")
            np.lib.format.open_memmap(path, mode="w+", dtype=sample.dtype, shape=(len(self.rows), *sample.shape))
            try:
                with path.open("r+b") as handle:
                    os.posix_fallocate(handle.fileno(), 0, path.stat().st_size)  # (a full disk fails here)
            except OSError as error:
                if is_disk_full(error):
                    raise
            write_text_atomic(self.folder / "build.json", json.dumps(self.layout))
        elif list(sample.shape) != known["shape"] or sample.dtype.str != known["dtype"]:
            raise ManifestError(f"{self.what}: row {row}, modality {modality!r}: shape {sample.shape}, but row "
                                f"{known['first_row']} has {tuple(known['shape'])}; every row must give the same "
                                "shape")
        return path

    def _write_shard(self, shard: int, start: int, decoded: list[Decoded]) -> None:
        ok = np.asarray([bad is None for _, bad in decoded])
        record: dict[str, Any] = {"ok": _bits(ok), "problems": [bad for _, bad in decoded if bad is not None],
                                  "present": {}, "digests": {}, "extra": {}}
        for modality, spec in self.modalities.items():
            given = [i for i, (cells, _) in enumerate(decoded) if cells is not None and cells[modality] is not None]
            record["present"][modality] = _bits(np.isin(np.arange(len(decoded)), given))
            values: list[np.ndarray] = []
            if given:  # (a pretrained model runs here, a shard at a time)
                decoded_all, record["extra"][modality] = COLUMN_KINDS.get(spec.kind).decode_all(
                    spec, [decoded[i][0][modality] for i in given])
                values = [np.asarray(v) for v in decoded_all]
                for i, value in zip(given, values, strict=True):
                    self._file(modality, value, self.rows[start + i]["_row"])
            if modality in self.layout["modalities"]:  # (rows without it are zeros, written all the same)
                record["digests"][modality] = self._write_block(modality, start, len(decoded), given, values)
        write_text_atomic(self._shard_path(shard), json.dumps(record))

    def _write_block(self, modality: str, start: int, size: int, given: list[int], values: list[np.ndarray]
                     ) -> str:
        """Write rows ``start`` .. ``start + size`` of the modality's file; returns their SHA-256."""
        layout = self.layout["modalities"][modality]
        block = np.zeros((size, *layout["shape"]), dtype=np.dtype(layout["dtype"]))
        if given:
            block[given] = np.stack(values)
        path, payload = self.folder / f"{modality}.npy", block.tobytes()
        with path.open("r+b") as handle:
            handle.seek(_data_offset(path) + start * (len(payload) // size))
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        return hashlib.sha256(payload).hexdigest()

    def _rows_of(self, start: int) -> list[dict[str, Any]]:
        return self.rows[start : start + self.per_shard]

    def _finish(self, count: int) -> None:
        """Gather the shards' records into ``store.json`` (a modality no row has is an error)."""
        records = [json.loads(self._shard_path(s).read_text()) for s in range(count)]
        meta = {**self.layout, "shards": [], "problems": [], "extra": {}}
        ok, present = [], {m: [] for m in self.modalities}
        for shard, record in enumerate(records):
            size = len(self._rows_of(shard * self.per_shard))
            ok.append(_unbits(record["ok"], size))
            meta["problems"] += record["problems"]
            for modality in self.modalities:
                present[modality].append(_unbits(record["present"][modality], size))
                if record["extra"].get(modality) and any(present[modality][-1]):
                    meta["extra"][modality] = record["extra"][modality]
            meta["shards"].append({"digests": record["digests"]})
        for modality in self.modalities:
            if modality not in self.layout["modalities"] and ok and np.concatenate(ok).any():
                raise ManifestError(f"{self.what}: modality {modality!r} is missing in every row")
            for shard, record in enumerate(meta["shards"]):  # (shards before the file was made: zeros)
                if modality in self.layout["modalities"] and modality not in record["digests"]:
                    row_bytes = _row_bytes(self.layout["modalities"][modality])
                    zeros = bytes(len(self._rows_of(shard * self.per_shard)) * row_bytes)
                    record["digests"][modality] = hashlib.sha256(zeros).hexdigest()
        meta["ok"] = _bits(np.concatenate(ok) if ok else np.zeros(0, bool))
        meta["present"] = {m: _bits(np.concatenate(p) if p else np.zeros(0, bool)) for m, p in present.items()}
        write_text_atomic(self.folder / "store.json", json.dumps(meta))
