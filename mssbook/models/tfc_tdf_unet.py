"""U-Nets with intermediate blocks: TFC, TDF, TFC-TDF, TDC and TDC-RNN, on complex spectrograms.

Choi, Kim, Chung, Lee & Jung, "Investigating U-Nets with various intermediate blocks for
spectrogram-based singing voice separation", ISMIR 2020. Facts (blocks, skeleton, parameter
counts, training and inference recipe) come from ``shared/spec/architectures.md`` §5, measured on
the official code (ws-choi/ISMIR2020_U_Nets_SVS, ``source_separation/``); the argument names are
that code's.

One U-Net skeleton (spec §5.2, :class:`UNet`) takes any of five intermediate blocks (paper §3,
spec §5.3), one registry name each: ``tfc_net`` (:class:`TFC`), ``tdf_net``
(:class:`TDF`), ``tfc_tdf_net`` (:class:`TFC_TDF`), ``tdc_net`` (:class:`TDC`) and
``tdc_rnn_net`` (:class:`TDC_RNN`). The picture for the seed preset (stereo, n_fft 2048, hop 1024,
128 frames, 7 blocks, c = 24 channels) and "complex as channels" (CaC) mapping::

    mixture (B, 2, L), L = 1024 · 127
      │ STFT (Hann, centred)                            (B, 2, 1025, 128) complex
      │ complex as channels, (T, F) layout              (B, 4, 128, 1025)  [Re L, Re R, Im L, Im R]
      ├─ first conv 1×2 → BN → ReLU                     (B, 24, 128, 1024)  odd F → a power of two
      ├─ encoder 0: block → skip₀ → down (2×2)          (B, 24, 64, 512)
      ├─ encoder 1: block → skip₁ → down                (B, 24, 32, 256)
      ├─ encoder 2: block → skip₂ → down                (B, 24, 16, 128)
      ├─ mid block                                      (B, 24, 16, 128)
      ├─ decoder 0: up → concat skip₂ → block (48 → 24) (B, 24, 32, 256)
      ├─ decoder 1: up → concat skip₁ → block           (B, 24, 64, 512)
      ├─ decoder 2: up → concat skip₀ → block           (B, 24, 128, 1024)
      ├─ last conv 1×2 (padding 1) → activation         (B, 4, 128, 1025)
      │ (masking: × the mixture's channels)
      └─ channels → complex → iSTFT                     (B, 2, L)

:class:`SpectrogramUNet` holds one :class:`UNet` per target (like D3Net and UMX) and the seed's
separation framework: ``spec_type`` "complex" (CaC) or "magnitude" (then the estimate takes the
mixture's phase), ``spec_est_mode`` "mapping" (the output is the estimate) or "masking" (the output
multiplies the mixture's spectrogram channel by channel), any ``last_activation``. It trains with
``spec_mse`` (MSE on those spectrograms) or ``raw_l1`` (L1 on waveforms), on excerpts of
``hop_length · (num_frame − 1)`` samples (``num_frame`` centred frames), and separates as the seed
does: windows of that length, ``ceil(5000 / hop) · hop`` samples trimmed from each side.
"""

from __future__ import annotations

import argparse
import math
from functools import partial
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..signal.transforms import ISTFT, STFT, from_complex_channels, to_complex_channels
from ..utils import parse_bool
from . import Option, register
from .base import SeparationModel

