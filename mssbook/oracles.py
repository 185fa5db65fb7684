"""Oracle baselines: what a separation method could reach if it knew the true sources.

Papers and leaderboards print a model's scores next to **oracles**: separations computed from the
true source signals themselves (Vincent, Gribonval & Plumbley, "Oracle estimators for the
benchmarking of source separation algorithms", Signal Processing 87(8), 2007). A time-frequency
mask or filter cannot do better than its oracle, so the oracle is the upper bound of that family
of methods, and the mixture itself (MIX) is the lower anchor. SiSEC 2018 (Stöter, Liutkus & Ito,
"The 2018 Signal Separation Evaluation Campaign", LVA/ICA 2018) scored these entries on MUSDB18,
with the scripts of ``github.com/sigsep/sigsep-mus-oracle``; this module computes the same ones:

===========  ==================================================================================
name         estimate of source j (STFT bin by bin, ``X`` the mixture, ``Y_j`` the true source)
===========  ==================================================================================
``ibm1``     ``X`` where ``|Y_j| / |X| > 0.5``, else 0 (ideal binary mask, magnitudes)
``ibm2``     ``X`` where ``|Y_j|² / |X|² > 0.5``, else 0 (ideal binary mask, powers)
``irm1``     ``X · |Y_j| / Σ_k |Y_k|`` (ideal ratio mask, magnitudes)
``irm2``     ``X · |Y_j|² / Σ_k |Y_k|²`` (ideal ratio mask, powers: the single-channel Wiener filter)
``mwf``      ``v_j R_j (Σ_k v_k R_k)⁻¹ x``: the multichannel Wiener filter with the true PSDs
             ``v_j(f, t)`` and time-invariant spatial covariances ``R_j(f)`` of the sources
``mix``      the mixture, for every target (the lower anchor)
===========  ==================================================================================

``ibm`` and ``irm`` take ``alpha`` as an option (default 1 for ``ibm``, 2 for ``irm``, as in
sigsep-mus-oracle); the numbered names fix it.

    >>> from mssbook.oracles import oracle, evaluate_oracle
    >>> estimates = oracle("irm2", mixture, {"vocals": vocals, "drums": drums, ...})
    >>> result = evaluate_oracle("mwf", root="data/toy", output_dir="eval/oracle-mwf")

Choices, with the facts they follow (sigsep-mus-oracle, ``IBM.py``, ``IRM.py``, ``MWF.py``,
``MIX.py``):

* **STFT**: a 2048-point periodic Hann window, hop 1024 (its ``scipy.signal.stft(x,
  nperseg=2048)``, whose default overlap is half a window). Here the STFT is
  :class:`mssbook.signal.transforms.STFT` (``torch.stft``, centred, reflect padding) instead of
  scipy's zero-padded one; both invert exactly, the edges of the signal are padded differently.
* **IBM**: the ratio is taken to the *mixture* (``|Y_j|^α / (eps + |X|^α) > θ``, θ = 0.5), per
  channel. This is not a partition of the mixture: where sources partly cancel, several can pass
  the threshold; where none dominates, none does. ``theta=None`` gives the other classic binary
  mask instead, which is a partition: every bin to the loudest source.
* **IRM**: ``|Y_j|^α / (eps + Σ_k |Y_k|^α)``, per channel, over the sources given.
* **MWF**: as MWF.py, the spatial covariance ``R_j(f)`` of each source is its channel
  covariance over *all* frames of the track, each frame normalised by the source's power
  ``v_j(f, t)`` (the maximum-likelihood ``R_j`` of the local Gaussian model), scaled to trace C;
  the PSD is then re-estimated given ``R_j`` (``v_j = y_jᴴ R_j⁻¹ y_j / C``), and the filter
  applied bin by bin with :func:`mssbook.signal.wiener.apply_wiener_filter`. The EM of
  :mod:`mssbook.signal.wiener` estimates ``R_j`` differently (frames weighted by their energy, the
  simplified update of Nugraha et al. 2016); with the true sources the ML estimate is the one to
  use, and the one sigsep-mus-oracle used. Regularisation constants differ from MWF.py (they are chosen
  to be inaudible and numerically safe in float64, see :func:`oracle_spatial_covariance`).
* **Accompaniment** (:func:`oracle_track`): the sum of the estimates of the sources it is made of
  (bass + drums + other), as all sigsep scripts form it; not the oracle run with the accompaniment
  as one source. MIX estimates every target by the mixture, accompaniment included.
* **MIX**: the mixture itself (``gain=1``). sigsep's MIX.py divides it by the number of musdb
  targets (``track.audio / len(track.targets)``); pass ``gain`` to reproduce that. BSSEval's SDR
  is not scale-invariant, so the two give different numbers.

Every estimate is filtered from the *mixture* (never the sum of the sources: in MUSDB18 STEMS the
two differ slightly). IRM and MWF estimates add up to the mixture (up to the STFT round trip and a
tiny regularisation, in every bin where some source is not silent); IBM ones only where exactly
one source passes the threshold; MIX ones do not.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import torch

from . import checks
from .errors import MSSBookError
from .evaluation import DEFAULT_BACKEND, add_dataset_arguments, evaluate_dataset, format_table, tracks_from_args
from .signal.transforms import ISTFT, STFT
from .signal.wiener import apply_wiener_filter, power_spectral_density

#: STFT size and hop of sigsep-mus-oracle (scipy's stft with nperseg=2048: 50 % overlap).
DEFAULT_N_FFT = 2048
DEFAULT_HOP_LENGTH = 1024

#: Threshold of the ideal binary mask on ``|Y_j|^α / |X|^α`` (sigsep-mus-oracle: a majority vote).
DEFAULT_THETA = 0.5

#: Added to mask denominators: numpy's float64 epsilon, as sigsep-mus-oracle.
MASK_EPS = float(np.finfo(np.float64).eps)

#: Regularisation of the Wiener filter: ``√eps`` of white noise on the mixture covariance (1e-8,
#: far below any audible bin of an unnormalised STFT), see :func:`apply_wiener_filter`.
MWF_EPS = 1e-16

#: Diagonal loading of the oracle spatial covariances (trace C), see :func:`oracle_spatial_covariance`.
SPATIAL_LOADING = 1e-6

#: Frames filtered at once (bounds the temporaries, float64 ones in the Wiener filter).
_FRAMES_PER_BLOCK = 512

__all__ = [
    "DEFAULT_N_FFT",
    "DEFAULT_HOP_LENGTH",
    "DEFAULT_THETA",
    "METHODS",
    "OracleMethod",
    "binary_masks",
    "ratio_masks",
    "ideal_binary_mask",
    "ideal_ratio_mask",
    "oracle_spatial_covariance",
    "oracle_psd",
    "multichannel_wiener",
    "mixture_as_estimate",
    "oracle",
    "oracle_options",
    "oracle_track",
    "evaluate_oracle",
    "configure_parser",
    "run_cli",
]


# --------------------------------------------------------------------------------------------
# Inputs and the STFT
# --------------------------------------------------------------------------------------------


def _as_signal(name: str, audio) -> np.ndarray:
    """``audio`` as float32 ``(channels, samples)``; 1-D is mono (:func:`mssbook.checks.audio_array`)."""
    return checks.audio_array(audio, name)[0]


def _check_inputs(mixture, sources: Mapping) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The mixture ``(C, L)``, the source names and the sources stacked ``(S, C, L)``, float32.

    Sources are zero-padded or cut to the mixture's length (decoded stems can differ by a few
    samples); their channel count must match.
    """
    mix = _as_signal("mixture", mixture)  # (C, L)
    n_channels, length = mix.shape
    if length == 0:
        raise MSSBookError("the mixture has no samples.")
    if not isinstance(sources, Mapping) or not sources:
        raise MSSBookError(
            "sources must be a non-empty dict {name: (channels, samples) array} of the true sources, "
            "e.g. {name: track.sources[name].audio.T for name in track.sources}."
        )
    names = list(sources)
    stacked = np.zeros((len(names), n_channels, length), np.float32)  # (S, C, L)
    for j, name in enumerate(names):
        s = _as_signal(f"source {name!r}", sources[name])
        if s.shape[0] != n_channels:
            raise MSSBookError(
                f"source {name!r} has {s.shape[0]} channel(s) but the mixture has {n_channels}; "
                "pass every signal as (channels, samples) with the same channels."
            )
        n = min(length, s.shape[1])
        stacked[j, :, :n] = s[:, :n]
    return mix, names, stacked


