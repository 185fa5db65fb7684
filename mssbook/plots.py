"""Figures for the course: waveforms and spectrograms of mixtures and stems, score boxplots.

matplotlib is optional (``pip install mssbook[notebooks]``); it is imported when a plot is drawn.
Spectrograms use mssbook's own STFT, so what you see is what the models see.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

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


#: Panel order of the usual targets in :func:`scores_boxplot`; others follow alphabetically.
_TARGET_ORDER = ("vocals", "drums", "bass", "other", "accompaniment")

#: Markers of the published models, in order.
_PUBLISHED_MARKERS = ("D", "s", "^", "v", "o", "P", "X", "*", "h", "<", ">")


def _per_target(scores, metric: str) -> dict[str, list[float]]:
    """``{target: [per-track values]}`` from a ScoreTable (its ``per_track``), a ``per_track``
    dict ``{track: {target: {metric: value}}}``, or already ``{target: [values]}``; NaN dropped."""
    per_track = getattr(scores, "per_track", scores)
    if not isinstance(per_track, Mapping):
        raise TypeError(f"scores must be a ScoreTable or a dict, got {type(scores).__name__}")
    values: dict[str, list[float]] = {}
    for key, item in per_track.items():
        if isinstance(item, Mapping):  # {track: {target: {metric: value}}}
            for target, metrics in item.items():
                value = metrics.get(metric, math.nan) if isinstance(metrics, Mapping) else metrics
                values.setdefault(target, []).append(float(value))
        else:  # {target: [values]}
            values.setdefault(key, []).extend(float(v) for v in np.atleast_1d(np.asarray(item, dtype=float)))
    return {t: [v for v in vs if not math.isnan(v)] for t, vs in values.items()}


def scores_boxplot(results: Mapping[str, object], published: Mapping[str, Mapping[str, float]] | None = None,
                   targets: Iterable[str] | None = None, metric: str = "SDR", title: str | None = None,
                   published_label: str = "published\n(MUSDB18)", ncols: int = 2, figsize=None):
    """SiSEC 2018-style boxplots: one panel per target, one box per method of its per-track scores.

    Args:
        results: ``{method: scores}``, in the order the boxes are drawn (oracles, models, ...);
            ``scores`` is a :class:`~mssbook.evaluation.ScoreTable` (its per-track medians are
            boxed), its ``per_track`` dict ``{track: {target: {metric: value}}}``, or
            ``{target: [values]}``. NaN values are left out; a method without values for a target
            gets no box there.
        published: ``{model: {target: value}}`` (e.g. :func:`mssbook.sisec.published_medians`),
            drawn to the right of the boxes as one marker per model, on a grey band labelled
            ``published_label``: published medians measured on another test set.
        targets: the panels (default: the targets found in ``results``, vocals/drums/bass/other
            first).
        metric: which metric of ``per_track`` dicts to draw (``"SDR"``, ``"SIR"``, ...).
        title: the figure's title.
        ncols: panels per row (the panels fill rows of ``ncols``).

    Returns:
        the matplotlib figure; ``fig.axes`` holds one axes per target, in order.
    """
    plt = import_matplotlib_pyplot()
    data = {method: _per_target(scores, metric) for method, scores in results.items()}
    if targets is None:
        found = list(dict.fromkeys(t for per in data.values() for t in per))
        targets = [t for t in _TARGET_ORDER if t in found] + sorted(t for t in found if t not in _TARGET_ORDER)
    targets = list(targets)
    if not targets:
        raise ValueError("no targets to draw: results hold no scores")
    methods = list(data)
    models = list(published or {})
    n_slots = len(methods) + (len(models) + 1 if models else 0)
    ncols = max(1, min(int(ncols), len(targets)))
    nrows = -(-len(targets) // ncols)
    if figsize is None:
        figsize = (max(3.0, 0.42 * n_slots + 1.2) * ncols, 4.6 * nrows)
    fig, grid = plt.subplots(nrows, ncols, figsize=figsize, sharey=True, squeeze=False)
    for ax in grid.flat[len(targets):]:  # a last row that is not full
        fig.delaxes(ax)
    axes = grid.flat[: len(targets)]
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for k_ax, (ax, target) in enumerate(zip(axes, targets)):
        positions, boxes, box_colors = [], [], []
        for i, method in enumerate(methods):
            values = data[method].get(target, [])
            if values:
                positions.append(i)
                boxes.append(values)
                box_colors.append(colors[i % len(colors)])
        if boxes:
            drawn = ax.boxplot(boxes, positions=positions, widths=0.6, patch_artist=True, showfliers=True,
                               medianprops={"color": "black", "linewidth": 1.5},
                               flierprops={"marker": ".", "markersize": 4})
            for patch, color in zip(drawn["boxes"], box_colors):
                patch.set_facecolor(color)
                patch.set_alpha(0.55)
        ticks, labels = list(range(len(methods))), list(methods)
        if models:
            start = len(methods) + 0.5
            ax.axvspan(start - 0.5, start + len(models) - 0.5, color="0.92", zorder=0)
            for k, model in enumerate(models):
                value = published[model].get(target)
                x = start + k
                ticks.append(x)
                labels.append(model)
                if value is not None and math.isfinite(value):
                    ax.plot([x], [value], marker=_PUBLISHED_MARKERS[k % len(_PUBLISHED_MARKERS)],
                            color="0.15", markersize=7, linestyle="none", zorder=3)
            ax.text(start + (len(models) - 1) / 2, 1.0, published_label, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8, color="0.35")
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
        ax.set_xlim(-0.7, (n_slots - 1) + 0.7 if models else len(methods) - 0.3)
        ax.axhline(0, color="0.6", linewidth=0.6, zorder=0)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(target, pad=18 if models else 6)
        if k_ax % ncols == 0:
            ax.set_ylabel(f"{metric} (dB)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
