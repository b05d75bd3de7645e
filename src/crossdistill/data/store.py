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
Another format version's store is rebuilt (said in the log). Processes opening one store wait for its builder;
under torchrun (several ranks, one store on shared storage) the ranks build it together: rank r decodes shards
r, r + N, ..., and rank 0 finishes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from crossdistill.atomic import is_disk_full, space_problem, write_text_atomic
from crossdistill.data.columns import COLUMN_KINDS
from crossdistill.data.manifest_options import ModalityColumns
from crossdistill.data.store_files import (
    STORE_FORMAT,
    DecodedStore,
    StoreError,
    bad_shards,
    data_offset,
    pack_bits,
    row_bytes,
    unpack_bits,
)
from crossdistill.data.table import ManifestError
from crossdistill.distributed import barrier, gather_strings, rank, world_size

log = logging.getLogger("crossdistill")
SHARD_ROWS = 1024
Decoded = tuple[dict[str, Any] | None, str | None]  # a row's decoded cells, or the problem with it
Decode = Callable[[list[dict[str, Any]], int], Iterator[Decoded]]  # (rows, the table's row count) -> in order


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
    if world_size() > 1 and not (folder / "store.json").is_file():
        _build_together(folder, building, rows, modalities, decode, what)
    with _locked(folder):
        if (folder / "store.json").is_file():
            meta = json.loads((folder / "store.json").read_text())
            if meta.get("format") != STORE_FORMAT:
                log.info("%s: decoded store from another version (format %s; this one reads %s): rebuilt", folder,
                         meta.get("format"), STORE_FORMAT)
                shutil.rmtree(folder)
            elif meta.get("rows") != len(rows):
                log.warning("%s: the decoded store holds %s rows, its table %d: rebuilt", folder, meta.get("rows"),
                            len(rows))
                shutil.rmtree(folder)
            else:
                bad = bad_shards(folder, meta, full_check)
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


def _build_together(folder: Path, building: Path, rows: list[dict[str, Any]],
                    modalities: dict[str, ModalityColumns], decode: Decode, what: str) -> None:
    """Every rank decodes its share of the shards into one store; rank 0 finishes it. A rank's error (a bad
    shape, a full disk) is raised on every rank, so that none waits for the others forever."""
    if rank() == 0 and folder.exists():
        shutil.rmtree(folder)  # (a folder without store.json: not a store)
    barrier()
    problem = ""
    try:
        builder = _Builder(building, rows, modalities, what)
        builder.build(decode, share=(rank(), world_size()))
    except ManifestError as error:
        problem = str(error)
    _raise_any(gather_strings(problem))
    if rank() == 0:
        try:
            builder.finish()
            building.rename(folder)
        except ManifestError as error:
            problem = str(error)
    _raise_any(gather_strings(problem))