def _check_stft(n_fft, hop_length, length: int) -> tuple[int, int]:
    n_fft, hop_length = int(n_fft), int(hop_length)
    if n_fft < 2 or not 0 < hop_length < n_fft:
        raise MSSBookError(
            f"need n_fft >= 2 and 0 < hop_length < n_fft, got n_fft={n_fft}, hop_length={hop_length} "
            f"(sigsep-mus-oracle: {DEFAULT_N_FFT} and {DEFAULT_HOP_LENGTH})."
        )
    if length <= n_fft // 2:
        raise MSSBookError(
            f"the signals ({length} samples) are too short for n_fft={n_fft}: the centred STFT pads "
            f"{n_fft // 2} samples by reflection. Use a smaller n_fft or longer signals."
        )
    return n_fft, hop_length


def _stft(audio: np.ndarray, n_fft: int, hop_length: int) -> torch.Tensor:
    """``(C, L)`` or ``(S, C, L)`` float32 → complex64 ``(C, F, T)`` or ``(S, C, F, T)``
    (F = n_fft // 2 + 1), one signal at a time so that ``torch.stft``'s temporaries stay small."""
    stft = STFT(n_fft, hop_length)
    if audio.ndim == 2:
        return stft(torch.from_numpy(audio))
    n_sources, n_channels, length = audio.shape
    out = torch.empty(n_sources, n_channels, stft.n_bins, stft.frames(length), dtype=torch.complex64)
    for j in range(n_sources):
        out[j] = stft(torch.from_numpy(audio[j]))
    return out


