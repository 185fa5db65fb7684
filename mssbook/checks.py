"""One validation layer for what users pass in: audio arrays, sample rates, seconds, input paths
and output folders.

Every CLI command and every public function that takes a path or an array calls these, so the
same mistake gets the same message everywhere: the value or file at fault, and the fix. Bad values
raise :class:`~mssbook.errors.InvalidValueError` (an MSSBookError and a ValueError), bad files
:class:`~mssbook.errors.AudioFileError`, other problems MSSBookError; the CLI prints them as one line.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import AudioFileError, InvalidValueError, MSSBookError

#: what `mssbook separate DIR` picks up inside a folder
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".mp4", ".aac", ".aiff", ".aif", ".opus", ".wma")


def audio_array(audio, name: str = "audio") -> tuple[np.ndarray, bool]:
    """``audio`` (numpy or torch, ``(channels, samples)`` or 1-D mono) as float32
    ``(channels, samples)``, and whether it came 1-D. Refuses non-numbers, other shapes, a
    ``(samples, channels)`` array, no samples, NaN and infinities."""
    if hasattr(audio, "detach"):  # torch tensor
        audio = audio.detach().cpu()
        if str(audio.dtype) in ("torch.float16", "torch.bfloat16"):
            audio = audio.float()
        audio = audio.numpy()
    audio = np.asarray(audio)
    if audio.dtype.kind not in "fiu":
        raise InvalidValueError(f"{name} must hold numbers (float samples), got dtype {audio.dtype}.")
    if audio.ndim == 1:
        audio, was_1d = audio[None], True
    elif audio.ndim == 2:
        was_1d = False
    else:
        raise InvalidValueError(f"{name} must be (channels, samples) or 1-D mono, got shape {audio.shape}; "
                                "for a batch, call once per signal.")
    if audio.shape[0] > audio.shape[1] and audio.shape[0] > 8:
        raise InvalidValueError(f"{name} has shape {audio.shape}, i.e. more channels than samples: mssbook "
                                "expects (channels, samples), as load_audio returns; did you pass (samples, "
                                "channels), as a musdb track's audio is? Use .T (e.g. track.audio.T).")
    if audio.shape[1] == 0:
        raise InvalidValueError(f"{name} has no samples; nothing to process.")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.all(np.isfinite(audio)):
        raise InvalidValueError(f"{name} contains NaN or infinite values; clean it first (np.nan_to_num).")
    return audio, was_1d


def sample_rate(sr, name: str = "sr") -> int:
    """A sample rate: a positive whole number of Hz."""
    ok = isinstance(sr, (int, float, np.integer, np.floating)) and not isinstance(sr, bool)
    if not ok or not np.isfinite(sr) or sr <= 0 or int(sr) != sr:
        raise InvalidValueError(f"{name} must be the audio's sample rate, a positive whole number (e.g. 44100), got {sr!r}.")
    return int(sr)


def seconds(value, name: str, *, allow_zero: bool = True, allow_none: bool = True, flag: str | None = None):
    """A duration or an offset in seconds: finite, ≥ 0 (> 0 without ``allow_zero``), or None."""
    label = flag or name
    if value is None:
        if allow_none:
            return None
        raise InvalidValueError(f"{label} needs a number of seconds.")
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        need = "0 or more" if allow_zero else "more than 0"
        raise InvalidValueError(f"{label} must be {need} seconds, got {value!r}.")
    return float(value)


def input_file(path, what: str = "audio file") -> Path:
    """An existing, readable file (a folder or a missing path is named as such)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise AudioFileError(f"{path} is a folder, not an {what}; pass a file inside it.")
    if not path.exists():
        parent = path.parent if str(path.parent) else Path(".")
        hint = "" if parent.is_dir() else f" (the folder {parent} does not exist either)"
        raise AudioFileError(f"audio file not found: {path} (no such file{hint}); check the path "
                             f"(relative paths start at {Path.cwd()}).")
    if not os.access(path, os.R_OK):
        raise AudioFileError(f"{path} cannot be read (permission denied); check its permissions.")
    return path


def audio_inputs(paths: Iterable) -> list[Path]:
    """Files to process: each path as it is, a folder replaced by the audio files directly inside it
    (sorted, :data:`AUDIO_SUFFIXES`; as ``demucs`` does). Missing paths and empty folders are errors."""
    found: list[Path] = []
    for item in paths:
        path = Path(item).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                           and not p.name.startswith("."))
            if not files:
                raise AudioFileError(f"{path} is a folder without audio files ({', '.join(AUDIO_SUFFIXES[:5])}, ...) "
                                     "directly inside it; pass the files, or a folder that holds them.")
            found.extend(files)
        else:
            found.append(input_file(path))
    if not found:
        raise MSSBookError("no input files given.")
    return list(dict.fromkeys(found))


def output_dir(path, create: bool = True) -> Path:
    """A folder outputs can be written to, checked before any work: not a file, writable (probed
    by creating and removing a temporary file), created when missing and ``create``."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise MSSBookError(f"output folder {path} is a file; choose a folder (it is created when missing).")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise MSSBookError(f"output folder {path} cannot be created: {existing} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MSSBookError(f"output folder {path} is not writable ({existing}: permission denied); choose another "
                           "folder with -o/--output.")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".mssbook-write-test-", dir=path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise MSSBookError(f"output folder {path} is not writable ({exc.strerror or exc}); choose another "
                               "folder with -o/--output.") from None
    return path


__all__ = ["AUDIO_SUFFIXES", "audio_array", "sample_rate", "seconds", "input_file", "audio_inputs", "output_dir"]
