"""Mask explorer: oracle masks and the oracle Wiener filter, with sliders and live metrics.

An *oracle* separation knows the true sources and asks how well a family of methods could do at
best (Vincent, Gribonval & Plumbley, "Oracle estimators for the benchmarking of source separation
algorithms", Signal Processing 87(8), 2007; SiSEC 2018 scored them on MUSDB18, see
:mod:`mssbook.oracles`). Here the three families of the course, for one target ``j``, STFT bin by
bin (``X`` the mixture, ``Y_k`` the true sources, every channel on its own for the masks):

* **IBM**, ideal binary mask: keep the bin (mask 1) where ``|Y_j|^α / |X|^α > θ``, drop it
  (mask 0) elsewhere (:func:`mssbook.oracles.binary_masks`; SiSEC's IBM1: α = 1, θ = 0.5).
* **IRM**, ideal ratio mask: ``|Y_j|^α / Σ_k |Y_k|^α`` of the bin (:func:`mssbook.oracles.
  ratio_masks`; α = 2 is the single-channel Wiener filter, SiSEC's IRM2).
* **Wiener**: the soft mask with ``|Y_k|^α`` as the sources' spectrograms, refined by ``niter``
  rounds of EM of the multichannel Wiener filter (:func:`mssbook.signal.wiener.wiener`), which
  also uses how each source sits between the channels. ``niter = 0`` is the soft mask (the IRM).
  The "mask" shown is then the effective one, ``|Ŷ_j| / |X|`` per channel.

``floor`` bounds the attenuation: the mask is at least ``floor`` everywhere (0.1: at most −20 dB),
trading interference for fewer artefacts ("musical noise"). For Wiener, bins whose effective mask
is below the floor become ``floor · X``.

:func:`mask_explorer_state` computes everything from :class:`OracleSpectra` (the STFTs, computed
once) and plain arguments; :class:`MaskExplorer` is the widget over it. Meant for excerpts: the
STFTs of a 30 s stereo excerpt with four sources take about 0.5 GB at hop 512.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from html import escape
from typing import Mapping

import numpy as np
import torch

from .. import oracles
from ..errors import MSSBookError
from ..metrics import csdr, si_sdr, usdr
from ..signal.transforms import bin_frequencies
from ..signal.wiener import wiener
from .audio import AudioClip, common_scale, encode_audio
from .base import View, figure_png, ipywidgets, is_static, png_html, table_html

METHODS = ("ibm", "irm", "wiener")
METHOD_LABELS = {"ibm": "IBM", "irm": "IRM", "wiener": "Wiener"}
#: α of SiSEC's entries when none is given: IBM1, IRM2, and powers as the Wiener spectrograms.
DEFAULT_ALPHA = {"ibm": 1.0, "irm": 2.0, "wiener": 2.0}
METRICS = ("cSDR", "uSDR", "SI-SDR")
FLOOR_DB = -80.0  # range drawn in the masked spectrogram, below the mixture's loudest bin


class OracleSpectra:
    """The STFTs of a mixture and its true sources, computed once for every later update.

    ``mixture`` (C, L) and ``sources`` ``{name: (C, L)}`` (numpy or torch; mono may be 1-D),
    checked as :mod:`mssbook.oracles` does (sources padded or cut to the mixture's length).
    """

    def __init__(self, mixture, sources: Mapping, sr: int, n_fft: int = 2048, hop_length: int = 512):
        mix, names, refs = oracles._check_inputs(mixture, sources)  # (C, L), S names, (S, C, L)
        self.n_fft, self.hop_length = oracles._check_stft(n_fft, hop_length, mix.shape[-1])
        self.sr, self.names = int(sr), names
        self.mixture, self.references = mix, refs
        self.mix_stft = oracles._stft(mix, self.n_fft, self.hop_length)  # (C, F, T) complex64
        self.source_stfts = oracles._stft(refs, self.n_fft, self.hop_length)  # (S, C, F, T) complex64
        # |X| and |Y_k|: the mask functions only take magnitudes of their inputs, so passing these
        # gives the same masks as passing the complex STFTs, without recomputing them each update
        self.mix_magnitude = self.mix_stft.abs()  # (C, F, T) float32
        self.source_magnitudes = self.source_stfts.abs()  # (S, C, F, T) float32
        self._wiener = None  # (alpha, niter, estimates): the EM is the costly part, kept for one setting

    def wiener_estimates(self, alpha: float, niter: int) -> torch.Tensor:
        """Complex estimates (S, C, F, T) of every source by the multichannel Wiener filter: soft
        masks with the spectrograms ``|Y_k|^α``, then ``niter`` EM iterations. The last result is
        kept: changing the target or the floor needs no new EM."""
        if self._wiener is None or self._wiener[:2] != (alpha, niter):
            spectrograms = self.source_magnitudes.pow(alpha)  # (S, C, F, T)
            residual = spectrograms.shape[0] < 2  # one source: EM shares the mixture with X - Y_j
            estimates = wiener(spectrograms, self.mix_stft, niter=niter, softmask=True, residual=residual)
            self._wiener = (alpha, niter, estimates)
        return self._wiener[2]

    @property
    def length(self) -> int:
        return self.mixture.shape[-1]

    def index(self, target: str | None) -> int:
        """Position of ``target`` among the sources (None: "vocals" if present, else the first)."""
        if target is None:
            target = "vocals" if "vocals" in self.names else self.names[0]
        if target not in self.names:
            raise MSSBookError(f"unknown target {target!r}; the sources are {self.names}.")
        return self.names.index(target)


@dataclass
class MaskState:
    """What one setting of the explorer gives for its target."""

    method: str
    target: str
    alpha: float
    theta: float | None
    floor: float
    niter: int
    mask: np.ndarray  # (C, F, T) float32: the mask (Wiener: the effective mask |Ŷ_j| / |X|)
    magnitude: np.ndarray  # (C, F, T) float32: |Ŷ_j|, the masked spectrogram
    estimate: np.ndarray  # (C, L) float32: the estimate of the target
    metrics: dict  # {"cSDR", "uSDR", "SI-SDR"}: dB against the true target

    @property
    def label(self) -> str:
        text = f"{METHOD_LABELS[self.method]} α={self.alpha:g}"
        if self.method == "ibm":
            text += f", θ={self.theta:g}" if self.theta is not None else ", loudest source"
        if self.method == "wiener":
            text += f", {self.niter} EM iteration{'s' if self.niter != 1 else ''}"
        return text + (f", floor {self.floor:g}" if self.floor > 0 else "")


def fast_metrics(reference, estimate, sr: int) -> dict:
    """cSDR, uSDR and SI-SDR (dB) of one estimate (C, L) against its reference (C, L)
    (:func:`mssbook.metrics.csdr`, :func:`~mssbook.metrics.usdr`, :func:`~mssbook.metrics.si_sdr`)."""
    ref, est = {"t": reference}, {"t": estimate}
    return {"cSDR": csdr(ref, est, sr)["t"], "uSDR": usdr(ref, est)["t"], "SI-SDR": si_sdr(ref, est)["t"]}


def mask_explorer_state(spectra: OracleSpectra, method: str = "irm", target: str | None = None,
                        alpha: float | None = None, theta: float | None = oracles.DEFAULT_THETA,
                        floor: float = 0.0, niter: int = 1) -> MaskState:
    """Mask, estimate and metrics of ``target`` for one setting (see the module docstring).

    ``method``: "ibm", "irm" or "wiener"; ``alpha`` (None: 1 for IBM, 2 otherwise); ``theta``,
    the IBM threshold (None: each bin to the loudest source); ``floor`` in [0, 1]; ``niter``, the
    Wiener EM iterations. With ``floor=0`` IBM and IRM give exactly the estimates of
    :func:`mssbook.oracles.ideal_binary_mask` / :func:`~mssbook.oracles.ideal_ratio_mask` at the
    same STFT.
    """
    if method not in METHODS:
        raise MSSBookError(f"unknown method {method!r}; use one of {', '.join(METHODS)}.")
    j = spectra.index(target)
    alpha = oracles._check_alpha(DEFAULT_ALPHA[method] if alpha is None else alpha)
    floor, niter = float(floor), int(niter)
    if not 0.0 <= floor <= 1.0:
        raise MSSBookError(f"floor must be in [0, 1], got {floor}.")
    if theta is not None and not float(theta) > 0:
        raise MSSBookError(f"theta must be a positive threshold (SiSEC: 0.5) or None, got {theta}.")
    x = spectra.mix_stft  # (C, F, T) complex
    if method == "ibm":
        # with a threshold the mask of j needs only |Y_j|; without, every source competes
        sources = spectra.source_magnitudes if theta is None else spectra.source_magnitudes[j : j + 1]
        mask = oracles.binary_masks(spectra.mix_magnitude, sources, alpha, theta)[0 if theta is not None else j]
        mask = mask.clamp(min=floor)  # (C, F, T)
        estimate_stft = x * mask
    elif method == "irm":
        mask = oracles.ratio_masks(spectra.source_magnitudes, alpha)[j].clamp(min=floor)  # (C, F, T)
        estimate_stft = x * mask
    else:
        if niter < 0:
            raise MSSBookError(f"niter must be >= 0, got {niter}.")
        estimate_stft = spectra.wiener_estimates(alpha, niter)[j]  # (C, F, T)
        magnitude = spectra.mix_magnitude
        gain = torch.where(magnitude > 0, estimate_stft.abs() / magnitude, torch.zeros_like(magnitude))
        estimate_stft = torch.where(gain < floor, floor * x, estimate_stft)
        mask = gain.clamp(min=floor)  # the effective mask, (C, F, T)
    estimate = oracles._istft(estimate_stft[None], spectra.n_fft, spectra.hop_length, spectra.length)[0]  # (C, L)
    return MaskState(
        method=method, target=spectra.names[j], alpha=alpha, theta=None if theta is None else float(theta),
        floor=floor, niter=niter, mask=mask.numpy(), magnitude=estimate_stft.abs().numpy(), estimate=estimate,
        metrics=fast_metrics(spectra.references[j], estimate, spectra.sr),
    )


def mask_figure(state: MaskState, spectra: OracleSpectra, channel: int = 0, max_freq: float | None = 8000.0):
    """A matplotlib figure: the mask (left) and the masked spectrogram in dB re full scale (right)
    of one channel, up to ``max_freq`` Hz (None: Nyquist)."""
    from matplotlib.figure import Figure  # not pyplot: no global figure, nothing shown twice

    freqs = bin_frequencies(spectra.sr, spectra.n_fft)
    top = len(freqs) if max_freq is None else int(np.searchsorted(freqs, max_freq, side="right"))
    extent = (0.0, spectra.length / spectra.sr, 0.0, freqs[top - 1] / 1000)
    mask = state.mask[channel, :top]  # (F', T)
    # dB re full scale, as mssbook.plots.spectrogram_db: a full-scale sine under a Hann window ≈ 0 dB;
    # the colour scale ends at the mixture's loudest bin (rounded up): the same for every setting
    full_scale = spectra.n_fft / 4
    db = 20 * np.log10(state.magnitude[channel, :top] / full_scale + 1e-10)  # (F', T)
    top_db = 10 * math.ceil(2 * math.log10(float(spectra.mix_magnitude.max()) / full_scale + 1e-10))
    fig = Figure(figsize=(10, 3.2))
    fig.subplots_adjust(left=0.06, right=0.95, bottom=0.16, top=0.9, wspace=0.15)  # fixed: no tight bbox
    axes = fig.subplots(1, 2, sharey=True)
    where = f" (channel {channel + 1} of {state.mask.shape[0]})" if state.mask.shape[0] > 1 else ""
    panels = ((mask, 0.0, 1.0, "mask", f"{state.label}{where}"),
              (db, top_db + FLOOR_DB, top_db, "dB", f"masked spectrogram: {state.target}"))
    for ax, (image, low, high, unit, title) in zip(axes, panels):
        shown = ax.imshow(image, origin="lower", aspect="auto", extent=extent, vmin=low, vmax=high,
                          cmap="magma", interpolation="nearest")
        fig.colorbar(shown, ax=ax, label=unit, pad=0.02)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    return fig


def _as_models(model_estimate, n_channels: int, length: int) -> dict[str, np.ndarray]:
    """``None``, one array or ``{name: array}`` → ``{name: (C, L) float32}``, cut or padded to L."""
    if model_estimate is None:
        return {}
    items = model_estimate.items() if isinstance(model_estimate, Mapping) else [("model", model_estimate)]
    models = {}
    for name, audio in items:
        a = oracles._as_signal(f"model estimate {name!r}", audio)  # (C, L')
        if a.shape[0] != n_channels:
            raise MSSBookError(f"model estimate {name!r} has {a.shape[0]} channel(s), the mixture {n_channels}.")
        out = np.zeros((n_channels, length), np.float32)
        out[:, : min(length, a.shape[1])] = a[:, :length]
        models[str(name)] = out
    return models


def _db(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.2f}"


class MaskExplorer(View):
    """Oracle masks of one target with sliders: IBM / IRM / Wiener, α, θ (IBM), floor, EM
    iterations (Wiener); shows the mask and the masked spectrogram, plays the estimate and prints
    its cSDR, uSDR and SI-SDR next to the mixture's (and a trained model's, if given).

    Args:
        mixture: (C, L); sources: ``{name: (C, L)}``, the true sources; sr: sample rate.
        target: the source to separate (default "vocals" if present, else the first).
        model_estimate: a trained model's estimate of ``target``, (C, L), or ``{name: (C, L)}``.
        n_fft, hop_length: the STFT (Hann window, centred).
        static: True for the static HTML view only (default: ``$MSSBOOK_WIDGETS``).
        method, alpha, theta, floor, niter: the initial setting (see :func:`mask_explorer_state`).
        max_freq: top of the images in Hz (None: Nyquist). codec: of the player (see encode_audio).

    The current result is ``.state`` (also ``.mask``, ``.estimate``, ``.metrics``), its image
    ``.png`` and the player's ``.encoded`` audio; ``.update_seconds`` is how long the last update
    took (computation, image, audio encoding; split in ``.update_breakdown``). Change the setting with
    the controls (``.method``, ``.target``, ``.alpha``, ``.theta``, ``.floor``, ``.niter``; None
    when static) or with :meth:`update`.
    """

    method = target = alpha = theta = floor = niter = None  # the controls, built when interactive
    image = audio = table = None

    def __init__(self, mixture, sources: Mapping, sr: int, target: str | None = None, model_estimate=None,
                 n_fft: int = 2048, hop_length: int = 512, static: bool | None = None, method: str = "irm",
                 alpha: float = 2.0, theta: float = oracles.DEFAULT_THETA, floor: float = 0.0, niter: int = 1,
                 max_freq: float | None = 8000.0, codec: str | None = None):
        start = time.perf_counter()
        self.static = is_static(static)
        self.spectra = OracleSpectra(mixture, sources, sr, n_fft, hop_length)
        spectra = self.spectra
        self.sr, self.max_freq, self.codec = spectra.sr, max_freq, codec
        self.model_target = spectra.names[spectra.index(target)]
        self.models = _as_models(model_estimate, *spectra.mixture.shape)
        # one loudness scale for every player, fixed now: never normalise clip by clip
        self.scale = common_scale([spectra.mixture, *spectra.references, *self.models.values()])
        truth = spectra.references[spectra.index(self.model_target)]
        self.model_metrics = {name: fast_metrics(truth, est, self.sr) for name, est in self.models.items()}
        self._mixture_metrics: dict[str, dict] = {}  # per target, the lower anchor (MIX)
        self._params = dict(method=method, target=self.model_target, alpha=float(alpha), theta=float(theta),
                            floor=float(floor), niter=int(niter))
        self._holding = False
        self.state: MaskState | None = None
        self.widget = None if self.static else self._build()
        self._recompute(self._params)
        self.construction_seconds = time.perf_counter() - start

    # --- the state ----------------------------------------------------------------------------
    @property
    def params(self) -> dict:
        return dict(self._params)

    @property
    def mask(self) -> np.ndarray:
        return self.state.mask

    @property
    def estimate(self) -> np.ndarray:
        return self.state.estimate

    @property
    def metrics(self) -> dict:
        return self.state.metrics

    def update(self, **changes) -> MaskState:
        """Change some of method, target, alpha, theta, floor, niter and recompute once."""
        unknown = set(changes) - set(self._params)
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)}; use {sorted(self._params)}.")
        params = {**self._params, **changes}
        if self.widget is not None:
            with self._hold():  # the controls show the new setting; one recomputation, not six
                for name, value in changes.items():
                    getattr(self, name).value = value
            params = self._control_values()  # as the controls hold them (sliders clamp to their range)
        self._recompute(params)
        return self.state

    def _recompute(self, params: dict) -> None:
        start = time.perf_counter()
        state = mask_explorer_state(self.spectra, **params)
        computed = time.perf_counter()
        self.png = figure_png(mask_figure(state, self.spectra, max_freq=self.max_freq), tight=False)
        drawn = time.perf_counter()
        self.encoded = encode_audio(state.estimate * self.scale, self.sr, self.codec)
        self.state, self._params = state, params
        if self.widget is not None:
            self._show()
        end = time.perf_counter()
        self.update_seconds = end - start
        self.update_breakdown = {"state": computed - start, "image": drawn - computed, "audio": end - drawn}

    def _table(self) -> str:
        state = self.state
        if state.target not in self._mixture_metrics:
            truth = self.spectra.references[self.spectra.index(state.target)]
            self._mixture_metrics[state.target] = fast_metrics(truth, self.spectra.mixture, self.sr)
        rows = [(f"oracle {state.label}", state.metrics)]
        if state.target == self.model_target:
            rows += [(f"model: {name}", values) for name, values in self.model_metrics.items()]
        rows.append(("mixture (MIX)", self._mixture_metrics[state.target]))
        header = [f"estimate of {state.target}", *(f"{m} (dB)" for m in METRICS)]
        return table_html([[label, *(_db(values[m]) for m in METRICS)] for label, values in rows], header)

    def _model_clips(self) -> dict[str, AudioClip]:
        if not hasattr(self, "_model_audio"):  # encoded once, on first use
            self._model_audio = {name: AudioClip(encode_audio(est * self.scale, self.sr, self.codec))
                                 for name, est in self.models.items()}
        return self._model_audio

    def static_html(self) -> str:
        state = self.state
        players = [("estimate", AudioClip(self.encoded))]
        if state.target == self.model_target:
            players += [(f"model: {name}", clip) for name, clip in self._model_clips().items()]
        audio = "".join(f'<div style="margin:2px 8px"><div><b>{escape(label)}</b></div>{clip._repr_html_()}</div>'
                        for label, clip in players)
        return (f'<div class="mssbook-mask-explorer"><div><b>Mask explorer</b>: {escape(state.label)}, '
                f"target {escape(state.target)}</div>{png_html(self.png, alt=state.label)}"
                f'<div class="mssbook-players" style="display:flex;flex-wrap:wrap">{audio}</div>'
                f"{self._table()}</div>")

    # --- the widget ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _hold(self):
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

    def _build(self):
        w = ipywidgets()
        p, style = self._params, {"description_width": "initial"}
        slider = dict(continuous_update=False, style=style, layout=w.Layout(width="320px"))
        self.method = w.ToggleButtons(options=[(METHOD_LABELS[m], m) for m in METHODS], value=p["method"],
                                      description="method", style=style)
        self.target = w.Dropdown(options=self.spectra.names, value=p["target"], description="target")
        self.alpha = w.FloatSlider(value=p["alpha"], min=0.5, max=4.0, step=0.1, description="α (exponent)", **slider)
        self.theta = w.FloatSlider(value=p["theta"], min=0.05, max=0.95, step=0.05, description="θ (IBM threshold)",
                                   **slider)
        self.floor = w.FloatSlider(value=p["floor"], min=0.0, max=1.0, step=0.01, description="floor", **slider)
        self.niter = w.IntSlider(value=p["niter"], min=0, max=5, description="EM iterations (Wiener)", **slider)
        controls = (self.method, self.target, self.alpha, self.theta, self.floor, self.niter)
        for name, control in zip(("method", "target", "alpha", "theta", "floor", "niter"), controls):
            control.add_class(f"mssbook-mask-{name}")
            control.observe(self._on_control, names="value")
        self.image = w.Image(format="png").add_class("mssbook-mask-image")
        self.audio = w.Audio(autoplay=False, loop=False).add_class("mssbook-mask-audio")
        self.model_audio = {name: w.Audio(value=clip.data, format=clip.encoded.widget_format, autoplay=False,
                                          loop=False) for name, clip in self._model_clips().items()}
        self.models_box = w.HBox([w.VBox([w.Label(f"model: {name}"), player])
                                  for name, player in self.model_audio.items()])
        self.table = w.HTML().add_class("mssbook-mask-metrics")
        players = w.HBox([w.VBox([w.Label("estimate"), self.audio]), self.models_box])
        return w.VBox([w.HBox([self.method, self.target]), w.HBox([self.alpha, self.theta]),
                       w.HBox([self.floor, self.niter]), self.image, players, self.table]
                      ).add_class("mssbook-mask-explorer")

    def _on_control(self, change) -> None:
        if not self._holding:
            self._recompute(self._control_values())

    def _control_values(self) -> dict:
        return {name: getattr(self, name).value for name in self._params}

    def _show(self) -> None:
        """Put the current state into the widgets."""
        state = self.state
        self.theta.disabled = state.method != "ibm"  # θ only thresholds the binary mask
        self.niter.disabled = state.method != "wiener"  # EM only refines the Wiener filter
        self.image.value = self.png
        self.encoded.show_in(self.audio)
        self.models_box.layout.display = "" if state.target == self.model_target else "none"
        self.table.value = self._table()


__all__ = ["METHODS", "MaskExplorer", "MaskState", "OracleSpectra", "fast_metrics", "mask_explorer_state",
           "mask_figure"]
