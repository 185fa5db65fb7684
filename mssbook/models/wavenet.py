"""The non-causal Wavenet for music source separation: mono 16 kHz waveform in, waveforms out.

Lluís, Pons & Serra, "End-to-end music source separation: is it possible in the waveform
domain?", Interspeech 2019 (arXiv 1810.12187); official Keras code francesclluis/
source-separation-wavenet, itself Rethage et al.'s speech-denoising Wavenet without conditioning.
Facts (layers, lengths, losses, parameter counts, training and inference recipe) come from
``shared/spec/architectures.md`` §6.

The picture (paper Fig. 1, the seed's ``models.py``), for the paper configuration::

    mixture waveform, mono 16 kHz                 (B, 1, 9785)     input = receptive field + target field − 1
      ├─ initial conv 1 → 64, k 3, 'same'         (B, 64, 9785)
      ├─ 4 stacks × 10 GatedResidualBlocks, dilations 1, 2, 4, …, 512:
      │     dilated conv 64 → 128 (k 3)  → tanh(first 64) · sigmoid(last 64)       (B, 64, 9785)
      │     1×1 conv 64 → 128 → residual (64, added to the block input)            (B, 64, 9785)
      │                      → skip (64), cropped to the padded target field       (B, 64, 1603)
      ├─ Σ of the 40 skips                        (B, 64, 1603)    1601 target samples + 1 each side
      ├─ ReLU → conv 64 → 2048, k 3 → ReLU → conv 2048 → 256, k 3 → conv 256 → n_out, k 1 (bias, linear)
      └─ heads                                    (B, n_out, 1603)

Two modes, the seed's ``--target`` (:data:`MODES`), chosen by the registry's ``target``:

* ``"multi-instrument"``: three heads (vocals, drums, bass); ``other`` = mixture − their sum.
  Loss: L1(v̂, v) + L1(d̂, d) + L1(b̂, b) on the padded target field.
* ``"singing-voice"``: one head (vocals); ``accompaniment`` = mixture − vocals. Loss:
  L1(v̂, v) − 0.05 · L1(v̂, accompaniment), a dissimilarity term that pushes the estimate away
  from the accompaniment.

Lengths are derived from the configuration, as the seed's ``util.compute_receptive_field_length``:
receptive field R = stacks · Σ_d d · (k − 1) + 1 = 8185 (the dilated stack's span; R is odd for odd
k), target field T = 1601, input N = R + T − 1 = 9785, output T + 2 · target_padding = 1603. The
target field starts at sample R // 2 = 4092 of the input (the seed's floor(N / 2) − T // 2 with
Python-2 division, spec §6.6). The network is fully convolutional: any input of N ≥ R samples
gives N − R + 1 target samples.

**Pitfall, measured** (tests/test_wavenet.py): R leaves out the initial k-3 conv and the two k-3
head convs, and the head zero-pads the skip sum at the edges of the padded field. An output
sample really depends on R + 6 = 8191 input samples (:attr:`NonCausalWavenet.exact_receptive_field`),
so in the seed's 9785-sample windows the first and last 3 target samples see zero padding where
the song goes on. Training keeps the seed's geometry (the weights learn what the seed's learned);
:meth:`Wavenet.separate` by default gives each window :attr:`~NonCausalWavenet.edge_context` = 3
more samples of context per side, so windowed, re-windowed and one-shot separation agree to float
precision; ``seed_windows=True`` uses the seed's windows exactly.

Training as the seed (``datasets.py``, ``sessions/*/config.json``; registry recipe below): Adam
1e-3, batch 10 fragments of N samples from a random track at a random offset, no augmentation,
2000 steps per epoch, at most 250 epochs, early stopping with patience 16. The singing-voice seed
draws half its fragments from vocal-active regions (``extract_voice_percentage`` 0.5): the data
settings ``fragments="auto"`` (source activity of the first target) and ``fragment_p=0.5``
(:data:`MODE_RECIPES`; the registry's ``training`` recipe is the multi-instrument one).
"""

from __future__ import annotations

