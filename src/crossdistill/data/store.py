"""The decoded store: a table's decoded rows on disk, one memory-mapped ``.npy`` file per modality, so that data
larger than memory is decoded once and then read a batch at a time.

Why ``.npy`` memory maps: fixed-shape rows read at any index with no decoding step (docs/performance.md has the
measurement against Arrow). The store is keyed by the manifest's fingerprint (its bytes, its options, every file's
size and time) and is:
- compact: images and 16-bit audio are held as their exact integer codes (``store_codes``: uint8, int16), which
  read back bit for bit as the decoder's float32 values;
- written in shards of ``SHARD_ROWS`` rows, never a whole split in memory; each shard is decoded and written by
  one process (``workers`` of them in parallel, so that the building process is no funnel) with file writes,
  straight to the disk where a shard fills whole pages (``store_io``: no page-cache copy, no two workers taking
  turns at a file's lock; a full disk is an error, not a crash) and recorded, with a SHA-256 per modality, in
  ``shards/<i>.json`` once on disk;
- atomic: it is built in ``<name>.building`` and renamed to ``<name>`` when complete, so a half-built store is
  never read;
- resumable: a build that stops (killed, disk full) continues from its recorded shards (a power cut may lose
  recent shards' bytes before they reach the disk: a worker does not sync the shard it wrote, since that halved
  the build's speed; the building process syncs the files as shards complete and when the store is; ``full_check``
  finds such shards);
- checked: opening compares each file's size with what the rows need (no pass over the data); ``full_check``
  re-hashes every shard. A truncated or altered shard is named in the log and decoded again, nothing else is.
Another format version's store is rebuilt (said in the log). Processes opening one store wait for its builder;
under torchrun (several ranks, one store on shared storage) the ranks build it together: rank r decodes shards
r, r + N, ..., and rank 0 finishes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

from crossdistill.atomic import is_disk_full, write_text_atomic
from crossdistill.data.manifest_options import ModalityColumns
from crossdistill.data.row_decoding import resolve_workers
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
from crossdistill.data.store_io import new_rows_file
from crossdistill.data.store_writer import DecodeRows, InexactCodes, locked, shard_record, write_shard
from crossdistill.data.table import ManifestError
from crossdistill.distributed import barrier, gather_strings, rank, world_size

log = logging.getLogger("crossdistill")
SHARD_ROWS = 1024


def open_store(folder: Path, rows: list[dict[str, Any]], modalities: dict[str, ModalityColumns],
               decode: DecodeRows, what: str, workers: int | str = 0, full_check: bool = False) -> DecodedStore:
    """The store of ``rows`` at ``folder``: opened (checked), repaired, resumed or built, whichever applies.
    ``decode`` (picklable) decodes a list of rows; ``workers`` processes decode and write shards in parallel."""
    building = folder.with_name(folder.name + ".building")
    if world_size() > 1 and not (folder / "store.json").is_file():
        _build_together(folder, building, _Builder(building, rows, modalities, what, decode, workers))
    with locked(folder):
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
                    shard_record(building, shard).unlink(missing_ok=True)
        elif folder.exists():
            shutil.rmtree(folder)  # (not a store: nothing this version wrote)
        started = time.perf_counter()
        builder = _Builder(building, rows, modalities, what, decode, workers)
        builder.build()
        building.rename(folder)
        _log_built(what, len(rows), builder.workers, time.perf_counter() - started)
        return DecodedStore(folder, json.loads((folder / "store.json").read_text()))


def _log_built(what: str, rows: int, workers: int, seconds: float) -> None:
    """The build's own time (starting the workers, decoding, writing, syncing; not the fingerprint or the table
    read before it), so that a user sees what the store cost and what ``data.workers`` bought."""
    log.info("%s: decoded store of %d rows built in %.2f s (%s worker processes)", what, rows, seconds,
             workers or "no")


def _build_together(folder: Path, building: Path, builder: _Builder) -> None:
    """Every rank decodes its share of the shards into one store; rank 0 finishes it. A rank's error (a bad
    shape, a full disk) is raised on every rank, so that none waits for the others forever."""
    if rank() == 0 and folder.exists():
        shutil.rmtree(folder)  # (a folder without store.json: not a store)
    barrier()
    started = time.perf_counter()
    while True:
        problem, lost = "", ""
        try:
            builder.build(share=(rank(), world_size()))
        except ManifestError as error:
            problem = str(error)
        except InexactCodes as inexact:
            lost = json.dumps([inexact.modality, inexact.row])
        _raise_any(gather_strings(problem))
        found = [json.loads(one) for one in gather_strings(lost) if one]
        if not found:
            break
        if rank() == 0:  # (every rank's shares start again, the modality as float32)
            builder.store_plain(*found[0])
        barrier()
    if rank() == 0:
        try:
            builder.finish()
            building.rename(folder)
            _log_built(f"{builder.what} ({world_size()} ranks)", len(builder.rows), builder.workers,
                       time.perf_counter() - started)
        except ManifestError as error:
            problem = str(error)
    _raise_any(gather_strings(problem))


def _raise_any(problems: list[str]) -> None:
    first = next((p for p in problems if p), None)
    if first:
        raise ManifestError(first)


class _Builder:
    """Builds the shards a store still lacks (here or in worker processes), then its ``store.json``."""

    def __init__(self, folder: Path, rows: list[dict[str, Any]], modalities: dict[str, ModalityColumns], what: str,
                 decode: DecodeRows, workers: int | str) -> None:
        self.folder, self.rows, self.modalities, self.what = folder, rows, modalities, what
        self.decode, self.workers = decode, resolve_workers(workers, len(rows))
        plan = folder / "build.json"
        self.layout: dict[str, Any] = json.loads(plan.read_text()) if plan.is_file() else {
            "format": STORE_FORMAT, "rows": len(rows), "shard_rows": SHARD_ROWS, "modalities": {}}
        self.per_shard = int(self.layout["shard_rows"])

    def _prepare(self) -> None:
        """The folder, its plan, and (a store under repair) every file back to its size."""
        (self.folder / "shards").mkdir(parents=True, exist_ok=True)
        with locked(self.folder):
            plan = self.folder / "build.json"
            if plan.is_file():
                self.layout = json.loads(plan.read_text())  # (as another rank or an earlier attempt left it)
            else:
                write_text_atomic(plan, json.dumps(self.layout))
        for modality, layout in self.layout["modalities"].items():
            path = self.folder / f"{modality}.npy"
            if not path.is_file():
                new_rows_file(path, np.dtype(layout["dtype"]), (len(self.rows), *layout["shape"]))
            else:
                os.truncate(path, data_offset(path) + len(self.rows) * row_bytes(layout))

    def build(self, share: tuple[int, int] = (0, 1)) -> None:
        """Decode and write the shards not yet recorded (of ``share`` = (rank, ranks): shards rank, rank + ranks,
        ...), then (one process) finish the store."""
        self._prepare()
        mine = range(share[0], self._count(), share[1])
        todo = [s for s in mine if not shard_record(self.folder, s).is_file()]
        if todo and len(todo) < len(mine):
            log.info("%s: resuming a decoded store: %d of %d shards to go", self.folder, len(todo), len(mine))
        write = partial(write_shard, self.folder, len(self.rows), self.modalities, self.what, self.decode)
        jobs = [(s, s * self.per_shard, self._rows_of(s * self.per_shard)) for s in todo]
        console = Console(stderr=True)
        try:
            with Progress(transient=True, console=console, disable=not console.is_terminal) as bar:
                task = bar.add_task(f"decoding {Path(self.what).name} ({self.workers or 'no'} worker processes)",
                                    total=sum(len(rows) for _, _, rows in jobs))
                for done in self._run(write, jobs):
                    bar.advance(task, done)
        except InexactCodes as inexact:
            if share[1] > 1:
                raise  # (the ranks start again together)
            self.store_plain(inexact.modality, inexact.row)
            self.build(share)
            return
        except OSError as error:
            if not is_disk_full(error):
                raise
            raise StoreError(f"{self.what}: the disk of {self.folder} filled while decoding ({error}); the store "
                             f"needs {self._need() / 1e9:.2f} GB: free space and run again (it resumes)") from None
        if share[1] == 1:
            self.finish()

    def _run(self, write: partial, jobs: list[tuple[int, int, list[dict[str, Any]]]]) -> Iterator[int]:
        """Each job's row count as it is written: here, or in worker processes (started fresh, nothing of this
        process's threads inherited) with a few shards in flight, each writing its own shard. This process, idle
        meanwhile, syncs the files as shards complete: their write-back runs beside the decoding, no worker waits
        for it, and the sync that completes the store finds little left to write."""
        if self.workers == 0:
            for job in jobs:
                yield write(*job)
            return
        pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))
        pending: deque[Future] = deque()
        try:
            for job in jobs:
                pending.append(pool.submit(write, *job))
                if len(pending) >= 2 * self.workers:
                    yield pending.popleft().result()
                    self._sync_files()
            while pending:
                yield pending.popleft().result()
                self._sync_files()
        except BaseException:
            pool.shutdown(cancel_futures=True)  # (the shards not started are not written)
            raise
        pool.shutdown(wait=False)  # (every shard is written: the workers' exit is not waited for)

    def _sync_files(self) -> None:
        """Every modality file's bytes to the disk."""
        for path in self.folder.glob("*.npy"):
            with path.open("rb+") as handle:
                os.fsync(handle.fileno())

    def store_plain(self, modality: str, row: int) -> None:
        """Hold ``modality`` as float32 from now on (data row ``row`` is not exact in its integer codes): its file
        and every shard record go, so every shard is decoded again."""
        with locked(self.folder):
            plan = self.folder / "build.json"
            self.layout = json.loads(plan.read_text())
            self.layout["plain"] = sorted({*self.layout.get("plain", []), modality})
            held = self.layout["modalities"].pop(modality)["dtype"]
            write_text_atomic(plan, json.dumps(self.layout))
        log.info("%s: data row %d of modality %r is not exact in %s codes (a resampled clip, say): the modality is "
                 "stored as float32; decoding again", self.what, row, modality, np.dtype(held).name)
        (self.folder / f"{modality}.npy").unlink(missing_ok=True)
        for record in (self.folder / "shards").glob("*.json"):
            record.unlink()

    def _count(self) -> int:
        return -(-len(self.rows) // self.per_shard)

    def _need(self) -> int:
        return sum(len(self.rows) * row_bytes(m) for m in self.layout["modalities"].values())

    def _rows_of(self, start: int) -> list[dict[str, Any]]:
        return self.rows[start : start + self.per_shard]

    def finish(self) -> None:
        """Gather the shards' records into ``store.json`` (a modality no row has is an error)."""
        count, plan = self._count(), self.folder / "build.json"
        if plan.is_file():
            self.layout = json.loads(plan.read_text())  # (with the files other ranks made)
        records = [json.loads(shard_record(self.folder, s).read_text()) for s in range(count)]
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
        self._sync_files()  # (every byte on disk before the store is declared complete)
        write_text_atomic(self.folder / "store.json", json.dumps(meta))
