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
* **Long inputs in segments** of ``segment`` seconds overlapping by ``overlap`` (a fraction), joined
  by overlap-add with linear cross-fades. The weights are divided by their sum at every sample, so
  they sum to one exactly, whatever the segment, overlap and length: a model that returns the
  mixture gets the mixture back. Only one segment is in the model at a time, so memory no longer
  grows with the song (issue-corpus pain point 10: open-unmix#7, #113; demucs#9, ...). The
  estimates themselves (targets x channels x samples, float32) are still held in memory, which for
  a 10-minute stereo song is about 200 MB per target.
  ``segment=None`` separates inputs up to :data:`DEFAULT_SEGMENT` seconds (30 s) in one pass and
  longer ones in 30 s segments. Models with state across time (UMX's BiLSTM, the Wiener filter's
  EM statistics) then see 30 s of context instead of the whole song: UMX itself trains on 6 s
  excerpts and runs its EM in blocks of ``wiener_win_len`` = 300 frames (7 s), so this changes
  little. Pass a ``segment`` longer than the song to force one pass. A model may declare a
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

:func:`separate_file` reads any file :func:`~mssbook.data.audio.load_audio` reads (WAV, FLAC, MP3,
MP4, ...) and writes ``<output_dir>/<input name>/<target>.wav``. The default output is **32-bit
float WAV** (what open-unmix writes): bit-exact estimates, and values beyond ±1 (estimates of a
loud mixture can exceed it) are kept, so nothing clips. With ``subtype="PCM_16"`` or ``"PCM_24"``
(CLI ``--int16``/``--int24``; FLAC is always integer, 24-bit by default) ``clip_mode="rescale"``
scales all stems of a song by one common factor when any would clip (their balance and their sum
are kept), ``"clamp"`` clips. Existing outputs are never replaced unless ``overwrite=True`` (CLI
``--force``), and this is checked **before** any separation work.

``mssbook separate`` (see :func:`configure_parser`) is the command-line face of the same code.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import torch

from .errors import MSSBookError, OutputExistsError
from .models.base import SeparationModel

#: Seconds per segment when ``segment=None`` and the input is longer than this (else one pass).
DEFAULT_SEGMENT = 30.0

#: Default overlap between segments, as a fraction of the segment.
DEFAULT_OVERLAP = 0.25

#: Name of the extra output ``residual=True`` adds.
RESIDUAL = "residual"

#: Pretrained names listed when ``mssbook.pretrained`` cannot tell (it is optional).

#: Output extensions :func:`separate_file` writes, with their default soundfile subtype.
OUTPUT_FORMATS = {".wav": "FLOAT", ".flac": "PCM_24"}

#: Checkpoint-like suffixes: a name ending so that does not exist is a missing file, not a name.
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".th", ".ckpt", ".bin")

