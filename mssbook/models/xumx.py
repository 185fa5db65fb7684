"""X-UMX (CrossNet-Open-Unmix): four Open-Unmix branches that talk to each other through two bridges.

Sawata, Uhlich, Takahashi & Mitsufuji, "All for One and One for All: Improving Music Separation by
Bridging Networks", ICASSP 2021 (arXiv 2010.04228). Facts (bridges, loss, training recipe,
parameter count) come from ``shared/spec/architectures.md`` §2; the branch layers are Open-Unmix's
(§1.2, :mod:`mssbook.models.umx`).

The picture of the paper (its Fig. 1, right), for S sources (bass, drums, vocals, other)::

    mixture magnitude |X|  (B, C, 2049, T)
      │ every branch s: crop to 1487 bins, its own (x − mean) / std,
      │ fc1 → BatchNorm → tanh                        h_s      (T, B, 512)
      ├─ bridge 1: h̄ = mean_s h_s                               (T, B, 512)     [§2, "averaging"]
      │ every branch s: 3-layer BLSTM_s(h̄)                       (T, B, 512)
      │ skip: z_s = concat[h_s, BLSTM_s(h̄)]                     (T, B, 1024)
      ├─ bridge 2: z̄ = mean_s z_s                               (T, B, 1024)
      │ every branch s: fc2 → BN → ReLU → fc3 → BN        (T, B, C·2049)
      │ · output_scale_s + output_mean_s → ReLU             mask_s  (T, B, C, 2049)
      └─ estimate_s = mask_s × |X|                                (B, S, C, 2049, T)

The bridges are plain means: X-UMX has exactly the parameters of four Open-Unmix networks
(4 × 8,893,348 = 35,573,392 for the paper's sizes). Each branch *is* an
:class:`~mssbook.models.umx.OpenUnmix` (``XUMX.target_models[source]``, the same parameter names and
shapes), so a UMX state dict loads into a branch (:meth:`XUMX.load_target_state_dict`); only
:meth:`XUMX.forward` wires the layers differently.

Training (§3 of the paper, "multi-domain loss" and "combination loss"): every subset of 1 … S−1
sources (14 for S = 4) is scored as if it were one source, in the frequency domain (MSE of the summed
magnitudes) and in the time domain (weighted SDR of the summed waveforms, rebuilt from the masked
magnitudes with the mixture phase); ``L = L_freq + 10 · L_time``. Separation uses the same
multichannel Wiener filter as UMX (:mod:`mssbook.signal.wiener`).
"""

from __future__ import annotations

import itertools
from typing import Iterable

import torch
import torch.nn.functional as F

from ..runtime import network_runner
from ..signal.transforms import magnitude
from ..signal.wiener import mixture_phase
from . import register
from .umx import UMX, _record

#: the official code's edge trim before the weighted SDR (``x-umx/loss.py: sdr_loss_core``)
OFFICIAL_EDGE_TRIM = 200


# --- the loss: multi-domain loss with the combination loss (paper §3) ---------------------------
def source_combinations(nb_sources: int) -> list[tuple[int, ...]]:
    """Index tuples of every subset of 1 … S−1 sources, singles first (S = 4: 4 + 6 + 4 = 14).

    These are the "combination loss" terms of the paper (§3.2); with one source, just (0,).
    """
    sizes = range(1, max(2, nb_sources))
    return [combo for size in sizes for combo in itertools.combinations(range(nb_sources), size)]


def combination_matrix(nb_sources: int, combination: bool = True) -> torch.Tensor:
    """(K, S) 0/1 matrix: row k marks the sources of combination k (K = 14 for S = 4; S singles without)."""
    combos = source_combinations(nb_sources) if combination else [(s,) for s in range(nb_sources)]
    matrix = torch.zeros(len(combos), nb_sources)
    for row, combo in enumerate(combos):
        matrix[row, list(combo)] = 1.0
    return matrix


def combine(signals: torch.Tensor, combination: bool = True) -> torch.Tensor:
    """Sum the sources of every combination: (B, S, ...) → (B, K, ...), one small matrix product."""
    matrix = combination_matrix(signals.shape[1], combination).to(signals)  # (K, S)
    return torch.einsum("ks,bs...->bk...", matrix, signals)


