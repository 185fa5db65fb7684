"""D3Net: densely connected multidilated DenseNet, one network per target, plus a Wiener filter.

Takahashi & Mitsufuji, "Densely connected multidilated convolutional networks for dense
prediction tasks", CVPR 2021 (arXiv 2010.01733), the music source separation experiments (§5.2).
Facts (blocks, shapes, per-target configurations, parameter counts, training and inference recipe)
come from ``shared/spec/architectures.md`` §3, which was measured on the official NNabla code.

The picture, from the inside out (paper Fig. 2 and 4; the names are this file's classes):

* :class:`MultidilatedD2Block` ("D2 block", paper §3.2 and Fig. 2): a dense block whose layer j
  sees the output of every earlier layer i, each convolved with its **own dilation 2^i** (the
  *multidilated convolution*, eq. 4). Written in the official "contribution" form: each layer's
  output x_i gets one BN → ReLU → Conv3×3(dilation 2^i) whose output channels are split into the
  contributions to all later layers, so each source chunk has **one BatchNorm shared by all later
  layers**. The block outputs its last layer only.
* :class:`D3Block` (paper §3.3, Fig. 3): M D2 blocks densely connected in the same contribution
  style; outputs the last chunk only.
* :class:`MD3UNet` (paper §4.1, Fig. 4 "MD3 block with down-sampling"): a U-Net of D3 blocks,
  average-pool down, BN + transposed conv up, skip concatenation.
* :class:`D3NetNetwork` (paper §5.2, Fig. 4): per-band MD3 U-Nets (low band, high band) and one
  full-band MD3 U-Net, concatenated, a final D2 block, a gated 1×1 output and trainable scalers::

      mixture magnitude |X| (B, C, F=2049, T)  → transpose → (B, C, T, F)
        │ (x − in_offset) / in_scale                     per bin, trainable (2 × 2049)
        ├─ band 0: bins [0, split)      conv3×3 → MD3 U-Net → (B, k_max, T, split)
        ├─ band 1: bins [split, 1600)   conv3×3 → MD3 U-Net → BN → conv1×1 → (B, k_max, T, 1600 − split)
        │      concat along F                             (B, k_max, T, 1600)
        ├─ full band: bins [0, 1600)    conv3×3 → MD3 U-Net → (B, k_full, T, 1600)
        │  concat along channels                          (B, k_max + k_full, T, 1600)
        ├─ final D2 block                                 (B, 12, T, 1600)
        ├─ gate: BN → sigmoid(conv1×1) ⊙ conv1×1          (B, C, T, 1600)
        ├─ · decode_scale + decode_bias → ReLU            a direct magnitude estimate, not a mask
        └─ concat with the raw mixture bins ≥ 1600        (B, C, T, 2049) → transpose back

:class:`D3Net` holds one :class:`D3NetNetwork` per target (like :class:`mssbook.models.umx.UMX`),
trains it with an MSE on magnitudes of the first 256 frames of a centred STFT (spec §3.4), and
separates in patches of 256 frames with hop 128 (bass 384/192), overlap-added, averaged with the
channel-swapped prediction, then a one-shot multichannel Wiener filter (spec §3.4, "Inference").

Inference speed (issue 16). One 256-frame patch of the paper's vocals network is about 240 GFLOP
(``torch.utils.flop_counter``), almost all of it 3×3 convolutions with 2-22 input channels on
(256, 1600) maps, so the cost is compute plus the memory traffic of the thin layers. In eval mode
without autograd the blocks take a fused path with the same outputs (float32 rounding; the state
dict is untouched): each D2 block folds the BatchNorms of x_1 … x_{L−1} into the convolutions that
produce them (:meth:`MultidilatedD2Block.folded_weights`), sums every layer's inputs in that layer's
own dense tensor with convolutions that add into it and apply its ReLU in the same pass (oneDNN's
fused convolution where this PyTorch build has it, :func:`_conv_add_`; plain ``conv2d`` + in-place
``add_`` and ``relu_`` otherwise), the block input's BatchNorm is one ``addcmul``, and the
activations are ``channels_last`` (oneDNN's fast layout for thin convolutions;
``D3NetNetwork.channels_last = False`` turns it off). The activations are 100-350 MB per layer, so
the separator runs the model under :func:`mssbook.allocator.reuse_freed_memory`: without it the
kernel maps and zero-fills every one afresh (a quarter of the time). On 2 CPU cores, measured for
issue 16 (``benchmarks/bench_models.py``): 1.0 s per second of stereo audio (4.2 s before any of
this), about 190 GFLOP/s, 64-66 % of a large 64-channel convolution's throughput measured in the
same run and 88-89 % of what its own convolutions reach when each runs alone: those thin
convolutions (2-36 channels, output channels padded to oneDNN's vector blocks of 16 or 32) are
themselves at 74 % of the large one. Training and the ONNX export (traced) use the plain path.
:data:`LAPTOP_OPTIONS` trades a little SDR for 4× less work.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import check_runtime, network_runner
from ..signal.transforms import ISTFT, STFT, bandwidth_to_max_bin, magnitude
from ..signal.wiener import wiener
from . import register
from .base import SeparationModel
from .umx import input_statistics

RESIDUAL_NAME = "residual"


def _record(trace: dict | None, name: str, value: torch.Tensor) -> None:
    if trace is not None:
        trace[name] = value


def glorot_normal_(conv: nn.Module) -> None:
    """NNabla's ``init_method='xavier'`` (spec §3.4): N(0, σ²), σ² = 2 / (k_h·k_w·c_in + c_out); bias 0."""
    c_out, c_in, kh, kw = conv.weight.shape
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (kh * kw * c_in + c_out)))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