def _istft(spec: torch.Tensor, n_fft: int, hop_length: int, length: int) -> np.ndarray:
    """complex ``(S, C, F, T)`` → float32 ``(S, C, L)`` of exactly ``length`` samples, one
    source at a time."""
    istft = ISTFT(n_fft, hop_length)
    out = np.empty((spec.shape[0], spec.shape[1], length), np.float32)
    for j in range(spec.shape[0]):
        out[j] = istft(spec[j].to(torch.complex64), length=length).numpy()
    return out


def _filter_in_blocks(x: torch.Tensor, y: torch.Tensor, filter_block: Callable) -> torch.Tensor:
    """``filter_block(x_b, y_b) -> (S, C, F, t)`` applied to blocks of frames of the mixture
    ``x`` (C, F, T) and the sources ``y`` (S, C, F, T); the estimates (S, C, F, T) are written over
    ``y``, which is not needed afterwards (this halves the memory a long track takes)."""
    for start in range(0, x.shape[-1], _FRAMES_PER_BLOCK):
        block = slice(start, start + _FRAMES_PER_BLOCK)
        y[..., block] = filter_block(x[..., block], y[..., block])
    return y


def _as_dict(names: list[str], estimates: np.ndarray) -> dict[str, np.ndarray]:
    """``(S, C, L)`` → ``{name: (C, L) float32}``."""
    return {name: np.ascontiguousarray(estimates[j], dtype=np.float32) for j, name in enumerate(names)}


def _check_alpha(alpha) -> float:
    alpha = float(alpha)
    if not alpha > 0:
        raise MSSBookError(f"alpha must be positive (1: magnitudes, 2: powers), got {alpha}.")
    return alpha


# --------------------------------------------------------------------------------------------
# Masks (pointwise in time, frequency and channel)
# --------------------------------------------------------------------------------------------


def binary_masks(mix_stft: torch.Tensor, source_stfts: torch.Tensor, alpha: float = 1.0,
                 theta: float | None = DEFAULT_THETA, eps: float = MASK_EPS) -> torch.Tensor:
    """Ideal binary masks, 0 or 1: ``mix_stft`` complex (C, F, T), ``source_stfts`` (S, C, F, T)
    → float32 (S, C, F, T).

    With ``theta`` (sigsep-mus-oracle's IBM): 1 where ``|Y_j|^α / (eps + |X|^α) > theta``.
    With ``theta=None``: 1 for the source with the largest ``|Y_j|`` in each bin (ties to the
    first), a partition of the mixture.
    """
    if theta is None:
        loudest = source_stfts.abs().argmax(dim=0, keepdim=True)  # (1, C, F, T)
        index = torch.arange(source_stfts.shape[0]).view(-1, 1, 1, 1)  # (S, 1, 1, 1)
        return (index == loudest).to(torch.float32)  # (S, C, F, T)
    ratio = source_stfts.abs().pow(alpha) / (eps + mix_stft.abs().pow(alpha))  # (S, C, F, T)
    return (ratio > theta).to(torch.float32)