import argparse
import math
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import parse_bool
from . import Option, register
from .base import SeparationModel

#: The seed's two ``--target`` modes and the sources each returns; the last one is the residual.
MODES: dict[str, tuple[str, ...]] = {
    "multi-instrument": ("vocals", "drums", "bass", "other"),
    "singing-voice": ("vocals", "accompaniment"),
}

#: The seed's per-mode data settings beyond the shared recipe (its ``extract_voice_percentage``),
#: as the sampler's ``fragments`` / ``fragment_p`` data settings.
MODE_RECIPES: dict[str, dict] = {
    "multi-instrument": {"targets": ("multi-instrument",)},
    "singing-voice": {"targets": ("singing-voice",), "fragments": "auto", "fragment_p": 0.5},
}

#: Windows per forward pass in :meth:`Wavenet.separate` for windows of the trained target field (the
#: seed's default: the training batch, 10). Longer windows (a larger ``target_field_length``) go
#: fewer at a time, so that a pass holds the same number of samples and memory does not grow with
#: the target field (issue 16: 10 windows of 10× the paper's field took 4-5.5 GB for 30 s; 2 of
#: them at a time ran faster, in 1.6 GB).
DEFAULT_WINDOW_BATCH = 10

#: Target samples per window in :meth:`Wavenet.validation_loss`: the seed README's faster inference
#: (``--target_field_length 16001 --batch_size 4``), about 3× faster than 1601 for the paper model.
VALIDATION_TARGET_FIELD = 16001


def resolve_mode(targets: str | Iterable[str]) -> str:
    """The mode for ``targets``: a mode name, or the tuple of sources a mode returns."""
    names = (targets,) if isinstance(targets, str) else tuple(targets)
    if len(names) == 1 and names[0] in MODES:
        return names[0]
    for mode, sources in MODES.items():
        if names == sources:
            return mode
    choices = "; ".join(f"{mode!r} (or {list(sources)})" for mode, sources in MODES.items())
    raise ValueError(
        f"the Wavenet separates in one of two modes, not targets {list(names)}: choose {choices}, "
        "e.g. models.create('wavenet', target='singing-voice')"
    )


def dilation_list(dilations: int | Sequence[int]) -> list[int]:
    """The seed's ``dilations``: an int n means 1, 2, 4, …, 2^n; a list is taken as it is."""
    if isinstance(dilations, int) and not isinstance(dilations, bool):
        if dilations < 0:
            raise ValueError(f"dilations = n gives 1, 2, …, 2^n and needs n >= 0; got {dilations}")
        return [2**i for i in range(dilations + 1)]
    values = [int(d) for d in dilations]
    if not values or any(d < 1 for d in values):
        raise ValueError(f"dilations must be an int n (1 … 2^n) or a list of positive ints; got {dilations!r}")
    return values


def keras_init_(conv: nn.Conv1d) -> None:
    """Keras' Conv1D defaults, which the seed trained with: Glorot-uniform kernel, zero bias."""
    nn.init.xavier_uniform_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _odd(name: str, k: int) -> int:
    if int(k) < 1 or int(k) % 2 == 0:
        raise ValueError(f"{name} must be odd ('same' padding centred on each sample); got {k}")
    return int(k)