__all__ = [
    "DEFAULT_SEGMENT",
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
    """``audio`` as float32 ``(channels, samples)`` numpy, and whether it came 1-D."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu()
        if audio.dtype in (torch.float16, torch.bfloat16):
            audio = audio.float()
        audio = audio.numpy()
    audio = np.asarray(audio)
    if audio.dtype.kind not in "fiu":
        raise MSSBookError(f"audio must hold numbers (float samples), got dtype {audio.dtype}.")
    if audio.ndim == 1:
        audio, was_1d = audio[None], True
    elif audio.ndim == 2:
        was_1d = False
    else:
        raise MSSBookError(
            f"audio must be (channels, samples) or 1-D mono, got shape {audio.shape}; for a batch, "
            "call separate once per signal."
        )
    if audio.shape[0] > audio.shape[1] and audio.shape[0] > 8:
        raise MSSBookError(
            f"audio has shape {audio.shape}, i.e. more channels than samples: mssbook expects "
            "(channels, samples), as load_audio returns; did you pass (samples, channels)? Use audio.T."
        )
    if audio.shape[1] == 0:
        raise MSSBookError("audio has no samples; nothing to separate.")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.all(np.isfinite(audio)):
        raise MSSBookError("audio contains NaN or infinite values; clean the input before separating it.")
    return audio, was_1d


def _check_sr(sr) -> int:
    ok = isinstance(sr, (int, float, np.integer, np.floating)) and not isinstance(sr, bool)
    if not ok or not np.isfinite(sr) or sr <= 0 or int(sr) != sr:
        raise MSSBookError(f"sr must be the audio's sample rate, a positive whole number (e.g. 44100), got {sr!r}.")
    return int(sr)


def _segment_samples(segment, overlap, length: int, sample_rate: int, model) -> int:
    """The segment length in samples at the model's rate (``length`` means one pass)."""
    if not (isinstance(overlap, (int, float)) and 0.0 <= overlap < 1.0):
        raise MSSBookError(f"overlap must be a fraction in [0, 1) of the segment, got {overlap!r} (e.g. 0.25).")
    limit = getattr(model, "max_segment", None)  # seconds; for models trained on a fixed span
    if segment is None:
        seconds = DEFAULT_SEGMENT if limit is None else min(DEFAULT_SEGMENT, float(limit))
        if length <= int(round(seconds * sample_rate)):
            return length
    else:
        if not (isinstance(segment, (int, float)) and not isinstance(segment, bool) and segment > 0
                and math.isfinite(segment)):
            raise MSSBookError(f"segment must be a positive number of seconds or None, got {segment!r}.")
        if limit is not None and segment > float(limit):
            raise MSSBookError(
                f"segment={segment} s is longer than this model allows ({limit} s); pass a shorter segment."
            )
        seconds = float(segment)
    return max(1, min(length, int(round(seconds * sample_rate))))


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
        segment: seconds per segment; None: one pass up to :data:`DEFAULT_SEGMENT` seconds, 30 s
            segments beyond. Memory then stays bounded on long songs.
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
    """
    x, was_1d = _as_audio(audio)
    sr = _check_sr(sr)
    dev = resolve_device(device)
    net = resolve_model(model, dev)
    options = check_options(net, model_options)
    residual = bool(residual)
    chosen, selected = _plan(net, targets, residual)
    model_residual = residual and _model_residual(net)
    if _model_residual(net):
        options[RESIDUAL] = model_residual
    model_names = _model_output_names(net, model_residual)  # what model.separate returns
    # the model's residual is the output only when it is the rest of *all* targets
    own_residual = residual and not (model_residual and set(selected) == set(net.targets))
    kept_names = selected + ([] if own_residual or not residual else [RESIDUAL])
    keep = [model_names.index(n) for n in kept_names]

    from .signal.resample import resample

    channels, length = x.shape
    msr = int(net.sample_rate)
    m_channels = int(net.nb_channels)
    if not (channels == m_channels or channels == 1 or m_channels == 1):
        raise MSSBookError(
            f"the audio has {channels} channels and this model separates {m_channels}-channel audio; "
            f"mssbook converts mono to {m_channels} channels and runs a mono model on each channel, "
            f"but does not guess how to fold {channels} channels into {m_channels}: downmix the file "
            f"first (e.g. `ffmpeg -i IN -ac {m_channels} OUT.wav`)."
        )
    xm = resample(x, sr, msr).astype(np.float32, copy=False) if msr != sr else x
    mlength = xm.shape[-1]
    seg = _segment_samples(segment, overlap, mlength, msr, net)
    starts = plan_segments(mlength, seg, overlap)
    seg = min(seg, mlength)
    ramp = seg - max(1, int(round(seg * (1.0 - overlap)))) if len(starts) > 1 else 0

    # Accumulators at the model's rate, in the input's channel layout, for the kept outputs only.
    out = np.zeros((len(keep), channels, mlength), dtype=np.float32)
    wsum = np.zeros(mlength, dtype=np.float32) if len(starts) > 1 else None

    bar = None
    report = progress if callable(progress) else None
    if progress and report is None:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(starts), unit="segment", desc="separating", leave=False)
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            for k, start in enumerate(starts):
                chunk = torch.from_numpy(xm[:, start:start + seg]).to(dev)
                if channels == m_channels:
                    batch = chunk[None]  # (1, C, L)
                elif m_channels == 1:
                    batch = chunk[:, None]  # (C, 1, L): each channel on its own
                else:
                    batch = chunk[None].expand(1, m_channels, seg).contiguous()  # mono -> M channels
                try:
                    est = net.separate(batch, **options)
                except ValueError as exc:  # the model refusing these options or this input
                    label = getattr(net, "name", "") or type(net).__name__
                    shown = ", ".join(f"{key}={value!r}" for key, value in options.items()) or "no options"
                    raise MSSBookError(f"model {label!r} could not separate with {shown}: {exc}") from exc
                if not isinstance(est, torch.Tensor) or est.ndim != 4 or est.shape[0] != batch.shape[0] \
                        or est.shape[1] != len(model_names) or est.shape[-1] != seg:
                    raise RuntimeError(
                        f"{type(net).__name__}.separate returned shape "
                        f"{tuple(getattr(est, 'shape', ()))} for input {tuple(batch.shape)}; the "
                        f"contract is (batch, {len(model_names)} sources {model_names}, channels, samples)."
                    )
                est = est.float()
                if channels == m_channels:
                    est = est[0]  # (S, C, L)
                elif m_channels == 1:
                    est = est[:, :, 0].transpose(0, 1)  # (C, S, L) -> (S, C, L)
                else:
                    est = est[0].mean(dim=1, keepdim=True)  # (S, M, L) -> (S, 1, L)
                block = est[keep].cpu().numpy()
                if wsum is None:
                    out[:] = block
                else:
                    w = _crossfade(seg, ramp, fade_in=k > 0, fade_out=k < len(starts) - 1)
                    out[:, :, start:start + seg] += block * w
                    wsum[start:start + seg] += w
                if bar is not None:
                    bar.update(1)
                if report is not None:
                    report(k + 1, len(starts))
    finally:
        if was_training:
            net.train()
        if bar is not None:
            bar.close()
    if wsum is not None:
        out /= wsum  # the weights now sum to one at every sample

    def back(signal: np.ndarray) -> np.ndarray:
        """From the model's rate to the input's, at the input's exact length."""
        if msr != sr:
            signal = resample(signal, msr, sr).astype(np.float32, copy=False)
        if signal.shape[-1] < length:
            signal = np.pad(signal, ((0, 0), (0, length - signal.shape[-1])))
        return np.ascontiguousarray(signal[:, :length])

    signals = {name: back(out[j]) for j, name in enumerate(kept_names)}
    del out
    if own_residual:
        rest = x.copy()
        for name in selected:
            rest -= signals[name]
        signals[RESIDUAL] = rest
    return {name: signals[name][0] if was_1d else signals[name] for name in chosen}


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


def _prepare_for_writing(stems: dict[str, np.ndarray], subtype: str, clip_mode: str) -> dict[str, np.ndarray]:
    """Clip-safe stems for an integer ``subtype``: one common gain (rescale) or clipping (clamp)."""
    if subtype in ("FLOAT", "DOUBLE"):
        return stems
    peak = max((float(np.max(np.abs(s))) for s in stems.values() if s.size), default=0.0)
    if peak <= 1.0:
        return stems
    if clip_mode == "rescale":
        gain = 0.999 / peak
        warnings.warn(
            f"the estimates peak at {peak:.3f} (above 1.0, which {subtype} cannot store); all stems "
            f"are scaled by {gain:.3f} ({20 * math.log10(gain):.1f} dB) so none clips and their "
            "balance is kept. Use float WAV output to keep the original levels.",
            stacklevel=3,
        )
        return {k: v * np.float32(gain) for k, v in stems.items()}
    if clip_mode == "clamp":
        return {k: np.clip(v, -1.0, 1.0) for k, v in stems.items()}
    raise MSSBookError(f"clip_mode must be 'rescale' or 'clamp', got {clip_mode!r}.")


def separate_file(
    path,
    output_dir,
    model,
    targets: str | Iterable[str] | None = None,
    device: str | torch.device | None = None,
    segment: float | None = None,
    overlap: float = DEFAULT_OVERLAP,
    residual: bool = False,
    progress: bool = False,
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
    """
    from .data.audio import load_audio, save_audio

    path = Path(path).expanduser()
    ext = _check_ext(ext)
    subtype = (subtype or OUTPUT_FORMATS[ext]).upper()
    if clip_mode not in ("rescale", "clamp"):
        raise MSSBookError(f"clip_mode must be 'rescale' or 'clamp', got {clip_mode!r}.")
    net = resolve_model(model, device)
    check_options(net, model_options)
    names = output_names(net, residual, targets)
    paths = output_paths(path, output_dir, names, ext)
    if not overwrite:
        existing = _existing(paths.values())
        if existing:
            raise _exists_error(existing)
    audio, sr = load_audio(path, start=start, duration=duration)
    stems = separate(
        audio, sr, net, targets=targets, segment=segment, overlap=overlap, residual=residual,
        progress=progress, device=device, **model_options,
    )
    stems = _prepare_for_writing(stems, subtype, clip_mode)
    with warnings.catch_warnings():
        if clip_mode == "clamp":
            warnings.filterwarnings("ignore", message=".*clipped by the integer subtype.*")
        for name, out_path in paths.items():
            save_audio(out_path, stems[name], sr, overwrite=overwrite, subtype=subtype)
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
                   help=f"seconds per segment (default: one pass up to {DEFAULT_SEGMENT:g} s, "
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
    files = [Path(f).expanduser() for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise MSSBookError(f"no such file: {', '.join(missing)}")
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
    if failures:
        raise MSSBookError(
            f"{len(failures)} of {len(files)} file(s) could not be separated:\n  " + "\n  ".join(failures)
        )
    print(f"wrote {written} file(s) under {args.outdir}", file=sys.stderr)
    return 0