def ratio_masks(source_stfts: torch.Tensor, alpha: float = 2.0, eps: float = MASK_EPS) -> torch.Tensor:
    """Ideal ratio masks ``|Y_j|^α / (eps + Σ_k |Y_k|^α)``: complex (S, C, F, T) → float32
    (S, C, F, T), in [0, 1], summing to 1 over the sources wherever any source is not silent."""
    power = source_stfts.abs().pow(alpha)  # (S, C, F, T)
    return power / (eps + power.sum(dim=0, keepdim=True))


def _masked(mixture, sources, n_fft, hop_length, make_masks: Callable) -> dict[str, np.ndarray]:
    """Filter the mixture by ``make_masks(X, Y) -> (S, C, F, T)`` and return the estimates."""
    mix, names, srcs = _check_inputs(mixture, sources)  # (C, L), S names, (S, C, L)
    n_fft, hop_length = _check_stft(n_fft, hop_length, mix.shape[-1])
    x = _stft(mix, n_fft, hop_length)  # (C, F, T)
    y = _stft(srcs, n_fft, hop_length)  # (S, C, F, T)
    del srcs
    # masks are pointwise: blocks of frames keep the float32 temporaries small on long tracks
    estimates = _filter_in_blocks(x, y, lambda x_b, y_b: x_b.unsqueeze(0) * make_masks(x_b, y_b))
    return _as_dict(names, _istft(estimates, n_fft, hop_length, mix.shape[-1]))  # (S, C, L)


def ideal_binary_mask(mixture, sources: Mapping, alpha: float = 1.0, theta: float | None = DEFAULT_THETA,
                      n_fft: int = DEFAULT_N_FFT,
                      hop_length: int = DEFAULT_HOP_LENGTH) -> dict[str, np.ndarray]:
    """Oracle **ideal binary mask** (IBM; SiSEC 2018's IBM1 with ``alpha=1``, IBM2 with ``alpha=2``).

    Each channel's STFT bin of the mixture goes, whole, to every source ``j`` with
    ``|Y_j|^α / |X|^α > theta`` (sigsep-mus-oracle's IBM.py; θ = 0.5: the source holds most of
    the bin); other sources get nothing there. ``theta=None``: each bin to the loudest source only.
    The masks are :func:`binary_masks`; see the module docstring for the STFT (2048 / 1024).

    Args:
        mixture: (channels, samples) array.
        sources: ``{name: (channels, samples)}``, the true sources.

    Returns:
        ``{name: (channels, samples) float32}``, the mixture's length.
    """
    alpha = _check_alpha(alpha)
    if theta is not None and not 0 < float(theta) < np.inf:
        raise MSSBookError(f"theta must be a positive threshold (sigsep: 0.5) or None, got {theta}.")
    return _masked(mixture, sources, n_fft, hop_length, lambda x, y: binary_masks(x, y, alpha, theta))


def ideal_ratio_mask(mixture, sources: Mapping, alpha: float = 2.0, n_fft: int = DEFAULT_N_FFT,
                     hop_length: int = DEFAULT_HOP_LENGTH) -> dict[str, np.ndarray]:
    """Oracle **ideal ratio mask** (IRM; SiSEC 2018's IRM1 with ``alpha=1``, IRM2 with ``alpha=2``).

    Source ``j`` gets the fraction ``|Y_j|^α / Σ_k |Y_k|^α`` of every STFT bin of the mixture, per
    channel (sigsep-mus-oracle's IRM.py; :func:`ratio_masks`). With powers (α = 2) this is the
    single-channel Wiener filter with the true spectrograms. The masks sum to one, so the
    estimates add up to the mixture.

    Args:
        mixture: (channels, samples) array.
        sources: ``{name: (channels, samples)}``, the true sources; all of them share each bin.

    Returns:
        ``{name: (channels, samples) float32}``, the mixture's length.
    """
    alpha = _check_alpha(alpha)
    return _masked(mixture, sources, n_fft, hop_length, lambda x, y: ratio_masks(y, alpha))


