"""The STFT explorer: window length, hop and window type, with what each choice costs and buys.

**The time/frequency trade-off.** An STFT frame sees ``n_fft`` samples, ``n_fft / sr`` seconds: a
long window separates close frequencies (its bins are ``sr / n_fft`` Hz apart) but smears an event
over the whole window; a short one locates a drum hit to a few milliseconds but lumps neighbouring
harmonics into one bin. Bin spacing times window duration is ``sr / n_fft · n_fft / sr = 1``
whatever the length: no window wins both. The hop sets how often a frame is taken (every
``hop / sr`` seconds), not how sharp a frame is. The window *shape* trades main-lobe width (how many bins one sinusoid occupies)
against side lobes (how far its energy leaks): rectangular is narrowest but leaks most, Blackman
leaks least but is widest.

**Going back to audio.** :class:`~mssbook.signal.transforms.ISTFT` (``torch.istft``) is the
least-squares inverse of Griffin & Lim (1984, "Signal estimation from modified short-time Fourier
transform"): overlap-add the inverse DFTs multiplied by the window once more, and divide by the
summed squared windows ``Σ_m w²(n − m·hop)``. That division undoes the windowing exactly wherever
the sum is non-zero: the *NOLA* (nonzero overlap-add) condition. A Hann window with hop = n_fft
breaks it (the windows are zero where they touch); a Hamming window (never zero) does not, even
without overlap.

**COLA** (constant overlap-add) asks more: that the shifted windows add up to a *constant*. For the
plain window sum it makes plain overlap-add of windowed frames give back the signal; for the
squared sum (the ISTFT's normaliser) it means every sample is weighted alike, so a change made to
the spectrogram (a mask) is not amplified more in some samples than others. Hann at a quarter
window (75 % overlap) is flat for both; at half a window its squared sum ripples by 67 % while
its plain sum stays flat; at a third both are flat only when 3 divides n_fft (with the powers of
two offered here, a hop of round(n_fft / 3) ripples slightly). The explorer states both
ripples; exact reconstruction needs neither, only NOLA.

:func:`stft_view` computes everything (a plain function, no widget: tests and scripts call it);
:class:`STFTExplorer` puts sliders on it and draws it.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from fractions import Fraction
from html import escape

import numpy as np
import torch

from ..signal.transforms import ISTFT, STFT, _window, bin_frequencies, n_frames
from ..utils import as_channels_first
from .base import View, figure_png, ipywidgets, is_static, png_html, table_html

#: Window types of the explorer ("boxcar" is accepted as another name for "rectangular").
WINDOWS = ("hann", "hamming", "blackman", "rectangular")

#: Window lengths the explorer's slider offers (those longer than twice the clip are left out).
N_FFT_CHOICES = (256, 512, 1024, 2048, 4096, 8192)

#: Hops the explorer's slider offers, as fractions of the window length.
HOP_FRACTIONS = tuple(Fraction(1, d) for d in (16, 8, 4, 3, 2)) + (Fraction(2, 3), Fraction(3, 4), Fraction(1))

#: Textbook shape of each window: (main-lobe half-width in bins, highest side lobe in dB).
WINDOW_SHAPES = {"rectangular": (1, -13), "hann": (2, -31), "hamming": (2, -43), "blackman": (3, -58)}

#: ``torch.istft`` refuses to divide by a summed squared window below this (its NOLA check).
NOLA_TOLERANCE = 1e-11

_ALIASES = {"boxcar": "rectangular"}


def _window_name(window: str) -> str:
    name = _ALIASES.get(str(window).lower(), str(window).lower())
    if name not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)}")
    return name


def overlap_add_envelope(window: np.ndarray, hop_length: int) -> np.ndarray:
    """``Σ_m window[n + m·hop]`` for ``n`` in one hop: the steady-state sum of the shifted windows.

    The sum of windows spaced ``hop`` apart is periodic with period ``hop``, so one period (hop,)
    describes it everywhere away from the signal's ends. Pass ``window ** 2`` for the ISTFT's
    normaliser.
    """
    window = np.asarray(window, dtype=np.float64)  # (n_fft,)
    padded = np.zeros(-(-len(window) // hop_length) * hop_length)
    padded[: len(window)] = window
    return padded.reshape(-1, hop_length).sum(axis=0)  # (hop,)


def ripple(envelope: np.ndarray) -> float:
    """Peak-to-peak variation of an overlap-add envelope relative to its mean (0: COLA, flat)."""
    mean = float(np.mean(envelope))
    return float((np.max(envelope) - np.min(envelope)) / mean) if mean > 0 else math.inf


@dataclass(frozen=True, eq=False)
class STFTView:
    """What :func:`stft_view` computes for one setting; the resolutions follow exactly from n_fft, hop and sr.

    ``db`` is the magnitude in dB re full scale (a full-scale sinusoid peaks near 0 dB whatever
    the window), floored at ``floor_db``: (bins, frames) of the channel average, or (channels,
    bins, frames) when computed per channel. ``ola``/``wola`` are one period (hop,) of the summed
    windows and summed squared windows; ``nola`` says whether the latter stays above torch's
    tolerance, and ``reconstruction_db`` is ``10 log10(Σ error² / Σ signal²)`` of STFT → ISTFT in
    float64 (NaN where NOLA fails). ``frame_span`` is the chosen frame's samples
    ``[start, stop)`` in the signal; with ``center=True`` the first and last frames reach beyond
    the signal, into its reflection.
    """

    sr: int
    n_fft: int
    hop_length: int
    window: str
    n_samples: int
    db: np.ndarray
    ola: np.ndarray
    wola: np.ndarray
    nola: bool
    reconstruction_db: float
    frame: int
    floor_db: float = -80.0

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def n_frames(self) -> int:
        return self.db.shape[-1]

    @property
    def freq_resolution_hz(self) -> float:
        """Spacing of the bins, ``sr / n_fft`` Hz."""
        return self.sr / self.n_fft

    @property
    def window_seconds(self) -> float:
        """Duration of one frame, ``n_fft / sr`` seconds: the time resolution."""
        return self.n_fft / self.sr

    @property
    def hop_seconds(self) -> float:
        """Time between frames, ``hop / sr`` seconds."""
        return self.hop_length / self.sr

    @property
    def overlap(self) -> float:
        """Fraction of a frame shared with the next one, ``1 − hop / n_fft``."""
        return 1.0 - self.hop_length / self.n_fft

    @property
    def cola_ripple(self) -> float:
        """Ripple of the plain window sum ``Σ w(n − m·hop)`` (0: COLA holds)."""
        return ripple(self.ola)

    @property
    def wola_ripple(self) -> float:
        """Ripple of the squared window sum ``Σ w²(n − m·hop)``, the ISTFT's normaliser (0: flat)."""
        return ripple(self.wola)

    @property
    def nola_margin(self) -> float:
        """Smallest over largest summed squared window: 0 where NOLA fails, 1 where it is flat."""
        peak = float(np.max(self.wola))
        return float(np.min(self.wola)) / peak if peak > 0 else 0.0

    @property
    def frame_span(self) -> tuple[int, int]:
        start = self.frame * self.hop_length - self.n_fft // 2
        return start, start + self.n_fft

    @property
    def frame_seconds(self) -> tuple[float, float]:
        start, stop = self.frame_span
        return start / self.sr, stop / self.sr

    def at_frame(self, frame: int) -> "STFTView":
        """The same analysis with another chosen frame (nothing is recomputed)."""
        return replace(self, frame=_check_frame(frame, self.n_frames))

    def summary_rows(self) -> list[list[str]]:
        """The numbers the explorer states, as (quantity, value) rows."""
        lobe, side = WINDOW_SHAPES[self.window]
        start, stop = self.frame_span
        t0, t1 = self.frame_seconds
        if not self.nola:
            recon = "not invertible: NOLA fails (the summed squared windows reach zero)"
        elif math.isnan(self.reconstruction_db):
            recon = "not computed (torch.istft refused)"
        else:
            recon = f"{self.reconstruction_db:.0f} dB re the signal" + (
                " (exact up to rounding)" if self.reconstruction_db < -100 else "")
        return [
            ["window", f"{self.window}, {self.n_fft} samples = {1000 * self.window_seconds:.1f} ms (main lobe "
                       f"±{lobe} bins = ±{lobe * self.freq_resolution_hz:.1f} Hz, side lobes ≤ {side} dB)"],
            ["hop", f"{self.hop_length} samples = {1000 * self.hop_seconds:.2f} ms ({100 * self.overlap:.1f} % overlap)"],
            ["frequency resolution", f"{self.freq_resolution_hz:.2f} Hz per bin (sr / n_fft)"],
            ["time resolution", f"{1000 * self.window_seconds:.1f} ms per frame, one frame every "
                                f"{1000 * self.hop_seconds:.2f} ms"],
            ["frames × bins", f"{self.n_frames} × {self.n_bins}"],
            ["STFT → ISTFT error", recon],
            ["overlap-add ripple", f"Σw {_percent(self.cola_ripple)}, Σw² {_percent(self.wola_ripple)} "
                                   f"(0 %: constant overlap-add)"],
            ["chosen frame", f"{self.frame}: samples {start}…{stop - 1} ({t0:.3f}–{t1:.3f} s)"],
        ]