# --- building blocks (spec §3.2) ------------------------------------------------------------
def _fast_inference(module: nn.Module) -> bool:
    """True where ``module`` may take its eval-only fused path (same outputs to float32 rounding).

    That path folds BatchNorms into the convolutions that produce their inputs and accumulates the
    dense connections in place, so it needs the running statistics (eval mode), no autograd graph
    (it writes into tensors that a backward pass would need) and no tracer (the ONNX export traces
    the plain path, which every exporter understands).
    """
    return not (module.training or torch.is_grad_enabled() or torch.jit.is_tracing())


def _onednn_fusion_works() -> bool:
    """Whether oneDNN's fused convolutions (+ ReLU, + in-place addition) run here, correctly.

    ``torch.ops.mkldnn._convolution_pointwise`` and its in-place ``_convolution_pointwise_`` are
    the ops PyTorch's own compiler emits for conv + ReLU and conv + add on CPUs; they are not public
    API, so both are tried once on a small case against ``F.conv2d`` + ``add_`` + ``relu_``, and the
    fused path falls back to those where either fails.
    """
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(1, 3, 7, 6, generator=generator)
        weight, bias = torch.randn(4, 3, 3, 3, generator=generator), torch.randn(4, generator=generator)
        acc = torch.randn(1, 4, 7, 6, generator=generator)
        conv = F.conv2d(x, weight, bias, padding=2, dilation=2)
        expected = (acc + conv).relu()
        ops = torch.ops.mkldnn
        alone = ops._convolution_pointwise(x, weight, bias, [2, 2], [1, 1], [2, 2], 1, "relu", [], None)
        ops._convolution_pointwise_.binary(acc, x, weight, bias, [2, 2], [1, 1], [2, 2], 1, "add", 1.0, "relu",
                                           [], None)
        return bool(torch.allclose(alone, conv.relu(), rtol=1e-5, atol=1e-5)
                    and torch.allclose(acc, expected, rtol=1e-5, atol=1e-5))
    except Exception:  # an op missing from this build, or refusing the arguments: use the plain ops
        return False


_ONEDNN_FUSION: bool | None = None  # probed on first use


def _fusion_for(x: torch.Tensor) -> bool:
    global _ONEDNN_FUSION
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    if _ONEDNN_FUSION is None:
        _ONEDNN_FUSION = _onednn_fusion_works()
    return _ONEDNN_FUSION


def _conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, conv: nn.Conv2d, relu: bool) -> torch.Tensor:
    """``conv`` (its padding and dilation) with the given weight and bias, then ReLU if asked."""
    if _fusion_for(x):
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, list(conv.padding), list(conv.stride),
                                                       list(conv.dilation), conv.groups, "relu" if relu else "none",
                                                       [], None)
    out = conv._conv_forward(x, weight, bias)
    return out.relu_() if relu else out


def _conv_add_(acc: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, conv: nn.Conv2d,
               relu: bool) -> None:
    """``acc += conv(x)`` in place (``acc`` dense, the convolution's output shape), then ReLU if asked."""
    if _fusion_for(x):  # one pass: oneDNN adds the convolution into acc and applies the ReLU
        torch.ops.mkldnn._convolution_pointwise_.binary(acc, x, weight, bias, list(conv.padding), list(conv.stride),
                                                        list(conv.dilation), conv.groups, "add", 1.0,
                                                        "relu" if relu else None, [], None)
        return
    acc.add_(conv._conv_forward(x, weight, bias))
    if relu:
        acc.relu_()