# --------------------------------------------------------------------------------------------
# Multichannel Wiener filter
# --------------------------------------------------------------------------------------------


def oracle_spatial_covariance(source_stfts: torch.Tensor, eps: float = MASK_EPS,
                              loading: float = SPATIAL_LOADING) -> torch.Tensor:
    """Time-invariant spatial covariances ``R_j(f)`` of the true sources: complex (S, C, F, T)
    → complex128 (S, F, C, C).

    ``R_j(f) = mean_t y_j y_jᴴ / (eps + v_j(f, t))`` with ``v_j`` the power averaged over channels
    (:func:`~mssbook.signal.wiener.power_spectral_density`): every frame counts the same, whatever
    its loudness. Given the PSDs this is the maximum-likelihood ``R_j`` of the local Gaussian model
    (Duong et al. 2010), and what sigsep-mus-oracle's MWF.py computes; :func:`mssbook.signal.wiener.
    spatial_covariance`, the simplified EM update, weighs frames by their energy instead. Then, as
    MWF.py, each ``R_j(f)`` is scaled to trace C (so ``v_j`` keeps the meaning of a power) and
    ``loading·I`` is added (MWF.py adds float64's eps; 1e-6, still inaudible, keeps the 2×2
    inversions accurate for sources that are identical in both channels). A source silent in a bin over the
    whole track gets ``R = I`` there (its PSD is zero anyway).
    """
    n_sources, n_channels, n_bins, n_frames = source_stfts.shape
    covariance = torch.zeros(n_sources, n_bins, n_channels, n_channels, dtype=torch.complex128)
    for start in range(0, n_frames, _FRAMES_PER_BLOCK):
        y = source_stfts[..., start : start + _FRAMES_PER_BLOCK].to(torch.complex128)  # (S, C, F, t)
        psd = power_spectral_density(y)  # (S, F, t)
        w = y / torch.sqrt(eps + psd).unsqueeze(1)  # y / √v: (S, C, F, t)
        covariance += torch.einsum("scft,sdft->sfcd", w, w.conj())  # Σ_t y yᴴ / v: (S, F, C, C)
    covariance /= n_frames
    eye = torch.eye(n_channels, dtype=torch.complex128)
    trace = torch.diagonal(covariance, dim1=-2, dim2=-1).sum(-1).real  # (S, F)
    silent = (trace <= 0)[..., None, None]
    scaled = covariance * (n_channels / torch.where(trace > 0, trace, 1.0))[..., None, None]
    return torch.where(silent, eye, scaled) + loading * eye  # (S, F, C, C)


def oracle_psd(source_stfts: torch.Tensor, covariance: torch.Tensor) -> torch.Tensor:
    """PSDs ``v_j(f, t) = y_jᴴ R_j(f)⁻¹ y_j / C`` of the true sources given their spatial
    covariances (the maximum-likelihood ``v_j`` given ``R_j``, as MWF.py re-estimates it): complex
    (S, C, F, T) and (S, F, C, C) → float64 (S, F, T). For a source with ``R_j = I`` this is the
    power averaged over channels; correlated channels count once, not twice."""
    n_channels = source_stfts.shape[1]
    inverse = torch.linalg.inv(covariance)  # (S, F, C, C)
    y = source_stfts.to(torch.complex128)  # (S, C, F, T)
    quadratic = torch.einsum("scft,sfcd,sdft->sft", y.conj(), inverse, y).real  # yᴴ R⁻¹ y
    return quadratic.clamp(min=0) / n_channels


