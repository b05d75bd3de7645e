"""Audio: read wav files, fixed-length log-mel spectrograms with ``torch.stft`` (torchaudio does not install)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.io import wavfile

from crossdistill.errors import CrossdistillError
from crossdistill.serve.decode import mono_float
from crossdistill.serve.frontend import mel_filterbank


class AudioFileError(CrossdistillError, ValueError):
    """A wav file that is missing or cannot be decoded."""


def read_wav(path: Path, expected_rate: int) -> np.ndarray:
    """Mono float32 waveform in [-1, 1]; errors name the file."""
    if not path.is_file():
        raise AudioFileError(f"missing audio file: {path}")
    try:
        rate, wave = wavfile.read(path)
    except (ValueError, OSError, EOFError) as error:
        raise AudioFileError(f"cannot read wav file {path}: {error}") from None
    if rate != expected_rate:
        raise AudioFileError(f"{path}: sample rate {rate} Hz, expected {expected_rate} Hz")
    if wave.size == 0:
        raise AudioFileError(f"{path}: empty audio")
    return mono_float(wave)


def log_mel(waves: np.ndarray, sample_rate: int, n_fft: int, hop: int, n_mels: int, top_db: float = 60.0,
            band_norm: bool = True) -> torch.Tensor:
    """(N, L) waveforms -> (N, 1, n_mels, frames) normalised log-mel spectrograms.

    Decibels floored at ``top_db`` below each clip's peak (so zero padding does not dominate), then per-clip
    normalisation: each mel band's mean over time removed when ``band_norm`` (cepstral mean normalisation,
    which removes much of the speaker and channel), and the clip scaled to unit standard deviation.
    """
    signal = torch.from_numpy(waves)
    spec = torch.stft(signal, n_fft, hop_length=hop, window=torch.hann_window(n_fft), return_complex=True)
    power = spec.abs().pow(2)  # (N, n_fft//2+1, frames)
    mel = torch.from_numpy(mel_filterbank(n_mels, n_fft, sample_rate)) @ power  # (N, n_mels, frames)
    db = 10.0 * torch.log10(mel.clamp_min(1e-10))
    db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - top_db)
    centred = db - (db.mean(dim=2, keepdim=True) if band_norm else db.mean(dim=(1, 2), keepdim=True))
    return (centred / centred.std(dim=(1, 2), keepdim=True).clamp_min(1e-5)).unsqueeze(1).float()


def add_noise(waves: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Mix seeded white noise into each clip at ``snr_db`` (signal power over noise power, per clip)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(waves.shape).astype(np.float32)
    signal_power = np.mean(waves**2, axis=1, keepdims=True).clip(1e-10)
    noise_power = signal_power / (10.0 ** (snr_db / 10.0))
    return waves + noise * np.sqrt(noise_power)