class BNConv(nn.Module):
    """Pre-activation unit: BN → ReLU → Conv3×3 (dilation d, padding d, with bias)."""

    def __init__(self, c_in: int, c_out: int, dilation: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(c_in)
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=pad, dilation=dilation)
        glorot_normal_(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, T, F) → (B, c_out, T, F)
        if _fast_inference(self):
            return self.conv(self.norm(x).relu_())  # the same, without a second activation tensor
        return self.conv(F.relu(self.norm(x)))

    def folded_norm(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The eval-mode BatchNorm as a per-channel affine map: ``norm(x) = x · scale + shift``."""
        norm = self.norm
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)  # (c_in,)
        return scale, norm.bias - norm.running_mean * scale


class MultidilatedD2Block(nn.Module):
    """D2 block D2(c_in, g, L): L layers of g channels, densely connected by multidilated convs.

    Paper §3.2 (eq. 4): layer j's pre-activation is Σ_{i<j} Conv_{d=2^i}(ReLU(BN_i(x_i))), x_0 the
    block input. ``layers[0]`` (dilation 1) maps x_0 to all L layers at once (g·L channels);
    ``layers[i]`` (i ≥ 1, dilation 2^i) maps x_i to the g·(L − i) channels of layers i+1 … L.
    So every source chunk x_i has **one** BatchNorm, shared by all the layers that read it (the
    NNabla weight layout; not a concat-DenseNet with one BN per layer, spec §3.7).
    Output: x_L only (g channels). With L = 1 this is a single :class:`BNConv`.
    """

    def __init__(self, c_in: int, growth: int, n_layers: int, kernel_size: int = 3) -> None:
        super().__init__()
        if n_layers < 1 or growth < 1:
            raise ValueError(f"a D2 block needs n_layers >= 1 and growth >= 1; got {n_layers}, {growth}")
        self.growth, self.n_layers = int(growth), int(n_layers)
        L, g = self.n_layers, self.growth
        self.layers = nn.ModuleList(
            [BNConv(c_in, g * L, dilation=1, kernel_size=kernel_size)]  # x_0 → layers 1 … L
            + [BNConv(g, g * (L - i), dilation=2**i, kernel_size=kernel_size) for i in range(1, L)]  # x_i → i+1 … L
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, T, F) → (B, g, T, F)
        if _fast_inference(self):
            return self._fused_forward(x)
        chunks = list(self.layers[0](x).split(self.growth, dim=1))  # L × (B, g, T, F): x_0's part of x_1 … x_L
        for i in range(1, self.n_layers):
            # chunks[i − 1] is x_i, complete now: all of x_0 … x_{i−1} have added their parts
            contributions = self.layers[i](chunks[i - 1]).split(self.growth, dim=1)  # (L − i) × (B, g, T, F)
            for j, part in enumerate(contributions):
                chunks[i + j] = chunks[i + j] + part  # into x_{i+1} … x_L
        return chunks[-1]  # x_L

    def folded_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, conv weight and bias with the BatchNorms of x_1 … x_{L−1} folded in (eval only).

        x_c (1 ≤ c < L) is read by one unit only, ``layers[c]``, which starts with BN_c: an affine
        map x_c · s_c + t_c. Since x_c is a sum of conv outputs (one from each earlier layer), the
        map moves into those convs: their output rows for x_c scaled by s_c, and t_c added once, to
        layer 0's bias. The accumulated chunk is then already normalised. BN_0 (on the block's
        input) and x_L (the block's output) stay as they are. Computed from the live parameters on
        every call (a few thousand numbers), so the state dict is never changed.
        """
        g, L = self.growth, self.n_layers
        scales, shifts = [None] * L, [None] * L  # per chunk c: BN_c's scale and shift (c ≥ 1)
        for c in range(1, L):
            scales[c], shifts[c] = self.layers[c].folded_norm()  # (g,), (g,)
        folded = []
        for i, unit in enumerate(self.layers):
            weight, bias = unit.conv.weight, unit.conv.bias  # (g·(L − i), c_in, k, k), (g·(L − i),)
            row_scale = torch.cat([scales[c] if c < L else torch.ones_like(bias[:g]) for c in range(i + 1, L + 1)])
            bias = bias * row_scale
            if i == 0:  # the shifts, added once
                bias = bias + torch.cat([shifts[c] if c < L else torch.zeros_like(bias[:g]) for c in range(1, L + 1)])
            folded.append((weight * row_scale[:, None, None, None], bias))
        return folded

    def _fused_forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, T, F) → (B, g, T, F)
        """The eval path: BNs folded (:meth:`folded_weights`), each layer summed in its own tensor.

        The plain path convolves x_i once for all later layers and splits the output; here every
        pair (source i, layer j > i) is its own g-channel convolution that adds straight into layer
        j's dense tensor, and the convolution that completes a layer also applies its ReLU (both
        fused into the convolution by oneDNN where it can, :func:`_conv_add_`). Same sums, same
        weights. The wide convolutions of the plain path run faster, but their outputs are channel
        slices of a shared tensor, and the additions and ReLUs over such strided slices cost more
        than the wide convolutions save: the paper's vocals network takes 2.52 s per patch pair
        instead of 2.84 s (issue 16, one process, same input).
        """
        g, L = self.growth, self.n_layers
        weights = self.folded_weights()  # per source i: (g·(L − i), c_i, k, k), (g·(L − i),)
        first = self.layers[0]
        scale, shift = first.folded_norm()  # BN_0 as x · scale + shift
        source = torch.addcmul(shift[:, None, None], x, scale[:, None, None]).relu_()  # (B, c_in, T, F), dense
        w0, b0 = weights[0]
        # layer[j] holds x_{j+1} (BN_{j+1} folded in); x_0 starts every one of them, and completes x_1
        layer = [_conv(source, w0[g * j : g * (j + 1)], b0[g * j : g * (j + 1)], first.conv, relu=j == 0 and L > 1)
                 for j in range(L)]  # L × (B, g, T, F)
        for i in range(1, L):
            conv = self.layers[i].conv
            weight, bias = weights[i]  # rows for x_{i+1} … x_L
            for j in range(i, L):  # ReLU(BN_i(x_i)) = layer[i − 1] → x_{j+1}; x_{i+1} is complete after it
                rows = slice(g * (j - i), g * (j - i + 1))
                _conv_add_(layer[j], layer[i - 1], weight[rows], bias[rows], conv, relu=j == i and j < L - 1)
        return layer[-1]  # x_L, no ReLU: the block's output