def multichannel_wiener(mixture, sources: Mapping, n_fft: int = DEFAULT_N_FFT,
                        hop_length: int = DEFAULT_HOP_LENGTH, eps: float = MWF_EPS) -> dict[str, np.ndarray]:
    """Oracle **multichannel Wiener filter** (MWF, SiSEC 2018) with the true source statistics.

    Each source image ``y_j(f, t)`` (a C-channel complex vector) is modelled as a zero-mean
    Gaussian with covariance ``v_j(f, t) R_j(f)`` (local Gaussian model; Duong, Vincent &
    Gribonval, IEEE TASLP 18(7), 2010). The oracle takes both from the true sources, as
    sigsep-mus-oracle's MWF.py: ``R_j`` their channel covariance over the whole track
    (time-invariant, :func:`oracle_spatial_covariance`), then ``v_j`` their power given ``R_j``
    (:func:`oracle_psd`). Then, bin by bin,
    ``ŷ_j = v_j R_j (√eps·I + Σ_k v_k R_k)⁻¹ x``
    (:func:`mssbook.signal.wiener.apply_wiener_filter`). Unlike the masks, this uses the phase
    and level differences between channels. The estimates add up to the mixture.

    Args:
        mixture: (channels, samples) array.
        sources: ``{name: (channels, samples)}``, the true sources.
        eps: regularisation of the filter (computed in float64; 1e-16 adds white noise of power
            1e-8 to the mixture model, far below any audible bin of the unnormalised STFT).

    Returns:
        ``{name: (channels, samples) float32}``, the mixture's length.
    """
    mix, names, srcs = _check_inputs(mixture, sources)  # (C, L), S names, (S, C, L)
    n_fft, hop_length = _check_stft(n_fft, hop_length, mix.shape[-1])
    x = _stft(mix, n_fft, hop_length)  # (C, F, T) complex64
    y = _stft(srcs, n_fft, hop_length)  # (S, C, F, T) complex64
    del srcs
    covariance = oracle_spatial_covariance(y)  # R_j(f): (S, F, C, C), from all frames

    def filter_block(x_b: torch.Tensor, y_b: torch.Tensor) -> torch.Tensor:
        psd = oracle_psd(y_b, covariance)  # v_j(f, t): (S, F, t)
        return apply_wiener_filter(psd, covariance, x_b.to(torch.complex128), eps)  # (S, C, F, t)

    estimates = _filter_in_blocks(x, y, filter_block)  # pointwise in time, so in blocks of frames
    return _as_dict(names, _istft(estimates, n_fft, hop_length, mix.shape[-1]))


# --------------------------------------------------------------------------------------------
# The mixture as estimate
# --------------------------------------------------------------------------------------------


def mixture_as_estimate(mixture, sources: Mapping, gain: float = 1.0) -> dict[str, np.ndarray]:
    """The lower anchor **MIX**: every target estimated by the mixture (times ``gain``).

    A separation that does worse than doing nothing scores below MIX. Only the names (and the
    channel counts) of ``sources`` are used. ``gain=1/len(track.targets)`` reproduces
    sigsep-mus-oracle's MIX.py, which scales the mixture down (SDR is not scale-invariant).

    Returns:
        ``{name: (channels, samples) float32}``, copies of the mixture.
    """
    mix, names, _ = _check_inputs(mixture, sources)
    gain = float(gain)
    if not np.isfinite(gain):
        raise MSSBookError(f"gain must be a finite number, got {gain}.")
    return {name: mix * np.float32(gain) for name in names}


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleMethod:
    """An entry of :data:`METHODS`: the function, the options its name fixes, and how a musdb
    track's accompaniment is estimated (``"sum"``: the sum of its sources' estimates;
    ``"direct"``: the method is given the accompaniment as one more target)."""

    function: Callable[..., dict]
    fixed: Mapping[str, object] = field(default_factory=dict)
    accompaniment: str = "sum"
    summary: str = ""


#: Oracle names → :class:`OracleMethod`; :func:`oracle` accepts any of them (case-insensitive).
METHODS: dict[str, OracleMethod] = {
    "ibm": OracleMethod(ideal_binary_mask, {}, "sum", "ideal binary mask (alpha 1 unless given)"),
    "ibm1": OracleMethod(ideal_binary_mask, {"alpha": 1.0}, "sum", "ideal binary mask on magnitudes"),
    "ibm2": OracleMethod(ideal_binary_mask, {"alpha": 2.0}, "sum", "ideal binary mask on powers"),
    "irm": OracleMethod(ideal_ratio_mask, {}, "sum", "ideal ratio mask (alpha 2 unless given)"),
    "irm1": OracleMethod(ideal_ratio_mask, {"alpha": 1.0}, "sum", "ideal ratio mask of magnitudes"),
    "irm2": OracleMethod(ideal_ratio_mask, {"alpha": 2.0}, "sum", "ideal ratio mask of powers (Wiener)"),
    "mwf": OracleMethod(multichannel_wiener, {}, "sum", "multichannel Wiener filter, oracle v_j and R_j"),
    "mix": OracleMethod(mixture_as_estimate, {}, "direct", "the mixture as every estimate (lower anchor)"),
}


