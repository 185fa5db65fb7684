"""Band-Split RNN (BSRNN): band-wise features, BLSTMs across time and across bands, complex masks.

Luo & Yu, "Music source separation with band-split RNN", IEEE/ACM TASLP 2023 (arXiv 2209.15174).
Facts (band schemes, the Hz → bins rule, module structure, shapes, loss, training recipe,
parameter counts, pitfalls) come from ``shared/spec/architectures.md`` §4. The spec follows the
**authors'** code (lineage A: their SDX-23 starter kit, as reproduced in ``magronp/bsrnn``,
``models/bsrnn.py`` and ``models/bs.py``), and so does this file.

The picture of the paper (Fig. 1), top to bottom, for one target (N = ``feature_dim``, K bands of
BW_k bins; B' = B·C, shapes for a 3 s stereo excerpt at 44.1 kHz, paper size: N = 128, K = 41)::

    mixture (B, C, L) → (B·C, L)                    each channel on its own (spec §4.3)
      │ STFT 2048 / 512, Hann, centred              (B', F=1025, T=259) complex; no bandwidth cut
      │ stack [Re, Im]                              (B', 2, F, T)
      ├─ BandSplit: for every band k               the bins of band k as (B', 2·BW_k, T)
      │     GroupNorm(1 group) → Conv1d 1×1 → N     stacked: (B', K, N, T)
      ├─ BandSequenceBlock × num_repeat (12)
      │     time: (B'·K, N, T)  GroupNorm → BLSTM (2N per direction) → Linear 4N → N → + input
      │     band: (B'·T, N, K)  the same across the K bands of one frame
      ├─ MaskEstimation: for every band k           (B', N, T)
      │     GroupNorm → Conv1d N → 4N → tanh → [Conv1d 4N → 4N → tanh] → Conv1d 4N → 4·BW_k
      │     viewed as (B', 2 [value, gate], 2 [Re, Im], BW_k, T) → value·σ(gate)
      │     → complex mask (B', BW_k, T); bands concatenated → (B', F, T)
      ├─ Ŝ = M ⊙ X                                  complex product with the mixture
      └─ iSTFT, length L                            (B, C, L)

:class:`BandSplitRNN` is that network (spectrogram → mask). :class:`BSRNN` holds one per target
(like :class:`mssbook.models.umx.UMX`; each target has its own band scheme), trains them with
L1 on the real and imaginary parts of the spectrogram plus L1 on the waveform (spec §4.4), and
separates by masking and inverting the STFT: no Wiener filter, no input statistics.

What this file does **not** reproduce (spec §4.7, the ``amanteur`` port): no LayerNorm tied to the
number of frames (any input length works), no time/frequency scrambling when the mask is reshaped
(the head is a 1×1 convolution whose output channels are already (value/gate, Re/Im, bin)), no
extra Linear before the GLU, no stereo merging inside a band, no mask applied to a normalised
spectrogram.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from ..signal.transforms import ISTFT, STFT
from . import Option, register
from .base import SeparationModel

# GroupNorm's epsilon in the authors' code (torch.finfo(torch.float32).eps)
EPS = torch.finfo(torch.float32).eps


def _record(trace: dict | None, name: str, value: torch.Tensor) -> None:
    if trace is not None:
        trace[name] = value


def _run(module: nn.Module, x: torch.Tensor, checkpointing: bool) -> torch.Tensor:
    """``module(x)``, under activation checkpointing when asked and autograd records a graph.

    Checkpointed, the forward keeps only ``x`` for the backward pass and runs ``module`` again
    there to rebuild what its backward needs: the same operations on the same input, so the same
    gradients, for about one more forward pass of compute.
    """
    if checkpointing and torch.is_grad_enabled():
        return _checkpoint(module, x, use_reentrant=False)
    return module(x)


# --- band-split schemes (spec §4.2) ------------------------------------------------------------
#: Band schemes in Hz: segments (bandwidth, up to), from 0 Hz upwards. A segment holds as many
#: bands of its bandwidth as fit below its upper edge (and below Nyquist); everything above the
#: last band is one more band ("rest"). v1…v7 are the paper's vocals schemes (§II-B), v7 its
#: choice for vocals and other; "bass" and "drums" the per-target schemes of the authors' code.
BAND_SCHEMES: dict[str, tuple[tuple[int, float], ...]] = {
    "v1": ((1000, math.inf),),
    "v2": ((1000, 16000), (2000, 20000)),
    "v3": ((1000, 8000), (2000, 16000)),
    "v4": ((100, 1000), (1000, 8000), (2000, 16000)),
    "v5": ((100, 1000), (1000, 16000), (2000, 20000)),
    "v6": ((100, 1000), (500, 4000), (1000, 8000), (2000, 16000)),
    "v7": ((100, 1000), (250, 4000), (500, 8000), (1000, 16000), (2000, 20000)),
    "bass": ((50, 500), (100, 1000), (500, 4000), (1000, 8000), (2000, 16000)),
    "drums": ((50, 1000), (100, 2000), (250, 4000), (500, 8000), (1000, 16000)),
}

#: The scheme each target gets unless ``band_scheme`` says otherwise (others: v7).
TARGET_SCHEMES = {"vocals": "v7", "other": "v7", "bass": "bass", "drums": "drums"}


def target_band_scheme(target: str) -> str:
    """The authors' scheme for ``target``: "bass", "drums", else v7 (vocals, other, any name)."""
    return TARGET_SCHEMES.get(target, "v7")