def frequency_domain_loss(estimates: torch.Tensor, references: torch.Tensor, combination: bool = True) -> torch.Tensor:
    """``L_freq``: mean over the combinations of the MSE between the summed magnitudes.

    ``estimates``, ``references``: magnitudes (B, S, C, F, T). ``combination=False``: singles only.
    Every combination has the same number of bins, so the mean of the K MSEs is the mean of
    ``combine(d).square()`` over (B, K, C, F, T), with ``d = ŝ − s`` (sums are linear:
    ``Σ ŝ − Σ s = Σ (ŝ − s)``). Computed without building the K summed copies: combination k's
    squared error is ``Σ_{s,t ∈ k} ⟨d_s, d_t⟩``, so the total is ``Σ_{s,t} G_st ⟨d_s, d_t⟩`` with
    ``G = MᵀM`` (M the (K, S) :func:`combination_matrix`; ``G_st`` counts the combinations holding
    both s and t): S² inner products, one matrix product, instead of K tensors the size of ``d``.
    """
    diff = estimates - references  # (B, S, C, F, T)
    nb_sources = diff.shape[1]
    rows = diff.transpose(0, 1).reshape(nb_sources, -1)  # (S, B·C·F·T)
    inner = rows @ rows.T  # (S, S): ⟨d_s, d_t⟩ over every bin of the batch
    matrix = combination_matrix(nb_sources, combination).to(diff)  # (K, S)
    return (matrix.T @ matrix * inner).sum() / (matrix.shape[0] * rows.shape[1])


def weighted_sdr_loss(estimate: torch.Tensor, reference: torch.Tensor, mixture: torch.Tensor,
                      eps: float = 1e-10) -> torch.Tensor:
    """Weighted SDR loss of Choi et al. (Deep Complex U-Net, ICLR 2019), per row of (..., L).

    ``−α·cos(ŷ, y) − (1−α)·cos(x − ŷ, x − y)`` with ``α = ‖y‖² / (‖y‖² + ‖x − y‖²)``: in [−1, 1],
    −1 for a perfect estimate. Returns (...), one value per row (ε as the official code).
    """
    noise, noise_estimate = mixture - reference, mixture - estimate

    def cosine(a, b):
        norms = torch.sqrt(eps + (a * a).sum(-1)) * torch.sqrt(eps + (b * b).sum(-1))
        return (a * b).sum(-1) / (norms + eps)

    energy, noise_energy = (reference * reference).sum(-1), (noise * noise).sum(-1)
    alpha = energy / (energy + noise_energy + eps)
    return -alpha * cosine(estimate, reference) - (1 - alpha) * cosine(noise_estimate, noise)