class D3Block(nn.Module):
    """D3 block D3(c_in, k, L, M): M D2 blocks densely connected (paper §3.3, Fig. 3).

    ``blocks[0]`` = D2(c_in, k·M, L) gives M chunks of k; for m ≥ 1, ``blocks[m]`` = D2(k, k·(M − m), L)
    reads chunk m − 1 (already accumulated) and adds its output to chunks m … M − 1.
    Output: the last chunk (k channels).
    """

    def __init__(self, c_in: int, growth: int, n_layers: int, n_blocks: int, kernel_size: int = 3) -> None:
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"a D3 block needs n_blocks >= 1; got {n_blocks}")
        self.growth, self.n_blocks = int(growth), int(n_blocks)
        k, M = self.growth, self.n_blocks
        self.blocks = nn.ModuleList(
            [MultidilatedD2Block(c_in, k * M, n_layers, kernel_size)]
            + [MultidilatedD2Block(k, k * (M - m), n_layers, kernel_size) for m in range(1, M)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, T, F) → (B, k, T, F)
        k = self.growth
        if _fast_inference(self):  # the chunks accumulate in place in the first block's output
            buffer = self.blocks[0](x)  # (B, k·M, T, F)
            for m in range(1, self.n_blocks):
                buffer[:, k * m :] += self.blocks[m](buffer[:, k * (m - 1) : k * m])
            return buffer[:, k * (self.n_blocks - 1) :]
        chunks = list(self.blocks[0](x).split(self.growth, dim=1))  # M × (B, k, T, F)
        for m in range(1, self.n_blocks):
            for j, part in enumerate(self.blocks[m](chunks[m - 1]).split(self.growth, dim=1)):
                chunks[m + j] = chunks[m + j] + part
        return chunks[-1]


class Upsample(nn.Module):
    """BN → ConvTranspose 2×2 stride 2 (channels unchanged, with bias, no activation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.conv = nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c, T, F) → (B, c, 2T, 2F)
        return self.conv(self.norm(x))


class MD3UNet(nn.Module):
    """MD3 block with down-sampling (paper §4.1, Fig. 4): a U-Net of D3 blocks.

    ``ks`` (growth k), ``n_layers`` (L) have odd length 2n + 1: n down levels (D3 block, keep a
    skip, AvgPool 2×2), a bottleneck D3 block, n up levels (BN → ConvTranspose 2×2, concat the
    skip, D3 block). Every D3 block has ``n_blocks`` (M) D2 blocks. Output: the last up block's
    ``ks[-1]`` channels at the input resolution. T and F must be multiples of 2^n.
    """

    def __init__(self, c_in: int, ks: Sequence[int], n_layers: Sequence[int], n_blocks: int, kernel_size: int = 3):
        super().__init__()
        ks, n_layers = [int(k) for k in ks], [int(n) for n in n_layers]
        if len(ks) != len(n_layers) or len(ks) % 2 == 0:
            raise ValueError(f"ks and n_layers must have the same odd length; got {len(ks)} and {len(n_layers)}")
        n = self.n_down = (len(ks) - 1) // 2
        self.down = nn.ModuleList()
        channels = c_in
        for i in range(n):
            self.down.append(D3Block(channels, ks[i], n_layers[i], n_blocks, kernel_size))
            channels = ks[i]
        self.bottleneck = D3Block(channels, ks[n], n_layers[n], n_blocks, kernel_size)
        self.upsample, self.up = nn.ModuleList(), nn.ModuleList()
        channels = ks[n]
        for j in range(n):
            skip = ks[n - 1 - j]
            self.upsample.append(Upsample(channels))
            self.up.append(D3Block(channels + skip, ks[n + 1 + j], n_layers[n + 1 + j], n_blocks, kernel_size))
            channels = ks[n + 1 + j]
        self.out_channels = channels

    def forward(self, x: torch.Tensor, trace: dict | None = None, prefix: str = "") -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)  # (B, k_i, T / 2^i, F / 2^i)
            _record(trace, f"{prefix}down{i}", x)
            skips.append(x)
            x = F.avg_pool2d(x, kernel_size=2, stride=2)  # (B, k_i, T / 2^(i+1), F / 2^(i+1))
        x = self.bottleneck(x)  # (B, k_n, T / 2^n, F / 2^n)
        _record(trace, f"{prefix}bottleneck", x)
        for j, (upsample, block) in enumerate(zip(self.upsample, self.up)):
            x = torch.cat([upsample(x), skips.pop()], dim=1)  # (B, k_prev + k_skip, 2×, 2×)
            x = block(x)  # (B, k_{n+1+j}, T / 2^(n−1−j), F / 2^(n−1−j))
            _record(trace, f"{prefix}up{j}", x)
        return x


# --- the network for one target (spec §3.3) ----------------------------------------------------
class D3NetNetwork(nn.Module):
    """D3Net for one target: mixture magnitude (B, C, nb_bins, T) → target magnitude, same shape.

    Args:
        nb_bins: STFT bins (2049 for n_fft 4096); nb_channels: audio channels (2).
        valid_bins: bins processed (1600, about 17.2 kHz); the output above is the raw mixture.
        band_splits: bins where a band ends (vocals [256]: bands [0, 256) and [256, 1600)).
        band_init, band_ks, band_layers, band_blocks: per band, the channels of the initial 3×3
            conv and the MD3 U-Net's k list, L list and M.
        full_init, full_ks, full_layers, full_blocks: the same for the full band [0, valid_bins).
        final_k, final_layers: the final D2 block.

    ``in_offset`` / ``in_scale`` (per bin, start 0 / 1; set from data) normalise the input as
    (x − in_offset) / in_scale; ``decode_scale`` / ``decode_bias`` (both start at 1) scale the output.
    All four are trainable, as in the reference (spec §3.5, §3.7).
    """

    def __init__(
        self,
        nb_bins: int = 2049,
        nb_channels: int = 2,
        valid_bins: int = 1600,
        band_splits: Sequence[int] = (256,),
        band_init: Sequence[int] = (32, 8),
        band_ks: Sequence[Sequence[int]] = ((16, 18, 20, 22, 20, 18, 16), (2,) * 5),
        band_layers: Sequence[Sequence[int]] = ((5, 5, 5, 5, 4, 4, 4), (1,) * 5),
        band_blocks: Sequence[int] = (2, 1),
        full_init: int = 32,
        full_ks: Sequence[int] = (13, 14, 15, 16, 17, 16, 14, 12, 11),
        full_layers: Sequence[int] = (4, 5, 6, 7, 8, 6, 5, 4, 4),
        full_blocks: int = 2,
        final_k: int = 12,
        final_layers: int = 3,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.channels_last = True  # eval-only layout of the activations (not a weight: no state dict entry)
        self.nb_bins, self.nb_channels, self.valid_bins = int(nb_bins), int(nb_channels), int(valid_bins)
        if not 1 <= self.valid_bins <= self.nb_bins:
            raise ValueError(f"valid_bins must be in 1..nb_bins ({nb_bins}); got {valid_bins}")
        self.edges = [0, *[int(s) for s in band_splits], self.valid_bins]
        n_bands = len(self.edges) - 1
        if any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError(f"band_splits must increase strictly inside (0, {valid_bins}); got {list(band_splits)}")
        if not (len(band_init) == len(band_ks) == len(band_layers) == len(band_blocks) == n_bands):
            raise ValueError(f"{n_bands} bands need {n_bands} entries in band_init, band_ks, band_layers, band_blocks")
        pad = (kernel_size - 1) // 2

        self.in_offset = nn.Parameter(torch.zeros(self.nb_bins))
        self.in_scale = nn.Parameter(torch.ones(self.nb_bins))
        self.decode_scale = nn.Parameter(torch.ones(self.valid_bins))
        self.decode_bias = nn.Parameter(torch.ones(self.valid_bins))

        # per band: init conv (no BN, no activation) → MD3 U-Net → (match: BN → conv1×1)
        self.band_init, self.band_nets, self.band_match = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for c0, ks, layers, blocks in zip(band_init, band_ks, band_layers, band_blocks):
            conv = nn.Conv2d(self.nb_channels, int(c0), kernel_size, padding=pad)
            glorot_normal_(conv)
            self.band_init.append(conv)
            self.band_nets.append(MD3UNet(int(c0), ks, layers, int(blocks), kernel_size))
        self.band_channels = max(net.out_channels for net in self.band_nets)  # k_max (16)
        for net in self.band_nets:
            if net.out_channels < self.band_channels:
                conv = nn.Conv2d(net.out_channels, self.band_channels, 1)
                glorot_normal_(conv)
                self.band_match.append(nn.Sequential(nn.BatchNorm2d(net.out_channels), conv))
            else:
                self.band_match.append(nn.Identity())
        self.full_init = nn.Conv2d(self.nb_channels, int(full_init), kernel_size, padding=pad)
        glorot_normal_(self.full_init)
        self.full_net = MD3UNet(int(full_init), full_ks, full_layers, int(full_blocks), kernel_size)

        self.final = MultidilatedD2Block(self.band_channels + self.full_net.out_channels, final_k, final_layers,
                                         kernel_size)
        self.gate_norm = nn.BatchNorm2d(int(final_k))
        self.gate_conv = nn.Conv2d(int(final_k), self.nb_channels, 1)
        self.filter_conv = nn.Conv2d(int(final_k), self.nb_channels, 1)
        glorot_normal_(self.gate_conv)
        glorot_normal_(self.filter_conv)

        # divisibility: every U-Net halves T and its band's F n_down times
        self.frame_multiple = 2 ** max(net.n_down for net in [*self.band_nets, self.full_net])
        for b, net in enumerate(self.band_nets):
            width, unit = self.edges[b + 1] - self.edges[b], 2**net.n_down
            if width % unit:
                raise ValueError(
                    f"band {b} spans bins {self.edges[b]}..{self.edges[b + 1]} ({width} bins), which is not a "
                    f"multiple of 2^{net.n_down} = {unit} (its U-Net down-samples {net.n_down} times); move band_splits"
                )
        if self.valid_bins % 2**self.full_net.n_down:
            raise ValueError(
                f"valid_bins = {self.valid_bins} is not a multiple of 2^{self.full_net.n_down} = "
                f"{2 ** self.full_net.n_down} (the full-band U-Net down-samples {self.full_net.n_down} times)"
            )

    def set_input_statistics(self, mean, std) -> None:
        """Store the mixture's per-bin mean and std as ``in_offset`` and ``in_scale``."""
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float64)[: self.nb_bins])
        std = torch.as_tensor(np.asarray(std, dtype=np.float64)[: self.nb_bins])
        if mean.shape != (self.nb_bins,) or std.shape != (self.nb_bins,):
            raise ValueError(f"need statistics for {self.nb_bins} bins; got {tuple(mean.shape)}")
        with torch.no_grad():
            self.in_offset.copy_(mean)
            self.in_scale.copy_(std)

    def forward(self, x: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """``x``: mixture magnitudes (B, C, nb_bins, T) → target magnitudes (B, C, nb_bins, T).

        T must be a multiple of :attr:`frame_multiple` (16 in the paper). Pass a dict as ``trace``
        to collect intermediate tensors (in the network's (B, channels, T, F) layout).
        """
        if x.ndim != 4 or x.shape[1] != self.nb_channels or x.shape[2] != self.nb_bins:
            raise ValueError(
                f"D3NetNetwork expects magnitudes (batch, {self.nb_channels} channels, {self.nb_bins} bins, "
                f"frames); got shape {tuple(x.shape)}"
            )
        if x.shape[-1] % self.frame_multiple:
            raise ValueError(
                f"D3Net needs a number of frames that is a multiple of {self.frame_multiple} (its U-Nets halve "
                f"the time axis {int(math.log2(self.frame_multiple))} times); got {x.shape[-1]} frames. "
                "Crop or pad the spectrogram (D3Net.separate does this in patches)."
            )
        x = x.transpose(-1, -2)  # (B, C, T, nb_bins): the 2-D convolutions act on (T, F)
        _record(trace, "input", x)
        scaled = (x[..., : self.valid_bins] - self.in_offset[: self.valid_bins]) / self.in_scale[: self.valid_bins]
        _record(trace, "normalized", scaled)  # (B, C, T, valid_bins)
        if self.channels_last and _fast_inference(self):  # the layout oneDNN's convolutions run fastest in
            scaled = scaled.contiguous(memory_format=torch.channels_last)

        bands = []
        for b, (init, net, match) in enumerate(zip(self.band_init, self.band_nets, self.band_match)):
            h = init(scaled[..., self.edges[b] : self.edges[b + 1]])  # (B, c0_b, T, width_b)
            h = net(h, trace, prefix=f"band{b}.")  # (B, k_b, T, width_b)
            h = match(h)  # (B, k_max, T, width_b)
            _record(trace, f"band{b}", h)
            bands.append(h)
        bands = torch.cat(bands, dim=-1)  # (B, k_max, T, valid_bins)
        _record(trace, "bands", bands)
        full = self.full_net(self.full_init(scaled), trace, prefix="full.")  # (B, k_full, T, valid_bins)
        _record(trace, "full", full)
        h = torch.cat([bands, full], dim=1)  # (B, k_max + k_full, T, valid_bins)
        _record(trace, "concat", h)
        h = self.final(h)  # (B, final_k, T, valid_bins)
        _record(trace, "final", h)
        h = self.gate_norm(h)
        h = torch.sigmoid(self.gate_conv(h)) * self.filter_conv(h)  # (B, C, T, valid_bins)
        _record(trace, "gate", h)
        h = F.relu(h * self.decode_scale + self.decode_bias)  # a non-negative magnitude
        _record(trace, "decoded", h)
        out = torch.cat([h, x[..., self.valid_bins :]], dim=-1)  # bins ≥ valid_bins: the raw mixture
        return out.transpose(-1, -2)  # (B, C, nb_bins, T)


# --- per-target configurations (spec §3.3, configs/*.yaml) -------------------------------------
_COMMON = dict(valid_bins=1600, band_init=[32, 8], band_blocks=[2, 1], full_init=32, full_blocks=2,
               final_k=12, final_layers=3, patch_length=256, patch_hop=128)
PAPER_NETWORKS: dict[str, dict] = {
    "vocals": dict(_COMMON, band_splits=[256],
                   band_ks=[[16, 18, 20, 22, 20, 18, 16], [2] * 5], band_layers=[[5, 5, 5, 5, 4, 4, 4], [1] * 5],
                   full_ks=[13, 14, 15, 16, 17, 16, 14, 12, 11], full_layers=[4, 5, 6, 7, 8, 6, 5, 4, 4]),
    "drums": dict(_COMMON, band_splits=[128],
                  band_ks=[[16, 18, 20, 22, 20, 18, 16], [2] * 5], band_layers=[[5, 5, 5, 4, 4, 4, 4], [1] * 5],
                  full_ks=[13, 14, 15, 16, 16, 16, 14, 12, 11], full_layers=[4, 5, 6, 7, 8, 6, 6, 4, 4]),
    "bass": dict(_COMMON, band_splits=[192], patch_length=384, patch_hop=192,  # test patches 384/192
                 band_ks=[[16, 18, 18, 20, 18, 16, 16], [2] * 7], band_layers=[[5, 5, 5, 5, 4, 4, 4], [1] * 7],
                 full_ks=[10, 10, 12, 14, 16, 14, 12, 8, 8], full_layers=[4, 5, 6, 7, 8, 6, 6, 4, 4]),
}
PAPER_NETWORKS["other"] = dict(PAPER_NETWORKS["vocals"])


def network_config(target: str, network: dict | None = None) -> dict:
    """A target's network settings: the paper's (vocals' for unknown names) updated with ``network``."""
    config = {k: (list(v) if isinstance(v, list) else v) for k, v in PAPER_NETWORKS.get(target, PAPER_NETWORKS["vocals"]).items()}
    config.update(network or {})
    return config


# --- the separation model ----------------------------------------------------------------------
class D3Net(SeparationModel):
    """D3Net: one :class:`D3NetNetwork` per target, trained independently, separated jointly.

    * :meth:`loss`: MSE between the estimated and reference magnitudes over all bins, on the first
      ``train_frames`` (256) frames of a centred STFT (a 6 s excerpt gives 259; spec §3.4), summed
      over targets. Shorter excerpts use their frames rounded down to a multiple of 16.
    * :meth:`separate`: centred STFT → each target's magnitude in patches of ``patch_length``
      frames with hop ``patch_hop`` (per target: 256/128, bass 384/192), overlap-added, averaged
      with the prediction for the channel-swapped input → one-shot multichannel Wiener filter
      (``niter=1`` over all frames at once, ``wiener_win_len=0``) → inverse STFT.
    * :meth:`initialize_from_data`: per-bin mean/std of the training mixtures' mono magnitude.

    Args:
        targets: source names, one network each; "vocals", "drums", "bass", "other" get the
            paper's configuration, other names vocals'.
        sample_rate, nb_channels, n_fft, n_hop: audio and STFT (Hann, centred).
        network: settings merged over every target's paper configuration (keys of
            :class:`D3NetNetwork` plus ``patch_length``, ``patch_hop``).
        train_frames: frames of each training excerpt the loss uses (256).
        niter, residual, wiener_win_len, channel_swap, patch_overlap: defaults of :meth:`separate`
            (``patch_overlap``: patches overlapping by ``patch_length − patch_hop`` frames, as the
            official inference; False: back to back).
        bandwidth: Hz the networks process (the seed's ``--bandwidth``); None keeps the
            configuration's ``valid_bins`` (1600 bins, about 17.2 kHz). Otherwise the processed
            bins are those below ``bandwidth``, rounded down to a multiple of 16 (the full band is
            halved four times, spec §3.3); the bins above are the mixture's.
        wiener_eps: the Wiener filter's regularisation (``eps`` of
            :func:`~mssbook.signal.wiener.wiener`, 1e-10). The official inference's ``apply_mwf``
            floors each power estimate at 1e-10 of its maximum instead; a much smaller eps makes
            the float32 2×2 solve fail on identical channels (a mono file as dual mono).
    """

    def __init__(
        self,
        targets: Iterable[str] = ("vocals", "drums", "bass", "other"),
        sample_rate: int = 44100,
        nb_channels: int = 2,
        n_fft: int = 4096,
        n_hop: int = 1024,
        network: dict | None = None,
        train_frames: int = 256,
        niter: int = 1,
        residual: bool = False,
        wiener_win_len: int | None = 0,
        channel_swap: bool = True,
        bandwidth: float | None = None,
        wiener_eps: float = 1e-10,
        patch_overlap: bool = True,
    ) -> None:
        super().__init__(targets, sample_rate=sample_rate, nb_channels=nb_channels)
        if bandwidth is not None:
            bins = bandwidth_to_max_bin(sample_rate, n_fft, bandwidth) // 16 * 16
            if bins < 16:
                raise ValueError(f"bandwidth {bandwidth} Hz leaves fewer than 16 bins; D3Net needs more")
            network = {**(network or {}), "valid_bins": bins}
        if RESIDUAL_NAME in self.targets:
            raise ValueError(f"{RESIDUAL_NAME!r} is reserved for the residual output; rename that target")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"duplicate target names in {self.targets}")
        self.n_fft, self.n_hop = int(n_fft), int(n_hop)
        self.nb_bins = self.n_fft // 2 + 1
        self.train_frames = int(train_frames)
        self.niter, self.residual = int(niter), bool(residual)
        self.wiener_win_len, self.channel_swap = int(wiener_win_len or 0), bool(channel_swap)
        self.wiener_eps = float(wiener_eps)
        self.patch_overlap = bool(patch_overlap)
        self.stft = STFT(n_fft, n_hop, center=True)
        self.istft = ISTFT(n_fft, n_hop, center=True)
        self.patches: dict[str, tuple[int, int]] = {}
        networks = {}
        for target in self.targets:
            config = network_config(target, network)
            length, hop = int(config.pop("patch_length")), int(config.pop("patch_hop"))
            networks[target] = D3NetNetwork(nb_bins=self.nb_bins, nb_channels=nb_channels, **config)
            unit = networks[target].frame_multiple
            if length % unit or length % hop:
                raise ValueError(f"{target}: patch_length {length} must be a multiple of {unit} and of patch_hop {hop}")
            self.patches[target] = (length, hop)
        self.target_models = nn.ModuleDict(networks)

    # -- shapes -------------------------------------------------------------------------------
    def magnitudes(self, audio: torch.Tensor) -> torch.Tensor:
        """``|STFT|`` (centred) of (..., C, L) → (..., C, F, T)."""
        return magnitude(self.stft(audio))

    def output_names(self, residual: bool | None = None) -> list[str]:
        """Names of the sources :meth:`separate` returns, in order."""
        residual = self.residual if residual is None else residual
        return list(self.targets) + ([RESIDUAL_NAME] if residual else [])

    @property
    def frame_multiple(self) -> int:
        return max(net.frame_multiple for net in self.target_models.values())

    # -- training ------------------------------------------------------------------------------
    def loss(self, mixture: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """MSE of the magnitudes (all bins) over the first ``train_frames`` frames (spec §3.4)."""
        self._check_references(mixture, references)
        mix_mag = self.magnitudes(mixture)  # (B, C, F, T), T = 259 for 6 s
        unit = self.frame_multiple
        frames = min(self.train_frames, mix_mag.shape[-1]) // unit * unit
        if frames == 0:
            raise ValueError(
                f"a training excerpt of {mixture.shape[-1]} samples gives {mix_mag.shape[-1]} frames, fewer than "
                f"the {unit} D3Net needs; use longer excerpts (the paper: 6 s, 256 frames)"
            )
        mix_mag = mix_mag[..., :frames]  # (B, C, F, 256): the first 256 frames, as train.py
        ref_mag = self.magnitudes(references)[..., :frames]  # (B, S, C, F, 256)
        total = mixture.new_zeros(())
        logs: dict[str, float] = {}
        for index, (target, network) in enumerate(self.target_models.items()):
            mse = F.mse_loss(network(mix_mag), ref_mag[:, index])
            total = total + mse
            logs[f"mse/{target}"] = float(mse.detach())
        return total, logs

    def validation_loss(self, mixture: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """Magnitude MSE of whole tracks, estimated in overlapping patches (no channel swap)."""
        self._check_references(mixture, references)
        mix_mag = self.magnitudes(mixture)
        ref_mag = self.magnitudes(references)
        total = mixture.new_zeros(())
        for index, target in enumerate(self.targets):
            total = total + F.mse_loss(self.estimate(mix_mag, target, channel_swap=False), ref_mag[:, index])
        return total

    def initialize_from_data(self, mixtures: Iterable[np.ndarray]) -> None:
        """Set every network's ``in_offset``/``in_scale`` to the mixtures' per-bin mean/std.

        The statistics of the mono (channel-averaged) magnitude over whole tracks, std floored at
        1e-4 × its maximum (spec §3.4), computed by :func:`mssbook.models.umx.input_statistics`.
        """
        mean, std = input_statistics(mixtures, self.n_fft, self.n_hop)
        for network in self.target_models.values():
            network.set_input_statistics(mean, std)

    # -- inference -----------------------------------------------------------------------------
    def estimate(self, mix_mag: torch.Tensor, target: str, channel_swap: bool | None = None,
                 runtime: str = "torch", patch_overlap: bool | None = None) -> torch.Tensor:
        """One target's magnitude (B, C, F, T) for mixture magnitudes (B, C, F, T) of any length.

        Patches of ``patch_length`` frames every ``patch_hop`` frames; the signal is zero-padded so
        that every frame lies in exactly ``patch_length / patch_hop`` patches, whose outputs are
        averaged (overlap-add, as the reference's ``calc_output_overlap_add``). With
        ``channel_swap`` each patch is also run with its channels swapped, and the two predictions
        (swapped back) are averaged. ``runtime="onnx"`` runs the network through onnxruntime
        (:mod:`mssbook.runtime`; one export per model, target and patch shape, then reused).
        ``patch_overlap=False`` places the patches back to back (hop = ``patch_length``): half the
        network calls of the official half-overlap, each frame estimated once.
        """
        channel_swap = self.channel_swap if channel_swap is None else bool(channel_swap)
        overlap = self.patch_overlap if patch_overlap is None else bool(patch_overlap)
        network = network_runner(self, target, runtime, self.target_models[target])
        length, hop = self.patches[target]
        hop = hop if overlap else length
        batch, frames = mix_mag.shape[0], mix_mag.shape[-1]
        front = length - hop  # so the first frame is covered by length / hop patches, like the others
        starts = list(range(0, front + frames, hop))
        back = starts[-1] + length - front - frames
        padded = F.pad(mix_mag, (front, back))  # (B, C, F, front + T + back)
        out = torch.zeros_like(padded)
        count = torch.zeros(padded.shape[-1], dtype=padded.dtype, device=padded.device)
        for start in starts:
            patch = padded[..., start : start + length]  # (B, C, F, length)
            if channel_swap:
                both = network(torch.cat([patch, patch.flip(1)], dim=0))  # (2B, C, F, length)
                pred = 0.5 * (both[:batch] + both[batch:].flip(1))
            else:
                pred = network(patch)
            out[..., start : start + length] += pred
            count[start : start + length] += 1
        return (out / count.clamp(min=1))[..., front : front + frames]  # (B, C, F, T)

    def separation_options(self) -> dict:
        return {
            "niter": self.niter,
            "residual": self.residual,
            "wiener_win_len": self.wiener_win_len,
            "channel_swap": self.channel_swap,
            "patch_overlap": self.patch_overlap,
            "runtime": "torch",
        }

    def separate(
        self,
        mixture: torch.Tensor,
        niter: int | None = None,
        residual: bool | None = None,
        wiener_win_len: int | None = None,
        channel_swap: bool | None = None,
        runtime: str | None = None,
        patch_overlap: bool | None = None,
    ) -> torch.Tensor:
        """Waveforms (B, S, C, L) for mixtures (B, C, L); S counts the residual when there is one.

        Options left at None take the model's defaults (:meth:`separation_options`). The Wiener
        filter is the reference's one-shot filter (``niter=1``, all frames at once); with a single
        source (one target, no residual) ``niter`` falls back to 0 (magnitude + mixture phase),
        since the filter needs two sources to share the mixture. Call ``model.eval()`` first.
        ``runtime="onnx"`` runs the networks through onnxruntime on the CPU (needs ``pip install
        onnxruntime onnx``); STFT, patches, channel swap and the Wiener filter stay in torch
        (:mod:`mssbook.runtime`). Measured for issue 16 on 2 cores (``benchmarks/bench_inference.py``),
        eager PyTorch is now the faster of the two for the paper network (onnx: 0.7×); onnx was
        2-3× faster before the fused eval path and the allocator setting (module docstring).

        The faster mode for laptops, :data:`LAPTOP_OPTIONS` (``channel_swap=False, patch_overlap=False``):
        a quarter of the network calls of the official inference, so up to 4× faster (3.1× for the
        chapter 4 tutorial model), for a small loss of SDR (0.07 dB on the vocals of the toy test
        songs; ``benchmarks/bench_d3net_laptop.py`` measures both, its docstring has the table)::

            stems = model.separate(mixture, **LAPTOP_OPTIONS)  # or mssbook.separate(..., **LAPTOP_OPTIONS)
        """
        self._check_mixture(mixture)
        runtime = check_runtime("torch" if runtime is None else runtime)
        residual = self.residual if residual is None else bool(residual)
        wiener_win_len = self.wiener_win_len if wiener_win_len is None else int(wiener_win_len)
        if niter is None:
            niter = self.niter if len(self.targets) + int(residual) >= 2 else 0
        mix_stft = self.stft(mixture)  # (B, C, F, T) complex, centred
        mix_mag = magnitude(mix_stft)
        estimates = torch.stack(
            [self.estimate(mix_mag, target, channel_swap, runtime, patch_overlap) for target in self.targets], dim=1
        )  # (B, S, C, F, T)
        sources = wiener(estimates, mix_stft, niter=niter, residual=residual,
                         wiener_win_len=wiener_win_len or None, eps=self.wiener_eps)  # (B, S[+1], C, F, T) complex
        return self.istft(sources, length=mixture.shape[-1])  # (B, S[+1], C, L)


# the paper's networks, per target (spec §3.5: 2,967,407 vocals/other, 2,873,284 drums, 2,419,822 bass)
PAPER = dict(sample_rate=44100, nb_channels=2, n_fft=4096, n_hop=1024, network=None, train_frames=256,
             niter=1, wiener_win_len=0, channel_swap=True, bandwidth=None, patch_overlap=True)
#: The faster inference mode for laptops, as :meth:`D3Net.separate` options: no channel-swap
#: average, patches back to back. A quarter of the official inference's network calls.
LAPTOP_OPTIONS = {"channel_swap": False, "patch_overlap": False}
# CPU-sized: the paper's front end (4096/1024 STFT, 1600 bins, per-target band splits and test
# patches) with thin, shallow U-Nets (one D2 block per D3 block, 1-2 down-samplings; 29,554
# parameters for vocals) trained on the first 64 frames (1.5 s) of each excerpt: about 1 s per step
# of 6 excerpts on 2 CPU cores, where 256 frames take 10-20 s.
TUTORIAL_NETWORK = dict(band_init=[8, 4], band_ks=[[8, 8, 8], [2, 2, 2]], band_layers=[[2, 2, 2], [1, 1, 1]],
                        band_blocks=[1, 1], full_init=8, full_ks=[8, 8, 8, 8, 8], full_layers=[2, 2, 2, 2, 2],
                        full_blocks=1, final_k=8, final_layers=2)
TUTORIAL = dict(PAPER, network=TUTORIAL_NETWORK, train_frames=64)


@register(
    "d3net",
    presets={"paper": PAPER, "tutorial": TUTORIAL},
    description="D3Net (Takahashi & Mitsufuji 2021): multidilated dense U-Nets per band, magnitude mapping "
                "+ multichannel Wiener filter",
    # spec §3.4: Adam 1e-3, weight decay 1e-4, 50 epochs with lr × 0.1 after epoch 40, batch 6,
    # 6 s excerpts (64 per track), gain U(0.75, 1.25), channel swap, all 100 training tracks
    training={"targets": ("vocals",), "epochs": 50, "batch_size": 6, "lr": 1e-3, "weight_decay": 1e-4,
              "lr_schedule": "multistep", "lr_milestones": (40,), "lr_decay_gamma": 0.1,
              "seq_dur": 6.0, "samples_per_track": 64, "gain_range": (0.75, 1.25),
              "source_augmentations": ("gain", "channelswap"), "random_track_mix": True, "validation": False},
)
def build_d3net(targets=("vocals", "drums", "bass", "other"), **config) -> D3Net:
    return D3Net(targets=targets, **config)


__all__ = ["LAPTOP_OPTIONS", "BNConv", "MultidilatedD2Block", "D3Block", "MD3UNet", "D3NetNetwork", "D3Net", "PAPER_NETWORKS",
           "network_config", "build_d3net", "glorot_normal_"]
