"""Multichannel Wiener filtering: from estimated magnitudes to complex source STFTs.

A mask or magnitude network (Open-Unmix, D3Net, X-UMX) estimates *how loud* each source is in
every time-frequency bin, but not its phase nor how it sits between the left and right channels.
This module turns such estimates into complex STFTs of the sources, the way the ``norbert``
library and Open-Unmix's ``Separator`` do (spec ``architectures.md`` §1.4).

Two steps:

1. **Initial estimate** (``niter = 0`` stops here). Either give each source its estimated
   magnitude with the *mixture's* phase (:func:`mixture_phase`), or split the complex mixture in
   proportion to the estimates (:func:`softmask`). Optionally a ``residual`` source, the mixture
   minus the sum of the others, collects what no target claimed (:func:`add_residual`).

2. **Expectation-maximisation** (``niter >= 1``, :func:`expectation_maximization`). Model every
   source image ``y_j(f, t)`` (a C-channel complex vector) as a zero-mean complex Gaussian with
   covariance ``v_j(f, t) · R_j(f)``:

   * ``v_j(f, t) >= 0``, the **power spectral density** (PSD): how much energy source j has in
     that bin, averaged over the channels (:func:`power_spectral_density`);
   * ``R_j(f)``, a C×C Hermitian **spatial covariance matrix**, fixed over the frames of a block:
     how source j is spread over the channels (panning, stereo width, phase between channels)
     (:func:`spatial_covariance`).

   If the sources are independent, the mixture ``x = Σ_j y_j`` has covariance
   ``C_x = Σ_j v_j R_j``, and the minimum-mean-square-error estimate of each source is the
   multichannel Wiener filter ``ŷ_j = v_j R_j C_x⁻¹ x`` (:func:`apply_wiener_filter`). Each
   iteration re-estimates ``v`` and ``R`` from the current source estimates (the "M" step, using
   the simplified, empirically more robust update of Nugraha, Liutkus & Vincent 2016 rather than
   the exact EM posterior) and filters the mixture again (the "E" step). The estimates always add
   up to the mixture (up to the small regularisation), and their phases now come from the model,
   not just copied from the mixture.

The spatial covariances are estimated over blocks of ``wiener_win_len`` frames (300 ≈ 7 s at
hop 1024 / 44.1 kHz): sources may move between blocks, and the memory needed stays bounded.

Layout (mssbook's convention, channels before frequency before frames):

* ``spectrograms``: real, non-negative ``(..., S, C', F, T)`` with ``C'`` = C or 1 (a mono model's
  estimate is shared by all channels);
* ``mix_stft``: complex ``(..., C, F, T)``;
* result: complex ``(..., S, C, F, T)``, or ``(..., S + 1, C, F, T)`` with ``residual=True``.

The leading ``...`` (typically the batch) are independent signals: every statistic is computed per
leading index, exactly as if each had been filtered on its own.

References: Nugraha, Liutkus & Vincent, "Multichannel audio source separation with deep neural
networks", IEEE/ACM TASLP 24(9), 2016; Duong, Vincent & Gribonval, "Under-determined reverberant
audio source separation using a full-rank spatial covariance model", IEEE TASLP 18(7), 2010;
Liutkus, Badeau & Richard, "Kernel additive models for source separation", IEEE TSP 62(16), 2014.
Numerical agreement with ``openunmix.filtering.wiener`` is tested in ``tests/test_wiener.py``.

Precision: float32 is what Open-Unmix uses and is accurate enough for listening; for the EM on
ill-conditioned bins (one source with a rank-one spatial covariance dominating) float64 inputs
(``complex128``) give smaller rounding errors.
"""

from __future__ import annotations

import torch

#: frames per block in Open-Unmix's Separator (``wiener_win_len``)
DEFAULT_WIENER_WIN_LEN = 300


# --- initial estimates (pointwise in time and frequency) ----------------------------------------
def mixture_phase(magnitudes: torch.Tensor, mix_stft: torch.Tensor) -> torch.Tensor:
    """Complex estimates: each source's magnitude with the phase of the mixture.

    ``magnitudes`` (..., S, C', F, T) real, ``mix_stft`` (..., C, F, T) complex →
    (..., S, C, F, T) complex. A bin where the mixture is exactly zero gets phase 0.
    """
    phase = torch.angle(mix_stft)  # (..., C, F, T), in (-π, π]
    unit = torch.polar(torch.ones_like(phase), phase)  # e^{iφ}: (..., C, F, T)
    return magnitudes * unit.unsqueeze(-4)  # (..., S, C, F, T)


