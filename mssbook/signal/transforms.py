"""Spectral transforms shared by every spectrogram model.

All of them are thin, explicit wrappers around ``torch.stft``/``torch.istft`` with the options the
reference systems use (see ``shared/spec/architectures.md`` §7):

=========  ==========  ====  ======  =========================================
model      n_fft       hop   center  input the network sees
=========  ==========  ====  ======  =========================================
UMX/X-UMX  4096        1024  F / T   magnitude, cropped to 16 kHz (1487 bins)
D3Net      4096        1024  T       magnitude, bins < 1600
U-Nets     2048/4096   512+  T       complex as channels [Re L, Re R, Im L, Im R]
BSRNN      2048        512   T       complex, split into bands
=========  ==========  ====  ======  =========================================

Layout convention: audio is ``(..., samples)`` (typically ``(batch, channels, samples)``) and a
spectrogram is ``(..., freq, frames)``: the leading dimensions are carried through untouched.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def n_frames(n_samples: int, n_fft: int, hop_length: int, center: bool) -> int:
    """Number of STFT frames ``torch.stft`` produces for ``n_samples`` samples.

    ``center=True`` pads ``n_fft // 2`` on both sides, so every sample is the centre of some frame:
    ``1 + n_samples // hop``. ``center=False`` keeps only whole frames inside the signal:
    ``1 + (n_samples - n_fft) // hop``. A 6 s excerpt at 44.1 kHz with 4096/1024 gives 259 and 255.
    """
    if center:
        return 1 + n_samples // hop_length
    if n_samples < n_fft:
        return 0
    return 1 + (n_samples - n_fft) // hop_length


def bandwidth_to_max_bin(sample_rate: float, n_fft: int, bandwidth: float) -> int:
    """Number of STFT bins up to and including the highest one at or below ``bandwidth`` Hz.

    Open-Unmix feeds its network only these bins (16 kHz at 44.1 kHz / 4096 points gives 1487).
    """
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1, endpoint=True)
    return int(np.max(np.where(freqs <= bandwidth)[0])) + 1


def max_bin_to_bandwidth(sample_rate: float, n_fft: int, max_bin: int) -> float:
    """The bandwidth (Hz) that :func:`bandwidth_to_max_bin` turns into ``max_bin``: the frequency of
    bin ``max_bin - 1``, so a network stored with ``max_bin`` input bins is rebuilt exactly."""
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1, endpoint=True)
    if not 1 <= max_bin <= len(freqs):
        raise ValueError(f"max_bin {max_bin} is outside 1..{len(freqs)} for n_fft {n_fft}")
    return float(freqs[max_bin - 1])


def _window(name: str, n_fft: int) -> torch.Tensor:
    """The analysis/synthesis window of ``n_fft`` samples (float32); the tapered ones are periodic."""
    if name == "hann":
        return torch.hann_window(n_fft)  # periodic, as torch and the references use
    if name == "hamming":
        return torch.hamming_window(n_fft)
    if name == "blackman":
        return torch.blackman_window(n_fft)
    if name in ("rectangular", "boxcar"):
        return torch.ones(n_fft)
    raise ValueError(f"unknown window {name!r}; use 'hann', 'hamming', 'blackman' or 'rectangular' ('boxcar')")


class STFT(nn.Module):
    """Short-time Fourier transform: ``(..., samples)`` → complex ``(..., n_fft // 2 + 1, frames)``.

    One-sided, not normalised, window of length ``n_fft``. The window is a non-persistent buffer:
    it follows ``.to(device)`` but stays out of state dicts, so models' checkpoints hold weights only.
    """

    def __init__(
        self,
        n_fft: int = 4096,
        hop_length: int = 1024,
        window: str = "hann",
        center: bool = True,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        if hop_length <= 0 or hop_length > n_fft:
            raise ValueError(f"hop_length must be in 1..n_fft ({n_fft}); got {hop_length}")
        self.n_fft, self.hop_length, self.center, self.pad_mode = n_fft, hop_length, center, pad_mode
        self.register_buffer("window", _window(window, n_fft), persistent=False)

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        *lead, n = audio.shape
        if not self.center and n < self.n_fft:
            raise ValueError(
                f"an input of {n} samples is shorter than one frame (n_fft={self.n_fft}) with "
                "center=False; use a longer excerpt or center=True"
            )
        flat = audio.reshape(-1, n)  # torch.stft takes (batch, samples)
        spec = torch.stft(
            flat,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window.to(flat.dtype),
            center=self.center,
            pad_mode=self.pad_mode,
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # (batch, freq, frames)
        return spec.reshape(*lead, *spec.shape[-2:])

    def frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` samples (see :func:`n_frames`)."""
        return n_frames(n_samples, self.n_fft, self.hop_length, self.center)


class ISTFT(nn.Module):
    """Inverse of :class:`STFT` (weighted overlap-add): complex ``(..., freq, frames)`` → ``(..., samples)``.

    With ``center=True`` the round trip ``ISTFT(STFT(x), length=len(x))`` reconstructs ``x`` to
    float precision. With ``center=False`` the first and last samples are only partly covered by
    windows and cannot be inverted; such STFTs (Open-Unmix training) are never inverted.
    """

    def __init__(self, n_fft: int = 4096, hop_length: int = 1024, window: str = "hann", center: bool = True):
        super().__init__()
        if not center:
            raise ValueError(
                "ISTFT needs center=True: with center=False the signal edges are not covered by the "
                "windows. Compute the STFT with center=True when you need to go back to audio."
            )
        self.n_fft, self.hop_length, self.center = n_fft, hop_length, center
        self.register_buffer("window", _window(window, n_fft), persistent=False)

    def forward(self, spec: torch.Tensor, length: int | None = None) -> torch.Tensor:
        *lead, n_bins, frames = spec.shape
        if n_bins != self.n_fft // 2 + 1:
            raise ValueError(f"expected {self.n_fft // 2 + 1} frequency bins for n_fft={self.n_fft}, got {n_bins}")
        flat = spec.reshape(-1, n_bins, frames)
        audio = torch.istft(
            flat,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window.to(flat.real.dtype),
            center=self.center,
            normalized=False,
            onesided=True,
            length=length,
        )  # (batch, samples)
        return audio.reshape(*lead, audio.shape[-1])


def magnitude(spec: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """``|X| ** power`` of a complex spectrogram (power 1: magnitude, 2: power spectrogram)."""
    mag = spec.abs()
    return mag if power == 1.0 else mag.pow(power)


def to_complex_channels(spec: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, C, F, T)`` → real ``(B, 2C, F, T)`` ordered [Re ch0, …, Re ch(C-1), Im ch0, …].

    For stereo this is the U-Net's complex-as-channels layout [Re L, Re R, Im L, Im R].
    """
    return torch.cat([spec.real, spec.imag], dim=-3)


def from_complex_channels(channels: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_complex_channels`: real ``(B, 2C, F, T)`` → complex ``(B, C, F, T)``."""
    n = channels.shape[-3]
    if n % 2:
        raise ValueError(f"complex-as-channels needs an even channel count, got {n}")
    real, imag = channels.split(n // 2, dim=-3)
    return torch.complex(real.contiguous(), imag.contiguous())


def bin_frequencies(sample_rate: float, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each one-sided STFT bin."""
    return np.linspace(0, sample_rate / 2, n_fft // 2 + 1, endpoint=True)


def frame_times(n: int, sample_rate: float, hop_length: int, n_fft: int, center: bool) -> np.ndarray:
    """Time in seconds of each frame's centre (for plots)."""
    offset = 0 if center else n_fft / 2
    return (np.arange(n) * hop_length + offset) / sample_rate


def excerpt_samples(n_frames_wanted: int, hop_length: int) -> int:
    """Samples giving exactly ``n_frames_wanted`` centred frames: ``hop · (frames − 1)`` (the U-Nets' rule)."""
    return hop_length * (n_frames_wanted - 1)


__all__ = [
    "STFT",
    "ISTFT",
    "magnitude",
    "to_complex_channels",
    "from_complex_channels",
    "bandwidth_to_max_bin",
    "bin_frequencies",
    "frame_times",
    "n_frames",
    "excerpt_samples",
]