def _method(method: str) -> tuple[str, OracleMethod]:
    name = str(method).strip().lower()
    if name not in METHODS:
        raise MSSBookError(f"unknown oracle method {method!r}; available: {', '.join(METHODS)}.")
    return name, METHODS[name]


def oracle_options(method: str, **options) -> dict:
    """Every option ``method`` will run with: its function's defaults, updated with ``options``
    and the options its name fixes (an alias given a conflicting value is an error)."""
    name, entry = _method(method)
    parameters = {
        key: p.default for key, p in inspect.signature(entry.function).parameters.items()
        if key not in ("mixture", "sources")
    }
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise MSSBookError(
            f"oracle {name!r} has no option {', '.join(unknown)}; "
            f"its options: {', '.join(parameters) or 'none'}."
        )
    for key, value in entry.fixed.items():
        if key in options and options[key] != value:
            raise MSSBookError(
                f"oracle {name!r} means {key}={value:g}; got {key}={options[key]!r}. Use "
                f"{name.rstrip('0123456789')!r} with {key}={options[key]!r} instead."
            )
    return {**parameters, **options, **entry.fixed}


def oracle(method: str, mixture, sources: Mapping, **options) -> dict[str, np.ndarray]:
    """Run the oracle ``method`` (a name of :data:`METHODS`) on a mixture and its true sources.

    ``mixture`` is (channels, samples), ``sources`` ``{name: (channels, samples)}``; ``options``
    are the method's keyword arguments (``alpha``, ``theta``, ``n_fft``, ``hop_length``,
    ``eps``, ``gain``). Returns ``{name: (channels, samples) float32}``.
    """
    _, entry = _method(method)
    return entry.function(mixture, sources, **oracle_options(method, **options))


def oracle_track(method: str, track, **options) -> dict[str, np.ndarray]:
    """Oracle estimates of a musdb ``track``: one per source, plus ``accompaniment``.

    ``track.audio`` and ``track.sources[name].audio`` are (samples, channels), as musdb gives them;
    the estimates are (channels, samples) float32, for every source of the track (vocals, drums,
    bass, other) and, when the track has that target, ``accompaniment``: the sum of the estimates
    of its sources (bass + drums + other), as sigsep-mus-oracle forms it, or the mixture for
    ``mix``.
    """
    name, entry = _method(method)
    mixture = np.asarray(track.audio, dtype=np.float32).T  # (C, L)
    sources = {key: np.asarray(source.audio, dtype=np.float32).T for key, source in track.sources.items()}
    target = getattr(track, "targets", {}).get("accompaniment")
    members = [getattr(s, "name", s) for s in getattr(target, "sources", None) or []]  # bass, drums, other
    if not members or not all(m in sources for m in members):
        return oracle(name, mixture, sources, **options)  # no accompaniment target
    if entry.accompaniment == "direct":  # the accompaniment is one more target, its truth the sum
        truth = np.sum([sources[m] for m in members], axis=0, dtype=np.float32)  # (C, L)
        return oracle(name, mixture, {**sources, "accompaniment": truth}, **options)
    estimates = oracle(name, mixture, sources, **options)
    estimates["accompaniment"] = np.sum([estimates[m] for m in members], axis=0, dtype=np.float32)
    return estimates


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluate_oracle(
    method: str,
    root=None,
    subset: str = "test",
    *,
    output_dir,
    tracks: int | str | Iterable[str] | None = None,
    backend: str = DEFAULT_BACKEND,
    is_wav: bool | None = None,
    split: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    metrics=(),
    **options,
) -> dict:
    """Score an oracle on a MUSDB18 subset with BSSEval v4, resumably; returns a summary dict.

    The oracle's estimates of each track (:func:`oracle_track`) are scored by
    :func:`mssbook.evaluation.evaluate_dataset` as a model's would be: museval's JSON per track in
    ``output_dir/<subset>/<track>.json`` (the four sources as one group, vocals with accompaniment
    as a second pair, as in SiSEC 2018), tracks already scored with the same settings skipped.

    Args:
        method: a name of :data:`METHODS` (``"ibm1"``, ``"irm2"``, ``"mwf"``, ``"mix"``, ...).
        root, subset, is_wav, split, tracks: the dataset and the tracks, as for
            :func:`mssbook.evaluation.evaluate_tracks` (``root=None``: ``$MUSDB_PATH``).
        output_dir: where the JSON files go; one folder per oracle and options.
        backend: the scorer, ``"fast"`` (mssbook's BSSEval v4) or ``"museval"``.
        overwrite: score the selected tracks again even when their JSON exists.
        metrics: track-level SDRs to add (``"usdr"``, ``"csdr"``), as for a model.
        **options: the oracle's options (``alpha``, ``theta``, ``n_fft``, ``hop_length``, ...).

    Returns:
        ``{"output_dir", "subset", "tracks", "evaluated", "skipped", "table", "seconds"}``.
    """
    name, _ = _method(method)
    resolved = oracle_options(name, **options)  # checked before any track is opened
    settings = {"oracle": name, "options": dict(sorted(resolved.items())), "backend": backend,
                "win": 1.0, "hop": 1.0}

    def estimator(track) -> dict:
        return oracle_track(name, track, **resolved)

    return evaluate_dataset(estimator, root, subset, output_dir=output_dir, settings=settings,
                            is_wav=is_wav, split=split, tracks=tracks, backend=backend,
                            overwrite=overwrite, progress=progress, description=f"oracle {name}",
                            metrics=metrics)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

