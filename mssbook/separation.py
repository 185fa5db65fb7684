"""Separate your own songs with any mssbook model: one function, any audio, bounded memory.

    >>> from mssbook.separation import separate, separate_file
    >>> stems = separate(audio, sr, model="runs/umx-vocals/best.pt")   # {"vocals": (C, L) array}
    >>> separate_file("song.mp3", "separated", model="umxhq")           # separated/song/<target>.wav

``mssbook.separate`` is the same function as :func:`separate`.

What :func:`separate` does around ``model.separate`` (the :class:`~mssbook.models.SeparationModel`
contract: mixtures ``(B, C, L)`` at ``model.sample_rate`` in, ``(B, S, C, L)`` out):

* **Any sample rate**: the input is resampled to the model's rate (band-limited,
  :func:`mssbook.signal.resample.resample`) and every estimate back to the input's rate, then cut
  to the input's exact length.
* **Any channel count the model can serve**: a stereo model separates a mono input as dual mono
  and the estimates are averaged back to mono; a mono model separates each channel of a stereo (or
  N-channel) input on its own (channels are batched), so the stereo image is kept. A stereo model
  refuses 3 or more channels (which two channels, mixed how? convert the file first).
* **Long inputs in segments** of ``segment`` seconds overlapping by ``overlap`` (a fraction, 0.1
  by default), joined by overlap-add with linear cross-fades. The weights are divided by their sum
  at every sample, so they sum to one exactly, whatever the segment, overlap and length: a model
  that returns the mixture gets the mixture back. Only one segment is in the model at a time, so
  the model's memory does not grow with the song (issue-corpus pain point 10: open-unmix#7, #113;
  demucs#9, ...). The overlap is computed twice, so it costs ``1 / (1 - overlap)`` of one pass
  (1.11x at 0.1, 1.33x at 0.25). Measured on a 150 s song with the paper UMX
  (``benchmarks/bench_separate.py``), segments of 5 to 60 s cost 0.75x to 1.12x of one pass per
  second of audio: short segments are, if anything, cheaper (smaller tensors stay in cache).
  ``segment=None`` separates inputs up to :data:`ONE_PASS_UP_TO` seconds (30 s) in one pass and
  longer ones in :data:`DEFAULT_SEGMENT` = 10 s segments (measured: cheaper per second than one
  pass, and about 1.1 GB peak for the paper UMX with 4 targets, whatever the song's length).
  Models with state across time (UMX's BiLSTM, the Wiener filter's EM statistics) then see 10 s
  of context instead of the whole song: UMX itself trains on 6 s excerpts and runs its EM in
  blocks of ``wiener_win_len`` = 300 frames (7 s), so this changes little. Pass a ``segment`` longer than the song to force one pass. A model may declare a
  ``max_segment`` attribute (seconds; e.g. a transformer trained on fixed spans): the default
  segment then never exceeds it, and a longer explicit ``segment`` is refused.
* **Model options** (``niter=...`` for UMX) pass through to ``model.separate``; names the model
  does not list in ``separation_options()`` raise an error that lists the ones it has.
* ``targets`` keeps a subset of the model's targets (the model still computes all of them).
* ``residual=True`` adds a ``"residual"`` output: what the returned targets leave of the mixture,
  so the outputs always add up to the input (``targets="vocals", residual=True`` gives vocals and
  accompaniment, as open-unmix's ``--targets vocals --residual`` and demucs' ``--two-stems``). A
  model that builds a residual itself (``residual`` in ``separation_options()``; UMX adds it as an
  extra source of the Wiener filter, like open-unmix) is asked to, and with all targets returned its
  residual is the output; otherwise the residual is ``mixture - sum(returned targets)``, computed
  here at the input's rate.

:func:`separate` holds its input and outputs in memory (it takes and returns arrays).
:func:`separate_file` **streams**: it reads any file :func:`~mssbook.data.audio.load_audio` reads
(WAV, FLAC, MP3, MP4, ...) block by block (:func:`~mssbook.data.audio.read_blocks`), resamples
block by block (:class:`_BlockResampler`, equal to resampling the whole signal), separates segment
by segment and appends every output to ``<output_dir>/<input name>/<target>.wav`` as it goes, so
its memory is the model's work on one segment plus a few seconds of audio, for any length of song;
its outputs equal those of :func:`separate` on the loaded file (the same segments, the same
cross-fades, the same numbers). The default output is **32-bit
float WAV** (what open-unmix writes): bit-exact estimates, and values beyond ±1 (estimates of a
loud mixture can exceed it) are kept, so nothing clips. With ``subtype="PCM_16"`` or ``"PCM_24"``
(CLI ``--int16``/``--int24``; FLAC is always integer, 24-bit by default) ``clip_mode="rescale"``
scales all stems of a song by one common factor when any would clip (their balance and their sum
are kept; the stems are then streamed to float files first, since the peak is known only at the
end), ``"clamp"`` clips. Outputs are written to temporary files next to their destinations and
renamed into place when all are complete. Existing outputs are never replaced unless
``overwrite=True`` (CLI ``--force``), and this is checked **before** any separation work.

``mssbook separate`` (see :func:`configure_parser`) is the command-line face of the same code.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import sys
import tempfile
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import torch

from . import checks
from .allocator import reuse_freed_memory
from .errors import AudioFileError, MSSBookError, OutputExistsError
from .models.base import SeparationModel

#: With ``segment=None``, inputs up to this many seconds are separated in one pass ...
ONE_PASS_UP_TO = 30.0

#: ... and longer ones in segments of this many seconds. Measured with the paper UMX (4 targets,
#: ``benchmarks/bench_separate.py``): 10 s segments cost 0.9x one pass per second of audio and
#: peak at about 1.1 GB whatever the song's length (30 s segments: 1.1x and 1.7 GB).
DEFAULT_SEGMENT = 10.0

#: Default overlap between segments, as a fraction of the segment: 0.1 (1 s cross-fades between
#: 10 s segments, 0.5 s between 5 s ones) keeps the overlap's extra work within 1.11x of one pass.
DEFAULT_OVERLAP = 0.1

#: Frames per block :func:`separate_file` decodes at a time (about 1.5 s at 44.1 kHz).
READ_BLOCK = 1 << 16

#: Name of the extra output ``residual=True`` adds.
RESIDUAL = "residual"

#: Pretrained names listed when ``mssbook.pretrained`` cannot tell (it is optional).

#: Output extensions :func:`separate_file` writes, with their default soundfile subtype.
OUTPUT_FORMATS = {".wav": "FLOAT", ".flac": "PCM_24"}

#: Checkpoint-like suffixes: a name ending so that does not exist is a missing file, not a name.
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".th", ".ckpt", ".bin")

__all__ = [
    "DEFAULT_SEGMENT",
    "ONE_PASS_UP_TO",
    "DEFAULT_OVERLAP",
    "RESIDUAL",
    "resolve_device",
    "resolve_model",
    "pretrained_names",
    "output_names",
    "check_options",
    "plan_segments",
    "separate",
    "output_paths",
    "separate_file",
    "configure_parser",
    "run_cli",
]


# --------------------------------------------------------------------------------------------
# Device and model
# --------------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"``: CUDA when torch sees a GPU, else the CPU; otherwise ``device``, checked."""
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise MSSBookError(
            f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:1' (a GPU index) or 'auto'."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MSSBookError(
            f"device {device!r} was requested but this torch sees no CUDA GPU "
            "(torch.cuda.is_available() is False); use --device cpu, or install a CUDA build of "
            "torch (`mssbook doctor` shows what is installed)."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise MSSBookError(
            f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
            f"numbered from 0; pick one of cuda:0 ... cuda:{torch.cuda.device_count() - 1}."
        )
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise MSSBookError(f"device {device!r} was requested but MPS is not available; use --device cpu.")
    return dev


def pretrained_names() -> list[str]:
    """Names :func:`resolve_model` loads as pretrained weights (:mod:`mssbook.hub`)."""
    from .hub import names

    return names()


def resolve_model(model, device: str | torch.device | None = None) -> SeparationModel:
    """Turn what the user passed into a :class:`SeparationModel` on ``device`` (None: auto).

    ``model`` is one of:

    * a :class:`SeparationModel` instance: moved to ``device`` (in place, as ``nn.Module.to``
      does) and returned;
    * a checkpoint file written by mssbook (``best.pt``, ``last.pt``) or a training run folder that
      holds one: rebuilt with :func:`mssbook.checkpoints.load_model`, in eval mode;
    * a pretrained name such as ``"umxhq"`` or ``"umx"``: loaded by
      :func:`mssbook.hub.load_pretrained` (``mssbook.pretrained(name)``).

    Anything else raises :class:`~mssbook.errors.MSSBookError` listing the choices.
    """
    dev = resolve_device(device)
    if isinstance(model, SeparationModel):
        return model.to(dev)
    if isinstance(model, torch.nn.Module):
        raise MSSBookError(
            f"{type(model).__name__} is not an mssbook SeparationModel (it lacks targets, "
            "sample_rate and separate()); build one with mssbook.models.create(...), or load a "
            "checkpoint or pretrained name."
        )
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        path = Path(text).expanduser()
        if path.exists():
            from .checkpoints import load_model

            return load_model(path, device=dev)
        names = pretrained_names()
        if text in names:
            from .hub import load_pretrained

            return load_pretrained(text).to(dev).eval()
        if path.suffix.lower() in _CHECKPOINT_SUFFIXES or "/" in text or os.sep in text:
            raise MSSBookError(
                f"no checkpoint at {path}: check the path (a .pt file written by mssbook train, "
                "or its run folder holding best.pt or last.pt)."
            )
        raise MSSBookError(
            f"unknown model {text!r}: pass a pretrained name ({', '.join(names)}), a checkpoint "
            "file written by mssbook train (best.pt, last.pt) or its run folder, or, from Python, a "
            "SeparationModel (mssbook.models.create(...))."
        )
    raise MSSBookError(
        f"model must be a SeparationModel, a checkpoint path or a pretrained name, not {type(model).__name__}."
    )


# --------------------------------------------------------------------------------------------
# Outputs and options
# --------------------------------------------------------------------------------------------


def _model_residual(model: SeparationModel) -> bool:
    """Whether the model builds a residual itself (``residual`` is one of its separation options)."""
    return RESIDUAL in _options_of(model)


def _options_of(model: SeparationModel) -> dict:
    fn = getattr(model, "separation_options", None)
    options = fn() if callable(fn) else {}
    return dict(options or {})


def _model_output_names(model: SeparationModel, residual: bool) -> list[str]:
    """What ``model.separate`` returns, in order (``residual``: the model's own residual is on)."""
    names_fn = getattr(model, "output_names", None)
    if callable(names_fn):
        return list(names_fn(residual=residual))
    return [*model.targets, RESIDUAL] if residual else list(model.targets)


def _plan(model: SeparationModel, targets, residual: bool) -> tuple[list[str], list[str]]:
    """``(outputs, selected targets)``: the names :func:`separate` returns, in order, and the
    model targets among them. ``targets`` is a name, names or None (all); ``"residual"`` may be
    listed (to place it) only with ``residual=True``."""
    names = list(model.targets)
    if targets is None:
        wanted = list(names)
    else:
        wanted = [targets] if isinstance(targets, str) else list(targets)
        if not wanted:
            raise MSSBookError(f"targets is empty; choose some of: {', '.join(names)} (or None for all).")
    unknown = [t for t in wanted if t not in names and not (residual and t == RESIDUAL)]
    if unknown:
        hint = ""
        if RESIDUAL in unknown:
            hint = " ('residual' is an output only with residual=True / --residual)"
        raise MSSBookError(
            f"unknown target(s) {', '.join(map(repr, unknown))}: this model separates "
            f"{', '.join(names)}{hint}."
        )
    outputs = list(dict.fromkeys(wanted))
    if residual and RESIDUAL not in outputs:
        outputs.append(RESIDUAL)
    selected = [t for t in outputs if t != RESIDUAL] or list(names)
    return outputs, selected


def output_names(model: SeparationModel, residual: bool = False, targets=None) -> list[str]:
    """The names :func:`separate` returns for ``model`` with these ``residual``/``targets``."""
    return _plan(model, targets, residual)[0]


def check_options(model: SeparationModel, options: Mapping) -> dict:
    """``options`` as a dict, after checking every name is one of ``model.separation_options()``."""
    allowed = _options_of(model)
    unknown = [k for k in options if k not in allowed or k == RESIDUAL]  # residual: separate's own flag
    if unknown:
        label = getattr(model, "name", "") or type(model).__name__
        if allowed:
            listed = ", ".join(f"{k} (default {v!r})" for k, v in allowed.items() if k != RESIDUAL)
            fix = f"it accepts: {listed}" if listed else "it accepts none besides residual"
        else:
            fix = "it accepts none"
        raise MSSBookError(
            f"model {label!r} has no separation option {', '.join(map(repr, unknown))}; {fix}."
            + (" Use residual=True (CLI --residual) for a residual output." if RESIDUAL in unknown else "")
        )
    return dict(options)


# --------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------


def plan_segments(length: int, segment: int, overlap: float) -> list[int]:
    """Start samples of segments ``segment`` samples long that cover ``[0, length)``.

    Segments step by ``round(segment * (1 - overlap))``; the last one is moved back to end exactly
    at ``length`` (so no segment is padded). A ``segment >= length`` gives one segment, ``[0]``.
    """
    if segment >= length:
        return [0]
    stride = max(1, int(round(segment * (1.0 - overlap))))
    starts = list(range(0, length - segment + 1, stride))
    if starts[-1] + segment < length:
        starts.append(length - segment)
    return starts


def _crossfade(segment: int, ramp: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    """Trapezoid window: linear ramps of ``ramp`` samples at the ends that overlap a neighbour.

    The ramp values ``(i + 0.5) / ramp`` and ``1 - (i + 0.5) / ramp`` sum to one where two
    regularly spaced segments meet; they are never zero, so the sum of weights never is either.
    """
    w = np.ones(segment, dtype=np.float32)
    ramp = min(ramp, segment // 2)
    if ramp > 0:
        up = ((np.arange(ramp, dtype=np.float64) + 0.5) / ramp).astype(np.float32)
        if fade_in:
            w[:ramp] = up
        if fade_out:
            w[segment - ramp:] = up[::-1]
    return w


# --------------------------------------------------------------------------------------------
# separate
# --------------------------------------------------------------------------------------------


def _as_audio(audio) -> tuple[np.ndarray, bool]:
    """``audio`` as float32 ``(channels, samples)`` numpy, and whether it came 1-D (:mod:`mssbook.checks`)."""
    return checks.audio_array(audio)


def _check_sr(sr) -> int:
    return checks.sample_rate(sr)


def _segment_plan(segment, overlap, sample_rate: int, model) -> tuple[int, int]:
    """``(one_pass, seg)`` in samples at the model's rate: inputs up to ``one_pass`` samples are
    separated in one pass, longer ones in segments of ``seg`` samples."""
    if not (isinstance(overlap, (int, float)) and 0.0 <= overlap < 1.0):
        raise MSSBookError(f"overlap must be a fraction in [0, 1) of the segment, got {overlap!r} (e.g. 0.1).")
    limit = getattr(model, "max_segment", None)  # seconds; for models trained on a fixed span
    if segment is None:
        one_pass = ONE_PASS_UP_TO if limit is None else min(ONE_PASS_UP_TO, float(limit))
        seconds = DEFAULT_SEGMENT if limit is None else min(DEFAULT_SEGMENT, float(limit))
    else:
        if not (isinstance(segment, (int, float)) and not isinstance(segment, bool) and segment > 0
                and math.isfinite(segment)):
            raise MSSBookError(f"segment must be a positive number of seconds or None, got {segment!r}.")
        if limit is not None and segment > float(limit):
            raise MSSBookError(
                f"segment={segment} s is longer than this model allows ({limit} s); pass a shorter segment."
            )
        one_pass = seconds = float(segment)
    return max(1, int(round(one_pass * sample_rate))), max(1, int(round(seconds * sample_rate)))


class _BlockResampler:
    """Band-limited resampling of a signal that arrives in blocks, equal to resampling it whole.

    :func:`mssbook.signal.resample.resample` (scipy's ``resample_poly``) computes output sample
    ``k`` from the input samples within ``half_len / up`` of input position ``k * down / up``
    (``half_len = 10 * max(up, down)`` taps of its Kaiser-windowed filter), and zeros beyond both
    ends. So this class keeps a tail of the input that starts a whole number of ``down`` samples
    in (output sample 0 of the tail is then an output sample of the whole signal, filtered with
    the same taps in the same phase) and at least that margin before the next output, and emits
    each output sample once its whole support has arrived. The outputs are those of resampling
    the whole signal at once (up to float32 rounding), at any block size, with a delay of
    ``margin`` input samples, and only the tail is held in memory.
    """

    def __init__(self, orig_sr: int, new_sr: int):
        g = math.gcd(orig_sr, new_sr)
        self.orig_sr, self.new_sr = orig_sr, new_sr
        self.up, self.down = new_sr // g, orig_sr // g
        self.margin = (10 * max(self.up, self.down)) // self.up + 2  # input samples of support per side
        self._tail: np.ndarray | None = None  # (..., n) input not yet fully used, from sample _t0
        self._t0 = 0  # global index of the tail's first sample, a multiple of down
        self._next = 0  # the next output sample to emit
        self._seen = 0  # input samples received

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add the next input block ``(..., n)``; return the outputs that are now final ``(..., m)``."""
        self._tail = block if self._tail is None else np.concatenate([self._tail, block], axis=-1)
        self._seen += block.shape[-1]
        # output k is final once input up to k * down / up + margin has arrived
        last = ((self._seen - self.margin) * self.up) // self.down  # outputs [_next, last) are final
        return self._emit(last)

    def finish(self) -> np.ndarray:
        """The remaining outputs once the input has ended (zeros beyond the end, as in one pass)."""
        from .signal.resample import resampled_length

        return self._emit(resampled_length(self._seen, self.orig_sr, self.new_sr))

    def _emit(self, last: int) -> np.ndarray:
        from .signal.resample import resample

        shape = (self._tail.shape[:-1] if self._tail is not None else ()) + (0,)
        if self._tail is None or last <= self._next:
            return np.zeros(shape, dtype=np.float32)
        y = resample(self._tail, self.orig_sr, self.new_sr).astype(np.float32, copy=False)
        first = self._t0 * self.up // self.down  # global index of y[..., 0]
        out = y[..., self._next - first:last - first]
        self._next = last
        # keep the input from a multiple of down at least `margin` before the next output's centre
        keep_from = max(self._t0, (self._next * self.down // self.up - self.margin) // self.down * self.down)
        self._tail = self._tail[..., keep_from - self._t0:]
        self._t0 = keep_from
        return np.ascontiguousarray(out)


def _resampled_blocks(blocks: Iterable[np.ndarray], orig_sr: int, new_sr: int) -> Iterator[np.ndarray]:
    """``blocks`` resampled from ``orig_sr`` to ``new_sr`` as they come (equal to resampling them
    joined); passed through unchanged at equal rates."""
    if orig_sr == new_sr:
        yield from blocks
        return
    rs = _BlockResampler(orig_sr, new_sr)
    for block in blocks:
        out = rs.push(block)
        if out.shape[-1]:
            yield out
    out = rs.finish()
    if out.shape[-1]:
        yield out


@dataclass
class _Job:
    """What one call of :func:`separate`/:func:`separate_file` computes, checked before any work."""

    net: SeparationModel
    device: torch.device
    options: dict
    chosen: list[str]  # the outputs returned, in order
    selected: list[str]  # the model targets among them
    kept_names: list[str]  # what the segment loop keeps of the model's outputs, in order
    keep: list[int]  # their indices among the model's outputs
    model_names: list[str]  # what model.separate returns
    own_residual: bool  # the residual is computed here, as mixture - sum(selected)
    one_pass: int  # inputs up to this many samples (at the model's rate) go in one pass
    nominal: int  # segment length in samples at the model's rate for longer inputs
    overlap: float


def _prepare(net: SeparationModel, dev, channels: int, targets, residual, segment, overlap, model_options) -> _Job:
    """Check the request against the model (names, options, channels, segment) and plan it."""
    options = check_options(net, model_options)
    residual = bool(residual)
    chosen, selected = _plan(net, targets, residual)
    model_residual = residual and _model_residual(net)
    if _model_residual(net):
        options[RESIDUAL] = model_residual
    model_names = _model_output_names(net, model_residual)
    # the model's residual is the output only when it is the rest of *all* targets
    own_residual = residual and not (model_residual and set(selected) == set(net.targets))
    kept_names = selected + ([] if own_residual or not residual else [RESIDUAL])
    m_channels = int(net.nb_channels)
    if not (channels == m_channels or channels == 1 or m_channels == 1):
        raise MSSBookError(
            f"the audio has {channels} channels and this model separates {m_channels}-channel audio; "
            f"mssbook converts mono to {m_channels} channels and runs a mono model on each channel, "
            f"but does not guess how to fold {channels} channels into {m_channels}: downmix the file "
            f"first (e.g. `ffmpeg -i IN -ac {m_channels} OUT.wav`)."
        )
    one_pass, nominal = _segment_plan(segment, overlap, int(net.sample_rate), net)
    return _Job(net, dev, options, chosen, selected, kept_names, [model_names.index(n) for n in kept_names],
                model_names, own_residual, one_pass, nominal, float(overlap))


def min_samples(net: SeparationModel) -> int:
    """The shortest input ``net.separate`` takes (samples at its rate): two STFT frames for a
    spectrogram model (a centred STFT pads by half a frame with reflection, which needs more samples
    than that), or the model's own ``min_samples``. :func:`separate` pads shorter input with zeros
    and trims the estimates back."""
    declared = getattr(net, "min_samples", None)
    if declared is not None:
        return int(declared)
    return 2 * int(getattr(net, "n_fft", 0) or 0)


def _run_model(job: _Job, chunk: np.ndarray) -> np.ndarray:
    """The kept outputs of ``job.net`` for one segment ``chunk`` (C, L), as (K, C, L) float32.
    A segment shorter than the model takes (:func:`min_samples`) is zero-padded, its estimates trimmed."""
    net, channels, seg = job.net, chunk.shape[0], chunk.shape[-1]
    shortest = min_samples(net)
    if seg < shortest:
        padded = np.pad(chunk, ((0, 0), (0, shortest - seg)))
        return _run_model(job, padded)[..., :seg]
    m_channels = int(net.nb_channels)
    x = torch.from_numpy(np.ascontiguousarray(chunk)).to(job.device)
    if channels == m_channels:
        batch = x[None]  # (1, C, L)
    elif m_channels == 1:
        batch = x[:, None]  # (C, 1, L): each channel on its own
    else:
        batch = x[None].expand(1, m_channels, seg).contiguous()  # mono -> M channels
    try:
        est = net.separate(batch, **job.options)
    except ValueError as exc:  # the model refusing these options or this input
        label = getattr(net, "name", "") or type(net).__name__
        shown = ", ".join(f"{key}={value!r}" for key, value in job.options.items()) or "no options"
        raise MSSBookError(f"model {label!r} could not separate with {shown}: {exc}") from exc
    if not isinstance(est, torch.Tensor) or est.ndim != 4 or est.shape[0] != batch.shape[0] \
            or est.shape[1] != len(job.model_names) or est.shape[-1] != seg:
        raise RuntimeError(
            f"{type(net).__name__}.separate returned shape {tuple(getattr(est, 'shape', ()))} for "
            f"input {tuple(batch.shape)}; the contract is (batch, {len(job.model_names)} sources "
            f"{job.model_names}, channels, samples)."
        )
    est = est.float()
    if channels == m_channels:
        est = est[0]  # (S, C, L)
    elif m_channels == 1:
        est = est[:, :, 0].transpose(0, 1)  # (C, S, L) -> (S, C, L)
    else:
        est = est[0].mean(dim=1, keepdim=True)  # (S, M, L) -> (S, 1, L)
    return est[job.keep].cpu().numpy()


def _segmented(job: _Job, blocks: Iterable[np.ndarray], report: Callable[[int], None] | None = None
               ) -> Iterator[np.ndarray]:
    """Separate a model-rate signal arriving in ``blocks`` (C, n) segment by segment.

    Yields the kept outputs (K, C, m) at the model's rate, in order, as soon as no later segment
    overlaps them; together they cover the whole input. The segments are those of
    :func:`plan_segments` for the input's length, found without knowing that length in advance:
    the input is read just far enough (one segment and one stride past the current start) to know
    whether the next regular start still leaves a whole segment, or whether the last segment is
    moved back to end at the input's end. Overlap-add as in :func:`separate`: each segment's
    outputs are weighted by :func:`_crossfade` and divided by the sum of the weights, in the same
    order and precision whether the input is in memory or streamed. Only the current segment,
    one stride of input ahead and one cross-fade of pending output are held. ``report(k)`` is
    called after the k-th segment (1-based).
    """
    source = iter(blocks)
    buf: list[np.ndarray] = []  # model-rate input from global sample `bpos`
    held = 0  # samples in buf
    bpos = 0
    total: int | None = None  # the input's length, once the source has ended

    def fill(upto: int) -> None:
        """Read until the input reaches sample ``upto`` or ends."""
        nonlocal held, total
        while total is None and bpos + held < upto:
            block = next(source, None)
            if block is None:
                total = bpos + held
            elif block.shape[-1]:
                buf.append(block)
                held += block.shape[-1]

    def window(start: int, stop: int) -> np.ndarray:
        """Input samples [start, stop) (start >= bpos), joined."""
        nonlocal buf
        if len(buf) > 1:
            buf = [np.concatenate(buf, axis=-1)]
        return buf[0][:, start - bpos:stop - bpos]

    def drop(upto: int) -> None:
        """Forget the input before sample ``upto``."""
        nonlocal buf, held, bpos
        if upto > bpos and buf:
            joined = np.concatenate(buf, axis=-1) if len(buf) > 1 else buf[0]
            buf = [joined[:, upto - bpos:].copy()]  # a copy: the dropped samples' memory is freed
            held -= upto - bpos
            bpos = upto

    fill(job.one_pass + 1)
    if total is not None and total == 0:
        return
    seg = job.nominal
    if total is not None and total <= job.one_pass:
        seg = total  # one pass over the whole (short) input
    stride = max(1, int(round(seg * (1.0 - job.overlap))))
    ramp = seg - stride
    one_pass = total is not None and total == seg
    pend: np.ndarray | None = None  # weighted outputs not yet final, from global sample ppos
    wsum: np.ndarray | None = None
    ppos = 0
    s, k = 0, 0
    while s is not None:
        # the next start: plan_segments' rule, reading ahead only as far as it needs
        nxt = None
        if not one_pass:
            fill(s + stride + seg)
            if total is None or s + stride + seg <= total:
                nxt = s + stride
            elif s + seg < total:
                nxt = total - seg
        block = _run_model(job, window(s, s + seg))  # (K, C, seg)
        if one_pass:
            yield block
        else:
            w = _crossfade(seg, ramp, fade_in=k > 0, fade_out=nxt is not None)
            end = s + seg - ppos  # pending samples needed to hold this segment
            if pend is None:
                pend = np.zeros(block.shape[:-1] + (end,), dtype=np.float32)
                wsum = np.zeros(end, dtype=np.float32)
            elif end > pend.shape[-1]:
                grow = end - pend.shape[-1]
                pend = np.concatenate([pend, np.zeros(pend.shape[:-1] + (grow,), np.float32)], axis=-1)
                wsum = np.concatenate([wsum, np.zeros(grow, np.float32)])
            pend[:, :, s - ppos:end] += block * w
            wsum[s - ppos:end] += w
            final = (nxt if nxt is not None else s + seg) - ppos  # no later segment reaches these
            done = pend[:, :, :final]
            done /= wsum[:final]  # the weights now sum to one at every sample
            yield done  # a view of pend, which is replaced (not changed) below
            pend, wsum, ppos = pend[:, :, final:].copy(), wsum[final:].copy(), ppos + final
        k += 1
        if report is not None:
            report(k)
        if nxt is not None:
            drop(nxt)
        s = nxt


def _segment_count(length: int, job: _Job) -> int:
    """How many segments :func:`_segmented` runs for an input of ``length`` model-rate samples."""
    if length <= job.one_pass:
        return 1
    return len(plan_segments(length, job.nominal, job.overlap))


class _Progress:
    """A tqdm bar over segments (``progress=True``) or the caller's ``progress(done, total)``."""

    def __init__(self, progress, total: int):
        self.total = max(1, total)
        self.report = progress if callable(progress) else None
        self.bar = None
        if progress and self.report is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit="segment", desc="separating", leave=False)

    def __call__(self, done: int) -> None:
        if done > self.total:  # the length was an estimate (ffmpeg files)
            self.total = done
            if self.bar is not None:
                self.bar.total = done
        if self.bar is not None:
            self.bar.update(1)
        if self.report is not None:
            self.report(done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _eval_mode(net: torch.nn.Module):
    """Inference mode with ``net`` in eval mode, restored afterwards; freed tensors' memory is
    reused meanwhile instead of mapped afresh (:func:`mssbook.allocator.reuse_freed_memory`)."""
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode(), reuse_freed_memory():
            yield
    finally:
        if was_training:
            net.train()


def separate(
    audio,
    sr: int,
    model,
    targets: str | Iterable[str] | None = None,
    device: str | torch.device | None = None,
    segment: float | None = None,
    overlap: float = DEFAULT_OVERLAP,
    residual: bool = False,
    progress: bool | Callable[[int, int], None] = False,
    **model_options,
) -> dict[str, np.ndarray]:
    """Separate ``audio`` into sources with ``model``; returns ``{name: estimate}``.

    Args:
        audio: numpy array or torch tensor, ``(channels, samples)`` or 1-D mono, any sample rate.
        sr: the sample rate of ``audio``.
        model: a :class:`SeparationModel`, a checkpoint path (file or run folder) or a pretrained
            name; see :func:`resolve_model`.
        targets: the model targets to return (a name or names); None: all of them.
        device: where the model runs; None: CUDA if available, else CPU. The model is moved there.
        segment: seconds per segment; None: one pass up to :data:`ONE_PASS_UP_TO` seconds (30),
            :data:`DEFAULT_SEGMENT` (10 s) segments beyond. Memory then stays bounded on long songs.
        overlap: overlap of consecutive segments, a fraction of ``segment`` in [0, 1).
        residual: also return ``"residual"``: the mixture minus the returned targets.
        progress: True shows a tqdm bar over segments; a function is called as
            ``progress(segments_done, segments_total)`` after each segment (widgets use it).
        **model_options: passed to ``model.separate`` (e.g. ``niter=0`` for UMX); they must be
            among ``model.separation_options()``.

    Returns:
        float32 arrays shaped like ``audio`` (same channels, same length, at ``sr``), in the order
        of ``targets`` (default: the model's order), then ``"residual"``. With a residual the
        outputs add up to the input: exactly when the residual is computed here; for UMX's own
        residual exactly with ``niter=0``, and closely with EM iterations (the regularised Wiener
        gains of near-silent bins do not quite sum to one).

    The input and the outputs are held in memory; :func:`separate_file` streams a file instead
    (same segments, same numbers).
    """
    from .signal.resample import resample

    x, was_1d = _as_audio(audio)
    sr = _check_sr(sr)
    dev = resolve_device(device)
    net = resolve_model(model, dev)
    channels, length = x.shape
    job = _prepare(net, dev, channels, targets, residual, segment, overlap, model_options)
    msr = int(net.sample_rate)

    xm = resample(x, sr, msr).astype(np.float32, copy=False) if msr != sr else x
    mlength = xm.shape[-1]
    out = np.empty((len(job.keep), channels, mlength), dtype=np.float32)  # at the model's rate
    bar = _Progress(progress, _segment_count(mlength, job))
    filled = 0
    try:
        with _eval_mode(net):
            for block in _segmented(job, [xm], bar):
                out[:, :, filled:filled + block.shape[-1]] = block
                filled += block.shape[-1]
    finally:
        bar.close()

    def back(signal: np.ndarray) -> np.ndarray:
        """From the model's rate to the input's, at the input's exact length."""
        if msr != sr:
            signal = resample(signal, msr, sr).astype(np.float32, copy=False)
        if signal.shape[-1] < length:
            signal = np.pad(signal, ((0, 0), (0, length - signal.shape[-1])))
        return np.ascontiguousarray(signal[:, :length])

    signals = {name: back(out[j]) for j, name in enumerate(job.kept_names)}
    del out
    if job.own_residual:
        rest = x.copy()
        for name in job.selected:
            rest -= signals[name]
        signals[RESIDUAL] = rest
    return {name: signals[name][0] if was_1d else signals[name] for name in job.chosen}


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _track_name(path: Path) -> str:
    """Output folder name for an input file: its name without extension(s) such as ``.stem.mp4``."""
    name = path.name
    if name.lower().endswith(".stem.mp4"):
        return name[: -len(".stem.mp4")]
    return path.stem


def _check_ext(ext: str) -> str:
    ext = ext if ext.startswith(".") else "." + ext
    if ext.lower() not in OUTPUT_FORMATS:
        raise MSSBookError(
            f"cannot write {ext!r} files; choose one of {', '.join(OUTPUT_FORMATS)} "
            "(for MP3, convert the WAVs with ffmpeg)."
        )
    return ext.lower()


def output_paths(path, output_dir, names: Iterable[str], ext: str = ".wav") -> dict[str, Path]:
    """Where :func:`separate_file` writes each output: ``output_dir/<input name>/<name><ext>``."""
    ext = _check_ext(ext)
    folder = Path(output_dir).expanduser() / _track_name(Path(path))
    return {name: folder / f"{name}{ext}" for name in names}


def _existing(paths: Iterable[Path]) -> list[Path]:
    return [p for p in paths if p.exists()]


def _exists_error(existing: list[Path]) -> OutputExistsError:
    shown = ", ".join(str(p) for p in existing[:4]) + (f" and {len(existing) - 4} more" if len(existing) > 4 else "")
    return OutputExistsError(
        f"{shown} already exist(s); nothing was separated. Pass overwrite=True (CLI: --force) to "
        "replace them, or choose another output folder (-o)."
    )


def _check_subtype(ext: str, subtype: str) -> None:
    """Refuse a soundfile subtype the output format cannot store (before any work)."""
    import soundfile as sf

    from .data.audio import SAVE_FORMATS

    fmt = SAVE_FORMATS[ext]
    if not sf.check_format(fmt, subtype):
        valid = ", ".join(sorted(sf.available_subtypes(fmt)))
        raise ValueError(f"subtype={subtype!r} is not valid for {fmt} files; choose one of: {valid}")


class _StemWriters:
    """One soundfile writer per output, each into a temporary file next to its destination.

    Blocks are appended as they come (:meth:`write`), so no output is ever held whole. With a
    float subtype the blocks go straight into the final format; with an integer one they go to a
    float32 WAV first, because the clip-safe gain (``clip_mode="rescale"``: one common factor for
    every stem when any would clip) depends on the peak of the whole song, known only at the end;
    :meth:`finish` then converts block by block. Every file is renamed onto its destination only
    when all of them are complete (``mssbook.utils.atomic_path``); on an error nothing is left
    behind and existing files are untouched.
    """

    def __init__(self, stack: ExitStack, paths: dict[str, Path], sr: int, channels: int, ext: str,
                 subtype: str, clip_mode: str, overwrite: bool):
        import soundfile as sf

        from .data.audio import SAVE_FORMATS
        from .utils import atomic_path

        self.sf, self.sr, self.channels = sf, sr, channels
        self.fmt, self.subtype, self.clip_mode = SAVE_FORMATS[ext], subtype, clip_mode
        self.direct = subtype in ("FLOAT", "DOUBLE")
        self.peak = 0.0
        self.paths = paths
        self.finals: dict[str, Path] = {}  # the temporary file atomic_path renames into place
        self.files: dict[str, object] = {}  # open soundfile writers
        for name, path in paths.items():
            self.finals[name] = stack.enter_context(atomic_path(path, overwrite=overwrite))
        self.staged: dict[str, Path] = {}
        for name, path in paths.items():
            if self.direct:
                target, fmt, sub = self.finals[name], self.fmt, subtype
            else:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".float.tmp.wav", dir=path.parent)
                os.close(fd)
                target, fmt, sub = Path(tmp), "WAV", "FLOAT"
                self.staged[name] = target
                stack.callback(target.unlink, missing_ok=True)
            self.files[name] = stack.enter_context(
                sf.SoundFile(str(target), "w", samplerate=sr, channels=channels, format=fmt, subtype=sub))

    def write(self, name: str, block: np.ndarray) -> None:
        """Append ``block`` (C, n) to output ``name``."""
        if not np.all(np.isfinite(block)):
            raise MSSBookError(
                f"the estimate for {name!r} contains NaN or infinite values; nothing was written "
                "(a diverged model or checkpoint?)."
            )
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
        self.files[name].write(np.ascontiguousarray(block.T))

    def finish(self) -> None:
        """Close every writer; for integer output, convert the float files with the common gain."""
        for f in self.files.values():
            f.close()
        if self.direct:
            return
        gain = None
        if self.peak > 1.0:
            if self.clip_mode == "rescale":
                gain = np.float32(0.999 / self.peak)
                warnings.warn(
                    f"the estimates peak at {self.peak:.3f} (above 1.0, which {self.subtype} cannot "
                    f"store); all stems are scaled by {gain:.3f} ({20 * math.log10(gain):.1f} dB) so "
                    "none clips and their balance is kept. Use float WAV output to keep the original "
                    "levels.",
                    stacklevel=3,
                )
        for name, staged in self.staged.items():
            with self.sf.SoundFile(str(staged)) as src, self.sf.SoundFile(
                    str(self.finals[name]), "w", samplerate=self.sr, channels=self.channels,
                    format=self.fmt, subtype=self.subtype) as dst:
                for block in src.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                    if gain is not None:
                        block = block * gain
                    dst.write(np.clip(block, -1.0, 1.0))  # "clamp", and the last bit of rounding
            staged.unlink()


def separate_file(
    path,
    output_dir,
    model,
    targets: str | Iterable[str] | None = None,
    device: str | torch.device | None = None,
    segment: float | None = None,
    overlap: float = DEFAULT_OVERLAP,
    residual: bool = False,
    progress: bool | Callable[[int, int], None] = False,
    overwrite: bool = False,
    ext: str = ".wav",
    subtype: str | None = None,
    clip_mode: str = "rescale",
    start: float = 0.0,
    duration: float | None = None,
    **model_options,
) -> dict[str, Path]:
    """Separate an audio file and write ``output_dir/<input name>/<target><ext>``; returns the paths.

    The estimates keep the file's sample rate and channel count. ``ext`` is ``".wav"`` (default
    32-bit float, never clips) or ``".flac"`` (24-bit). ``subtype`` picks another soundfile subtype
    (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``); for integer ones ``clip_mode`` is ``"rescale"``
    (one common gain for all stems when any would clip) or ``"clamp"``. ``start``/``duration``
    (seconds) separate part of the file. Every output path is checked **before** the separation:
    if one exists and ``overwrite`` is False, :class:`~mssbook.errors.OutputExistsError` is raised
    and no work is done. Other arguments: see :func:`separate`.

    The file is **streamed**: decoded in blocks (:func:`mssbook.data.audio.read_blocks`),
    resampled to the model's rate and back block by block (:class:`_BlockResampler`, equal to
    resampling the whole signal), separated segment by segment and written as it goes, so memory
    does not grow with the song's length: what is held is one segment's worth of input, the
    model's work on it and one cross-fade of output. The outputs equal ``separate(load_audio(path))``
    up to float32 rounding. Each output is written to a temporary file next to its destination and
    renamed into place when all are complete.
    """
    from .data.audio import read_blocks

    path = checks.input_file(path)
    start = checks.seconds(start, "start", allow_none=False)
    duration = checks.seconds(duration, "duration", allow_zero=False)
    ext = _check_ext(ext)
    subtype = (subtype or OUTPUT_FORMATS[ext]).upper()
    if clip_mode not in ("rescale", "clamp"):
        raise MSSBookError(f"clip_mode must be 'rescale' or 'clamp', got {clip_mode!r}.")
    _check_subtype(ext, subtype)
    dev = resolve_device(device)
    net = resolve_model(model, dev)
    check_options(net, model_options)
    names = output_names(net, residual, targets)
    paths = output_paths(path, output_dir, names, ext)
    if not overwrite:
        existing = _existing(paths.values())
        if existing:
            raise _exists_error(existing)

    with ExitStack() as stack:
        blocks = stack.enter_context(read_blocks(path, block=READ_BLOCK, start=start, duration=duration))
        sr, channels = blocks.sample_rate, blocks.channels
        job = _prepare(net, dev, channels, targets, residual, segment, overlap, model_options)
        msr = int(net.sample_rate)
        from .signal.resample import resampled_length

        bar = _Progress(progress, _segment_count(resampled_length(max(blocks.frames, 1), sr, msr), job))
        stack.callback(bar.close)
        writers = _StemWriters(stack, paths, sr, channels, ext, subtype, clip_mode, overwrite)

        # The input at its own rate is kept (from `mix_pos` on) only as far as the outputs lag
        # behind it, for the residual computed here; `length` counts what the file gave.
        mix: list[np.ndarray] = []
        mix_pos = 0
        length = 0

        def source() -> Iterator[np.ndarray]:
            nonlocal length
            for block in blocks:
                if not np.all(np.isfinite(block)):  # the same rule as separate(array), named by file
                    bad = int(np.argmax(~np.all(np.isfinite(block), axis=0)))
                    raise AudioFileError(f"{path} contains NaN or infinite samples (first near "
                                         f"{(length + bad) / sr:.3f} s); clean the file first (e.g. "
                                         "np.nan_to_num on its samples) and separate it again.")
                length += block.shape[-1]
                if job.own_residual:
                    mix.append(block)
                yield block

        def mixture(start: int, stop: int) -> np.ndarray:
            """The input's samples [start, stop) (start == mix_pos), then forgotten."""
            nonlocal mix, mix_pos
            joined = np.concatenate(mix, axis=-1) if len(mix) != 1 else mix[0]
            part = joined[:, start - mix_pos:stop - mix_pos]
            mix, mix_pos = [joined[:, stop - mix_pos:]], stop
            return part

        written = 0

        def emit(block: np.ndarray) -> None:
            """Write the outputs (K, C, n) at the input's rate; cut at the input's length."""
            nonlocal written
            block = block[..., :max(0, length - written)]  # outputs lag the input: cuts only the end
            n = block.shape[-1]
            if not n:
                return
            signals = {name: block[j] for j, name in enumerate(job.kept_names)}
            if job.own_residual:
                rest = mixture(written, written + n).copy()
                for name in job.selected:
                    rest -= signals[name]
                signals[RESIDUAL] = rest
            for name in job.chosen:
                writers.write(name, signals[name])
            written += n

        with _eval_mode(net):
            model_rate = _resampled_blocks(source(), sr, msr)
            outputs = _segmented(job, model_rate, bar)
            back = _BlockResampler(msr, sr) if msr != sr else None
            for block in outputs:
                emit(back.push(block) if back is not None else block)
            if back is not None:
                emit(back.finish())
        if written < length:  # never for resample_poly's lengths; kept as separate() pads
            emit(np.zeros((len(job.kept_names), channels, length - written), np.float32))
        writers.finish()
    return paths


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE a Python literal (2, 0.5, True, None) or else a string."""
    if "=" not in text:
        raise MSSBookError(f"--option expects KEY=VALUE (e.g. --option niter=2), got {text!r}.")
    key, value = text.split("=", 1)
    key = key.strip().replace("-", "_")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key, parsed


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and separation flags ``mssbook separate`` and ``mssbook evaluate`` share."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", required=True, metavar="NAME|CHECKPOINT",
                   help="pretrained name (umxhq, umx), a checkpoint written by mssbook train, or its run folder")
    g.add_argument("--targets", nargs="+", metavar="T", default=None,
                   help="only these targets (default: all of the model's targets)")
    g.add_argument("--niter", type=int, default=None,
                   help="Wiener-filter EM iterations (UMX; 0 = magnitudes with the mixture phase); default: the model's")
    g.add_argument("--wiener-win-len", type=int, default=None,
                   help="UMX: frames per Wiener-filter block (0 = all at once); default: the model's")
    g.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other separation option of the model (repeatable), e.g. --option softmask=True")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available, else cpu)")
    g.add_argument("--segment", type=float, default=None,
                   help=f"seconds per segment (default: one pass up to {ONE_PASS_UP_TO:g} s, "
                        f"{DEFAULT_SEGMENT:g} s segments beyond); lower it if memory runs out")
    g.add_argument("--overlap", type=float, default=DEFAULT_OVERLAP,
                   help=f"overlap of segments as a fraction (default {DEFAULT_OVERLAP})")
    from .models import add_family_arguments

    add_family_arguments(parser, ("separate",))  # e.g. the Wavenet's --target-field-length


def model_options_from_args(args: argparse.Namespace) -> dict:
    """The separation options the user set on the command line (unset ones are left out)."""
    options: dict = {}
    if getattr(args, "niter", None) is not None:
        options["niter"] = args.niter
    if getattr(args, "wiener_win_len", None) is not None:
        options["wiener_win_len"] = args.wiener_win_len
    from .models import family_values

    options.update(family_values(args, None, ("separate",))["separate"])
    for text in getattr(args, "option", None) or []:
        key, value = _parse_option(text)
        options[key] = value
    return options


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``mssbook separate`` to ``parser`` (and ``func=run_cli``)."""
    parser.description = (
        "Separate audio files (any format ffmpeg reads, any sample rate, mono or stereo) into "
        "<outdir>/<file name>/<target>.wav. Long songs are processed in overlapping segments."
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files to separate")
    parser.add_argument("-o", "--outdir", "--output-dir", dest="outdir", type=Path, default=Path("separated"),
                        help="output folder (default: ./separated)")
    add_model_arguments(parser)
    parser.add_argument("--residual", action="store_true",
                        help="also write residual.wav: the mixture minus the written targets "
                             "(with --targets vocals: the accompaniment)")
    parser.add_argument("--start", type=float, default=0.0, help="start of the part to separate, in seconds")
    parser.add_argument("--duration", type=float, default=None, help="length of the part to separate, in seconds")
    parser.add_argument("--ext", default=".wav", choices=sorted(OUTPUT_FORMATS), help="output format (default .wav)")
    bits = parser.add_mutually_exclusive_group()
    bits.add_argument("--int16", action="store_true", help="16-bit PCM output (default: 32-bit float WAV, never clips)")
    bits.add_argument("--int24", action="store_true", help="24-bit PCM output")
    parser.add_argument("--clip-mode", choices=("rescale", "clamp"), default="rescale",
                        help="for 16/24-bit output: scale all stems down together (default) or clip")
    parser.add_argument("-f", "--force", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``mssbook separate``: one model, every file; existing outputs are checked first."""
    from tqdm.auto import tqdm

    options = model_options_from_args(args)
    ext = _check_ext(args.ext)
    subtype = "PCM_16" if args.int16 else "PCM_24" if args.int24 else None
    checks.seconds(args.start, "start", allow_none=False, flag="--start")
    checks.seconds(args.duration, "duration", allow_zero=False, flag="--duration")
    files = checks.audio_inputs(args.files)  # a folder: the audio files inside it
    checks.output_dir(args.outdir)  # writable, before the model is even loaded
    folders: dict[str, Path] = {}
    for f in files:
        other = folders.setdefault(_track_name(f), f)
        if other != f:
            raise MSSBookError(
                f"{other} and {f} would both be written to {args.outdir / _track_name(f)}; rename one "
                "or separate them into different output folders."
            )

    net = resolve_model(args.model, args.device)
    check_options(net, options)
    names = output_names(net, args.residual, args.targets)
    if not args.force:
        existing = _existing(p for f in files for p in output_paths(f, args.outdir, names, ext).values())
        if existing:
            raise _exists_error(existing)

    device = resolve_device(args.device)
    print(f"separating {len(files)} file(s) with {getattr(net, 'name', '') or type(net).__name__} "
          f"({', '.join(names)}) on {device} into {args.outdir}", file=sys.stderr)
    failures: list[str] = []
    written = 0
    bar = tqdm(files, unit="file", desc="files", disable=len(files) < 2)
    for f in bar:
        try:
            paths = separate_file(
                f, args.outdir, net, targets=args.targets, device=device, segment=args.segment,
                overlap=args.overlap, residual=args.residual, progress=True, overwrite=args.force,
                ext=ext, subtype=subtype, clip_mode=args.clip_mode, start=args.start,
                duration=args.duration, **options,
            )
        except MSSBookError as exc:
            failures.append(f"{f}: {exc}")
            tqdm.write(f"failed: {f}: {exc}", file=sys.stderr)
            continue
        written += len(paths)
        tqdm.write(f"{f} -> {next(iter(paths.values())).parent}/ ({', '.join(p.name for p in paths.values())})")
    print(f"wrote {written} file(s) under {args.outdir}", file=sys.stderr)
    if failures:  # the others were separated: report these, exit status 1
        print(f"mssbook separate: {len(failures)} of {len(files)} file(s) could not be separated:\n  "
              + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0