def band_widths(scheme: str, sample_rate: int = 44100, n_fft: int = 2048) -> list[int]:
    """Bins per band of ``scheme`` for an STFT of ``n_fft`` points at ``sample_rate`` (lineage A).

    Every band of ``bw`` Hz is ``floor(bw · (n_fft/2 + 1) / (sample_rate/2))`` bins wide, a fixed
    width whatever its position (50 Hz → 2, 100 → 4, 250 → 11, 500 → 23, 1 k → 46, 2 k → 92 bins
    at 44.1 kHz / 2048); the bins left at the top form the last band. The widths sum to
    ``n_fft // 2 + 1``. Bands whose upper edge lies above Nyquist are dropped (lower sample rates
    keep the low-frequency layout). v7 at 44.1 kHz / 2048: 10×4, 12×11, 8×23, 8×46, 2×92, 117
    (41 bands); bass: 30 bands; drums: 55 (spec §4.2).
    """
    if scheme not in BAND_SCHEMES:
        raise ValueError(f"unknown band scheme {scheme!r}; choose one of {', '.join(BAND_SCHEMES)}")
    sample_rate, n_fft = int(sample_rate), int(n_fft)
    if sample_rate <= 0 or n_fft < 2:
        raise ValueError(f"need a positive sample rate and n_fft >= 2; got {sample_rate} Hz and {n_fft}")
    n_bins = n_fft // 2 + 1
    nyquist = sample_rate / 2
    widths: list[int] = []
    low = 0
    for bandwidth, high in BAND_SCHEMES[scheme]:
        count = int((min(high, nyquist) - low) // bandwidth) if low < nyquist else 0  # bands that fit
        bins = 2 * bandwidth * n_bins // sample_rate  # floor(bw · n_bins / (sr / 2)), in integers
        if count > 0 and bins == 0:
            raise ValueError(
                f"band scheme {scheme!r} has {bandwidth} Hz bands, less than one bin of an {n_fft}-point STFT at "
                f"{sample_rate} Hz ({nyquist / n_bins:.1f} Hz per bin); use a larger n_fft or a coarser scheme"
            )
        widths += [bins] * count
        low = high
    rest = n_bins - sum(widths)
    if rest > 0:
        widths.append(rest)
    return widths


# --- building blocks (spec §4.3) ----------------------------------------------------------------
class BandSplit(nn.Module):
    """Band split module (paper Fig. 1a): each band's bins → one N-dimensional feature per frame.

    For band k: its ``BW_k`` bins of [Re, Im] as ``2·BW_k`` channels → GroupNorm(1 group), whose
    statistics pool frequency, Re/Im **and time** (it is the only input normalisation, spec §4.7) →
    Conv1d 1×1 to ``feature_dim`` (a per-frame fully connected layer).
    """

    def __init__(self, widths: Sequence[int], feature_dim: int) -> None:
        super().__init__()
        self.widths = [int(w) for w in widths]
        self.bands = nn.ModuleList(
            nn.Sequential(nn.GroupNorm(1, 2 * w, eps=EPS), nn.Conv1d(2 * w, feature_dim, 1)) for w in self.widths
        )

    def forward(self, spec_ri: torch.Tensor) -> torch.Tensor:  # (B', 2, F, T) → (B', K, N, T)
        batch, _, _, frames = spec_ri.shape
        features = []
        for band, sub in zip(self.bands, spec_ri.split(self.widths, dim=2)):  # sub: (B', 2, BW_k, T)
            features.append(band(sub.reshape(batch, -1, frames)))  # (B', 2·BW_k, T) → (B', N, T)
        return torch.stack(features, dim=1)


class ResidualBLSTM(nn.Module):
    """GroupNorm → BLSTM (``2·dim`` units per direction) → Linear back to ``dim`` → + input.

    Input and output ``(batch, dim, sequence)``: the sequence is time (the time path) or the bands
    of one frame (the band path). 790,528 BLSTM parameters for dim = 128 (spec §4.5).
    """

    def __init__(self, dim: int, hidden_factor: int = 2) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, dim, eps=EPS)
        self.blstm = nn.LSTM(dim, hidden_factor * dim, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden_factor * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, N, seq) → (batch, N, seq)
        h, _ = self.blstm(self.norm(x).transpose(1, 2))  # (batch, seq, 4N): both directions
        return x + self.proj(h).transpose(1, 2)  # (batch, N, seq)


