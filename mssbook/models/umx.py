"""Open-Unmix (UMX): one bidirectional-LSTM mask network per target, plus a Wiener filter.

Stöter, Uhlich, Liutkus & Mitsufuji, "Open-Unmix - A Reference Implementation for Music Source
Separation", Journal of Open Source Software 4(41), 1667, 2019. Facts (layers, shapes,
normalisation, STFT settings, parameter counts) come from ``shared/spec/architectures.md`` §1.

The picture of the paper, left to right, for one target::

    mixture magnitude |X|  (B, C, 2049, T)
      │ crop to the first max_bin bins (16 kHz → 1487), standardise: (x − mean) / std
      ├─ fc1 (no bias) → BatchNorm → tanh           (T, B, 512)   "encoder"
      │     ├─ 3-layer bidirectional LSTM          (T, B, 512)   context over time
      │     └─ skip: concat[encoder, LSTM]          (T, B, 1024)
      ├─ fc2 (no bias) → BatchNorm → ReLU           (T, B, 512)   "decoder"
      ├─ fc3 (no bias) → BatchNorm                  (T, B, C·2049) back to the full band
      ├─ · output_scale + output_mean → ReLU        a non-negative mask
      └─ mask × |X|                                  estimated target magnitude (B, C, 2049, T)

:class:`OpenUnmix` is that network (its parameter names are those of the ``openunmix`` package, so
its state dicts load unchanged). :class:`UMX` holds one per target, trains them with an MSE on
magnitudes (``center=False`` STFT, as the reference trains), and separates with a centred STFT, the
multichannel Wiener filter of :mod:`mssbook.signal.wiener` and an inverse STFT (as the reference's
``Separator``).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import check_runtime, network_runner
from ..signal.transforms import ISTFT, STFT, bandwidth_to_max_bin, magnitude
from ..signal.wiener import wiener
from . import register
from .base import SeparationModel

RESIDUAL_NAME = "residual"


def _record(trace: dict | None, name: str, value: torch.Tensor) -> None:
    if trace is not None:
        trace[name] = value


class OpenUnmix(nn.Module):
    """The Open-Unmix network for one target: mixture magnitude → target magnitude.

    Input and output: magnitude spectrograms ``(B, C, nb_bins, T)`` (the layout of the reference
    module). Only the first ``max_bin`` bins enter the network; the mask it predicts covers all
    ``nb_bins`` and multiplies the full-band input.

    Args:
        nb_bins: frequency bins of the input and output, ``n_fft // 2 + 1`` (2049 for 4096).
        nb_channels: 2 for stereo, 1 for a model fed the channel average of the magnitudes.
        hidden_size: width of fc1/fc2 and of the LSTM output (512 in the paper).
        nb_layers: stacked LSTM layers (3 in the paper).
        unidirectional: a causal LSTM of ``hidden_size`` units instead of two directions of
            ``hidden_size / 2`` (usable in real time, somewhat worse).
        max_bin: bins fed to the network (None: all); :func:`bandwidth_to_max_bin` computes it.
        dropout: between LSTM layers (0.4 as the reference; unused with one layer).

    ``input_mean`` / ``input_scale`` hold −mean and 1/std of the training mixtures (so the
    standardisation is an add then a multiply); ``output_scale`` / ``output_mean`` start at ones.
    All four are trainable parameters, as in the reference (spec §1.3).
    """

    def __init__(
        self,
        nb_bins: int = 2049,
        nb_channels: int = 2,
        hidden_size: int = 512,
        nb_layers: int = 3,
        unidirectional: bool = False,
        max_bin: int | None = None,
        dropout: float = 0.4,
    ) -> None:
        super().__init__()
        if nb_channels < 1 or hidden_size < 1 or nb_layers < 1:
            raise ValueError("nb_channels, hidden_size and nb_layers must be positive")
        if not unidirectional and hidden_size % 2:
            raise ValueError(f"a bidirectional LSTM splits hidden_size in two; use an even size, not {hidden_size}")
        self.nb_output_bins = int(nb_bins)
        self.max_bin = int(max_bin) if max_bin else self.nb_output_bins
        if not 1 <= self.max_bin <= self.nb_output_bins:
            raise ValueError(f"max_bin must be in 1..nb_bins ({nb_bins}); got {max_bin}")
        self.nb_channels = int(nb_channels)
        self.hidden_size = int(hidden_size)

        # encoder: all channels' cropped bins → hidden_size
        self.fc1 = nn.Linear(self.max_bin * nb_channels, hidden_size, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden_size)
        # the recurrent core: its output has hidden_size features in both variants
        self.lstm = nn.LSTM(
            input_size=hidden_size,
            hidden_size=hidden_size if unidirectional else hidden_size // 2,
            num_layers=nb_layers,
            bidirectional=not unidirectional,
            batch_first=False,
            dropout=dropout if nb_layers > 1 else 0.0,
        )
        # decoder: [encoder, LSTM] → hidden_size → all channels' full-band mask
        self.fc2 = nn.Linear(2 * hidden_size, hidden_size, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden_size)
        self.fc3 = nn.Linear(hidden_size, self.nb_output_bins * nb_channels, bias=False)
        self.bn3 = nn.BatchNorm1d(self.nb_output_bins * nb_channels)

        self.input_mean = nn.Parameter(torch.zeros(self.max_bin))  # −mean of the training mixtures
        self.input_scale = nn.Parameter(torch.ones(self.max_bin))  # 1 / std
        self.output_scale = nn.Parameter(torch.ones(self.nb_output_bins))
        self.output_mean = nn.Parameter(torch.ones(self.nb_output_bins))

    def set_input_statistics(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        """Store −mean and 1/std (their first ``max_bin`` bins) as the input normalisation."""
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float64)[: self.max_bin])
        std = torch.as_tensor(np.asarray(std, dtype=np.float64)[: self.max_bin])
        if mean.shape != (self.max_bin,) or std.shape != (self.max_bin,):
            raise ValueError(f"need statistics for at least {self.max_bin} bins; got {tuple(mean.shape)}")
        with torch.no_grad():
            self.input_mean.copy_(-mean)
            self.input_scale.copy_(1.0 / std)

    def forward(self, x: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """``x``: mixture magnitudes (B, C, nb_bins, T) → target magnitudes (B, C, nb_bins, T).

        Pass a dict as ``trace`` to collect the intermediate tensors (for notebooks).
        """
        if x.ndim != 4 or x.shape[1] != self.nb_channels or x.shape[2] != self.nb_output_bins:
            raise ValueError(
                f"OpenUnmix expects magnitudes (batch, {self.nb_channels} channels, {self.nb_output_bins} bins, "
                f"frames); got shape {tuple(x.shape)}"
            )
        x = x.permute(3, 0, 1, 2)  # (T, B, C, F): time first, for the LSTM
        nb_frames, nb_samples, nb_channels, _ = x.shape
        mix = x.detach()  # the full-band mixture the mask will multiply (no gradient into the input)

        x = x[..., : self.max_bin]  # (T, B, C, max_bin)
        x = (x + self.input_mean) * self.input_scale  # standardise with the training statistics
        _record(trace, "normalized", x)

        # channel-major flattening: feature index c·max_bin + f
        x = self.fc1(x.reshape(-1, nb_channels * self.max_bin))  # (T·B, H)
        x = self.bn1(x)
        x = torch.tanh(x.reshape(nb_frames, nb_samples, self.hidden_size))  # (T, B, H), in [-1, 1]
        _record(trace, "encoder", x)

        lstm_out, _ = self.lstm(x)  # (T, B, H): both directions concatenated
        _record(trace, "lstm", lstm_out)
        x = torch.cat([x, lstm_out], dim=-1)  # skip connection: (T, B, 2H)
        _record(trace, "skip", x)

        x = self.fc2(x.reshape(-1, x.shape[-1]))  # (T·B, H)
        x = F.relu(self.bn2(x))
        _record(trace, "decoder", x)
        x = self.bn3(self.fc3(x))  # (T·B, C·nb_bins)
        x = x.reshape(nb_frames, nb_samples, nb_channels, self.nb_output_bins)  # (T, B, C, nb_bins)

        x = x * self.output_scale + self.output_mean
        mask = F.relu(x)  # non-negative, unbounded above
        _record(trace, "mask", mask)
        x = mask * mix  # (T, B, C, nb_bins)
        return x.permute(1, 2, 3, 0)  # (B, C, nb_bins, T)


# --- input statistics ----------------------------------------------------------------------
def _frame_blocks(audio: torch.Tensor, n_fft: int, hop: int, frames_per_block: int):
    """Slices of ``audio`` (..., L) whose ``center=False`` STFTs are consecutive runs of its frames."""
    total = 1 + (audio.shape[-1] - n_fft) // hop if audio.shape[-1] >= n_fft else 0
    for first in range(0, total, frames_per_block):
        last = min(total, first + frames_per_block) - 1
        yield audio[..., first * hop : last * hop + n_fft]


def input_statistics(
    mixtures: Iterable[np.ndarray | torch.Tensor],
    n_fft: int = 4096,
    n_hop: int = 1024,
    frames_per_block: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and std of the mono magnitude spectrogram over all frames of all mixtures.

    As the reference's ``get_statistics`` (spec §1.3): the ``center=False`` magnitude of each whole
    ``(C, L)`` mixture is averaged over its channels, every frame counts once, the mean and the
    population std are accumulated track by track (a running merge, like scikit-learn's
    ``StandardScaler.partial_fit``, in float64). Like scikit-learn, a bin with (numerically) zero
    variance gets std 1; then every std is floored at 1e-4 × the largest one.

    Returns ``(mean, std)``, float64 arrays of ``n_fft // 2 + 1`` bins.
    """
    stft = STFT(n_fft, n_hop, center=False)
    n_bins = n_fft // 2 + 1
    count, mean, m2 = 0, np.zeros(n_bins), np.zeros(n_bins)
    for index, mixture in enumerate(mixtures):
        if isinstance(mixture, torch.Tensor):
            audio = mixture.detach().to("cpu", torch.float32)
        else:
            audio = torch.as_tensor(np.asarray(mixture, dtype=np.float32))
        if audio.ndim != 2:
            raise ValueError(f"mixture {index}: expected an array (channels, samples); got shape {tuple(audio.shape)}")
        for piece in _frame_blocks(audio, n_fft, n_hop, frames_per_block):
            mono = magnitude(stft(piece)).mean(dim=0)  # (F, t): channel average of the magnitudes
            frames = mono.T.double().numpy()  # (t, F)
            n = frames.shape[0]
            block_mean = frames.mean(axis=0)
            block_m2 = ((frames - block_mean) ** 2).sum(axis=0)
            # merge two (count, mean, sum of squared deviations) summaries (Chan et al.)
            delta = block_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + block_m2 + delta**2 * (count * n / total)
            count = total
    if count == 0:
        raise ValueError(f"no STFT frames: every mixture is shorter than n_fft = {n_fft} samples (or none given)")
    var = m2 / count
    eps = np.finfo(np.float64).eps
    constant = var <= count * eps * var + (count * mean * eps) ** 2  # scikit-learn's zero-variance test
    std = np.where(constant, 1.0, np.sqrt(var))
    std = np.maximum(std, 1e-4 * std.max())
    return mean, std


