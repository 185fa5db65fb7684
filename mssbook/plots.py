"""Figures for the course: waveforms and spectrograms of mixtures and stems.

matplotlib is optional (``pip install mssbook[notebooks]``); it is imported when a plot is drawn.
Spectrograms use mssbook's own STFT, so what you see is what the models see.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from .deps import import_matplotlib_pyplot
from .signal.transforms import STFT, bin_frequencies, frame_times
from .utils import as_channels_first


def _mono(audio) -> np.ndarray:
    return as_channels_first(audio).mean(axis=0)


def spectrogram_db(audio, n_fft: int = 2048, hop_length: int = 512, floor_db: float = -80.0) -> np.ndarray:
    """Magnitude spectrogram of the channel average in dB re full scale, shape (freq, frames)."""
    spec = STFT(n_fft, hop_length, center=True)(torch.from_numpy(_mono(audio)))
    mag = spec.abs().numpy() / (n_fft / 4)  # a full-scale sine under a Hann window peaks near 0 dB
    return np.maximum(20 * np.log10(mag + 1e-10), floor_db)


def spectrogram(audio, sr: int, ax=None, n_fft: int = 2048, hop_length: int = 512, title: str | None = None,
                max_freq: float | None = None, floor_db: float = -80.0):
    """Draw a dB spectrogram on ``ax`` (a new figure when None) and return the axes."""
    plt = import_matplotlib_pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    db = spectrogram_db(audio, n_fft, hop_length, floor_db)
    times = frame_times(db.shape[1], sr, hop_length, n_fft, center=True)
    freqs = bin_frequencies(sr, n_fft)
    mesh = ax.pcolormesh(times, freqs / 1000, db, shading="auto", cmap="magma", vmin=floor_db, vmax=0)
    ax.set_ylim(0, (max_freq or sr / 2) / 1000)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(mesh, ax=ax, label="dB")
    return ax


def waveform(audio, sr: int, ax=None, title: str | None = None):
    """Draw each channel's waveform on ``ax`` and return the axes."""
    plt = import_matplotlib_pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2))
    audio = as_channels_first(audio)
    t = np.arange(audio.shape[-1]) / sr
    for c, channel in enumerate(audio):
        ax.plot(t, channel, lw=0.5, alpha=0.8, label=f"channel {c}")
    ax.set_xlim(0, t[-1] if len(t) else 1)
    ax.set_xlabel("time (s)")
    if title:
        ax.set_title(title)
    return ax


def stems_figure(stems: Mapping[str, object], sr: int, kind: str = "spectrogram", max_freq: float | None = 8000):
    """One row per stem (e.g. mixture, vocals, drums, bass, other): spectrograms or waveforms."""
    plt = import_matplotlib_pyplot()
    if kind not in ("spectrogram", "waveform"):
        raise ValueError(f"kind must be 'spectrogram' or 'waveform', got {kind!r}")
    height = 2.2 if kind == "spectrogram" else 1.4
    fig, axes = plt.subplots(len(stems), 1, figsize=(9, height * len(stems)), sharex=True, squeeze=False)
    for ax, (name, audio) in zip(axes[:, 0], stems.items()):
        if kind == "spectrogram":
            spectrogram(audio, sr, ax=ax, title=name, max_freq=max_freq)
        else:
            waveform(audio, sr, ax=ax, title=name)
            ax.set_ylim(-1, 1)
    for ax in axes[:-1, 0]:
        ax.set_xlabel("")
    fig.tight_layout()
    return fig