class BandSequenceBlock(nn.Module):
    """One band and sequence modelling layer (paper Fig. 1b): a residual BLSTM across time for
    each band, then one across the bands of each frame. ``checkpointing``: each residual BLSTM
    keeps only its input for the backward pass (see :class:`BandSplitRNN`)."""

    def __init__(self, feature_dim: int, checkpointing: bool = False) -> None:
        super().__init__()
        self.checkpointing = bool(checkpointing)
        self.time_rnn = ResidualBLSTM(feature_dim)
        self.band_rnn = ResidualBLSTM(feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B', K, N, T) → (B', K, N, T)
        batch, bands, dim, frames = x.shape
        x = _run(self.time_rnn, x.reshape(batch * bands, dim, frames), self.checkpointing)  # each band over time
        x = x.reshape(batch, bands, dim, frames).permute(0, 3, 2, 1)  # (B', T, N, K)
        x = _run(self.band_rnn, x.reshape(batch * frames, dim, bands), self.checkpointing)  # each frame over bands
        return x.reshape(batch, frames, dim, bands).permute(0, 3, 2, 1)  # (B', K, N, T)


class MaskEstimation(nn.Module):
    """Mask estimation module (paper Fig. 1c): one MLP per band, a GLU, a complex mask.

    For band k: GroupNorm(1, N) → Conv1d N → 4N → tanh, ``hidden_layers − 1`` times Conv1d 4N → 4N
    → tanh (the authors' code has 2 hidden layers, the paper's text 1; spec §4.3) → Conv1d 4N →
    4·BW_k. The 1×1 convolutions act on each frame alone, and their output channels are read as
    (2 [value, gate], 2 [Re, Im], BW_k): nothing is permuted, so time and frequency cannot be mixed
    up (the ``amanteur`` bug of spec §4.7). GLU: value · σ(gate).

    Returns the mask as real ``(B', 2 [Re, Im], F, T)``; :class:`BandSplitRNN` makes it complex.
    """

    def __init__(self, widths: Sequence[int], feature_dim: int, hidden_layers: int = 2, hidden_factor: int = 4,
                 checkpointing: bool = False):
        super().__init__()
        self.checkpointing = bool(checkpointing)
        if hidden_layers < 1:
            raise ValueError(f"the mask MLP needs at least one hidden layer; got mask_hidden_layers={hidden_layers}")
        self.widths = [int(w) for w in widths]
        hidden = hidden_factor * feature_dim
        self.heads = nn.ModuleList()
        for width in self.widths:
            layers: list[nn.Module] = [nn.GroupNorm(1, feature_dim, eps=EPS), nn.Conv1d(feature_dim, hidden, 1), nn.Tanh()]
            for _ in range(hidden_layers - 1):
                layers += [nn.Conv1d(hidden, hidden, 1), nn.Tanh()]
            layers.append(nn.Conv1d(hidden, 4 * width, 1))
            self.heads.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B', K, N, T) → (B', 2, F, T)
        batch, _, _, frames = x.shape
        masks = []
        for k, (head, width) in enumerate(zip(self.heads, self.widths)):
            out = _run(head, x[:, k], self.checkpointing).reshape(batch, 2, 2, width, frames)  # (B', value/gate, Re/Im, BW_k, T)
            masks.append(out[:, 0] * torch.sigmoid(out[:, 1]))  # GLU: (B', 2, BW_k, T)
        return torch.cat(masks, dim=2)  # (B', 2, F, T)