def _raise_any(problems: list[str]) -> None:
    first = next((p for p in problems if p), None)
    if first:
        raise ManifestError(first)


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
        for modality, layout in self.layout["modalities"].items():  # (a store under repair: files back to size)
            path = folder / f"{modality}.npy"
            if not path.is_file():
                np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(layout["dtype"]),
                                          shape=(len(rows), *layout["shape"]))
            else:
                os.truncate(path, data_offset(path) + len(rows) * row_bytes(layout))

    def _shard_path(self, shard: int) -> Path:
        return self.folder / "shards" / f"{shard}.json"

    def build(self, decode: Decode, share: tuple[int, int] = (0, 1)) -> None:
        """Decode and write the shards not yet recorded (of ``share`` = (rank, ranks): shards rank, rank + ranks,
        ...)."""
        count = self._count()
        mine = range(share[0], count, share[1])
        todo = [s for s in mine if not self._shard_path(s).is_file()]
        if todo and len(todo) < len(mine):
            log.info("%s: resuming a decoded store: %d of %d shards to go", self.folder, len(todo), len(mine))
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
        if share[1] == 1:
            self.finish()

    def _count(self) -> int:
        return -(-len(self.rows) // self.per_shard)

    def _need(self) -> int:
        return sum(len(self.rows) * row_bytes(m) for m in self.layout["modalities"].values())

    def _file(self, modality: str, sample: np.ndarray, row: int) -> Path:
        """The modality's ``.npy`` file, made (and its space reserved) on the first row that has it."""
        path = self.folder / f"{modality}.npy"
        known = self.layout["modalities"].get(modality)
        if known is None:
            with _locked(self.folder):  # (under torchrun another rank may have made it)
                return self._new_file(modality, sample, row)
        if list(sample.shape) != known["shape"] or sample.dtype.str != known["dtype"]:
            raise ManifestError(f"{self.what}: row {row}, modality {modality!r}: shape {sample.shape}, but row "
                                f"{known['first_row']} has {tuple(known['shape'])}; every row must give the same "
                                "shape")
        return path

    def _new_file(self, modality: str, sample: np.ndarray, row: int) -> Path:
        """Make the modality's file (and reserve its space), or take the one another rank has just made."""
        plan = self.folder / "build.json"
        if plan.is_file():
            self.layout["modalities"] |= json.loads(plan.read_text())["modalities"]
        if modality in self.layout["modalities"]:
            return self._file(modality, sample, row)
        path = self.folder / f"{modality}.npy"
        problem = space_problem(self.folder, len(self.rows) * sample.nbytes,
                                f"{self.what}: the decoded store of modality {modality!r}")
        if problem:
            raise StoreError(f"{problem}: free space or point $CROSSDISTILL_CACHE at a larger disk")
        np.lib.format.open_memmap(path, mode="w+", dtype=sample.dtype, shape=(len(self.rows), *sample.shape))
        try:
            with path.open("r+b") as handle:
                os.posix_fallocate(handle.fileno(), 0, path.stat().st_size)  # (a full disk fails here)
        except OSError as error:
            if is_disk_full(error):
                raise
        self.layout["modalities"][modality] = {"shape": list(sample.shape), "dtype": sample.dtype.str,
                                               "first_row": row}
        write_text_atomic(plan, json.dumps(self.layout))
        return path

    def _write_shard(self, shard: int, start: int, decoded: list[Decoded]) -> None:
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
            handle.seek(data_offset(path) + start * (len(payload) // size))
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        return hashlib.sha256(payload).hexdigest()

    def _rows_of(self, start: int) -> list[dict[str, Any]]:
        return self.rows[start : start + self.per_shard]

    def finish(self) -> None:
        """Gather the shards' records into ``store.json`` (a modality no row has is an error)."""
        count, plan = self._count(), self.folder / "build.json"
        if plan.is_file():
            self.layout = json.loads(plan.read_text())  # (with the files other ranks made)
        records = [json.loads(self._shard_path(s).read_text()) for s in range(count)]
        meta = {**self.layout, "shards": [], "problems": [], "extra": {}}
        ok, present = [], {m: [] for m in self.modalities}
        for shard, record in enumerate(records):
            size = len(self._rows_of(shard * self.per_shard))
            ok.append(unpack_bits(record["ok"], size))
            meta["problems"] += record["problems"]
            for modality in self.modalities:
                present[modality].append(unpack_bits(record["present"][modality], size))
                if record["extra"].get(modality) and any(present[modality][-1]):
                    meta["extra"][modality] = record["extra"][modality]
            meta["shards"].append({"digests": record["digests"]})
        for modality in self.modalities:
            if modality not in self.layout["modalities"] and ok and np.concatenate(ok).any():
                raise ManifestError(f"{self.what}: modality {modality!r} is missing in every row")
            for shard, record in enumerate(meta["shards"]):  # (shards before the file was made: zeros)
                if modality in self.layout["modalities"] and modality not in record["digests"]:
                    size = row_bytes(self.layout["modalities"][modality])
                    zeros = bytes(len(self._rows_of(shard * self.per_shard)) * size)
                    record["digests"][modality] = hashlib.sha256(zeros).hexdigest()
        meta["ok"] = pack_bits(np.concatenate(ok) if ok else np.zeros(0, bool))
        meta["present"] = {m: pack_bits(np.concatenate(p) if p else np.zeros(0, bool)) for m, p in present.items()}
        write_text_atomic(self.folder / "store.json", json.dumps(meta))