def time_domain_loss(mixture: torch.Tensor, estimates: torch.Tensor, references: torch.Tensor,
                     combination: bool = True, edge_trim: int = 0, eps: float = 1e-10) -> torch.Tensor:
    """``L_time = 1 + mean`` over the combinations and the (batch, channel) rows of the weighted SDR loss.

    ``mixture`` (B, C, L), ``estimates`` and ``references`` (B, S, C, L). ``edge_trim`` samples are
    dropped at both ends first (the official NNabla code uses 200; asteroid's port none). In [0, 2].

    The same numbers as :func:`weighted_sdr_loss` of ``combine(estimates)``, ``combine(references)``
    and the mixture, without building the K summed waveforms: the weighted SDR needs only energies
    and inner products of sums of sources (ŷ, y, x − ŷ, x − y), and each is a quadratic form of
    the (2S + 1) × (2S + 1) inner products of [ŝ_1 … ŝ_S, s_1 … s_S, x] per (batch, channel) row,
    computed once in float64 (so that ``‖x − y‖² = ‖x‖² − 2⟨x, y⟩ + ‖y‖²`` keeps its precision
    when y is nearly the whole mixture).
    """
    if edge_trim:
        if 2 * edge_trim >= mixture.shape[-1]:
            raise ValueError(f"edge_trim={edge_trim} leaves nothing of {mixture.shape[-1]} samples")
        mixture, estimates, references = (t[..., edge_trim:-edge_trim] for t in (mixture, estimates, references))
    nb_sources = estimates.shape[1]
    signals = torch.cat([estimates, references, mixture[:, None]], dim=1).double()  # (B, 2S + 1, C, L)
    gram = torch.einsum("bicl,bjcl->bcij", signals, signals)  # (B, C, 2S + 1, 2S + 1)
    matrix = combination_matrix(nb_sources, combination).to(gram)  # (K, S)
    none, one = torch.zeros_like(matrix), torch.zeros_like(matrix[:, :1])
    est = torch.cat([matrix, none, one], dim=1)  # (K, 2S + 1): ŷ_k = Σ_{s∈k} ŝ_s
    ref = torch.cat([none, matrix, one], dim=1)  # y_k = Σ_{s∈k} s_s
    mix = torch.cat([none, none, one + 1], dim=1)  # x
    noise, noise_estimate = mix - ref, mix - est  # x − y_k, x − ŷ_k

    def inner(u, v):  # (B, K, C): ⟨u_k, v_k⟩ for every row
        return torch.einsum("ki,bcij,kj->bkc", u, gram, v)

    def cosine(u, v):
        return inner(u, v) / (torch.sqrt(eps + inner(u, u).clamp(min=0)) * torch.sqrt(eps + inner(v, v).clamp(min=0)) + eps)

    energy, noise_energy = inner(ref, ref), inner(noise, noise).clamp(min=0)
    alpha = energy / (energy + noise_energy + eps)
    loss = -alpha * cosine(est, ref) - (1 - alpha) * cosine(noise_estimate, noise)  # (B, K, C)
    return (1.0 + loss.mean()).to(estimates.dtype)


