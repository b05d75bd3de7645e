"""Teacher-output cache: teacher outputs computed once per split into memory-mapped ``.npy`` files (one file
per tensor, N x ...), keyed by a fingerprint of teacher weights + data split + preprocessing.

A cache whose fingerprint, files or checksums do not match is rebuilt, never silently used. Opening it costs no
pass over the data: each file's SHA-256 and its size and modification time are recorded at build time, and a
file is re-hashed only when its size or time differ (``full_check`` re-hashes every file). The build writes
batch by batch into memory-mapped files after estimating their size: a disk that cannot hold them refuses the
cache with the numbers (the teacher then runs online). A teacher that reads a randomly augmented modality cannot
be cached (its outputs would differ every epoch): ``CacheRefused``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from crossdistill.atomic import space_problem
from crossdistill.checkpoint import tensors_digest
from crossdistill.data.batch import Batch, SplitData
from crossdistill.data.sources import file_stamp, sha256_file
from crossdistill.models.outputs import Outputs

log = logging.getLogger(__name__)
FORMAT_VERSION = 3  # 3: written batch by batch, file stamps in meta.json; 2: keyed by tensors_digest


class CacheRefused(RuntimeError):
    """The teacher's inputs are randomly augmented, so its outputs cannot be precomputed."""


def fingerprint(teacher: nn.Module, data_fingerprint: str, split: str, reads: list[str]) -> str:
    key = json.dumps([FORMAT_VERSION, tensors_digest(teacher.state_dict()), data_fingerprint, split, sorted(reads)])
    return hashlib.sha256(key.encode()).hexdigest()[:24]


class TeacherCache:
    """Callable ``Batch -> Outputs`` that looks teacher outputs up by ``batch.index``."""

    def __init__(self, directory: Path, arrays: dict[str, np.ndarray], index: np.ndarray) -> None:
        self.directory, self.arrays = directory, arrays
        self.row_of = np.full(int(index.max()) + 1, -1, dtype=np.int64)
        self.row_of[index] = np.arange(index.size)

    def __call__(self, batch: Batch) -> Outputs:
        ids = batch.index.cpu().numpy()
        rows = self.row_of[ids] if ids.max() < self.row_of.size else np.full_like(ids, -1)
        if (rows < 0).any():
            raise KeyError(f"teacher cache {self.directory} has no entry for sample ids {ids[rows < 0][:5]}")
        device = batch.index.device
        get = lambda name: torch.from_numpy(np.ascontiguousarray(self.arrays[name][rows])).to(device)  # noqa: E731
        feats = {name[6:]: get(name) for name in self.arrays if name.startswith("feats.")}
        return Outputs(logits=get("logits") if "logits" in self.arrays else None, embed=get("embed"), feats=feats)

    @classmethod
    def open(cls, teacher: nn.Module, data: SplitData, *, split: str, data_fingerprint: str, reads: list[str],
             root: Path, augmented: set[str], batch_size: int = 256, full_check: bool = False) -> TeacherCache:
        """Load the cache for (teacher, split) if valid, else (re)build it."""
        modalities = set(getattr(teacher, "modalities", []))
        if modalities & augmented:
            raise CacheRefused(f"teacher reads randomly augmented modality "
                               f"{', '.join(sorted(modalities & augmented))}; its outputs cannot be cached")
        names = sorted({"embed", *reads})
        directory = root / fingerprint(teacher, data_fingerprint, split, names)
        batches = (data.batch(torch.arange(s, min(s + batch_size, len(data)))) for s in range(0, len(data), batch_size))
        return cls._opened(teacher, batches, len(data), directory, names, full_check, split)

    @classmethod
    def over(cls, teacher: nn.Module, batches: Iterable[Batch], *, root: Path, data_key: str,
             reads: Sequence[str] = ("logits",), rows: int | None = None, full_check: bool = False) -> TeacherCache:
        """The cache of ``teacher``'s outputs over your own data: ``batches`` (e.g. your ``DataLoader``, in any
        order, yielding ``Batch``es whose ``index`` numbers your samples) are run once and their outputs
        stored under ``root``, keyed by the teacher's weights and ``data_key`` (name your data's version: a
        changed key rebuilds). ``rows``: how many samples (default ``len(batches.dataset)``)."""
        count = rows if rows is not None else len(batches.dataset)  # type: ignore[attr-defined]
        names = sorted({"embed", *reads})
        return cls._opened(teacher, iter(batches), count, root / fingerprint(teacher, data_key, "user", names), names,
                           full_check, data_key)

    @classmethod
    def _opened(cls, teacher: nn.Module, batches: Iterator[Batch], rows: int, directory: Path, names: list[str],
                full_check: bool, what: str) -> TeacherCache:
        arrays = _load_valid(directory, names, full_check)
        if arrays is None:
            log.info("building teacher cache %s (%s, %d samples)", directory.name, what, rows)
            _build(directory, teacher, batches, rows, names)
            arrays = _load_valid(directory, names)
            assert arrays is not None, f"teacher cache {directory} failed to validate right after building"
        index = np.load(directory / "index.npy")
        return cls(directory, arrays, index)