BLOCKS = ("tfc", "tdf", "tfc_tdf", "tdc", "tdc_rnn")
#: blocks whose nets down/up-sample with 2-D strided convolutions (the others: 1-D, frequency only)
BLOCKS_2D_SAMPLING = ("tfc", "tfc_tdf", "tdc_rnn")
SPEC_TYPES = ("complex", "magnitude")
SPEC_EST_MODES = ("mapping", "masking")
ACTIVATIONS = {"identity": nn.Identity, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
LOSSES = ("spec_mse", "raw_l1")
CONTEXTS = ("zeros", "audio")


def trim_length(hop_length: int, min_trim: int = 5000) -> int:
    """Samples dropped at each side of an inference window: ``min_trim`` rounded up to whole hops
    (the seed's ``get_trim_length``: 5120 at hop 1024)."""
    return math.ceil(min_trim / hop_length) * hop_length


# --- intermediate blocks (spec §5.3): (B, c_in, T, F) → (B, growth or c, T, F) ----------------------
class TFC(nn.Module):
    """Time-frequency convolutions: a dense block of 2-D convolutions (paper §3.2.1).

    ``n_layers`` layers, each Conv2d(k_t × k_f, 'same') → BN → ReLU with ``growth`` output channels.
    Layer j reads the concatenation **newest first** [x_{j−1}, …, x_1, x_0 = input] (the seed's
    order, which fixes the weight layout). The block outputs the last layer only.
    """

    def __init__(self, in_channels: int, n_layers: int, growth: int, kernel_t: int = 3, kernel_f: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        channels = in_channels
        for _ in range(n_layers):
            self.layers.append(nn.Sequential(
                nn.Conv2d(channels, growth, (kernel_t, kernel_f), padding=(kernel_t // 2, kernel_f // 2)),
                nn.BatchNorm2d(growth),
                nn.ReLU(),
            ))
            channels += growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, T, F) → (B, growth, T, F)
        out = self.layers[0](x)
        for layer in self.layers[1:]:
            x = torch.cat([out, x], dim=1)  # newest first: (B, c_in + j·growth, T, F)
            out = layer(x)
        return out


class TDF(nn.Module):
    """Time-distributed fully-connected layers: one MLP over frequency for every channel and frame
    (paper §3.1.1).

    ``f_in`` → max(f // bn_factor, min_bn_units) → ``f``, each step Linear → BatchNorm2d → ReLU; with
    ``bn_factor=None`` a single Linear(f_in → f) → BN → ReLU. The Linears have a bias and the
    BatchNorms an affine transform only when ``bias`` is on (the seed's ``affine=bias``); ``affine``
    overrides the latter (TDC-RNN's MLP always has it). ``f_in`` defaults to ``f``.
    """

    def __init__(self, channels: int, f: int, bn_factor: int | None = 16, min_bn_units: int = 16,
                 bias: bool = False, f_in: int | None = None, affine: bool | None = None) -> None:
        super().__init__()
        f_in = f if f_in is None else f_in
        affine = bias if affine is None else affine
        if bn_factor is None:
            self.mlp = nn.Sequential(nn.Linear(f_in, f, bias), nn.BatchNorm2d(channels, affine=affine), nn.ReLU())
        else:
            units = max(f // bn_factor, min_bn_units)  # the bottleneck: F/16, at least 16
            self.mlp = nn.Sequential(
                nn.Linear(f_in, units, bias), nn.BatchNorm2d(channels, affine=affine), nn.ReLU(),
                nn.Linear(units, f, bias), nn.BatchNorm2d(channels, affine=affine), nn.ReLU(),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, f_in) → (B, C, T, f)
        return self.mlp(x)  # Linear acts on the last axis: every (channel, frame) alike


class TFC_TDF(nn.Module):
    """TFC followed by a residual TDF: y = TFC(x); out = y + TDF(y) (paper §3.2.2)."""

    def __init__(self, in_channels: int, n_layers: int, growth: int, kernel_t: int, kernel_f: int, f: int,
                 bn_factor: int | None = 16, min_bn_units: int = 16, bias: bool = False) -> None:
        super().__init__()
        self.tfc = TFC(in_channels, n_layers, growth, kernel_t, kernel_f)
        self.tdf = TDF(growth, f, bn_factor, min_bn_units, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, T, F) → (B, growth, T, F)
        y = self.tfc(x)
        return y + self.tdf(y)


class TDC(nn.Module):
    """Time-distributed convolutions: the dense block of :class:`TFC` with 1-D convolutions over
    frequency, applied to every frame on its own (paper §3.1.2; Conv1d → BN1d → ReLU, newest first)."""

    def __init__(self, in_channels: int, n_layers: int, growth: int, kernel_f: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        channels = in_channels
        for _ in range(n_layers):
            self.layers.append(nn.Sequential(
                nn.Conv1d(channels, growth, kernel_f, padding=kernel_f // 2),
                nn.BatchNorm1d(growth),
                nn.ReLU(),
            ))
            channels += growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, T, F) → (B, growth, T, F)
        batch, channels, frames, bins = x.shape
        x = x.transpose(1, 2).reshape(batch * frames, channels, bins)  # (B·T, c_in, F): frames as a batch
        out = self.layers[0](x)
        for layer in self.layers[1:]:
            x = torch.cat([out, x], dim=1)
            out = layer(x)
        return out.reshape(batch, frames, -1, bins).transpose(1, 2)  # (B, growth, T, F)


class TDC_RNN(nn.Module):
    """TDC with a residual recurrent branch along time (paper §3.2.3).

    y = BN(TDC(x)); a bidirectional GRU reads each channel's frames (input F, hidden
    max(F // bn_factor_rnn, min_bn_units_rnn)); an MLP (:class:`TDF` with ``f_in`` = 2·hidden,
    BN affine always, Linear bias ``bias_tdf``) maps its features back to F; out = y + MLP(GRU(y)).
    """

    def __init__(self, in_channels: int, n_layers: int, growth: int, kernel_f: int, f: int,
                 bn_factor_rnn: int = 16, num_layers_rnn: int = 1, min_bn_units_rnn: int = 16, bias_rnn: bool = False,
                 bn_factor_tdf: int | None = 16, min_bn_units: int = 16, bias_tdf: bool = False) -> None:
        super().__init__()
        self.tdc = TDC(in_channels, n_layers, growth, kernel_f)
        self.norm = nn.BatchNorm2d(growth)
        hidden = max(f // bn_factor_rnn, min_bn_units_rnn)
        self.rnn = nn.GRU(f, hidden, num_layers_rnn, bias=bias_rnn, batch_first=True, bidirectional=True)
        self.mlp = TDF(growth, f, bn_factor_tdf, min_bn_units, bias_tdf, f_in=2 * hidden, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, T, F) → (B, growth, T, F)
        y = self.norm(self.tdc(x))  # (B, g, T, F)
        batch, channels, frames, bins = y.shape
        z, _ = self.rnn(y.reshape(batch * channels, frames, bins))  # (B·g, T, 2·hidden): each channel a sequence
        return y + self.mlp(z.reshape(batch, channels, frames, -1))


# --- down/up-sampling (spec §5.2) --------------------------------------------------------------------
class Sampling2d(nn.Module):
    """Strided Conv2d (down) or ConvTranspose2d (up) with kernel = stride = ``scale`` (T, F), then BN;
    no activation. (2, 2) halves/doubles both axes, (1, 2) frequency only."""

    def __init__(self, channels: int, scale: tuple[int, int], up: bool) -> None:
        super().__init__()
        conv = nn.ConvTranspose2d if up else nn.Conv2d
        self.conv = conv(channels, channels, kernel_size=scale, stride=scale)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class FrequencySampling(nn.Module):
    """The TDC and TDF nets' sampling: a 1-D conv (kernel = stride = 2) over frequency in every
    frame (transposed to upsample), then BatchNorm2d(channels) (the seed hard-codes 24 = c)."""

    def __init__(self, channels: int, up: bool) -> None:
        super().__init__()
        conv = nn.ConvTranspose1d if up else nn.Conv1d
        self.conv = conv(channels, channels, kernel_size=2, stride=2)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c, T, F) → (B, c, T, F/2 or 2F)
        batch, channels, frames, bins = x.shape
        y = self.conv(x.transpose(1, 2).reshape(batch * frames, channels, bins))  # (B·T, c, F')
        return self.norm(y.reshape(batch, frames, channels, -1).transpose(1, 2))


# --- the U-Net for one target (spec §5.2) --------------------------------------------------------------
class UNet(nn.Module):
    """The seed's ``Dense_UNET``: spectrogram channels (B, C_in, T, n_fft/2 + 1) → same shape.

    first conv (1×2, no padding: n_fft/2 + 1 → n_fft/2 bins) → BN → ReLU; n = n_blocks // 2 encoder
    levels (block, skip, downsample); a mid block; n decoder levels (upsample, concat the skip:
    2c channels, block back to c); last conv (1×2, padding 1: back to n_fft/2 + 1) → activation.

    Args:
        block: one of :data:`BLOCKS`.
        in_channels: 4 for stereo CaC, 2 for stereo magnitudes.
        n_fft: the STFT size; F = n_fft / 2 must halve at every frequency-downsampling level.
        n_blocks: intermediate blocks, odd (2n + 1).
        internal_channels: c, every block's output channels (its growth rate for dense blocks).
        n_internal_layers, kernel_size_t, kernel_size_f: the dense blocks' depth and (odd) kernel.
        bn_factor, min_bn_units, tfc_tdf_bias: the TDF's bottleneck and bias (also tdf_net's).
        t_down_layers: the levels whose sampling also halves/doubles time (None: all); only for
            tfc, tfc_tdf and tdc_rnn, whose sampling is 2-D. A level's upsampling mirrors it.
        f_down_layers: the levels whose sampling halves/doubles frequency (None: all, which is what
            the seed does whatever it is given).
        last_activation: one of :data:`ACTIVATIONS`.
        bn_factor_rnn, num_layers_rnn, min_bn_units_rnn, bias_rnn, bn_factor_tdf, bias_tdf: TDC-RNN's.
    """

    def __init__(
        self,
        block: str,
        in_channels: int,
        n_fft: int,
        n_blocks: int = 7,
        internal_channels: int = 24,
        n_internal_layers: int = 5,
        kernel_size_t: int = 3,
        kernel_size_f: int = 3,
        bn_factor: int | None = 16,
        min_bn_units: int = 16,
        tfc_tdf_bias: bool = False,
        t_down_layers: Sequence[int] | None = None,
        f_down_layers: Sequence[int] | None = None,
        last_activation: str = "identity",
        bn_factor_rnn: int = 16,
        num_layers_rnn: int = 1,
        min_bn_units_rnn: int = 16,
        bias_rnn: bool = False,
        bn_factor_tdf: int | None = 16,
        bias_tdf: bool = False,
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"unknown intermediate block {block!r}; choose one of {', '.join(BLOCKS)}")
        if not (isinstance(n_blocks, int) and n_blocks >= 1 and n_blocks % 2 == 1):
            raise ValueError(f"n_blocks must be an odd positive integer (2n + 1: n encoders, a mid block, "
                             f"n decoders), e.g. 7 or 17; got {n_blocks!r}")
        if kernel_size_t % 2 == 0 or kernel_size_f % 2 == 0:
            raise ValueError(f"kernel_size_t and kernel_size_f must be odd ('same' padding keeps T and F); "
                             f"got {kernel_size_t} and {kernel_size_f}")
        if last_activation not in ACTIVATIONS:
            raise ValueError(f"last_activation must be one of {', '.join(ACTIVATIONS)}; got {last_activation!r}")
        if n_fft < 4 or n_fft % 2:
            raise ValueError(f"n_fft must be an even number of at least 4; got {n_fft}")
        c, n = int(internal_channels), n_blocks // 2
        if block in BLOCKS_2D_SAMPLING:
            t_down = self._levels("t_down_layers", t_down_layers, n)
            f_down = self._levels("f_down_layers", f_down_layers, n)
        elif t_down_layers is not None or f_down_layers is not None:
            raise ValueError("t_down_layers and f_down_layers apply to tfc_net, tfc_tdf_net and tdc_rnn_net only: "
                             "the TDC and TDF nets halve frequency (never time) at every level with a 1-D conv; "
                             "leave them None")
        else:
            t_down, f_down = [], list(range(n))
        self.time_multiple = 2 ** len(t_down)  # T must be a multiple of this
        self.n_bins = n_fft // 2 + 1

        def make_block(channels_in: int, f: int) -> nn.Module:
            if block == "tfc":
                return TFC(channels_in, n_internal_layers, c, kernel_size_t, kernel_size_f)
            if block == "tfc_tdf":
                return TFC_TDF(channels_in, n_internal_layers, c, kernel_size_t, kernel_size_f, f,
                               bn_factor, min_bn_units, tfc_tdf_bias)
            if block == "tdc":
                return TDC(channels_in, n_internal_layers, c, kernel_size_f)
            if block == "tdc_rnn":
                return TDC_RNN(channels_in, n_internal_layers, c, kernel_size_f, f, bn_factor_rnn, num_layers_rnn,
                               min_bn_units_rnn, bias_rnn, bn_factor_tdf, min_bn_units, bias_tdf)
            tdf = TDF(channels_in, f, bn_factor, min_bn_units, tfc_tdf_bias)
            # a TDF keeps its channels: the decoders' 2c go back to c through a 1×1 conv (with bias)
            return tdf if channels_in == c else nn.Sequential(tdf, nn.Conv2d(channels_in, c, 1))

        def make_sampling(level: int, up: bool) -> tuple[nn.Module, int]:
            if block not in BLOCKS_2D_SAMPLING:
                return FrequencySampling(c, up), 2
            scale = (2 if level in t_down else 1, 2 if level in f_down else 1)
            return Sampling2d(c, scale, up), scale[1]

        self.first_conv = nn.Sequential(nn.Conv2d(in_channels, c, (1, 2)), nn.BatchNorm2d(c), nn.ReLU())
        self.encoders, self.downsamplings = nn.ModuleList(), nn.ModuleList()
        self.decoders, self.upsamplings = nn.ModuleList(), nn.ModuleList()
        f = n_fft // 2
        for level in range(n):
            self.encoders.append(make_block(c, f))  # F = n_fft / 2^(level + 1) when every level halves it
            sampling, factor = make_sampling(level, up=False)
            if f % factor:
                raise ValueError(
                    f"n_fft = {n_fft} gives F = {n_fft // 2} bins after the first conv, which cannot be halved "
                    f"at level {level} (F = {f} there); use an n_fft whose half is divisible by 2^{n} "
                    f"(a power of two, e.g. 2048) or fewer blocks"
                )
            self.downsamplings.append(sampling)
            f //= factor
        self.mid_block = make_block(c, f)
        for level in reversed(range(n)):  # decoder j mirrors encoder level n − 1 − j
            sampling, factor = make_sampling(level, up=True)
            self.upsamplings.append(sampling)
            f *= factor
            self.decoders.append(make_block(2 * c, f))
        self.last_conv = nn.Conv2d(c, in_channels, (1, 2), padding=(0, 1))
        self.activation = ACTIVATIONS[last_activation]()
        self._init_weights(last_activation)

    @staticmethod
    def _levels(name: str, levels: Sequence[int] | None, n: int) -> list[int]:
        if levels is None:
            return list(range(n))
        levels = sorted({int(i) for i in levels})
        if any(not 0 <= i < n for i in levels):
            raise ValueError(f"{name} lists encoder levels 0..{n - 1} (n_blocks // 2 = {n} levels); got {levels}")
        return levels

    def _init_weights(self, last_activation: str) -> None:
        """The seed's ``init_weights_functional`` keyed on the last activation: Kaiming-normal for
        ReLU, else Xavier-normal, for every weight with more than one dimension (spec §5.6)."""
        for parameter in self.parameters():
            if parameter.dim() > 1:
                if last_activation == "relu":
                    nn.init.kaiming_normal_(parameter, nonlinearity="relu")
                else:
                    nn.init.xavier_normal_(parameter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T, F) → (B, C_in, T, F)
        if x.ndim != 4 or x.shape[-1] != self.n_bins:
            raise ValueError(f"the U-Net expects spectrograms (batch, channels, frames, {self.n_bins} bins); "
                             f"got {tuple(x.shape)}")
        if x.shape[-2] % self.time_multiple:
            raise ValueError(f"the U-Net halves time {int(math.log2(self.time_multiple))} times, so the frame count "
                             f"must be a multiple of {self.time_multiple}; got {x.shape[-2]} frames")
        x = self.first_conv(x)  # (B, c, T, n_fft/2)
        skips = []
        for encoder, down in zip(self.encoders, self.downsamplings):
            x = encoder(x)  # (B, c, T_i, F_i)
            skips.append(x)
            x = down(x)  # (B, c, T_i / 2 or T_i, F_i / 2)
        x = self.mid_block(x)  # (B, c, T_n, F_n)
        for up, decoder in zip(self.upsamplings, self.decoders):
            x = torch.cat([up(x), skips.pop()], dim=1)  # (B, 2c, T_i, F_i): upsampled first, skip second
            x = decoder(x)  # (B, c, T_i, F_i)
        return self.activation(self.last_conv(x))  # (B, C_in, T, n_fft/2 + 1)


# --- the separation model ---------------------------------------------------------------------------------
class SpectrogramUNet(SeparationModel):
    """One :class:`UNet` per target inside the seed's spectrogram framework (``Dense_UNET_Framework``).

    * Spectrogram: a centred Hann STFT of each channel, in (B, C', T, F) layout: ``spec_type``
      "complex" gives C' = 2·channels ordered [Re L, Re R, Im L, Im R]; "magnitude" gives |X|.
    * Estimate: ``spec_est_mode`` "mapping" takes the network output as the target's spectrogram;
      "masking" multiplies it with the mixture's spectrogram element-wise (for CaC, each real and
      imaginary channel with its own value, as the seed does). Magnitudes get the mixture's phase.
    * :meth:`loss`: ``train_loss`` "spec_mse" (MSE between estimated and reference spectrograms, the
      seed's default) or "raw_l1" (L1 between waveforms), summed over targets. The excerpt is cut
      to the longest prefix whose frame count the U-Net can halve (:meth:`training_seq_dur` gives
      the seed's ``num_frame`` frames exactly).
    * :meth:`validation_loss`: ``val_loss`` ("raw_l1" by default) on whole tracks separated by
      :meth:`separate`.
    * :meth:`separate`: the seed's windowed inference (see there).

    Args:
        block: the intermediate block (:data:`BLOCKS`); each registry name fixes it.
        targets: source names, one U-Net each.
        sample_rate, nb_channels: audio.
        n_fft, hop_length, num_frame: STFT and frames per window; ``num_frame`` must be a multiple
            of 2^(time-downsampling levels).
        spec_type, spec_est_mode, last_activation, train_loss, val_loss: the framework (above).
        min_trim: samples at least trimmed from each side of an inference window (the seed's 5000).
        context: the default of :meth:`separate` ("audio"; the converted official weights use
            "zeros", as the seed's inference does).
        Others: :class:`UNet`. Keys a block does not use are ignored, as in the seed.
    """

    def __init__(
        self,
        block: str,
        targets: Iterable[str] = ("vocals", "drums", "bass", "other"),
        sample_rate: int = 44100,
        nb_channels: int = 2,
        n_fft: int = 2048,
        hop_length: int = 1024,
        num_frame: int = 128,
        n_blocks: int = 7,
        internal_channels: int = 24,
        n_internal_layers: int = 5,
        kernel_size_t: int = 3,
        kernel_size_f: int = 3,
        bn_factor: int | None = 16,
        min_bn_units: int = 16,
        tfc_tdf_bias: bool = False,
        t_down_layers: Sequence[int] | None = None,
        f_down_layers: Sequence[int] | None = None,
        spec_type: str = "complex",
        spec_est_mode: str = "mapping",
        last_activation: str = "identity",
        train_loss: str = "spec_mse",
        val_loss: str = "raw_l1",
        bn_factor_rnn: int = 16,
        num_layers_rnn: int = 1,
        min_bn_units_rnn: int = 16,
        bias_rnn: bool = False,
        bn_factor_tdf: int | None = 16,
        bias_tdf: bool = False,
        min_trim: int = 5000,
        context: str = "audio",
    ) -> None:
        super().__init__(targets, sample_rate=sample_rate, nb_channels=nb_channels)
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"duplicate target names in {self.targets}")
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {', '.join(CONTEXTS)}; got {context!r}")
        self.context = context
        for name, value, allowed in (("spec_type", spec_type, SPEC_TYPES),
                                     ("spec_est_mode", spec_est_mode, SPEC_EST_MODES),
                                     ("train_loss", train_loss, LOSSES), ("val_loss", val_loss, LOSSES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        self.block = block
        self.n_fft, self.hop_length, self.num_frame = int(n_fft), int(hop_length), int(num_frame)
        self.spec_type, self.spec_est_mode = spec_type, spec_est_mode
        self.train_loss, self.val_loss = train_loss, val_loss
        self.stft = STFT(self.n_fft, self.hop_length, center=True)
        self.istft = ISTFT(self.n_fft, self.hop_length, center=True)
        in_channels = 2 * self.nb_channels if spec_type == "complex" else self.nb_channels
        self.target_models = nn.ModuleDict({
            target: UNet(block, in_channels, self.n_fft, n_blocks, internal_channels, n_internal_layers,
                         kernel_size_t, kernel_size_f, bn_factor, min_bn_units, tfc_tdf_bias, t_down_layers,
                         f_down_layers, last_activation, bn_factor_rnn, num_layers_rnn, min_bn_units_rnn, bias_rnn,
                         bn_factor_tdf, bias_tdf)
            for target in self.targets
        })
        self.time_multiple = next(iter(self.target_models.values())).time_multiple
        if self.num_frame < 2 or self.num_frame % self.time_multiple:
            raise ValueError(f"num_frame must be a multiple of {self.time_multiple} (the U-Net halves time "
                             f"{int(math.log2(self.time_multiple))} times); got {num_frame}")
        self.window_length = self.hop_length * (self.num_frame - 1)  # samples giving num_frame centred frames
        self.trim_length = trim_length(self.hop_length, min_trim)
        if self.window_length <= 2 * self.trim_length:
            raise ValueError(
                f"an inference window of hop_length · (num_frame − 1) = {self.window_length} samples must be "
                f"longer than the {2 * self.trim_length} samples trimmed from its two sides "
                f"(ceil({min_trim} / hop) hops each); "
                f"raise num_frame (at least {2 * self.trim_length // self.hop_length + 2}) or lower min_trim"
            )
        if self.window_length <= self.n_fft // 2:
            raise ValueError(f"a window of {self.window_length} samples is too short for the centred STFT's reflection "
                             f"padding of n_fft / 2 = {self.n_fft // 2} samples; raise num_frame or lower n_fft")

    # -- shapes -------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"{self.block}_net"

    def spectrogram(self, stft: torch.Tensor) -> torch.Tensor:
        """The network's input for a complex STFT (..., C, F, T): (..., C', T, F), C' as ``spec_type``."""
        spec = to_complex_channels(stft) if self.spec_type == "complex" else stft.abs()  # (..., C', F, T)
        return spec.transpose(-1, -2)

    def estimate(self, mix_stft: torch.Tensor) -> torch.Tensor:
        """Every target's spectrogram (B, S, C', T, F) for a mixture STFT (B, C, F, T)."""
        mix = self.spectrogram(mix_stft)  # (B, C', T, F)
        outputs = []
        for network in self.target_models.values():
            out = network(mix)
            outputs.append(out * mix if self.spec_est_mode == "masking" else out)
        return torch.stack(outputs, dim=1)

    def to_audio(self, spec: torch.Tensor, mix_stft: torch.Tensor, length: int) -> torch.Tensor:
        """Waveforms (B, S, C, length) for estimated spectrograms (B, S, C', T, F)."""
        spec = spec.transpose(-1, -2).float()  # (B, S, C', F, T); float32: autocast may have made it half
        if self.spec_type == "complex":
            stft = from_complex_channels(spec)  # (B, S, C, F, T)
        else:  # the estimated magnitude with the mixture's phase
            stft = torch.polar(spec, mix_stft.angle().unsqueeze(1).expand_as(spec))
        return self.istft(stft, length=length)

    # -- training ------------------------------------------------------------------------------
    def training_seq_dur(self) -> float:
        """Seconds of the seed's training excerpt: hop_length · (num_frame − 1) samples, which give
        num_frame centred frames (2.95 s for 1024 · 127 at 44.1 kHz)."""
        return self.window_length / self.sample_rate

    def _trainable_length(self, length: int) -> int:
        """The longest prefix of ``length`` samples whose centred frames the U-Net can halve."""
        frames = (1 + length // self.hop_length) // self.time_multiple * self.time_multiple
        samples = self.hop_length * (frames - 1)
        if frames == 0 or samples <= self.n_fft // 2:
            raise ValueError(
                f"an excerpt of {length} samples is too short for this {self.block}_net: it needs "
                f"{self.time_multiple} frames or more, and more than n_fft / 2 = {self.n_fft // 2} samples; "
                f"use excerpts of hop_length · (num_frame − 1) = {self.window_length} samples "
                f"({self.training_seq_dur():.3f} s, model.training_seq_dur())"
            )
        return samples

    def _loss(self, name: str, estimates: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(estimates, references) if name == "spec_mse" else F.l1_loss(estimates, references)

    def loss(self, mixture: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """``train_loss`` per target, summed; logs ``"<loss>/<target>"``."""
        self._check_references(mixture, references)
        length = self._trainable_length(mixture.shape[-1])
        mixture, references = mixture[..., :length], references[..., :length]  # (B, C, L'), (B, S, C, L')
        mix_stft = self.stft(mixture)  # (B, C, F, T)
        estimates = self.estimate(mix_stft)  # (B, S, C', T, F)
        if self.train_loss == "spec_mse":
            wanted = self.spectrogram(self.stft(references))  # (B, S, C', T, F)
        else:
            estimates, wanted = self.to_audio(estimates, mix_stft, length), references  # (B, S, C, L')
        total = mixture.new_zeros(())
        logs: dict[str, float] = {}
        for index, target in enumerate(self.targets):
            value = self._loss(self.train_loss, estimates[:, index], wanted[:, index])
            total = total + value
            logs[f"{self.train_loss}/{target}"] = float(value.detach())
        return total, logs

    def validation_loss(self, mixture: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """``val_loss`` of whole tracks separated by :meth:`separate`, summed over targets (the seed
        averages it over zero-padded windows instead)."""
        self._check_references(mixture, references)
        estimates = self.separate(mixture)  # (B, S, C, L)
        if self.val_loss == "spec_mse":
            estimates, references = self.spectrogram(self.stft(estimates)), self.spectrogram(self.stft(references))
        return sum(self._loss(self.val_loss, estimates[:, i], references[:, i]) for i in range(len(self.targets)))

    # -- inference -----------------------------------------------------------------------------
    def separation_options(self) -> dict:
        return {"batch_size": None, "context": self.context}

    def separate(self, mixture: torch.Tensor, batch_size: int | None = None,
                 context: str | None = None) -> torch.Tensor:
        """Waveforms (B, S, C, L) for mixtures (B, C, L) of any length, window by window.

        The signal is cut into chunks of ``window_length − 2 · trim_length`` samples (the last one
        zero-padded); each chunk is extended by ``trim_length`` samples on both sides into a window
        of ``hop_length · (num_frame − 1)`` samples (``num_frame`` frames, the training length), run
        through STFT, U-Net and iSTFT, and its estimate trimmed back to the chunk. The chunks' estimates
        are joined and cut to L. ``context="audio"`` (default) extends each chunk with the
        neighbouring audio, so consecutive windows overlap by 2 · ``trim_length`` samples and every
        kept sample had real context on both sides (the paper-era ``.deprecated/utils_ismir.py:
        preprocess_track``); ``context="zeros"`` extends each chunk with zeros, as the seed's current
        ``SingleTrackSet`` and ``MusdbTestSet`` do (the windows then do not overlap). ``batch_size`` windows go
        through the networks at a time; the result does not depend on it. ``batch_size=None`` takes
        one window at a time on the CPU, where oneDNN already spreads one window over the cores and a
        batch only adds memory (measured for issue 16, paper "large" preset, 30 s on 2 cores: 12.3 s
        in 1.2 GB with 1, 13.4-14.2 s in 3.0-3.4 GB with 4), and the seed's 4 on other devices.
        ``context=None`` takes the model's default (``self.context``). Call ``model.eval()`` first.
        """
        self._check_mixture(mixture)
        context = self.context if context is None else context
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {', '.join(CONTEXTS)}; got {context!r}")
        if batch_size is None:
            batch_size = 1 if mixture.device.type == "cpu" else 4
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive number of windows; got {batch_size!r}")
        batch, channels, length = mixture.shape
        trim, window = self.trim_length, self.window_length
        hop = window - 2 * trim  # the samples each window keeps
        chunks = max(1, math.ceil(length / hop))
        padded = F.pad(mixture, (0, chunks * hop - length))  # (B, C, chunks·hop)
        if context == "zeros":
            windows = F.pad(padded.reshape(batch, channels, chunks, hop), (trim, trim))  # (B, C, chunks, window)
        else:
            windows = F.pad(padded, (trim, trim)).unfold(-1, window, hop)  # (B, C, chunks, window)
        windows = windows.permute(0, 2, 1, 3).reshape(batch * chunks, channels, window)  # (B·chunks, C, window)
        estimates = []
        for part in windows.split(int(batch_size)):
            mix_stft = self.stft(part)  # (b, C, F, num_frame)
            estimates.append(self.to_audio(self.estimate(mix_stft), mix_stft, window)[..., trim:trim + hop])
        out = torch.cat(estimates).reshape(batch, chunks, len(self.targets), channels, hop)
        return out.permute(0, 2, 3, 1, 4).reshape(batch, len(self.targets), channels, chunks * hop)[..., :length]


# --- command-line options and registration -----------------------------------------------------------------
def parse_precision(text: str) -> bool:
    """``--precision``: "16" → mixed precision (True), "32" → full precision (False), as the seed's
    PyTorch Lightning flag."""
    value = str(text).strip()
    if value == "16":
        return True
    if value == "32":
        return False
    raise argparse.ArgumentTypeError(f"--precision takes 16 (mixed precision) or 32; got {text!r}")


def parse_optional_int(text: str) -> int | None:
    """An integer or "None" (``--bn_factor None``: the TDF is a single Linear F → F)."""
    if str(text).strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or None; got {text!r}") from None


def parse_layers(text: str) -> list[int] | None:
    """A list of encoder levels: "0,2,4,6" or "[0, 2, 4, 6]"; "None" for all levels."""
    body = str(text).strip().strip("[]()").strip()
    if body.lower() == "none":
        return None
    try:
        return [int(item) for item in body.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected levels like 0,2,4,6 or None; got {text!r}") from None


_OPTIONS = {
    option.flag: option
    for option in (
        Option("--n_fft", "n_fft", int, "STFT size (2048)"),
        Option("--hop_length", "hop_length", int, "STFT hop (1024)"),
        Option("--num_frame", "num_frame", int, "frames per training excerpt and inference window (128)"),
        Option("--n_blocks", "n_blocks", int, "intermediate blocks, odd (7)"),
        Option("--internal_channels", "internal_channels", int, "channels c of every block (24)"),
        Option("--n_internal_layers", "n_internal_layers", int, "layers per dense block (5)"),
        Option("--kernel_size_t", "kernel_size_t", int, "TFC kernel along time (3)"),
        Option("--kernel_size_f", "kernel_size_f", int, "kernel along frequency (3)"),
        Option("--bn_factor", "bn_factor", parse_optional_int, "TDF bottleneck factor; None: one Linear (16)"),
        Option("--min_bn_units", "min_bn_units", int, "TDF bottleneck floor (16)"),
        Option("--tfc_tdf_bias", "tfc_tdf_bias", parse_bool, "TDF Linear bias and BN affine (False)"),
        Option("--bias", "tfc_tdf_bias", parse_bool, "TDF Linear bias and BN affine (False)"),
        Option("--t_down_layers", "t_down_layers", parse_layers, "levels that also halve time, e.g. 0,2,4,6 (all)"),
        Option("--f_down_layers", "f_down_layers", parse_layers, "levels that halve frequency (all)"),
        Option("--bn_factor_rnn", "bn_factor_rnn", int, "GRU hidden = F / this (16)"),
        Option("--num_layers_rnn", "num_layers_rnn", int, "GRU layers (1)"),
        Option("--min_bn_units_rnn", "min_bn_units_rnn", int, "GRU hidden floor (16)"),
        Option("--bias_rnn", "bias_rnn", parse_bool, "GRU bias (False)"),
        Option("--bn_factor_tdf", "bn_factor_tdf", parse_optional_int, "TDC-RNN MLP bottleneck factor (16)"),
        Option("--bias_tdf", "bias_tdf", parse_bool, "TDC-RNN MLP Linear bias (False)"),
        Option("--spec_type", "spec_type", str, "complex (CaC) or magnitude", SPEC_TYPES),
        Option("--spec_est_mode", "spec_est_mode", str, "mapping or masking", SPEC_EST_MODES),
        Option("--last_activation", "last_activation", str, "the U-Net's output activation", tuple(ACTIVATIONS)),
        Option("--train_loss", "train_loss", str, "training loss (spec_mse)", LOSSES),
        Option("--val_loss", "val_loss", str, "validation loss (raw_l1)", LOSSES),
        Option("--optimizer", "optimizer", str, "adam, adamw, rmsprop, sgd or adagrad", where="train"),
        Option("--lr", "lr", float, "learning rate", where="train"),
        Option("--batch_size", "batch_size", int, "excerpts per batch", where="train"),
        Option("--patience", "patience", int, "early-stopping epochs", where="train"),
        Option("--min_epochs", "min_epochs", int, "no early stop before this epoch", where="train"),
        Option("--max_epochs", "epochs", int, "epochs at most", where="train"),
        Option("--precision", "amp", parse_precision, "16 (mixed precision on GPUs) or 32", where="train"),
        Option("--window-batch", "batch_size", int, "inference windows per forward pass (U-Nets: 1 on the CPU, "
               "4 on a GPU; Wavenet: 10 windows of the trained target field, fewer of a longer one); lower it if "
               "memory runs out", where="separate"),
        Option("--window-context", "context", str, "what extends each inference chunk to a window: the "
               "neighbouring audio (overlapping windows, default) or zeros (the seed's current code)", CONTEXTS,
               where="separate"),
    )
}
_COMMON = ("--n_fft", "--hop_length", "--num_frame", "--n_blocks", "--internal_channels", "--spec_type",
           "--spec_est_mode", "--last_activation", "--train_loss", "--val_loss", "--optimizer", "--lr",
           "--batch_size", "--patience", "--min_epochs", "--max_epochs", "--precision", "--window-batch",
           "--window-context")
_BLOCK_FLAGS = {
    "tfc": ("--n_internal_layers", "--kernel_size_t", "--kernel_size_f", "--t_down_layers", "--f_down_layers"),
    "tdf": ("--bn_factor", "--min_bn_units", "--bias"),
    "tfc_tdf": ("--n_internal_layers", "--kernel_size_t", "--kernel_size_f", "--bn_factor", "--min_bn_units",
                "--tfc_tdf_bias", "--t_down_layers", "--f_down_layers"),
    "tdc": ("--n_internal_layers", "--kernel_size_f"),
    "tdc_rnn": ("--n_internal_layers", "--kernel_size_f", "--bn_factor_rnn", "--num_layers_rnn", "--min_bn_units_rnn",
                "--bias_rnn", "--bn_factor_tdf", "--bias_tdf", "--t_down_layers", "--f_down_layers"),
}

# The seed README's default training command (n_fft 2048, hop 1024, 128 frames, 7 blocks, c = 24,
# 5 layers of 3×3, bn 16, min 16, bias off, CaC mapping with identity); spec §5.5 counts per target:
# tfc 639,316; tdf 359,492; tfc_tdf 987,476; tdc 217,684; tdc_rnn 1,532,228.
SEED = dict(sample_rate=44100, nb_channels=2, n_fft=2048, hop_length=1024, num_frame=128, n_blocks=7,
            internal_channels=24, n_internal_layers=5, kernel_size_t=3, kernel_size_f=3, bn_factor=16,
            min_bn_units=16, tfc_tdf_bias=False, t_down_layers=None, f_down_layers=None, spec_type="complex",
            spec_est_mode="mapping", last_activation="identity", train_loss="spec_mse", val_loss="raw_l1",
            min_trim=5000)
SEED_RNN = dict(bn_factor_rnn=16, num_layers_rnn=1, min_bn_units_rnn=16, bias_rnn=False, bn_factor_tdf=16,
                bias_tdf=False)
# CPU-sized, for a few minutes of training on the toy songs: the seed's front end at half size
# (n_fft 1024, hop 512; 0.73 s excerpts and windows of 64 frames, 5120 samples trimmed per side),
# 5 blocks (two levels: 513 → 512 → 256 → 128 bins, 64 → 32 → 16 frames), c = 16, 3 layers per
# dense block. Per target: tfc_tdf_net 174,276 parameters, tfc 88,260, tdf 89,620, tdc 30,916,
# tdc_rnn 357,028; 0.2-0.5 s per step of 4 excerpts on one CPU thread (tdf fastest). Measured: 3 minutes of
# training (batch 4, Adam 1e-3, 8 excerpts per toy song and epoch) lift the vocals' median cSDR on the
# toy test songs from -3.8 dB (the mixture) to 3.2-4.2 dB for every block.
TUTORIAL = dict(SEED, n_fft=1024, hop_length=512, num_frame=64, n_blocks=5, internal_channels=16, n_internal_layers=3)
PRESETS = {
    "tfc": {"seed": SEED, "tutorial": TUTORIAL},
    "tdf": {"seed": SEED, "tutorial": TUTORIAL},
    "tfc_tdf": {
        "seed": SEED,
        # paper Table 2: 17 blocks, time halved at levels 0, 2, 4, 6, bias on; 64 frames as the
        # paper-era loader (dim_t = 64): 1,930,840 parameters
        "paper": dict(SEED, n_blocks=17, num_frame=64, t_down_layers=[0, 2, 4, 6], tfc_tdf_bias=True),
        # README "TFC_TDF_large" / dissertation table 3.6: 9 blocks, n_fft 4096: 2,232,132 parameters
        # (its README run: batch 12 or 24, at least 2000 of at most 3000 epochs, patience 200)
        "large": dict(SEED, n_fft=4096, n_blocks=9, tfc_tdf_bias=True),
        "tutorial": TUTORIAL,
    },
    "tdc": {
        "seed": SEED,
        "paper": dict(SEED, n_blocks=17, num_frame=64),  # paper Table 1: 17 blocks, 535,924 parameters
        "tutorial": TUTORIAL,
    },
    "tdc_rnn": {"seed": dict(SEED, **SEED_RNN), "tutorial": dict(TUTORIAL, **SEED_RNN)},
}
DESCRIPTIONS = {
    "tfc": "U-Net of TFC blocks (Choi et al., ISMIR 2020): dense 2-D convolutions on complex-as-channels spectrograms",
    "tdf": "U-Net of TDF blocks (Choi et al., ISMIR 2020): frequency MLPs per frame and channel",
    "tfc_tdf": "TFC-TDF U-Net (Choi et al., ISMIR 2020): dense 2-D convolutions + residual frequency MLPs, CaC mapping",
    "tdc": "U-Net of TDC blocks (Choi et al., ISMIR 2020): dense 1-D convolutions over frequency per frame",
    "tdc_rnn": "U-Net of TDC-RNN blocks (Choi et al., ISMIR 2020): TDC + a bidirectional GRU along time",
}
# spec §5.6 (README command, main.py, dataloaders.py): vocals, Adam 1e-3 without a schedule, batch 16,
# early stopping with patience 100 after at least 1000 of at most 2000 epochs, each source an excerpt
# of a random track, no gain augmentation, validation on the held-out tracks
# samples_per_track: the seed's epoch holds sum(track length // window) excerpts, about 79 per
# MUSDB18 training track (mean 3.9 min) at the seed preset's 2.95 s window
TRAINING = {"targets": ("vocals",), "optimizer": "adam", "lr": 1e-3, "lr_schedule": "none", "batch_size": 16,
            "patience": 100, "min_epochs": 1000, "epochs": 2000, "weight_decay": 0.0, "random_track_mix": True,
            "source_augmentations": (), "validation": True, "samples_per_track": 79}


def build(block: str, targets=("vocals", "drums", "bass", "other"), **config) -> SpectrogramUNet:
    return SpectrogramUNet(block, targets=targets, **config)


for _block in BLOCKS:
    register(
        f"{_block}_net",
        presets=PRESETS[_block],
        description=DESCRIPTIONS[_block],
        training=TRAINING,
        cli_options=tuple(_OPTIONS[flag] for flag in _COMMON + _BLOCK_FLAGS[_block]),
    )(partial(build, _block))


__all__ = ["TFC", "TDF", "TFC_TDF", "TDC", "TDC_RNN", "Sampling2d", "FrequencySampling", "UNet", "SpectrogramUNet",
           "BLOCKS", "trim_length", "parse_precision", "parse_optional_int", "parse_layers", "build"]