def _percent(value: float) -> str:
    if not math.isfinite(value):
        return "∞"
    return "0 %" if value < 5e-7 else f"{100 * value:.3g} %"


def _check_frame(frame: int, count: int) -> int:
    frame = int(frame)
    if not 0 <= frame < count:
        raise ValueError(f"frame {frame} is out of range: this STFT has frames 0…{count - 1}")
    return frame


def _extend_for_inversion(signal: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """``signal`` (channels, samples) followed by its reflection (n_fft // 2 samples) and n_fft // 2 + hop zeros.

    The centred STFT of the result has, as its first ``1 + samples // hop`` frames, exactly the
    library's STFT of ``signal`` (``center=True`` pads with that same reflection), and more frames
    after them. Those make every sample of ``signal`` lie under all the windows that overlap it:
    with a hop above half a window the library's last frame can stop short of the last samples,
    and torch's NOLA check then fails at the edge although the windows overlap well elsewhere.
    Inverted with ``length=samples``, the extension measures the transform's own property.
    """
    n = signal.shape[-1]
    reflection = signal[..., max(0, n - 2 - n_fft // 2) : n - 1].flip(-1)[..., : n_fft // 2]  # x[n-2], x[n-3], ...
    zeros = signal.new_zeros(*signal.shape[:-1], n_fft + hop_length - reflection.shape[-1])
    return torch.cat([signal, reflection, zeros], dim=-1)  # (channels, samples + n_fft + hop)


def _reconstruction_db(signal: torch.Tensor, spec: torch.Tensor, n_fft: int, hop_length: int, window: str) -> float:
    """``10 log10(Σ (istft(spec) − x)² / Σ x²)``; NaN where torch refuses to invert (NOLA fails)."""
    try:
        y = ISTFT(n_fft, hop_length, window)(spec, length=signal.shape[-1])  # (channels, samples)
    except RuntimeError:
        return math.nan
    error, energy = float(((y - signal) ** 2).sum()), float((signal**2).sum())
    if error == 0.0:
        return -math.inf
    return math.inf if energy == 0.0 else 10.0 * math.log10(error / energy)


def stft_view(audio, sr: int, n_fft: int, hop_length: int, window: str = "hann", frame: int | None = None,
              *, per_channel: bool = False, floor_db: float = -80.0) -> STFTView:
    """Everything the STFT explorer shows for one setting, computed without any widget.

    Args:
        audio: (channels, samples) or (samples,), numpy or torch.
        sr: sample rate in Hz.
        n_fft: window length in samples (the frame length; ``n_fft // 2 + 1`` bins).
        hop_length: samples between frames, 1…n_fft.
        window: "hann", "hamming", "blackman" or "rectangular" ("boxcar").
        frame: the chosen frame (default: the middle one).
        per_channel: spectrogram of each channel (channels, bins, frames) instead of the channel
            average (bins, frames).
        floor_db: lowest dB value kept in the spectrogram.

    Returns:
        an :class:`STFTView`: the dB spectrogram, resolutions, frames × bins, the STFT → ISTFT
        reconstruction error (NaN, with ``nola=False``, where the summed squared windows vanish),
        the overlap-add ripples and the chosen frame's span. Uses mssbook's own ``STFT``/``ISTFT``
        (``center=True``), so what you see is what the models see.
    """
    x = as_channels_first(audio)  # (C, L)
    n_fft, hop_length, sr, name = int(n_fft), int(hop_length), int(sr), _window_name(window)
    n_samples = x.shape[-1]
    if n_fft < 2:
        raise ValueError(f"n_fft must be at least 2, got {n_fft}")
    if not 1 <= hop_length <= n_fft:
        raise ValueError(f"hop_length must be in 1..n_fft ({n_fft}); got {hop_length}")
    if n_samples <= n_fft // 2:
        raise ValueError(f"a clip of {n_samples} samples is too short for n_fft={n_fft} (centred frames "
                         f"pad n_fft // 2 = {n_fft // 2} samples by reflection): use a shorter window")
    signal = torch.from_numpy(x if per_channel else x.mean(axis=0, keepdims=True)).double()  # (C or 1, L)
    w = _window(name, n_fft).double()  # (n_fft,)
    count = n_frames(n_samples, n_fft, hop_length, center=True)
    # One float64 STFT serves both: its first `count` frames are the library's STFT of the signal.
    spec = STFT(n_fft, hop_length, name)(_extend_for_inversion(signal, n_fft, hop_length))  # (C or 1, bins, > count)
    scale = float(w.sum()) / 2  # a full-scale sinusoid at a bin's centre has magnitude sum(w) / 2
    magnitude = np.abs(spec[..., :count].numpy()) / scale  # (C or 1, bins, frames); numpy's abs is the fast one
    db = np.maximum(20 * np.log10(magnitude + 1e-10), floor_db).astype(np.float32)
    if not per_channel:
        db = db[0]  # (bins, frames)
    wola = overlap_add_envelope(w.numpy() ** 2, hop_length)  # (hop,)
    nola = bool(wola.min() >= NOLA_TOLERANCE)
    recon = _reconstruction_db(signal, spec, n_fft, hop_length, name) if nola else math.nan
    frame = count // 2 if frame is None else _check_frame(frame, count)
    return STFTView(sr=sr, n_fft=n_fft, hop_length=hop_length, window=name, n_samples=n_samples, db=db,
                    ola=overlap_add_envelope(w.numpy(), hop_length), wola=wola, nola=nola, reconstruction_db=recon,
                    frame=frame, floor_db=float(floor_db))


def _max_pool(a: np.ndarray, axis: int, limit: int) -> np.ndarray:
    """Shrink ``a`` along ``axis`` to at most ``limit`` entries by taking block maxima (keeps peaks)."""
    size = a.shape[axis]
    block = -(-size // limit)
    if block <= 1:
        return a
    pad = block * -(-size // block) - size
    a = np.moveaxis(a, axis, -1)
    if pad:
        a = np.concatenate([a, np.repeat(a[..., -1:], pad, axis=-1)], axis=-1)
    return np.moveaxis(a.reshape(*a.shape[:-1], -1, block).max(axis=-1), -1, axis)


def stft_figure(view: STFTView, audio, max_freq: float | None = None, max_columns: int = 1200,
                max_rows: int = 600):
    """The explorer's figure: spectrogram with the chosen frame highlighted, the frame's window over
    the samples it covers (with its neighbours and the summed squared windows), and its spectrum.

    ``audio`` is the signal ``view`` was computed from (its channel average is drawn); ``max_freq``
    (Hz) limits the displayed band. Large spectrograms are max-pooled to at most ``max_columns`` ×
    ``max_rows`` pixels, so drawing takes the same time for any setting.
    """
    from ..deps import import_matplotlib_pyplot

    plt = import_matplotlib_pyplot()
    mono = as_channels_first(audio).mean(axis=0)  # (L,)
    sr, n_fft, hop = view.sr, view.n_fft, view.hop_length
    db = view.db if view.db.ndim == 2 else view.db.max(axis=0)  # (bins, frames)
    top = min(float(max_freq or sr / 2), sr / 2)
    kept = int(np.searchsorted(bin_frequencies(sr, n_fft), top, side="right"))  # bins ≤ top
    image = _max_pool(_max_pool(db[:kept], 1, max_columns), 0, max_rows)  # (≤ rows, ≤ columns)

    fig = plt.figure(figsize=(10, 5.6))
    grid = fig.add_gridspec(2, 2, height_ratios=(1.5, 1), width_ratios=(1.7, 1), hspace=0.45, wspace=0.22,
                            left=0.07, right=0.99, bottom=0.09, top=0.94)  # fixed: no "tight" second draw
    ax_spec, ax_wave, ax_frame = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])

    half_hop = hop / 2 / sr
    extent = (-half_hop, (view.n_frames - 1) * hop / sr + half_hop, 0, kept * sr / n_fft / 1000)
    mesh = ax_spec.imshow(image, origin="lower", aspect="auto", extent=extent, cmap="magma",
                          vmin=view.floor_db, vmax=0, interpolation="nearest")
    t0, t1 = view.frame_seconds
    centre = view.frame * hop / sr
    ax_spec.axvspan(t0, t1, color="cyan", alpha=0.25, lw=0)  # the samples the frame sees
    for edge in (centre - half_hop, centre + half_hop):  # the spectrogram column itself
        ax_spec.axvline(edge, color="cyan", lw=0.8)
    ax_spec.set_xlim(extent[0], extent[1])
    ax_spec.set_ylim(0, top / 1000)
    ax_spec.set_xlabel("time (s)")
    ax_spec.set_ylabel("frequency (kHz)")
    ax_spec.set_title(f"{view.window} window, n_fft {n_fft}, hop {hop}: {view.n_frames} frames × "
                      f"{view.n_bins} bins; frame {view.frame} highlighted", fontsize=10)
    fig.colorbar(mesh, ax=ax_spec, label="dB", pad=0.01)

    # The chosen frame's window over its samples, its neighbours, and the ISTFT's normaliser Σw².
    start, stop = view.frame_span
    lo, hi = max(0, start - n_fft // 2), min(len(mono), stop + n_fft // 2)
    samples = np.arange(lo, hi)
    segment = mono[lo:hi]
    amp = float(np.max(np.abs(segment))) if len(segment) and np.max(np.abs(segment)) > 0 else 1.0
    w = _window(view.window, n_fft).double().numpy()  # (n_fft,)
    ax_wave.plot(samples / sr, segment, color="0.55", lw=0.6, label="signal")
    envelope = np.zeros(hi - lo)  # Σw² over the zoomed samples, from every frame touching them
    for k in range(max(0, (lo - n_fft // 2) // hop), min(view.n_frames - 1, (hi + n_fft // 2) // hop) + 1):
        s = k * hop - n_fft // 2
        a, b = max(s, lo), min(s + n_fft, hi)
        if a >= b:
            continue
        envelope[a - lo : b - lo] += w[a - s : b - s] ** 2
        if k != view.frame and abs(k - view.frame) <= 4:  # a few neighbours show the overlap
            ax_wave.plot(np.arange(a, b) / sr, amp * w[a - s : b - s], color="tab:blue", lw=0.5, alpha=0.35)
    span = np.arange(max(start, lo), min(stop, hi))
    ax_wave.fill_between(span / sr, -amp * w[span - start], amp * w[span - start], color="cyan", alpha=0.2, lw=0)
    ax_wave.plot(span / sr, amp * w[span - start], color="tab:cyan", lw=1.6, label=f"window of frame {view.frame}")
    ax_wave.plot(span / sr, mono[span] * w[span - start], color="tab:purple", lw=0.7, label="windowed samples")
    peak = float(np.max(view.wola))
    if peak > 0:
        ax_wave.plot(samples / sr, amp * envelope / peak, color="k", ls="--", lw=0.9, label="Σw² (ISTFT divides by it)")
    ax_wave.set_xlim(lo / sr, max(hi - 1, lo + 1) / sr)
    ax_wave.set_ylim(-1.9 * amp, 1.15 * amp)  # room for the legend below the samples
    ax_wave.set_xlabel("time (s)")
    ax_wave.set_title(f"frame {view.frame}: samples {start}…{stop - 1}", fontsize=10)
    ax_wave.set_yticks([])
    ax_wave.legend(fontsize=7, loc="lower center", ncol=2, framealpha=0.7)

    column = db[:kept, view.frame]  # (kept bins,)
    ax_frame.plot(bin_frequencies(sr, n_fft)[:kept] / 1000, column, color="tab:cyan", lw=0.8)
    ax_frame.set_xlim(0, top / 1000)
    ax_frame.set_ylim(view.floor_db, 5)
    ax_frame.set_xlabel("frequency (kHz)")
    ax_frame.set_ylabel("dB")
    ax_frame.set_title(f"its spectrum: bins {view.freq_resolution_hz:.1f} Hz apart", fontsize=10)
    return fig


class STFTExplorer(View):
    """Window length, hop and window type with sliders; the spectrogram redrawn, the resolutions
    stated, the reconstruction error and the overlap-add ripple shown, the chosen frame's window
    drawn over the samples it covers.

    Args:
        audio: (channels, samples) or (samples,), numpy or torch; the channel average is analysed.
        sr: sample rate in Hz.
        n_fft, hop_length, window, frame: the starting setting (see :func:`stft_view`).
        max_freq: highest frequency drawn, in Hz (default: sr / 2); the numbers cover all bins.
        static: True for a static view (no ipywidgets: an image and a table); None reads
            ``$MSSBOOK_WIDGETS``.

    Controls (None when static): ``n_fft`` (window length, powers of two 256…8192), ``hop`` (a
    fraction of the window: its value is a :class:`~fractions.Fraction`, floats are accepted),
    ``window`` (type) and ``frame``; ``image`` and ``text`` show the result. After every change
    ``view`` holds the :func:`stft_view` result, ``png`` the figure's bytes and ``update_seconds``
    the time the update took. Setting a control's ``value`` (as a click does) updates everything.
    """

    def __init__(self, audio, sr: int, n_fft: int = 2048, hop_length: int = 512, window: str = "hann",
                 frame: int | None = None, max_freq: float | None = None, static: bool | None = None):
        self.audio = as_channels_first(audio)  # (C, L)
        self._mono = self.audio.mean(axis=0, keepdims=True)  # (1, L), what is analysed and drawn
        self.sr = int(sr)
        self.max_freq = max_freq
        self.static = is_static(static)
        n_samples = self.audio.shape[-1]
        self._cache: OrderedDict[tuple, STFTView] = OrderedDict()
        self.view = self._analyse(int(n_fft), int(hop_length), _window_name(window))
        if frame is not None:
            self.view = self.view.at_frame(frame)
        self.png = b""
        self.update_seconds = 0.0
        self._render()
        self._syncing = False
        self.widget = self.n_fft = self.hop = self.window = self.frame = self.image = self.text = None
        if self.static:
            return
        widgets = ipywidgets()
        v = self.view
        sizes = sorted({c for c in N_FFT_CHOICES if c // 2 < n_samples} | {v.n_fft})
        fractions = sorted(set(HOP_FRACTIONS) | {Fraction(v.hop_length, v.n_fft)})
        style = {"description_width": "initial"}
        self.n_fft = widgets.SelectionSlider(
            options=[(f"{n} ({1000 * n / self.sr:.0f} ms)", n) for n in sizes], value=v.n_fft,
            description="window length", continuous_update=False, style=style)
        self.hop = widgets.SelectionSlider(
            options=[(_fraction_label(f), f) for f in fractions], value=Fraction(v.hop_length, v.n_fft),
            description="hop", continuous_update=False, style=style,
            equals=lambda a, b: a is not None and b is not None and abs(float(a) - float(b)) < 1e-9)
        self.window = widgets.Dropdown(options=list(WINDOWS), value=v.window, description="window", style=style)
        self.frame = widgets.IntSlider(value=v.frame, min=0, max=v.n_frames - 1, description="frame",
                                       continuous_update=False, style=style)
        self.image = widgets.Image(value=self.png, format="png", layout=widgets.Layout(max_width="100%"))
        self.text = widgets.HTML(value=self._text_html())
        for control in (self.n_fft, self.hop, self.window, self.frame):
            control.add_class("mssbook-stft-control")
            control.observe(self._on_change, names="value")
        self.image.add_class("mssbook-stft-image")
        self.text.add_class("mssbook-stft-text")
        controls = widgets.VBox([widgets.HBox([self.n_fft, self.hop]), widgets.HBox([self.window, self.frame])])
        controls.add_class("mssbook-stft-controls")
        self.widget = widgets.VBox([controls, self.image, self.text])
        self.widget.add_class("mssbook-stft-explorer")

    @property
    def hop_length(self) -> int:
        return self.view.hop_length

    def _analyse(self, n_fft: int, hop_length: int, window: str) -> STFTView:
        key = (n_fft, hop_length, window)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        view = stft_view(self._mono, self.sr, n_fft, hop_length, window)
        self._cache[key] = view
        while len(self._cache) > 4:  # a few recent settings, to flip back and forth quickly
            self._cache.popitem(last=False)
        return view

    def _render(self) -> None:
        self.png = figure_png(stft_figure(self.view, self._mono, self.max_freq), tight=False)

    def _on_change(self, change) -> None:
        if self._syncing:
            return
        began = time.perf_counter()
        old = self.view
        n_fft = int(self.n_fft.value)
        hop_length = max(1, round(n_fft * Fraction(self.hop.value)))
        window = self.window.value
        if (n_fft, hop_length, window) != (old.n_fft, old.hop_length, old.window):
            view = self._analyse(n_fft, hop_length, window)
            frame = round(old.frame * old.hop_length / hop_length)  # the chosen frame stays at the same time
            view = view.at_frame(min(max(frame, 0), view.n_frames - 1))
            self._syncing = True
            try:  # the frame slider's range follows the new frame count
                with self.frame.hold_trait_notifications():
                    self.frame.max = view.n_frames - 1
                    self.frame.value = view.frame
            finally:
                self._syncing = False
        else:
            view = old.at_frame(int(self.frame.value))
        self.view = view
        self._render()
        self.image.value = self.png
        self.text.value = self._text_html()
        self.update_seconds = time.perf_counter() - began

    def _text_html(self) -> str:
        v = self.view
        notes = []
        if not v.nola:
            notes.append("The summed squared windows reach zero: samples there are multiplied by 0 in every "
                         "frame, and no inverse can bring them back (NOLA fails). Overlap the windows, or "
                         "use a window that is not zero at its ends (Hamming, rectangular).")
        elif v.wola_ripple > 1e-6:
            notes.append("Σw² is not flat: the ISTFT still inverts exactly (it divides by this sum), but a "
                         "change to the spectrogram is weighted unevenly from sample to sample.")
        else:
            notes.append("Σw² is flat: the ISTFT divides every sample by the same number.")
        note = "".join(f"<p style='margin:4px 0'>{escape(n)}</p>" for n in notes)
        return f'<div class="mssbook-stft-summary">{table_html(v.summary_rows())}{note}</div>'

    def static_html(self) -> str:
        v = self.view
        alt = f"STFT explorer: {v.window} window, n_fft {v.n_fft}, hop {v.hop_length}, frame {v.frame}"
        return f'<div class="mssbook-stft-explorer">{png_html(self.png, alt)}{self._text_html()}</div>'


def _fraction_label(fraction: Fraction) -> str:
    if fraction == 1:
        return "n_fft"
    return f"n_fft/{fraction.denominator}" if fraction.numerator == 1 else f"{fraction} n_fft"


__all__ = ["STFTExplorer", "STFTView", "stft_view", "stft_figure", "overlap_add_envelope", "ripple", "WINDOWS"]