def _load_valid(directory: Path, names: list[str], full_check: bool = False) -> dict[str, np.ndarray] | None:
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta["names"] != names:
            raise ValueError("stored outputs differ from the ones needed")
        for file, digest in meta["sha256"].items():
            unchanged = not full_check and file_stamp(directory / file) == meta["stamps"][file]
            if not unchanged and sha256_file(directory / file) != digest:
                raise ValueError(f"checksum mismatch in {file}")
        return {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in names}
    except (ValueError, KeyError, OSError, json.JSONDecodeError) as error:
        log.warning("teacher cache %s is invalid (%s); rebuilding", directory, error)
        return None


@torch.no_grad()
def _write_outputs(staging: Path, teacher: nn.Module, batches: Iterator[Batch], rows: int, names: list[str]
                   ) -> np.ndarray:
    """The teacher's outputs on every batch, into (N, ...) float32 memory-mapped files; returns the (N,) sample
    ids in the order written."""
    teacher.eval()
    device = next(teacher.parameters()).device
    files: dict[str, np.memmap] = {}
    ids, start = np.zeros(rows, np.int64), 0
    for batch in batches:
        out = teacher(batch.to(device))
        values = {name: out.read(name).float().cpu().numpy() for name in names}
        if not files:
            _check_space(staging.parent, {n: v.shape[1:] for n, v in values.items()}, rows)
            files = {n: np.lib.format.open_memmap(staging / f"{n}.npy", "w+", np.float32, (rows, *v.shape[1:]))
                     for n, v in values.items()}
        if start + len(batch) > rows:
            raise ValueError(f"teacher cache: the batches hold more than the {rows} rows announced")
        for name, value in values.items():
            files[name][start : start + len(batch)] = value
        ids[start : start + len(batch)] = batch.index.cpu().numpy()
        start += len(batch)
    if start != rows:
        raise ValueError(f"teacher cache: the batches held {start} rows, {rows} were announced")
    for array in files.values():
        array.flush()
    return ids


def _check_space(folder: Path, shapes: dict[str, tuple[int, ...]], rows: int) -> None:
    """Refuse, with the numbers, a cache the disk cannot hold."""
    need = rows * sum(4 * int(np.prod(shape)) for shape in shapes.values())
    outputs = ", ".join(f"{n} {tuple(s)}" for n, s in shapes.items())
    problem = space_problem(folder, need, f"the teacher cache ({rows} rows of {outputs}, float32)")
    if problem:
        raise CacheRefused(problem)


def _build(directory: Path, teacher: nn.Module, batches: Iterator[Batch], rows: int, names: list[str]) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        np.save(staging / "index.npy", _write_outputs(staging, teacher, batches, rows, names))
        files = ["index.npy", *(f"{n}.npy" for n in names)]
        meta = {"names": names, "shapes": {n: list(np.load(staging / f"{n}.npy", mmap_mode="r").shape)
                                           for n in names},
                "sha256": {file: sha256_file(staging / file) for file in files},
                "stamps": {file: file_stamp(staging / file) for file in files}}
        (staging / "meta.json").write_text(json.dumps(meta, indent=1))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)  # atomic: readers see the old cache or the complete new one
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # (gone already when the build succeeded)
