"""Teacher-output cache: teacher outputs computed once per split into memory-mapped ``.npy`` files (one file
per tensor, N x ...), keyed by a fingerprint of teacher weights + data split + preprocessing.

A cache whose fingerprint, files or checksums do not match is rebuilt, never silently used. A teacher that
reads a randomly augmented modality cannot be cached (its outputs would differ every epoch): ``CacheRefused``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from crossdistill.checkpoint import tensors_digest
from crossdistill.data.batch import Batch, SplitData
from crossdistill.data.sources import sha256_file
from crossdistill.models.outputs import Outputs

log = logging.getLogger(__name__)
FORMAT_VERSION = 2  # 2: keyed by checkpoint.tensors_digest; stores only what the terms read (+ embed)


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
             root: Path, augmented: set[str], batch_size: int = 256) -> TeacherCache:
        """Load the cache for (teacher, split) if valid, else (re)build it."""
        modalities = set(getattr(teacher, "modalities", []))
        if modalities & augmented:
            raise CacheRefused(f"teacher reads randomly augmented modality "
                               f"{', '.join(sorted(modalities & augmented))}; its outputs cannot be cached")
        names = sorted({"embed", *reads})
        directory = root / fingerprint(teacher, data_fingerprint, split, names)
        arrays = _load_valid(directory, names)
        if arrays is None:
            log.info("building teacher cache %s (%s, %d samples)", directory.name, split, len(data))
            _build(directory, teacher, data, names, batch_size)
            arrays = _load_valid(directory, names)
            assert arrays is not None, f"teacher cache {directory} failed to validate right after building"
        index = np.load(directory / "index.npy")
        return cls(directory, arrays, index)


def _load_valid(directory: Path, names: list[str]) -> dict[str, np.ndarray] | None:
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        for file, digest in meta["sha256"].items():
            if sha256_file(directory / file) != digest:
                raise ValueError(f"checksum mismatch in {file}")
        if meta["names"] != names:
            raise ValueError("stored outputs differ from the ones needed")
        return {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in names}
    except (ValueError, KeyError, OSError, json.JSONDecodeError) as error:
        log.warning("teacher cache %s is invalid (%s); rebuilding", directory, error)
        return None


@torch.no_grad()
def _teacher_outputs(teacher: nn.Module, data: SplitData, names: list[str], batch_size: int) -> dict[str, Tensor]:
    teacher.eval()
    device = next(teacher.parameters()).device
    chunks: dict[str, list[Tensor]] = {name: [] for name in names}
    for start in range(0, len(data), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(data)))
        out = teacher(data.batch(rows).to(device))
        for name in names:
            chunks[name].append(out.read(name).float().cpu())
    return {name: torch.cat(parts) for name, parts in chunks.items()}


def _build(directory: Path, teacher: nn.Module, data: SplitData, names: list[str], batch_size: int) -> None:
    outputs = _teacher_outputs(teacher, data, names, batch_size)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    files = {"index.npy": data.index.numpy()} | {f"{n}.npy": outputs[n].numpy() for n in names}
    for file, array in files.items():
        np.save(staging / file, array)
    meta = {"names": names, "shapes": {n: list(outputs[n].shape) for n in names},
            "sha256": {file: sha256_file(staging / file) for file in files}}
    (staging / "meta.json").write_text(json.dumps(meta, indent=1))
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(staging, directory)  # atomic: readers see the old cache or the complete new one