#: CLI options → oracle option names (given to the oracle only when set).
_CLI_OPTIONS = {"alpha": "alpha", "theta": "theta", "n_fft": "n_fft", "hop_length": "hop_length"}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``mssbook oracle`` to ``parser`` (and ``func=run_cli``)."""
    parser.description = (
        "Score an oracle baseline (ideal binary/ratio mask, multichannel Wiener filter, or the "
        "mixture itself) on MUSDB18 with BSSEval v4, as SiSEC 2018 did; prints the "
        "median-over-frames, median-over-tracks table. Resumable: tracks already scored in the "
        "output folder are skipped."
    )
    parser.add_argument("--method", required=True, type=str.lower, choices=list(METHODS),
                        help="; ".join(f"{k}: {v.summary}" for k, v in METHODS.items()))
    parser.add_argument("--alpha", type=float, default=None,
                        help="ibm/irm exponent of the spectrograms: 1 magnitudes, 2 powers "
                        "(default: 1 for ibm, 2 for irm)")
    parser.add_argument("--theta", type=float, default=None,
                        help=f"ibm threshold on |Y_j|^alpha / |X|^alpha (default {DEFAULT_THETA})")
    parser.add_argument("--n-fft", type=int, default=None, help=f"STFT size (default {DEFAULT_N_FFT})")
    parser.add_argument("--hop-length", type=int, default=None, help=f"STFT hop (default {DEFAULT_HOP_LENGTH})")
    add_dataset_arguments(parser, scored="oracle and options")
    parser.set_defaults(func=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``mssbook oracle`` and print the table."""
    options = {key: getattr(args, cli) for cli, key in _CLI_OPTIONS.items() if getattr(args, cli) is not None}
    result = evaluate_oracle(
        args.method,
        root=args.root,
        subset=args.subset,
        output_dir=args.outdir,
        tracks=tracks_from_args(args),
        backend=args.backend,
        is_wav=args.is_wav,
        split=args.split,
        overwrite=args.force,
        progress=True,
        metrics=args.metrics,
        **options,
    )
    print(f"oracle {args.method}")
    print(format_table(result["table"]))
    print(f"{len(result['evaluated'])} track(s) evaluated, {len(result['skipped'])} skipped, "
          f"{result['seconds']:.1f} s; scores in {Path(result['output_dir']) / result['subset']}",
          file=sys.stderr)
    return 0