# --- building blocks ---------------------------------------------------------------------------
class GatedResidualBlock(nn.Module):
    """Dilated conv → tanh · sigmoid gate → 1×1 conv split into a residual and a skip output.

    The dilated conv (no bias) gives 2 · residual channels: the first half goes through tanh, the
    second through sigmoid (the seed's slices). The 1×1 conv (no bias) gives residual + skip
    channels: the residual part is added to the block input, the skip part is cropped to
    ``crop`` (the padded target field) before it is summed by the network.
    """

    def __init__(self, residual_channels: int, skip_channels: int, dilation: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.residual_channels, self.skip_channels = int(residual_channels), int(skip_channels)
        self.dilation = int(dilation)
        self.dilated = nn.Conv1d(residual_channels, 2 * residual_channels, kernel_size, dilation=dilation,
                                 padding=dilation * (kernel_size - 1) // 2, bias=False)
        self.mix = nn.Conv1d(residual_channels, residual_channels + skip_channels, 1, bias=False)
        keras_init_(self.dilated)
        keras_init_(self.mix)

    def forward(self, x: torch.Tensor, crop: slice) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, res, N) → (B, res, N) and skip (B, skip, len(crop))
        filt, gate = self.dilated(x).chunk(2, dim=1)  # 2 × (B, res, N)
        z = torch.tanh(filt) * torch.sigmoid(gate)  # (B, res, N)
        residual, skip = self.mix(z).split([self.residual_channels, self.skip_channels], dim=1)
        return x + residual, skip[..., crop]


class NonCausalWavenet(nn.Module):
    """The network: waveform (B, 1, N) → ``n_out`` waveforms (B, n_out, N − R + 1 + 2 · padding).

    Args:
        n_out: output heads (3 multi-instrument, 1 singing voice).
        stacks: repetitions of the dilation pattern (4).
        dilations: int n for 1, 2, …, 2^n (9, up to 512), or a list.
        residual_channels, skip_channels: widths of the residual path and of the skips (64, 64).
        head_channels: widths of the head's convs (2048, 256); ``head_kernel_sizes`` their kernels (3, 3).
        kernel_size: the initial and the dilated convs' kernel (3, odd).
        target_padding: extra output samples on each side of the target field (1).
    """

    def __init__(
        self,
        n_out: int,
        stacks: int = 4,
        dilations: int | Sequence[int] = 9,
        residual_channels: int = 64,
        skip_channels: int = 64,
        head_channels: Sequence[int] = (2048, 256),
        head_kernel_sizes: Sequence[int] = (3, 3),
        kernel_size: int = 3,
        target_padding: int = 1,
    ) -> None:
        super().__init__()
        if int(n_out) < 1 or int(stacks) < 1 or int(residual_channels) < 1 or int(skip_channels) < 1:
            raise ValueError("n_out, stacks, residual_channels and skip_channels must be positive integers")
        if len(head_channels) != len(head_kernel_sizes):
            raise ValueError(f"head_channels {list(head_channels)} and head_kernel_sizes {list(head_kernel_sizes)} "
                             "need one entry per head conv each")
        self.kernel_size = _odd("kernel_size", kernel_size)
        self.head_kernel_sizes = [_odd("head_kernel_sizes", k) for k in head_kernel_sizes]
        self.stacks, self.dilations = int(stacks), dilation_list(dilations)
        self.target_padding = int(target_padding)
        if not 0 <= self.target_padding <= self.receptive_field // 2:
            raise ValueError(f"target_padding must be in 0..{self.receptive_field // 2} (half the receptive "
                             f"field); got {target_padding}")

        self.initial = nn.Conv1d(1, residual_channels, self.kernel_size, padding=self.kernel_size // 2, bias=False)
        self.blocks = nn.ModuleList(
            GatedResidualBlock(residual_channels, skip_channels, d, self.kernel_size)
            for _ in range(self.stacks) for d in self.dilations
        )
        head, channels = [], int(skip_channels)
        for width, k in zip(head_channels, self.head_kernel_sizes):
            head += [nn.ReLU(), nn.Conv1d(channels, int(width), k, padding=k // 2, bias=False)]
            channels = int(width)
        self.head = nn.Sequential(*head)
        self.output = nn.Conv1d(channels, int(n_out), 1)  # with bias, linear: unbounded waveforms
        for conv in [self.initial, self.output, *self.head]:
            if isinstance(conv, nn.Conv1d):
                keras_init_(conv)

    @property
    def receptive_field(self) -> int:
        """The seed's receptive field: stacks · Σ d · (k − 1) + 1 (8185), the dilated stack's span."""
        return self.stacks * sum(d * (self.kernel_size - 1) for d in self.dilations) + 1

    @property
    def edge_context(self) -> int:
        """Samples per side that the initial conv and the head read beyond the seed's field (1 + 1 + 1)."""
        return (self.kernel_size - 1) // 2 + sum((k - 1) // 2 for k in self.head_kernel_sizes)

    @property
    def exact_receptive_field(self) -> int:
        """Input samples one output sample depends on: the seed's field plus the edge context (8191)."""
        return self.receptive_field + 2 * self.edge_context

    def output_length(self, input_length: int) -> int:
        """Output samples for an input of ``input_length``: its target field plus the padding."""
        return int(input_length) - self.receptive_field + 1 + 2 * self.target_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"the Wavenet network expects mono waveforms (batch, 1, samples); got {tuple(x.shape)}")
        R, p = self.receptive_field, self.target_padding
        if x.shape[-1] < R:
            raise ValueError(f"the Wavenet needs inputs of at least its receptive field, {R} samples; "
                             f"got {x.shape[-1]}")
        target = x.shape[-1] - R + 1  # the target field (1601 for 9785 samples)
        crop = slice(R // 2 - p, R // 2 + target + p)  # the padded target field (4091 … 5693)
        x = self.initial(x)  # (B, res, N)
        skips = 0
        for block in self.blocks:
            x, skip = block(x, crop)  # (B, res, N), (B, skip, T + 2p)
            skips = skips + skip
        return self.output(self.head(skips))  # (B, skip, T + 2p) → (B, n_out, T + 2p)


# --- the separation model ------------------------------------------------------------------------
class Wavenet(SeparationModel):
    """The separation Wavenet: one :class:`NonCausalWavenet`, trained on fragments, separating in windows.

    * :meth:`loss`: mixtures and references are averaged to mono (as the seed averages stereo);
      a window of :attr:`input_length` samples is taken (random in training mode, central in eval
      mode) and the heads are compared with the references on the padded target field (spec §6.3).
    * :meth:`separate`: the mono mixture is zero-padded and cut into windows every target field,
      the windows are run ``batch_size`` at a time, and their target fields are joined; the last
      source is the residual (``other`` or ``accompaniment``). Several channels are separated one
      by one.
    * :meth:`validation_loss`: the training loss over whole tracks separated in windows.

    Args:
        targets: a mode of :data:`MODES` (``("multi-instrument",)``, ``("singing-voice",)``) or the
            sources it returns; the registry's ``target``.
        sample_rate: 16000 (the seed resamples everything to 16 kHz).
        stacks, dilations, residual_channels, skip_channels, head_channels, head_kernel_sizes,
            kernel_size, target_padding: the network (:class:`NonCausalWavenet`).
        target_field_length: target samples per training fragment (1601).
        dissimilarity_weight: weight of the singing-voice mode's −L1(v̂, accompaniment) term (0.05).
    """

    def __init__(
        self,
        targets: Iterable[str] | str = ("multi-instrument",),
        sample_rate: int = 16000,
        stacks: int = 4,
        dilations: int | Sequence[int] = 9,
        residual_channels: int = 64,
        skip_channels: int = 64,
        head_channels: Sequence[int] = (2048, 256),
        head_kernel_sizes: Sequence[int] = (3, 3),
        kernel_size: int = 3,
        target_field_length: int = 1601,
        target_padding: int = 1,
        dissimilarity_weight: float = 0.05,
    ) -> None:
        mode = resolve_mode(targets)
        super().__init__(MODES[mode], sample_rate=sample_rate, nb_channels=1)
        self.mode = mode
        self.heads = self.targets[:-1]  # what the network predicts; the last source is the residual
        if int(target_field_length) < 1:
            raise ValueError(f"target_field_length must be a positive number of samples; got {target_field_length}")
        self.target_field_length = int(target_field_length)
        self.dissimilarity_weight = float(dissimilarity_weight)
        self.network = NonCausalWavenet(len(self.heads), stacks, dilations, residual_channels, skip_channels,
                                        head_channels, head_kernel_sizes, kernel_size, target_padding)

    # -- lengths (derived, spec §6.1) ----------------------------------------------------------
    @property
    def receptive_field_length(self) -> int:
        return self.network.receptive_field

    @property
    def target_padding(self) -> int:
        return self.network.target_padding

    @property
    def input_length(self) -> int:
        """Samples per training fragment: receptive field + target field − 1 (9785)."""
        return self.receptive_field_length + self.target_field_length - 1

    @property
    def output_length(self) -> int:
        """Output samples per training fragment: the target field plus its padding (1603)."""
        return self.network.output_length(self.input_length)

    @property
    def output_start(self) -> int:
        """Index in a fragment of the first output sample: R // 2 − target_padding (4091)."""
        return self.receptive_field_length // 2 - self.target_padding

    def training_seq_dur(self) -> float:
        return self.input_length / self.sample_rate

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, targets={self.targets}, sample_rate={self.sample_rate}, "
                f"receptive_field={self.receptive_field_length}, target_field={self.target_field_length}, "
                f"input_length={self.input_length}")

    # -- training ------------------------------------------------------------------------------
    def _check_mixture(self, mixture: torch.Tensor) -> None:
        if mixture.ndim == 3 and mixture.shape[1] > 0:
            mixture = mixture[:, :1]  # every channel is separated as its own mono signal
        super()._check_mixture(mixture)

    def _fragment(self, mixture: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mono fragments of :attr:`input_length` samples: (B, N) and (B, S, N)."""
        mix, refs = mixture.mean(dim=1), references.mean(dim=2)  # (B, L), (B, S, L): stereo averaged
        N, L = self.input_length, mix.shape[-1]
        if L < N:
            raise ValueError(
                f"the Wavenet trains on fragments of {N} samples ({N / self.sample_rate:.4f} s at "
                f"{self.sample_rate} Hz: receptive field {self.receptive_field_length} + target field "
                f"{self.target_field_length} − 1); got {L}. Use seq_dur = model.training_seq_dur()."
            )
        if L == N:
            return mix, refs
        if self.training:  # a random window per item, as the seed's random offset
            offsets = torch.randint(0, L - N + 1, (mix.shape[0], 1), device=mix.device)
        else:
            offsets = torch.full((mix.shape[0], 1), (L - N) // 2, device=mix.device)
        index = offsets + torch.arange(N, device=mix.device)  # (B, N)
        return mix.gather(1, index), refs.gather(2, index[:, None].expand(-1, refs.shape[1], -1))

    def _objective(self, heads: torch.Tensor, refs: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The seed's losses for ``heads`` (B, H, L) against mono references (B, S, L), L1 = mean |·|."""
        if self.mode == "multi-instrument":  # L1 per head, weights 1
            l1s = {name: F.l1_loss(heads[:, i], refs[:, i]) for i, name in enumerate(self.heads)}
            return sum(l1s.values()), {f"l1/{name}": float(v.detach()) for name, v in l1s.items()}
        vocals = F.l1_loss(heads[:, 0], refs[:, 0])
        apart = F.l1_loss(heads[:, 0], refs[:, 1])  # dissimilarity from the accompaniment
        total = vocals - self.dissimilarity_weight * apart
        return total, {"l1/vocals": float(vocals.detach()), "l1/vocals_vs_accompaniment": float(apart.detach())}

    def loss(self, mixture: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The seed's loss on one fragment per item (spec §6.3); references (B, S, C, L), all targets."""
        self._check_references(mixture, references)
        mix, refs = self._fragment(mixture, references)  # (B, N), (B, S, N)
        heads = self.network(mix[:, None])  # (B, H, T + 2p)
        refs = refs[..., self.output_start : self.output_start + heads.shape[-1]]  # the padded target field
        return self._objective(heads, refs)

    def validation_loss(self, mixture: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """The training loss over whole (mono) tracks, separated in windows.

        The windows keep :data:`VALIDATION_TARGET_FIELD` samples (the seed README's fast setting,
        with its 4 windows per pass); with the default exact windows this changes only the speed.
        """
        self._check_references(mixture, references)
        mono = mixture.mean(dim=1)  # (B, L)
        field = min(max(VALIDATION_TARGET_FIELD, self.target_field_length), mono.shape[-1])
        heads = self.separate_heads(mono, target_field_length=field, batch_size=4)  # (B, H, L)
        return self._objective(heads, references.mean(dim=2))[0]

    # -- inference -----------------------------------------------------------------------------
    def separation_options(self) -> dict:
        return {"target_field_length": self.target_field_length, "batch_size": None,
                "one_shot": False, "seed_windows": False}

    def separate_heads(self, mono: torch.Tensor, target_field_length: int | None = None,
                       batch_size: int | None = None, one_shot: bool = False,
                       seed_windows: bool = False) -> torch.Tensor:
        """The heads (M, H, L) for mono signals (M, L), in windows every target field (spec §6.3).

        The signal gets R // 2 + m zeros in front (m = 0 with ``seed_windows``, else the edge
        context, 3) and enough behind for whole windows; windows of T + R − 1 + 2m samples start
        every T samples and each keeps its T central outputs. ``one_shot``: T = L, one window.
        """
        T = mono.shape[-1] if one_shot else int(target_field_length or self.target_field_length)
        margin = 0 if seed_windows else self.network.edge_context
        R, p, L = self.receptive_field_length, self.target_padding, mono.shape[-1]
        n = math.ceil(L / T)  # windows
        N = T + R - 1 + 2 * margin  # samples per window
        if batch_size is None:  # the samples of DEFAULT_WINDOW_BATCH trained windows per pass
            batch_size = max(1, DEFAULT_WINDOW_BATCH * (self.target_field_length + R - 1 + 2 * margin) // N)
        batch_size = int(batch_size)
        front = R // 2 + margin
        padded = F.pad(mono, (front, (n - 1) * T + N - L - front))  # (M, front + L + back)
        windows = padded.unfold(-1, N, T).reshape(-1, N)  # (M · n, N)
        keep = slice(margin + p, margin + p + T)  # the window's own target field
        outputs = [self.network(windows[i : i + batch_size, None])[..., keep]  # (≤ batch, H, T)
                   for i in range(0, windows.shape[0], batch_size)]
        heads = torch.cat(outputs).reshape(mono.shape[0], n, len(self.heads), T)  # (M, n, H, T)
        return heads.permute(0, 2, 1, 3).reshape(mono.shape[0], len(self.heads), n * T)[..., :L]  # (M, H, L)

    def separate(
        self,
        mixture: torch.Tensor,
        target_field_length: int | None = None,
        batch_size: int | None = None,
        one_shot: bool | None = None,
        seed_windows: bool | None = None,
    ) -> torch.Tensor:
        """Waveforms (B, S, C, L) for mixtures (B, C, L) at 16 kHz; each channel is separated alone.

        Options (None: :meth:`separation_options`): ``target_field_length`` samples kept per
        window (larger: fewer, longer windows, the seed's speed-up; the network is fully
        convolutional, so any value works), ``batch_size`` windows per forward pass (None: the
        samples of :data:`DEFAULT_WINDOW_BATCH` windows of the trained field, so fewer longer ones),
        ``one_shot`` the whole input in one pass (memory grows with the length), ``seed_windows``
        the seed's exact windows of R + T − 1 samples (see the module docstring). Call
        ``model.eval()`` first.
        """
        self._check_mixture(mixture)
        if target_field_length is not None and (isinstance(target_field_length, bool)
                                                or int(target_field_length) != target_field_length
                                                or target_field_length < 1):
            raise ValueError(f"target_field_length must be a positive whole number of samples; got "
                             f"{target_field_length!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) != batch_size
                                       or batch_size < 1):
            raise ValueError(f"batch_size (windows per pass) must be a positive whole number; got {batch_size!r}")
        flags = {}
        for name, value in (("one_shot", one_shot), ("seed_windows", seed_windows)):
            try:
                flags[name] = False if value is None else parse_bool(value)
            except argparse.ArgumentTypeError:
                raise ValueError(f"{name} must be True or False; got {value!r}") from None
        B, C, L = mixture.shape
        mono = mixture.reshape(B * C, L)  # every channel on its own
        heads = self.separate_heads(mono, target_field_length, batch_size, **flags)  # (B·C, H, L)
        rest = mono - heads.sum(dim=1)  # other = mixture − vocals − drums − bass; accompaniment = mixture − vocals
        sources = torch.cat([heads, rest[:, None]], dim=1)  # (B·C, S, L)
        return sources.reshape(B, C, len(self.targets), L).transpose(1, 2)  # (B, S, C, L)


# the seed's sessions/*/config.json: 3,277,763 parameters (multi-instrument), 3,277,249 (singing voice)
PAPER = dict(sample_rate=16000, stacks=4, dilations=9, residual_channels=64, skip_channels=64,
             head_channels=[2048, 256], head_kernel_sizes=[3, 3], kernel_size=3, target_field_length=1601,
             target_padding=1, dissimilarity_weight=0.05)
# CPU-sized: 2 stacks of dilations 1 … 64 (14 blocks), 24 channels, head 128/64: 98,571 parameters
# (multi-instrument; 98,441 singing voice), a receptive field of 509 samples (32 ms), fragments of
# 509 + 2001 − 1 = 2509 samples (0.16 s). About 0.25-0.4 s per training step of 10 fragments on one CPU
# thread; 4 minutes of training (≈ 500 steps) on the toy songs reach about +4.8 dB SDR for vocals,
# +4.9 drums, +2.1 bass, +0.9 other on the validation songs (the mixture scores −2.3, −4.2, −6.0, −8.2).
# Wider or deeper variants (32 channels, dilations to 128, head 256/128) learn no faster per minute.
TUTORIAL = dict(PAPER, stacks=2, dilations=6, residual_channels=24, skip_channels=24, head_channels=[128, 64],
                target_field_length=2001)


@register(
    "wavenet",
    presets={"paper": PAPER, "tutorial": TUTORIAL},
    description="Wavenet (Lluís, Pons & Serra 2019): non-causal gated dilated convolutions on the mono 16 kHz "
                "waveform; multi-instrument (vocals, drums, bass, other) or singing-voice mode",
    default_targets=("multi-instrument",),
    # spec §6.3: Adam 1e-3 (ε 1e-8, no decay), batch 10, 2000 steps per epoch (≈ 233 fragments per
    # track of the 86 training tracks), at most 250 epochs, patience 16, fragments of one track at
    # one random offset, no augmentation. Fragment length: model.training_seq_dur().
    # Early stopping watches the training loss (Keras monitor='loss'). Singing voice adds
    # MODE_RECIPES["singing-voice"] (fragments "auto", fragment_p 0.5) through target_training.
    training={"targets": ("multi-instrument",), "lr": 1e-3, "weight_decay": 0.0, "batch_size": 10,
              "lr_schedule": "none", "patience": 16, "epochs": 250, "samples_per_track": 233,
              "source_augmentations": (), "random_track_mix": False, "monitor": "train_loss"},
    target_training={mode: {k: v for k, v in recipe.items() if k != "targets"} for mode, recipe in MODE_RECIPES.items()},
    cli_options=(
        Option("--target-field-length", "target_field_length", int, where="separate",
               help="samples kept per window (default: the trained 1601); larger is faster, e.g. 16001"),
        Option("--window-batch", "batch_size", int, where="separate",
               help="inference windows per forward pass (U-Nets: 1 on the CPU, 4 on a GPU; Wavenet: 10 windows "
                    "of the trained target field, fewer of a longer one); lower it if memory runs out"),
        Option("--one-shot", "one_shot", parse_bool, where="separate",
               help="separate each segment in a single forward pass (true/false, default false)"),
    ),
)
def build_wavenet(targets=("multi-instrument",), **config) -> Wavenet:
    return Wavenet(targets=targets, **config)


__all__ = ["GatedResidualBlock", "NonCausalWavenet", "Wavenet", "MODES", "MODE_RECIPES", "resolve_mode",
           "dilation_list", "keras_init_", "build_wavenet", "DEFAULT_WINDOW_BATCH", "VALIDATION_TARGET_FIELD"]