# --- the separation model ------------------------------------------------------------------------
class XUMX(UMX):
    """X-UMX: Open-Unmix branches of all targets bridged in :meth:`forward`, trained jointly.

    Reuses Open-Unmix's front end and back end (:class:`~mssbook.models.umx.UMX`): magnitudes of the
    STFT (here **centred** also in training, as X-UMX trains), input statistics
    (:meth:`initialize_from_data`), the Wiener filter of :meth:`separate`, ``residual`` and
    :meth:`load_target_state_dict`. ``target_models[s]`` is the branch of target s.

    * :meth:`loss`: ``L_freq + time_loss_weight · L_time`` over the source combinations (see
      :func:`frequency_domain_loss`, :func:`time_domain_loss`); logs both terms.
    * :meth:`validation_loss`: the same loss averaged over ``valid_chunk`` second chunks of the
      track (the official code: 10 s; a trailing partial chunk is skipped as there).

    Args (besides UMX's):
        bridges: the two averaging bridges (False: S independent Open-Unmix networks, an ablation).
        combination_loss: score every subset of 1 … S−1 sources (False: each source alone).
        time_loss_weight: weight of ``L_time`` (10 in the paper; 0 drops the time-domain term).
        edge_trim: samples dropped at both ends before the weighted SDR (official NNabla code: 200).
        valid_chunk: seconds per chunk of :meth:`validation_loss` (None: the whole track at once).
    """

    def __init__(
        self,
        targets: Iterable[str] = ("vocals", "drums", "bass", "other"),
        bridges: bool = True,
        combination_loss: bool = True,
        time_loss_weight: float = 10.0,
        edge_trim: int = 0,
        valid_chunk: float | None = 10.0,
        **umx_config,
    ) -> None:
        super().__init__(targets=targets, **umx_config)  # the branches: target_models[s], Open-Unmix each
        if time_loss_weight < 0 or edge_trim < 0:
            raise ValueError("time_loss_weight and edge_trim must be non-negative")
        self.bridges = bool(bridges)
        self.combination_loss = bool(combination_loss)
        self.time_loss_weight = float(time_loss_weight)
        self.edge_trim = int(edge_trim)
        self.valid_chunk = float(valid_chunk) if valid_chunk else None
        self.train_stft = self.stft  # X-UMX trains on the centred STFT (spec §2.1), unlike UMX

    # -- the network (paper §2, Fig. 1) -------------------------------------------------------------
    def _bridge(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """A bridge: every branch receives the mean over the branches (its own features if bridges are off)."""
        if not self.bridges:
            return features
        average = torch.stack(features).mean(dim=0)  # (S, ...) → (...)
        return [average] * len(features)

    def forward(self, x: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """``x``: mixture magnitudes (B, C', F, T) → every target's magnitude (B, S, C', F, T).

        The branches are ``target_models`` (Open-Unmix layers and names); only the wiring differs:
        every LSTM reads the average encoding (bridge 1), every decoder the average skip
        concatenation (bridge 2). Pass a dict as ``trace`` to collect the intermediate tensors
        (lists over the targets).
        """
        branches = list(self.target_models.values())
        first = branches[0]
        nb_bins, max_bin, hidden = first.nb_output_bins, first.max_bin, first.hidden_size
        if x.ndim != 4 or x.shape[1] != first.nb_channels or x.shape[2] != nb_bins:
            raise ValueError(
                f"X-UMX expects magnitudes (batch, {first.nb_channels} channels, {nb_bins} bins, frames); "
                f"got shape {tuple(x.shape)}"
            )
        x = x.permute(3, 0, 1, 2)  # (T, B, C, F): time first, for the LSTMs
        nb_frames, nb_samples, nb_channels, _ = x.shape
        mix = x.detach()  # the full-band mixture every mask multiplies
        cropped = x[..., :max_bin]  # (T, B, C, max_bin)

        # 1. encoders: each branch its own input scaler, fc1, BN, tanh
        encoded = []
        for branch in branches:
            h = (cropped + branch.input_mean) * branch.input_scale  # (T, B, C, max_bin)
            h = branch.fc1(h.reshape(-1, nb_channels * max_bin))  # (T·B, H), channel-major features
            h = torch.tanh(branch.bn1(h).reshape(nb_frames, nb_samples, hidden))  # (T, B, H)
            encoded.append(h)
        _record(trace, "encoder", encoded)

        # bridge 1: every LSTM reads the average encoding h̄
        lstm_inputs = self._bridge(encoded)  # S × (T, B, H)
        _record(trace, "lstm_input", lstm_inputs)

        # 2. LSTMs, then the skip concatenation with the branch's *own* encoding
        skips = []
        for branch, h, h_bar in zip(branches, encoded, lstm_inputs):
            lstm_out, _ = branch.lstm(h_bar)  # (T, B, H)
            skips.append(torch.cat([h, lstm_out], dim=-1))  # (T, B, 2H)
        _record(trace, "skip", skips)

        # bridge 2: every decoder reads the average skip concatenation z̄
        decoder_inputs = self._bridge(skips)  # S × (T, B, 2H)
        _record(trace, "decoder_input", decoder_inputs)

        # 3. decoders: fc2, BN, ReLU, fc3, BN, output scaler, ReLU → mask × mixture
        estimates, masks = [], []
        for branch, z in zip(branches, decoder_inputs):
            y = F.relu(branch.bn2(branch.fc2(z.reshape(-1, 2 * hidden))))  # (T·B, H)
            y = branch.bn3(branch.fc3(y))  # (T·B, C·F)
            y = y.reshape(nb_frames, nb_samples, nb_channels, nb_bins)  # (T, B, C, F)
            mask = F.relu(y * branch.output_scale + branch.output_mean)  # non-negative, unbounded above
            masks.append(mask)
            estimates.append(mask * mix)  # (T, B, C, F)
        _record(trace, "mask", masks)
        return torch.stack(estimates).permute(2, 0, 3, 4, 1)  # (S, T, B, C, F) → (B, S, C, F, T)

    # -- training ---------------------------------------------------------------------------------
    def training_estimates(self, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the loss scores: magnitudes (B, S, C', F, T) and waveforms (B, S, C, L').

        The waveforms are the inverse STFT of the masked magnitudes with the **mixture phase** (no
        Wiener filter, spec §2.1); as in the official code the ISTFT is given no length, so
        ``L' = (T − 1) · hop`` (the input length rounded down to a multiple of the hop).
        """
        mix_stft = self.train_stft(mixture)  # (B, C, F, T) complex, centred
        mix_mag = magnitude(mix_stft)
        if self.nb_channels == 1:
            mix_mag = mix_mag.mean(dim=1, keepdim=True)  # (B, 1, F, T)
        est_mag = self(mix_mag)  # (B, S, C', F, T)
        est_time = self.istft(mixture_phase(est_mag, mix_stft))  # (B, S, C, L')
        return est_mag, est_time

    def loss(self, mixture: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Multi-domain loss with the combination loss: ``L_freq + time_loss_weight · L_time`` (paper §3)."""
        self._check_references(mixture, references)
        est_mag, est_time = self.training_estimates(mixture)
        ref_mag = self.magnitudes(references)  # (B, S, C', F, T), centred
        loss_freq = frequency_domain_loss(est_mag, ref_mag, self.combination_loss)
        logs = {"loss/freq": float(loss_freq.detach())}
        total = loss_freq
        if self.time_loss_weight:
            length = est_time.shape[-1]  # L': references and mixture are cropped to it (as the official code)
            loss_time = time_domain_loss(mixture[..., :length], est_time, references[..., :length],
                                         self.combination_loss, self.edge_trim)
            total = total + self.time_loss_weight * loss_time
            logs["loss/time"] = float(loss_time.detach())
        return total, logs

    def validation_loss(self, mixture: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """The training loss averaged over ``valid_chunk``-second chunks (the official validation).

        As ``x-umx/train.py``, a trailing chunk shorter than ``valid_chunk`` is skipped unless it is
        the only one; chunking bounds the memory on full tracks.
        """
        self._check_references(mixture, references)
        if not self.valid_chunk:
            return self.loss(mixture, references)[0]
        chunk = int(round(self.valid_chunk * self.sample_rate))
        starts = list(range(0, max(1, mixture.shape[-1] - chunk + 1), chunk))
        losses = [self.loss(mixture[..., s : s + chunk], references[..., s : s + chunk])[0] for s in starts]
        return torch.stack(losses).mean()

    # -- inference --------------------------------------------------------------------------------
    # UMX.separate is used unchanged (centred STFT → magnitudes → multichannel Wiener filter with
    # ``niter`` EM iterations, 1 by default as asteroid's X-UMX evaluation → inverse STFT); only
    # the magnitudes differ: the cross network estimates all targets at once.
    def _network_magnitudes(self, mix_mag: torch.Tensor, runtime: str) -> torch.Tensor:
        return network_runner(self, "xumx", runtime, self, dynamic_axes=(0, 3))(mix_mag)  # (B, S, C', F, T)


# The paper's sizes: four umxhq-shaped branches, 4 × 8,893,348 = 35,573,392 trainable parameters.
PAPER = dict(sample_rate=44100, nb_channels=2, n_fft=4096, n_hop=1024, hidden_size=512, nb_layers=3,
             unidirectional=False, bandwidth=16000, niter=1, wiener_win_len=300,
             bridges=True, combination_loss=True, time_loss_weight=10.0, edge_trim=0, valid_chunk=10.0)
# CPU-sized like UMX's tutorial preset: hidden 128, two LSTM layers (4 × 1,152,420 parameters).
TUTORIAL = dict(PAPER, hidden_size=128, nb_layers=2)


@register(
    "xumx",
    presets={"paper": PAPER, "tutorial": TUTORIAL},
    description="X-UMX (Sawata et al. 2021): four bridged Open-Unmix branches, multi-domain + combination loss",
    # the official NNabla recipe (x-umx/args.py, x-umx.md; spec §2.3): all four targets jointly
    training={
        "targets": ("vocals", "drums", "bass", "other"),
        "batch_size": 16,
        "seq_dur": 6.0,
        "lr": 1e-3,
        "weight_decay": 1e-5,
        "lr_schedule": "plateau",
        "lr_decay_patience": 80,
        "lr_decay_gamma": 0.3,
        "lr_decay_cooldown": 10,
        "patience": 140,
        "epochs": 1000,
        "samples_per_track": 64,
        "gain_range": (0.25, 1.25),
        "source_augmentations": ("gain", "channelswap"),
        "random_track_mix": True,
    },
)
def build_xumx(targets=("vocals", "drums", "bass", "other"), **config) -> XUMX:
    return XUMX(targets=targets, **config)


__all__ = ["XUMX", "build_xumx", "source_combinations", "combination_matrix", "combine", "frequency_domain_loss", "time_domain_loss",
           "weighted_sdr_loss", "OFFICIAL_EDGE_TRIM"]