# --- the network for one target ------------------------------------------------------------------
class BandSplitRNN(nn.Module):
    """BSRNN for one target: complex mixture spectrogram ``(B', F, T)`` → complex mask, same shape.

    Args:
        widths: bins per band (:func:`band_widths`); they must sum to F.
        feature_dim: N, the feature size of every band (128 in the paper).
        num_repeat: band and sequence modelling layers (12 in the paper).
        mask_hidden_layers: tanh hidden layers of each band's mask MLP (2: authors' code, 1: paper text).
        checkpointing: activation checkpointing in training: each residual BLSTM and each band's
            mask MLP keeps only its input for the backward pass and recomputes the rest there.
            The gradients are the same; a training step costs about one more forward pass; the
            activations kept shrink about tenfold (the BLSTMs' gates and states dominate them).
            No effect without autograd (inference) and no weights of its own.

    Works for any number of frames: no layer's size depends on T.
    """

    def __init__(self, widths: Sequence[int], feature_dim: int = 128, num_repeat: int = 12,
                 mask_hidden_layers: int = 2, checkpointing: bool = False) -> None:
        super().__init__()
        if feature_dim < 1 or num_repeat < 0:
            raise ValueError(f"need feature_dim >= 1 and num_repeat >= 0; got {feature_dim} and {num_repeat}")
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"band widths must be positive bin counts; got {list(widths)}")
        self.widths = [int(w) for w in widths]
        self.nb_bins = sum(self.widths)
        self.band_split = BandSplit(self.widths, feature_dim)
        self.blocks = nn.Sequential(*[BandSequenceBlock(feature_dim, checkpointing) for _ in range(num_repeat)])
        self.mask_estimation = MaskEstimation(self.widths, feature_dim, mask_hidden_layers, checkpointing=checkpointing)

    def forward(self, spec: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """``spec``: complex (B', F, T) → complex mask (B', F, T). ``trace``: a dict for the stages."""
        if spec.ndim != 3 or not spec.is_complex() or spec.shape[1] != self.nb_bins:
            raise ValueError(
                f"BandSplitRNN expects a complex spectrogram (batch, {self.nb_bins} bins, frames); got "
                f"{'complex' if spec.is_complex() else 'real'} {tuple(spec.shape)}"
            )
        spec_ri = torch.stack([spec.real, spec.imag], dim=1)  # (B', 2, F, T)
        _record(trace, "spec_ri", spec_ri)
        x = self.band_split(spec_ri)  # (B', K, N, T)
        _record(trace, "band_split", x)
        x = self.blocks(x)  # (B', K, N, T)
        _record(trace, "band_sequence", x)
        mask = self.mask_estimation(x).to(spec.real.dtype)  # (B', 2, F, T); float again under autocast
        _record(trace, "mask_ri", mask)
        return torch.complex(mask[:, 0], mask[:, 1])  # (B', F, T)


# --- the separation model ------------------------------------------------------------------------
class BSRNN(SeparationModel):
    """BSRNN: one :class:`BandSplitRNN` per target, each with its band scheme, masks applied jointly.

    * :meth:`loss`: per target, mean |Re Ŝ − Re S| + mean |Im Ŝ − Im S| + mean |ŝ − s| (the
      spectrogram of a centred STFT and the waveform after the iSTFT, spec §4.4), summed over
      targets. :meth:`validation_loss` is the same on full tracks.
    * :meth:`separate`: STFT → every target's complex mask times the mixture → iSTFT at the input
      length. No options.
    * The channels are processed independently (stereo (B, 2, L) runs as (2B, L)); inputs shorter
      than ``n_fft`` samples are zero-padded to ``n_fft`` for the STFT and cut back.

    Args:
        targets: source names, one network each.
        sample_rate, nb_channels: of the audio.
        n_fft, n_hop: STFT size and hop (Hann, centred; 2048 / 512 in the paper).
        feature_dim, num_repeat, mask_hidden_layers: of each :class:`BandSplitRNN`.
        band_scheme: a key of :data:`BAND_SCHEMES` for every target; None: v7 for vocals, other and
            unknown names, "bass" and "drums" for those (:func:`target_band_scheme`).
        checkpointing: activation checkpointing in training (:class:`BandSplitRNN`); on in the
            paper preset, whose activations otherwise need about 11 GB per 3 s stereo example.
    """

    def __init__(
        self,
        targets: Iterable[str] = ("vocals", "drums", "bass", "other"),
        sample_rate: int = 44100,
        nb_channels: int = 2,
        n_fft: int = 2048,
        n_hop: int = 512,
        feature_dim: int = 128,
        num_repeat: int = 12,
        mask_hidden_layers: int = 2,
        band_scheme: str | None = None,
        checkpointing: bool = False,
    ) -> None:
        super().__init__(targets, sample_rate=sample_rate, nb_channels=nb_channels)
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"duplicate target names in {self.targets}")
        self.n_fft, self.n_hop = int(n_fft), int(n_hop)
        self.nb_bins = self.n_fft // 2 + 1
        self.stft = STFT(self.n_fft, self.n_hop, center=True)
        self.istft = ISTFT(self.n_fft, self.n_hop, center=True)
        self.band_schemes = {t: band_scheme or target_band_scheme(t) for t in self.targets}
        self.target_models = nn.ModuleDict(
            {
                t: BandSplitRNN(band_widths(self.band_schemes[t], self.sample_rate, self.n_fft),
                                feature_dim, num_repeat, mask_hidden_layers, checkpointing)
                for t in self.targets
            }
        )

    # -- shapes -------------------------------------------------------------------------------
    def spectrogram(self, audio: torch.Tensor) -> torch.Tensor:
        """Centred STFT of (..., L) → complex (..., F, T); shorter than ``n_fft``: zero-padded first."""
        short = self.n_fft - audio.shape[-1]
        if short > 0:  # the centred STFT's reflection padding needs more than n_fft / 2 samples
            audio = F.pad(audio, (0, short))
        return self.stft(audio)

    def waveform(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """iSTFT of complex (..., F, T) → (..., length), the inverse of :meth:`spectrogram`."""
        return self.istft(spec, length=max(length, self.n_fft))[..., :length]

    # -- the network -------------------------------------------------------------------------
    def masks(self, mix_spec: torch.Tensor) -> torch.Tensor:
        """Complex masks (B, S, C, F, T) for the mixture spectrogram (B, C, F, T).

        The channels go through the networks as a batch of B·C mono spectrograms.
        """
        batch, channels, bins, frames = mix_spec.shape
        flat = mix_spec.reshape(batch * channels, bins, frames)  # (B·C, F, T)
        return torch.stack(
            [net(flat).reshape(batch, channels, bins, frames) for net in self.target_models.values()], dim=1
        )

    def apply_masks(self, mixture: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Waveforms (B, S, C, L) of ``masks`` (complex (B, S, C, F, T)) times the mixture's STFT.

        The synthesis :meth:`separate` uses; an all-ones mask gives the mixture back.
        """
        self._check_mixture(mixture)
        mix_spec = self.spectrogram(mixture)  # (B, C, F, T)
        if not masks.is_complex() or masks.ndim != 5 or masks.shape[-2:] != mix_spec.shape[-2:]:
            raise ValueError(
                f"masks must be complex (batch, targets, channels, {mix_spec.shape[-2]} bins, {mix_spec.shape[-1]} "
                f"frames) for this mixture; got {'complex' if masks.is_complex() else 'real'} {tuple(masks.shape)}"
            )
        return self.waveform(masks * mix_spec[:, None], mixture.shape[-1])

    def estimate(self, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spectrogram (B, S, C, F, T) and waveform (B, S, C, L) estimates for mixtures (B, C, L)."""
        self._check_mixture(mixture)
        mix_spec = self.spectrogram(mixture)  # (B, C, F, T) complex
        spec = self.masks(mix_spec) * mix_spec[:, None]  # Ŝ = M ⊙ X: (B, S, C, F, T)
        return spec, self.waveform(spec, mixture.shape[-1])

    # -- training ------------------------------------------------------------------------------
    def loss(self, mixture: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """L1 of Re and Im of the spectrogram plus L1 of the waveform (means), summed over targets."""
        self._check_references(mixture, references)
        est_spec, est_wave = self.estimate(mixture)
        ref_spec = self.spectrogram(references)  # (B, S, C, F, T)
        total = mixture.new_zeros(())
        logs: dict[str, float] = {}
        for index, target in enumerate(self.targets):
            spectral = (F.l1_loss(est_spec[:, index].real, ref_spec[:, index].real)
                        + F.l1_loss(est_spec[:, index].imag, ref_spec[:, index].imag))
            temporal = F.l1_loss(est_wave[:, index], references[:, index])
            total = total + spectral + temporal
            logs[f"l1_spec/{target}"] = float(spectral.detach())
            logs[f"l1_wave/{target}"] = float(temporal.detach())
        return total, logs

    # -- inference -----------------------------------------------------------------------------
    def separate(self, mixture: torch.Tensor) -> torch.Tensor:
        """Waveforms (B, S, C, L) for mixtures (B, C, L) of any length. Call ``model.eval()`` first."""
        return self.estimate(mixture)[1]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_fft={self.n_fft}, n_hop={self.n_hop}, band_schemes={self.band_schemes}"


# the paper's size (spec §4.3, magronp conf/src_mod/bsrnn-large.yaml: feature_dim 128, num_repeat 12,
# hidden 2N per direction, mask MLP 4N with two hidden layers): 36,417,160 parameters for vocals
# and other (v7), 32,797,192 for bass, 41,024,392 for drums (spec §4.5)
# Activation checkpointing is on at this size: without it one 3 s stereo example keeps about 11 GB of
# activations for the backward pass (BLSTM gates and states), so the recipe's batch fits no laptop and
# few GPUs; with it a batch of 4 × 3 s trains within 8 GB on a CPU for about one more forward pass
# (benchmarks/bench_bsrnn_memory.py measures both).
PAPER = dict(sample_rate=44100, nb_channels=2, n_fft=2048, n_hop=512, feature_dim=128, num_repeat=12,
             mask_hidden_layers=2, band_scheme=None, checkpointing=True)
# CPU-sized: the paper's front end, per-target band schemes (v7: 41 bands) and two-hidden-layer mask
# MLPs, with N = 16 and two band-sequence layers: 576,024 parameters for vocals (1.6 % of the paper's).
# The BLSTMs take two thirds of the time: about 2 s per training step of 4 × 3 s stereo excerpts on one
# CPU thread (N = 32 takes about 3 s)
TUTORIAL = dict(PAPER, feature_dim=16, num_repeat=2, checkpointing=False)


@register(
    "bsrnn",
    presets={"paper": PAPER, "tutorial": TUTORIAL},
    description="Band-split RNN (Luo & Yu 2022): per-band features, BLSTMs across time and bands, complex GLU "
                "masks; L1 on spectrogram and waveform",
    default_targets=("vocals", "drums", "bass", "other"),
    # spec §4.4: Adam lr 1e-3 (no weight decay), gradient clipping at max-norm 5, lr × 0.98 every 2
    # epochs (magronp conf/scheduler/step.yaml), early stopping after 10 epochs without improvement,
    # batch 16 (2 per GPU × 8), 3 s excerpts, gain ±10 dB per source, target silenced with p 0.1,
    # salient fragments chosen by source activity detection, random track mixing, 20 000 excerpts
    # per epoch (magronp conf/dset: about 233 per track over MUSDB18's 86 training tracks)
    training={"targets": ("vocals",), "lr": 1e-3, "weight_decay": 0.0, "grad_clip": 5.0,
              "lr_schedule": "step", "lr_step": 2, "lr_decay_gamma": 0.98, "patience": 10, "batch_size": 16,
              "seq_dur": 3.0, "source_augmentations": ("gain_db",), "gain_db_range": (-10.0, 10.0),
              "silence_target_p": 0.1, "fragments": "auto", "fragment_p": 1.0, "random_track_mix": True,
              "samples_per_track": 233},
    cli_options=(
        Option("--band-scheme", "band_scheme", str, "band-split scheme for every target (default: v7 for vocals "
               "and other, 'bass' and 'drums' for those)", tuple(BAND_SCHEMES)),
        Option("--feature-dim", "feature_dim", int, "feature size N of every band (paper: 128)"),
        Option("--num-repeat", "num_repeat", int, "band and sequence modelling layers (paper: 12)"),
        Option("--mask-hidden-layers", "mask_hidden_layers", int,
               "tanh hidden layers of the mask MLPs (2: the authors' code, 1: the paper's text)"),
    ),
)
def build_bsrnn(targets=("vocals", "drums", "bass", "other"), **config) -> BSRNN:
    return BSRNN(targets=targets, **config)


__all__ = ["BAND_SCHEMES", "TARGET_SCHEMES", "band_widths", "target_band_scheme", "BandSplit", "ResidualBLSTM",
           "BandSequenceBlock", "MaskEstimation", "BandSplitRNN", "BSRNN", "build_bsrnn"]
