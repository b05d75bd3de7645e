"""What turns decoded values into the arrays a model reads, in numpy alone: the log-mel front end, the
standardisation of features and images, tabular rows. Training runs the same functions (the log-mel through
``torch.stft``, checked against this one to 1e-4 in the tests), so a device needs no PyTorch to feed a student.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """Triangular HTK-mel filters, (n_mels, n_fft // 2 + 1)."""
    to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    to_hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = to_hz(np.linspace(to_mel(0.0), to_mel(sample_rate / 2), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)


def power_spectrogram(waves: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(N, L) -> (N, n_fft // 2 + 1, 1 + L // hop) |STFT|², as ``torch.stft`` computes it by default: frames
    centred (the signal reflect-padded by n_fft // 2 each side), a periodic Hann window, one-sided."""
    padded = np.pad(waves.astype(np.float64), ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    frames = 1 + (padded.shape[1] - n_fft) // hop
    starts = hop * np.arange(frames)[:, None] + np.arange(n_fft)[None, :]  # (frames, n_fft)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    spectrum = np.fft.rfft(padded[:, starts] * window, axis=-1)  # (N, frames, bins)
    return (np.abs(spectrum) ** 2).transpose(0, 2, 1)


def log_mel(waves: np.ndarray, sample_rate: int, n_fft: int, hop: int, n_mels: int, top_db: float = 60.0,
            band_norm: bool = True) -> np.ndarray:
    """(N, L) waveforms -> (N, 1, n_mels, frames) float32 normalised log-mel spectrograms: decibels floored at
    ``top_db`` below each clip's peak, each mel band's mean over time removed (``band_norm``; else the clip's
    mean), the clip scaled to unit standard deviation (ddof 1, as ``torch.std``)."""
    mel = mel_filterbank(n_mels, n_fft, sample_rate).astype(np.float64) @ power_spectrogram(waves, n_fft, hop)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))  # (N, n_mels, frames)
    db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - top_db)
    centred = db - (db.mean(axis=2, keepdims=True) if band_norm else db.mean(axis=(1, 2), keepdims=True))
    scale = np.maximum(centred.reshape(len(centred), -1).std(axis=1, ddof=1), 1e-5)[:, None, None]
    return (centred / scale)[:, None].astype(np.float32)


def standardise(values: np.ndarray, normalise: dict[str, list[float]], per_channel: bool) -> np.ndarray:
    """(N, ...) -> float32 ``(values - mean) / std`` in float64 arithmetic; the statistics are one per channel
    (axis 1, an image's) or one per value of a row (features), as the training rows gave them."""
    shape = (1, -1, *(1,) * (values.ndim - 2)) if per_channel else (1, *values.shape[1:])
    mean = np.reshape(np.asarray(normalise["mean"], dtype=np.float64), shape)
    std = np.reshape(np.asarray(normalise["std"], dtype=np.float64), shape)
    return ((values - mean) / std).astype(np.float32)


def tabular(numbers: np.ndarray, categories: list[list[Any]], state: dict[str, Any]) -> np.ndarray:
    """Numeric columns (N, numeric) standardised with the training rows' mean and std, then the categorical
    columns' values (N rows of lists) as ids of the levels seen in training (0: a level never seen there) ->
    (N, numeric + categorical) float32."""
    mean, std = np.asarray(state["mean"], np.float32), np.asarray(state["std"], np.float32)
    scaled = (numbers - mean) / (std + 1e-6)
    ids = np.zeros((len(numbers), len(state["levels"])), np.float32)
    for j, seen in enumerate(state["levels"]):
        index = {v: i + 1 for i, v in enumerate(seen)}
        ids[:, j] = [index.get(str(row[j]), 0) for row in categories]
    return np.concatenate([scaled, ids], axis=1).astype(np.float32)