# --- the separation model ------------------------------------------------------------------
_OPENUNMIX_KEYS = ("fc1.weight", "fc2.weight", "fc3.weight", "input_mean", "input_scale", "output_scale", "output_mean")


def openunmix_config_from_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Network sizes of an ``openunmix``-format state dict (one target).

    Returns ``hidden_size``, ``nb_layers``, ``unidirectional``, ``nb_channels``, ``nb_bins`` and
    ``max_bin``, read from the weight shapes.
    """
    missing = [k for k in _OPENUNMIX_KEYS if k not in state_dict]
    if missing:
        raise ValueError(f"not an Open-Unmix state dict: missing {', '.join(missing)}")
    hidden_size, fc1_in = state_dict["fc1.weight"].shape
    max_bin = state_dict["input_mean"].shape[0]
    nb_bins = state_dict["output_mean"].shape[0]
    layers = {int(k.split("_l")[1].split("_")[0]) for k in state_dict if k.startswith("lstm.weight_ih_l")}
    return {
        "hidden_size": int(hidden_size),
        "nb_layers": len(layers),
        "unidirectional": not any(k.endswith("_reverse") for k in state_dict if k.startswith("lstm.")),
        "nb_channels": int(fc1_in // max_bin),
        "nb_bins": int(nb_bins),
        "max_bin": int(max_bin),
    }


class UMX(SeparationModel):
    """Open-Unmix: one :class:`OpenUnmix` per target, trained independently, separated jointly.

    * :meth:`loss`: MSE between estimated and reference magnitudes (all bins, all channels), summed
      over the targets (each network gets exactly the gradient of its own single-target training).
      The STFT is **not** centred (255 frames per 6 s), as the reference trains.
    * :meth:`separate`: centred STFT (259 frames per 6 s) → every target's magnitude → multichannel
      Wiener filter (``niter`` EM iterations over blocks of ``wiener_win_len`` frames; optional
      ``residual`` source) → inverse STFT trimmed to the input length.
    * :meth:`initialize_from_data`: the dataset mean/std of the input (spec §1.3).

    Args:
        targets: source names, one network each.
        sample_rate, nb_channels: of the audio (nb_channels 1: the networks see the channel
            average of the magnitudes and their estimate is shared by all channels).
        n_fft, n_hop: STFT size and hop (Hann window).
        hidden_size, nb_layers, unidirectional, dropout: of each :class:`OpenUnmix`.
        bandwidth: Hz of input kept (→ ``max_bin``); None: all bins.
        niter, softmask, residual, wiener_win_len: defaults of :meth:`separate`
            (``wiener_win_len`` None or 0: filter all frames at once).
        wiener_eps: the Wiener filter's regularisation (``eps`` of
            :func:`~mssbook.signal.wiener.wiener`): Open-Unmix's 1e-10; Sony's and asteroid's
            inference use norbert's default, float64's machine epsilon, which the converters of
            their weights set.
    """

    def __init__(
        self,
        targets: Iterable[str] = ("vocals", "drums", "bass", "other"),
        sample_rate: int = 44100,
        nb_channels: int = 2,
        n_fft: int = 4096,
        n_hop: int = 1024,
        hidden_size: int = 512,
        nb_layers: int = 3,
        unidirectional: bool = False,
        dropout: float = 0.4,
        bandwidth: float | None = 16000,
        niter: int = 1,
        softmask: bool = False,
        residual: bool = False,
        wiener_win_len: int | None = 300,
        wiener_eps: float = 1e-10,
    ) -> None:
        super().__init__(targets, sample_rate=sample_rate, nb_channels=nb_channels)
        if RESIDUAL_NAME in self.targets:
            raise ValueError(f"{RESIDUAL_NAME!r} is reserved for the residual output; rename that target")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"duplicate target names in {self.targets}")
        self.n_fft, self.n_hop = int(n_fft), int(n_hop)
        self.nb_bins = self.n_fft // 2 + 1
        self.bandwidth = bandwidth
        self.max_bin = bandwidth_to_max_bin(sample_rate, n_fft, bandwidth) if bandwidth else self.nb_bins
        self.niter, self.softmask, self.residual = int(niter), bool(softmask), bool(residual)
        self.wiener_win_len = int(wiener_win_len or 0)  # 0: all frames in one block
        self.wiener_eps = float(wiener_eps)

        self.train_stft = STFT(n_fft, n_hop, center=False)  # the loss, as the reference trains
        self.stft = STFT(n_fft, n_hop, center=True)  # separation, as the reference's Separator
        self.istft = ISTFT(n_fft, n_hop, center=True)
        self.target_models = nn.ModuleDict(
            {
                target: OpenUnmix(
                    nb_bins=self.nb_bins,
                    nb_channels=nb_channels,
                    hidden_size=hidden_size,
                    nb_layers=nb_layers,
                    unidirectional=unidirectional,
                    max_bin=self.max_bin,
                    dropout=dropout,
                )
                for target in self.targets
            }
        )

    # -- shapes -------------------------------------------------------------------------------
    def _check_mixture(self, mixture: torch.Tensor) -> None:
        if self.nb_channels == 1 and mixture.ndim == 3 and mixture.shape[1] > 0:
            mixture = mixture[:, :1]  # a mono UMX reads the mean of any number of channels
        super()._check_mixture(mixture)

    def magnitudes(self, audio: torch.Tensor, center: bool = False) -> torch.Tensor:
        """Network input/target: ``|STFT|`` of (..., C, L) → (..., C', F, T), C' = 1 for a mono model."""
        mag = magnitude((self.stft if center else self.train_stft)(audio))
        return mag.mean(dim=-3, keepdim=True) if self.nb_channels == 1 else mag

    def output_names(self, residual: bool | None = None) -> list[str]:
        """Names of the sources :meth:`separate` returns, in order (None: the model's default)."""
        residual = self.residual if residual is None else residual
        return list(self.targets) + ([RESIDUAL_NAME] if residual else [])

    # -- training ------------------------------------------------------------------------------
    def loss(self, mixture: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        self._check_references(mixture, references)
        mix_mag = self.magnitudes(mixture)  # (B, C, F, T), center=False
        ref_mag = self.magnitudes(references)  # (B, S, C, F, T)
        total = mixture.new_zeros(())
        logs: dict[str, float] = {}
        for index, (target, network) in enumerate(self.target_models.items()):
            mse = F.mse_loss(network(mix_mag), ref_mag[:, index])
            total = total + mse
            logs[f"mse/{target}"] = float(mse.detach())
        return total, logs

    def initialize_from_data(self, mixtures: Iterable[np.ndarray]) -> None:
        """Set every target network's input normalisation from the training mixtures (spec §1.3)."""
        mean, std = input_statistics(mixtures, self.n_fft, self.n_hop)
        for network in self.target_models.values():
            network.set_input_statistics(mean, std)

    # -- inference -----------------------------------------------------------------------------
    def separation_options(self) -> dict:
        return {
            "niter": self.niter,
            "softmask": self.softmask,
            "residual": self.residual,
            "wiener_win_len": self.wiener_win_len,
            "runtime": "torch",
        }

    def separate(
        self,
        mixture: torch.Tensor,
        niter: int | None = None,
        softmask: bool | None = None,
        residual: bool | None = None,
        wiener_win_len: int | None = None,
        runtime: str | None = None,
    ) -> torch.Tensor:
        """Waveforms (B, S, C, L) for mixtures (B, C, L); S counts the residual when there is one.

        Options left at None take the model's defaults (:meth:`separation_options`);
        ``wiener_win_len=0`` filters all frames at once. With a single source (one target, no
        residual) the default ``niter`` falls back to 0, since EM needs two sources to share the
        mixture; asking for ``niter >= 1`` explicitly then raises. Runs the networks in whatever
        mode the model is in: call ``model.eval()`` first (BatchNorm and dropout). ``runtime="onnx"``
        runs the networks through onnxruntime on the CPU (:mod:`mssbook.runtime`; needs
        ``pip install onnxruntime onnx``); STFT and Wiener filter stay in torch.
        """
        self._check_mixture(mixture)
        runtime = check_runtime("torch" if runtime is None else runtime)
        softmask = self.softmask if softmask is None else bool(softmask)
        residual = self.residual if residual is None else bool(residual)
        wiener_win_len = self.wiener_win_len if wiener_win_len is None else int(wiener_win_len)
        if niter is None:
            niter = self.niter if len(self.targets) + int(residual) >= 2 else 0

        mix_stft = self.stft(mixture)  # (B, C, F, T) complex, centred
        mix_mag = magnitude(mix_stft)
        if self.nb_channels == 1:
            mix_mag = mix_mag.mean(dim=1, keepdim=True)  # (B, 1, F, T)
        estimates = self._network_magnitudes(mix_mag, runtime)  # (B, S, C', F, T)
        sources = wiener(
            estimates,
            mix_stft,
            niter=niter,
            softmask=softmask,
            residual=residual,
            wiener_win_len=wiener_win_len or None,
            eps=self.wiener_eps,
        )  # (B, S[+1], C, F, T) complex
        return self.istft(sources, length=mixture.shape[-1])  # (B, S[+1], C, L)

    def _network_magnitudes(self, mix_mag: torch.Tensor, runtime: str) -> torch.Tensor:
        """The targets' magnitude estimates (B, S, C', F, T) from |X| (B, C', F, T): one
        network per target (X-UMX overrides this with its jointly bridged branches)."""
        return torch.stack([network_runner(self, target, runtime, net, dynamic_axes=(0, 3))(mix_mag)
                            for target, net in self.target_models.items()], dim=1)

    # -- weights -------------------------------------------------------------------------------
    def load_target_state_dict(self, target: str, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
        """Load one target's weights from an ``openunmix``-format state dict (``OpenUnmix.state_dict()``).

        Keys that are not network weights (e.g. the STFT window or ``sample_rate`` stored in some
        released files) are ignored and returned; missing weights or mismatching shapes raise an
        error naming them.
        """
        if target not in self.target_models:
            raise KeyError(f"no target {target!r} in this model; targets: {list(self.targets)}")
        network = self.target_models[target]
        own = network.state_dict()
        missing = [k for k in own if k not in state_dict]
        if missing:
            raise ValueError(f"state dict for {target!r} lacks {len(missing)} weights: {', '.join(missing[:8])}")
        wrong = [
            f"{k}: expected {tuple(own[k].shape)}, got {tuple(state_dict[k].shape)}"
            for k in own
            if tuple(own[k].shape) != tuple(state_dict[k].shape)
        ]
        if wrong:
            raise ValueError(
                f"state dict for {target!r} has other sizes than this model (hidden_size={network.hidden_size}, "
                f"max_bin={network.max_bin}, nb_channels={network.nb_channels}): " + "; ".join(wrong[:4])
            )
        network.load_state_dict({k: state_dict[k] for k in own}, strict=True)
        return [k for k in state_dict if k not in own]


# umxhq as published: 8,893,348 trainable parameters per target (spec §1.6)
PAPER = dict(sample_rate=44100, nb_channels=2, n_fft=4096, n_hop=1024, hidden_size=512, nb_layers=3,
             unidirectional=False, bandwidth=16000, niter=1, wiener_win_len=300)
# CPU-sized: a quarter of the width and two LSTM layers (1,152,420 parameters per target, an eighth):
# about 0.1 s per training step of 4 × 6 s on 2 CPU cores, and a vocals model goes from -4 dB (the
# mixture) to about +4 dB SDR on unseen toy songs within 600 steps. Two layers cost no more time than
# one here and keep the stacked, dropout-separated LSTM of the paper. The STFT stays the paper's: the
# front end, the 1487-bin crop and the input statistics are the ones the lessons show, and a smaller
# n_fft would not be cheaper (more frames of fewer bins).
TUTORIAL = dict(PAPER, hidden_size=128, nb_layers=2)


@register(
    "umx",
    presets={"paper": PAPER, "tutorial": TUTORIAL},
    description="Open-Unmix (Stöter et al. 2019): per-target BiLSTM magnitude masks + multichannel Wiener filter",
    # scripts/train.py trains one target at a time, vocals by default; the trainer's and the
    # sampler's defaults are already Open-Unmix's recipe (spec §1.5)
    training={"targets": ("vocals",)},
)
def build_umx(targets=("vocals", "drums", "bass", "other"), **config) -> UMX:
    return UMX(targets=targets, **config)


__all__ = ["OpenUnmix", "UMX", "build_umx", "input_statistics", "openunmix_config_from_state_dict", "RESIDUAL_NAME"]
