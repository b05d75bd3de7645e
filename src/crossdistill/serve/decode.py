"""Turn one cell into an array: image and audio files, feature vectors, numbers. A cell that cannot be decoded
raises ``BadCell`` with the reason; the manifest reader adds the row, column and file.

Training reads every file through these functions and so does a deployed student (this package needs numpy,
scipy and Pillow only, and is copied into every export folder): one decoder, no train/serve skew."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import wavfile


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Centre-pad with zeros or centre-crop to ``length`` samples."""
    if wave.size >= length:
        start = (wave.size - length) // 2
        return wave[start : start + length]
    out = np.zeros(length, dtype=np.float32)
    start = (length - wave.size) // 2
    out[start : start + wave.size] = wave
    return out


class BadCell(ValueError):
    """A cell that is empty, names a missing file, or does not decode; ``column`` names the column when a
    modality reads several (a tabular modality), so the message names the real one."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


def _file(value: Any, base: Path) -> Path | io.BytesIO:
    """The file a cell names, or the bytes it holds (a Hugging Face image/audio cell: ``{"bytes", "path"}``)."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return io.BytesIO(value["bytes"])
        value = value.get("path")
    if value is None or str(value).strip() == "":
        raise BadCell("empty cell")
    path = Path(str(value))
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise BadCell(f"file not found: {path}")
    return path


def decode_image(value: Any, base: Path, size: int, grayscale: bool) -> np.ndarray:
    """PNG/JPEG path -> (C, size, size) float32 in [0, 1]; transparency composited on white."""
    from PIL import Image, UnidentifiedImageError

    path = _file(value, base)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "P"):
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, rgba)
            image = image.convert("L" if grayscale else "RGB").resize((size, size), Image.Resampling.BILINEAR)
    except Image.DecompressionBombError as error:  # (a pixel count over Pillow's safety limit)
        raise BadCell(f"image too large to decode safely {path}: {error}") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise BadCell(f"cannot decode image {path}: {error}") from None
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[None] if grayscale else np.ascontiguousarray(array.transpose(2, 0, 1))


def mono_float(wave: np.ndarray) -> np.ndarray:
    """A wav file's samples, (L,) or (L, channels) -> (L,) float32 mono: integer PCM scaled to [-1, 1] before its
    channels are averaged (8-bit PCM is unsigned, centred on 128)."""
    if wave.dtype == np.uint8:
        wave = (wave.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(wave.dtype, np.integer):
        wave = wave.astype(np.float32) / float(np.iinfo(wave.dtype).max)
    return wave.mean(axis=1, dtype=np.float32) if wave.ndim == 2 else wave.astype(np.float32, copy=False)


def decode_audio(value: Any, base: Path, sample_rate: int, samples: int) -> np.ndarray:
    """wav path -> (samples,) float32 mono at ``sample_rate`` (resampled, centre-padded or cropped)."""
    path = _file(value, base)
    try:
        rate, wave = wavfile.read(path)
    except (ValueError, OSError, EOFError) as error:
        raise BadCell(f"cannot decode wav {path}: {error}") from None
    if wave.size == 0:
        raise BadCell(f"empty audio: {path}")
    wave = mono_float(wave)
    if rate != sample_rate:
        from scipy.signal import resample_poly  # (scipy.signal takes ~0.6 s to import: only where needed)

        ratio = Fraction(sample_rate, rate).limit_denominator(1000)
        wave = resample_poly(wave, ratio.numerator, ratio.denominator)
    return fit_length(wave.astype(np.float32), samples)


def decode_features(value: Any, base: Path) -> np.ndarray:
    """A ``.npy`` path, a list (or an array), or a JSON list in a string -> float32 array."""
    if isinstance(value, list | tuple | np.ndarray):
        array = np.asarray(value, dtype=np.float32)
    elif isinstance(value, str) and value.strip().startswith("["):
        try:
            array = np.asarray(json.loads(value), dtype=np.float32)
        except (json.JSONDecodeError, ValueError) as error:
            raise BadCell(f"not a list of numbers: {error}") from None
    else:
        path = _file(value, base)
        try:
            array = np.load(path, allow_pickle=False).astype(np.float32)
        except (ValueError, OSError, EOFError) as error:
            raise BadCell(f"cannot load features {path}: {error}") from None
    if not np.isfinite(array).all():
        raise BadCell("non-finite feature value")
    return array


def decode_number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadCell(f"not a number: {value!r}") from None
    if not np.isfinite(number):
        raise BadCell(f"not a finite number: {value!r}")
    return number
