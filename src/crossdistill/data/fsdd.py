"""FSDD spoken digits as fixed-size log-mel spectrograms, cached on disk after the first run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from crossdistill.atomic import atomic_file
from crossdistill.data.audio import add_noise, log_mel, read_wav
from crossdistill.data.sources import FSDD, cache_root, file_stamp
from crossdistill.serve.decode import fit_length


class AudioOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sample_rate: int = 8000
    clip_samples: int = Field(8000, gt=0, description="clips are centre-padded/cropped to this length")
    n_fft: int = 256
    hop: int = 128
    n_mels: int = 32
    top_db: float = Field(60.0, gt=0, description="decibel floor below each clip's peak")
    band_norm: bool = Field(True, description="remove each mel band's mean per clip (cepstral mean norm.)")
    snr_db: float | None = Field(None, description="mix seeded white noise at this SNR (AV-MNIST style)")


@dataclass
class SpokenDigits:
    spectrograms: torch.Tensor  # (N, 1, n_mels, frames)
    digits: np.ndarray  # (N,)
    speakers: np.ndarray  # (N,) str
    files: list[str]


def clip_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.wav"))
    if not files:
        raise FileNotFoundError(f"no .wav files in {folder}")
    return files


def parse_clip_name(path: Path) -> tuple[int, str]:
    parts = path.stem.split("_")
    if len(parts) != 3 or not parts[0].isdigit():
        raise ValueError(f"{path}: expected an FSDD name '<digit>_<speaker>_<take>.wav'")
    return int(parts[0]), parts[1]


def _cache_key(files: list[Path], options: AudioOptions, seed: int) -> str:
    digest = hashlib.sha256(json.dumps([options.model_dump(), seed]).encode())
    for path in files:
        digest.update(f"{path.name}:{file_stamp(path)}\n".encode())
    return digest.hexdigest()[:20]


def load_spoken_digits(root: Path, options: AudioOptions, seed: int) -> SpokenDigits:
    """All FSDD clips as log-mel spectrograms; recomputed only when a file or an option changes."""
    folder = FSDD.locate(root) / "recordings"
    files = clip_files(folder)
    labels = [parse_clip_name(p) for p in files]
    digits = np.array([d for d, _ in labels], dtype=np.int64)
    speakers = np.array([s for _, s in labels])
    key = _cache_key(files, options, seed if options.snr_db is not None else 0)
    cached = cache_root() / "preprocessed" / f"fsdd-{key}.npy"
    if cached.is_file():
        spec = torch.from_numpy(np.load(cached))
    else:
        waves = np.stack([fit_length(read_wav(p, options.sample_rate), options.clip_samples) for p in files])
        if options.snr_db is not None:
            waves = add_noise(waves, options.snr_db, seed)
        spec = log_mel(waves, options.sample_rate, options.n_fft, options.hop, options.n_mels, options.top_db,
                           options.band_norm)
        with atomic_file(cached) as partial:
            np.save(partial, spec.numpy())
    return SpokenDigits(spec, digits, speakers, [p.name for p in files])
