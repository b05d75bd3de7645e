"""Exact integer codes for decoded values in the decoded store.

A decoded image is its 8-bit pixels over 255 and a decoded 16-bit wav (at the rate it was recorded) its samples
over 32767: float32 spends 4x and 2x the bytes on them. The store keeps such values as their integer codes (uint8,
int16), so a build copies, hashes and writes 2.5x fewer bytes for a row of a 64x64 picture and a 1 s clip, the store
takes that much less disk and page cache, and reading turns the codes back into the very float32 values the
decoder gave, bit for bit (``Codes.encode`` checks every row as it is written). A row whose values are not such
codes (a clip that was resampled, a 24-bit wav) has its modality stored as float32 instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Codes:
    """Values ``k / scale`` (float32) stored as ``k`` in ``dtype``."""

    dtype: str  # numpy's name: "|u1", "<i2"
    scale: float

    def encode(self, value: np.ndarray) -> np.ndarray | None:
        """``value``'s codes, or None when decoding them would not give ``value`` back bit for bit."""
        if value.dtype != np.float32:
            return None
        if value.size == 0:
            return np.zeros(value.shape, dtype=self.dtype)
        scaled = np.rint(value * np.float32(self.scale))
        limits = np.iinfo(np.dtype(self.dtype))
        if not (limits.min <= scaled.min() and scaled.max() <= limits.max):  # (NaN fails here too)
            return None
        codes = scaled.astype(self.dtype)
        same = np.ascontiguousarray(decode_codes(codes, self.scale)).view(np.uint32) == \
            np.ascontiguousarray(value).view(np.uint32)
        return codes if same.all() else None


def decode_codes(codes: np.ndarray, scale: float) -> np.ndarray:
    """Stored codes -> the float32 values they stand for."""
    values = codes.astype(np.float32)
    scale_codes(values, scale)
    return values


def scale_codes(values: np.ndarray, scale: float) -> None:
    """Codes already cast to float32 -> the values they stand for, in place (no second copy of a batch): the
    decoder's own arithmetic, float32 ``k / scale``."""
    np.divide(values, np.float32(scale), out=values)


IMAGE_CODES = Codes("|u1", 255.0)  # decode_image: 8-bit pixels / 255
PCM16_CODES = Codes("<i2", 32767.0)  # decode_audio: 16-bit samples / 32767, when not resampled