def softmask(spectrograms: torch.Tensor, mix_stft: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Complex estimates by ratio masks: source j gets ``s_j / (eps + Σ_k s_k)`` of the mixture.

    ``spectrograms`` (..., S, C', F, T) real, ``mix_stft`` (..., C, F, T) complex →
    (..., S, C, F, T). The masks sum to (almost) one, so the estimates add up to the mixture.
    """
    masks = spectrograms / (eps + spectrograms.sum(dim=-4, keepdim=True))  # (..., S, C', F, T)
    return mix_stft.unsqueeze(-4) * masks  # (..., S, C, F, T)


_softmask = softmask  # `wiener` has a flag of the same name


def add_residual(estimates: torch.Tensor, mix_stft: torch.Tensor) -> torch.Tensor:
    """Append one source, the mixture minus the sum of the estimates: (..., S, C, F, T) → (..., S+1, C, F, T)."""
    residual = mix_stft.unsqueeze(-4) - estimates.sum(dim=-4, keepdim=True)  # (..., 1, C, F, T)
    return torch.cat([estimates, residual], dim=-4)


# --- the Gaussian model ----------------------------------------------------------------------
def power_spectral_density(estimates: torch.Tensor) -> torch.Tensor:
    """PSD ``v_j(f, t)``: the power of each source averaged over the channels.

    ``estimates`` (..., S, C, F, T) complex → (..., S, F, T) real.
    """
    return (estimates.real.square() + estimates.imag.square()).mean(dim=-3)


def spatial_covariance(estimates: torch.Tensor, psd: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Spatial covariance ``R_j(f)`` of each source over the frames of the block.

    ``R_j(f) = Σ_t y_j(f,t) y_j(f,t)ᴴ / (eps + Σ_t v_j(f,t))``: the empirical channel covariance,
    normalised by the source's energy so that ``v_j R_j`` is the model of ``y_j y_jᴴ``. Loud
    frames weigh more than quiet ones. For a source panned hard left, ``R_j ≈ [[2, 0], [0, 0]]``;
    for a centred mono source, ``R_j ≈ [[1, 1], [1, 1]]``.

    ``estimates`` (..., S, C, F, T) complex, ``psd`` (..., S, F, T) → (..., S, F, C, C) complex.
    """
    outer = torch.einsum("...scft,...sdft->...sfcd", estimates, estimates.conj())  # Σ_t y yᴴ
    weight = eps + psd.sum(dim=-1)  # (..., S, F)
    return outer / weight[..., None, None]


def _solve(matrices: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """``M⁻¹ x`` for a batch of C×C matrices ``(..., C, C)`` and vectors ``(..., C)``.

    Mono and stereo use the closed forms (fast, and what Open-Unmix does); more channels fall back
    to a batched LU solve.
    """
    n = matrices.shape[-1]
    if n == 1:
        return vectors / matrices[..., 0]
    if n == 2:
        a, b = matrices[..., 0, 0], matrices[..., 0, 1]
        c, d = matrices[..., 1, 0], matrices[..., 1, 1]
        x0, x1 = vectors[..., 0], vectors[..., 1]
        inv_det = 1.0 / (a * d - b * c)
        return torch.stack([(d * x0 - b * x1) * inv_det, (a * x1 - c * x0) * inv_det], dim=-1)
    return torch.linalg.solve(matrices, vectors.unsqueeze(-1)).squeeze(-1)


def apply_wiener_filter(
    psd: torch.Tensor, covariance: torch.Tensor, mix_stft: torch.Tensor, eps: float = 1e-10
) -> torch.Tensor:
    """Multichannel Wiener filter ``ŷ_j = v_j R_j C_x⁻¹ x`` with ``C_x = √eps·I + Σ_j v_j R_j``.

    ``psd`` (..., S, F, T), ``covariance`` (..., S, F, C, C), ``mix_stft`` (..., C, F, T) →
    source estimates (..., S, C, F, T). ``√eps·I`` (Open-Unmix's regularisation: a little white
    noise in every channel) keeps ``C_x`` invertible where all sources are silent.
    """
    n_channels = mix_stft.shape[-3]
    v = psd.to(covariance.dtype)  # complex copy, for einsum
    eye = torch.eye(n_channels, dtype=covariance.dtype, device=covariance.device)
    mix_cov = eps**0.5 * eye + torch.einsum("...sft,...sfcd->...ftcd", v, covariance)  # (..., F, T, C, C)
    x = mix_stft.movedim(-3, -1)  # (..., F, T, C)
    z = _solve(mix_cov, x)  # C_x⁻¹ x: (..., F, T, C)
    # R_j z, then scale by v_j: (..., S, F, T, C)
    y = torch.einsum("...sfcd,...ftd->...sftc", covariance, z) * v.unsqueeze(-1)
    return y.movedim(-1, -3)  # (..., S, C, F, T)


def expectation_maximization(
    estimates: torch.Tensor, mix_stft: torch.Tensor, niter: int = 1, eps: float = 1e-10
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Refine complex source estimates with ``niter`` rounds of (simplified) EM on one block.

    ``estimates`` (..., S, C, F, T) complex, ``mix_stft`` (..., C, F, T) complex. All frames given
    share one spatial covariance per source and bin (call it per block; :func:`wiener` does).

    Returns ``(estimates, psd, covariance)``: the refined (..., S, C, F, T) estimates, and the PSDs
    (..., S, F, T) and spatial covariances (..., S, F, C, C) of the last iteration's model.
    """
    psd = covariance = None
    for _ in range(niter):
        psd = power_spectral_density(estimates)  # M step: v_j(f, t)
        covariance = spatial_covariance(estimates, psd, eps)  # M step: R_j(f)
        estimates = apply_wiener_filter(psd, covariance, mix_stft, eps)  # E step
    return estimates, psd, covariance


# --- the whole filter -----------------------------------------------------------------------
def _check_inputs(spectrograms: torch.Tensor, mix_stft: torch.Tensor) -> None:
    if not torch.is_complex(mix_stft):
        raise ValueError(f"mix_stft must be a complex STFT (..., C, F, T); got dtype {mix_stft.dtype}")
    if torch.is_complex(spectrograms):
        raise ValueError("spectrograms must be real, non-negative estimates (..., S, C, F, T), not complex")
    if mix_stft.ndim < 3 or spectrograms.ndim != mix_stft.ndim + 1:
        raise ValueError(
            "expected spectrograms (..., S, C, F, T) with one more dimension than mix_stft (..., C, F, T); "
            f"got {tuple(spectrograms.shape)} and {tuple(mix_stft.shape)}"
        )
    lead, (channels, bins, frames) = mix_stft.shape[:-3], mix_stft.shape[-3:]
    s_lead, s_channels, s_bins, s_frames = spectrograms.shape[:-4], *spectrograms.shape[-3:]
    if s_lead != lead or (s_bins, s_frames) != (bins, frames) or s_channels not in (1, channels):
        raise ValueError(
            f"spectrograms {tuple(spectrograms.shape)} do not match mix_stft {tuple(mix_stft.shape)}: "
            f"expected (..., S, {channels} or 1, {bins}, {frames}) with the same leading dimensions"
        )


def wiener(
    spectrograms: torch.Tensor,
    mix_stft: torch.Tensor,
    niter: int = 1,
    softmask: bool = False,
    residual: bool = False,
    wiener_win_len: int | None = DEFAULT_WIENER_WIN_LEN,
    eps: float = 1e-10,
    scale_factor: float = 10.0,
) -> torch.Tensor:
    """Complex source STFTs from estimated source spectrograms and the complex mixture STFT.

    Args:
        spectrograms: real (..., S, C', F, T), C' = C or 1. Magnitudes (power-1 spectrograms) for
            the mixture-phase initialisation; any non-negative "loudness" for ``softmask``.
        mix_stft: complex (..., C, F, T).
        niter: EM iterations after the initial estimate; 0 returns the initial estimate. EM needs
            at least two sources (count the residual).
        softmask: initial estimate by ratio masks instead of magnitude + mixture phase.
        residual: add the mixture minus the estimates as a last source (before EM).
        wiener_win_len: frames per block for the EM (each block has its own spatial covariances);
            None or 0: all frames in one block (memory grows with the signal length).
        eps: regularisation, as Open-Unmix: in the soft masks, the covariance normalisation, and
            ``√eps`` of white noise added to the mixture covariance.
        scale_factor: before EM, each block is divided by ``max(1, max|x| / scale_factor)`` (and
            multiplied back afterwards) so the eps terms stay small next to the signal.

    Returns:
        complex (..., S, C, F, T), or (..., S + 1, C, F, T) with ``residual``.
    """
    _check_inputs(spectrograms, mix_stft)
    niter = int(niter)
    if niter < 0:
        raise ValueError(f"niter must be >= 0, got {niter}")
    n_sources = spectrograms.shape[-4] + int(bool(residual))
    if niter > 0 and n_sources < 2:
        raise ValueError(
            "the EM of the Wiener filter needs at least two sources to share the mixture; "
            "use niter=0, or residual=True to add the mixture minus the target as a second source"
        )
    spectrograms = spectrograms.to(mix_stft.real.dtype)

    if softmask:
        estimates = _softmask(spectrograms, mix_stft, eps)
    else:
        estimates = mixture_phase(spectrograms, mix_stft)  # (..., S, C, F, T)
    if residual:
        estimates = add_residual(estimates, mix_stft)  # (..., S + 1, C, F, T)
    if niter == 0:
        return estimates  # everything so far is pointwise: no blocks needed

    n_frames = mix_stft.shape[-1]
    block = int(wiener_win_len) if wiener_win_len else n_frames
    if block < 1:
        raise ValueError(f"wiener_win_len must be positive (or None/0 for all frames); got {wiener_win_len}")
    out = []
    for start in range(0, n_frames, block):
        x = mix_stft[..., start : start + block]  # (..., C, F, t)
        y = estimates[..., start : start + block]  # (..., S, C, F, t)
        # bring the loudest bin of the block down to about `scale_factor` (never scale up)
        peak = x.abs().amax(dim=(-3, -2, -1), keepdim=True)  # (..., 1, 1, 1)
        scale = torch.clamp(peak / scale_factor, min=1.0)
        y, _, _ = expectation_maximization(y / scale.unsqueeze(-4), x / scale, niter, eps)
        out.append(y * scale.unsqueeze(-4))
    return torch.cat(out, dim=-1)


__all__ = [
    "wiener",
    "mixture_phase",
    "softmask",
    "add_residual",
    "power_spectral_density",
    "spatial_covariance",
    "apply_wiener_filter",
    "expectation_maximization",
    "DEFAULT_WIENER_WIN_LEN",
]
