"""Reading and writing audio files: ``load_audio``, ``read_blocks``, ``audio_info`` and ``save_audio``.

Everything in mssbook holds audio as float32 arrays shaped ``(channels, samples)`` with values
in [-1, 1]. Two decoders turn files into such arrays:

* **soundfile** (libsndfile) for WAV, FLAC, OGG/Vorbis, OPUS, AIFF, ... and also **MP3**:
  libsndfile 1.1+ (bundled with soundfile >= 0.12) decodes MP3 through mpg123. It reads only
  the requested span and needs no external program. Whatever soundfile opens, it decodes.
* **ffmpeg** (a subprocess writing raw float32, ``-f f32le``; ffprobe lists the streams) for
  everything else: AAC in .m4a/.mp4, MUSDB18's multi-stream ``.stem.mp4``, and MP3 where the
  installed libsndfile is too old to read it.

Both decoders agree on MP3: on the course's real MP3 they return the same number of samples
(both drop the encoder delay and padding recorded in the file's LAME/Xing header) and samples
within 1e-5 of each other, so a result does not depend on which one ran.

ffmpeg's fast seek (``-ss`` before ``-i``) is not sample-exact for MP3 or AAC, so the ffmpeg
path decodes from the beginning of the stream, discards the samples before ``start`` and stops
once it has ``duration``. A late ``start`` in a long compressed file therefore costs decoding
time; convert such files to WAV/FLAC once when you need many random excerpts.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .. import checks
from ..deps import require_ffmpeg
from ..errors import AudioFileError, MissingDependencyError
from ..signal.resample import resample
from ..utils import atomic_path
from .stems import STEM_STREAMS

#: Extensions ``save_audio`` writes, with the soundfile format used for each.
SAVE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}

#: Extensions libsndfile reads natively; a failure on these is a damaged file, not a missing ffmpeg.
SOUNDFILE_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64",
}  # fmt: skip

_FIX_CORRUPT = "re-export or re-download it"


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, without decoding it.

    ``frames`` and ``duration`` describe the selected stream. They are exact for soundfile files
    (``frames_exact`` True); for ffmpeg files they are ffprobe's estimate from the container,
    which can be off by a few thousand samples for compressed audio (MP3 padding, AAC priming).
    """

    path: Path
    sample_rate: int
    channels: int
    frames: int
    duration: float
    n_streams: int
    format: str
    codec: str
    backend: str  # "soundfile" or "ffmpeg": the decoder load_audio uses for this file
    frames_exact: bool


# --------------------------------------------------------------------------------------------
# Opening and describing a file
# --------------------------------------------------------------------------------------------


def _check_path(path) -> Path:
    """The file as a Path, or an AudioFileError for a missing, non-regular or empty file."""
    path = checks.input_file(os.fspath(path))  # missing, a folder, unreadable: named, with the fix
    if not path.is_file():
        raise AudioFileError(f"{path} is not a regular file; pass the path of an audio file.")
    if path.stat().st_size == 0:
        raise AudioFileError(f"{path} is empty (0 bytes): an interrupted download or export? {_FIX_CORRUPT}.")
    return path


def _soundfile_info(path: Path):
    """soundfile's header info, or None when libsndfile cannot read this file."""
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None


def _ffprobe(path: Path) -> tuple[list[dict], dict]:
    """The audio streams and format of ``path`` as reported by ffprobe."""
    cmd = [
        "ffprobe", "-v", "error", "-of", "json",
        "-show_entries",
        "stream=index,codec_type,codec_name,sample_rate,channels,duration:format=format_name,duration",
        _ffmpeg_input(path),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise AudioFileError(f"ffprobe could not run on {path}: {exc}") from exc
    report = {}
    if proc.returncode == 0:
        try:
            report = json.loads(proc.stdout or "{}")
        except json.JSONDecodeError:
            report = {}
    if proc.returncode != 0 or "format" not in report:
        reason = _last_line(proc.stderr, path) or "no recognisable audio format"
        raise AudioFileError(
            f"cannot read {path}: neither soundfile nor ffmpeg recognises it as audio "
            f"(ffprobe: {reason}). If it should be audio, the file is damaged: {_FIX_CORRUPT}. "
            "Supported: anything libsndfile reads (WAV, FLAC, OGG, AIFF, MP3) or ffmpeg decodes "
            "(M4A/MP4/AAC, MUSDB18 .stem.mp4, ...)."
        )
    streams = [s for s in report.get("streams", []) if s.get("codec_type") == "audio"]
    return streams, report["format"]


def _ffmpeg_input(path: Path) -> str:
    """``path`` as an ffmpeg input that cannot pass for an option ("-x.mp3") or a protocol ("a:b")."""
    return f"file:{path.absolute()}"


def _last_line(text: str, path: Path) -> str:
    """The last message line of ffmpeg/ffprobe's stderr, without the file name it repeats."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1].replace(f"{_ffmpeg_input(path)}: ", "") if lines else ""


def _stream_index(stream, n_streams: int, path: Path) -> int:
    """Resolve ``stream`` (None, an int, or a MUSDB source name) to an audio stream index."""
    if stream is None:
        index = 0
    elif isinstance(stream, str):
        if stream not in STEM_STREAMS:
            raise ValueError(
                f"stream={stream!r} is not a stem name; use an index or one of {sorted(STEM_STREAMS)}."
            )
        index = STEM_STREAMS[stream]
    elif isinstance(stream, (int, np.integer)) and not isinstance(stream, bool):
        index = int(stream)
    else:
        raise TypeError(f"stream must be an int, a stem name or None, got {stream!r}")
    if not 0 <= index < n_streams:
        hint = (
            " It is not a multi-stream .stem.mp4 file, so only stream 0 exists."
            if n_streams == 1
            else f" Use 0..{n_streams - 1} (MUSDB18 stems: {STEM_STREAMS})."
        )
        raise AudioFileError(
            f"{path} has {n_streams} audio stream(s); stream={stream!r} does not exist.{hint}"
        )
    return index


def _describe(path: Path, stream=None) -> tuple[AudioInfo, int]:
    """AudioInfo for ``stream`` of ``path`` and the resolved stream index; picks the decoder."""
    info = _soundfile_info(path)
    if info is not None:
        index = _stream_index(stream, 1, path)
        return (
            AudioInfo(
                path=path,
                sample_rate=int(info.samplerate),
                channels=int(info.channels),
                frames=int(info.frames),
                duration=float(info.frames) / info.samplerate,
                n_streams=1,
                format=info.format,
                codec=info.subtype,
                backend="soundfile",
                frames_exact=True,
            ),
            index,
        )

    # libsndfile cannot read it. For its own formats that means the file is damaged; asking for
    # ffmpeg there would send the user after the wrong fix.
    try:
        require_ffmpeg(f"reading {path.name} (a format libsndfile does not read)")
    except MissingDependencyError:
        if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
            raise AudioFileError(
                f"cannot read {path}: it has a {path.suffix} extension but libsndfile finds no valid "
                f"audio in it, so it is damaged or mislabelled: {_FIX_CORRUPT}."
            ) from None
        raise

    streams, fmt = _ffprobe(path)
    if not streams:
        raise AudioFileError(
            f"{path} contains no audio stream (ffmpeg sees it as {fmt.get('format_name', '?')}); "
            "pass an audio file, or extract the audio with `ffmpeg -i IN -vn OUT.wav`."
        )
    index = _stream_index(stream, len(streams), path)
    s = streams[index]
    try:
        sample_rate = int(s["sample_rate"])
        channels = int(s["channels"])
    except (KeyError, TypeError, ValueError):
        raise AudioFileError(
            f"ffprobe finds no sample rate or channel count in audio stream {index} of {path}: "
            f"{_FIX_CORRUPT}."
        ) from None
    duration = s.get("duration") or fmt.get("duration") or 0.0
    try:
        duration = float(duration)
    except ValueError:
        duration = 0.0
    return (
        AudioInfo(
            path=path,
            sample_rate=sample_rate,
            channels=channels,
            frames=int(round(duration * sample_rate)),
            duration=duration,
            n_streams=len(streams),
            format=str(fmt.get("format_name", "")),
            codec=str(s.get("codec_name", "")),
            backend="ffmpeg",
            frames_exact=False,
        ),
        index,
    )


def audio_info(path, stream=None) -> AudioInfo:
    """Sample rate, channels, length, stream count and codec of an audio file (and its ``stream``)."""
    return _describe(_check_path(path), stream)[0]


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def _read_soundfile(path: Path, start_frame: int, n_frames: int | None) -> np.ndarray:
    """Frames ``[start_frame, start_frame + n_frames)`` as (channels, samples); seeks, reads no more."""
    try:
        with sf.SoundFile(str(path)) as f:
            if start_frame:
                f.seek(start_frame)
            data = f.read(-1 if n_frames is None else n_frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioFileError(
            f"decoding {path} failed ({exc}); the file is probably truncated or damaged: {_FIX_CORRUPT}."
        ) from exc
    return np.ascontiguousarray(data.T)


def _read_ffmpeg(
    path: Path, index: int, channels: int, start_frame: int, n_frames: int | None
) -> np.ndarray:
    """Decode audio stream ``index`` with ffmpeg; keep frames ``[start_frame, start_frame + n_frames)``."""
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", _ffmpeg_input(path),
        "-map", f"0:a:{index}",  # the index-th *audio* stream (stem files also hold a cover image)
        "-ac", str(channels), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1",
    ]  # fmt: skip
    frame_bytes = 4 * channels
    skip = start_frame * frame_bytes  # bytes to discard before the span
    want = None if n_frames is None else n_frames * frame_bytes
    chunks, kept = [], 0
    # stderr goes to a file: a pipe nobody reads could fill up and stall ffmpeg.
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        except OSError as exc:
            raise AudioFileError(f"could not start ffmpeg to decode {path}: {exc}") from exc
        try:
            while want is None or kept < want:
                block = proc.stdout.read(1 << 20)
                if not block:
                    break
                if skip:
                    dropped = min(skip, len(block))
                    block, skip = block[dropped:], skip - dropped
                chunks.append(block)
                kept += len(block)
            finished = want is None or kept < want  # ffmpeg reached the end by itself
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()  # we have the span we asked for; no need to decode the rest
            returncode = proc.wait()
        err.seek(0)
        message = _last_line(err.read().decode("utf-8", "replace"), path)
    if finished and returncode != 0:
        reason = message or f"exit code {returncode}"
        raise AudioFileError(f"ffmpeg could not decode {path} (stream {index}): {reason}. {_FIX_CORRUPT}.")
    raw = b"".join(chunks)
    if want is not None:
        raw = raw[:want]
    raw = raw[: len(raw) - len(raw) % frame_bytes]
    data = np.frombuffer(raw, dtype="<f4").astype(np.float32)  # astype: a writable, native copy
    return np.ascontiguousarray(data.reshape(-1, channels).T)


def _convert_channels(audio: np.ndarray, channels: int, path: Path) -> np.ndarray:
    """Mono to N duplicates, N to mono averages; other changes are ambiguous and refused."""
    have = audio.shape[0]
    if channels == have:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True, dtype=np.float32)
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    raise AudioFileError(
        f"{path} has {have} channels and channels={channels} was requested; mssbook converts only "
        f"mono to N channels (duplicate) and N channels to mono (average). Load with channels=None "
        f"and mix the channels yourself, or convert with `ffmpeg -i IN -ac {channels} OUT.wav`."
    )


def _sample_rate(sr) -> int:
    """``sr`` as a positive int (44100.0 is fine, 44100.5 or "44100" are not)."""
    ok = isinstance(sr, (int, float, np.integer, np.floating)) and not isinstance(sr, bool)
    if not ok or not np.isfinite(sr) or sr <= 0 or int(sr) != sr:
        raise ValueError(f"sr must be a positive whole number of samples per second, got {sr!r}")
    return int(sr)


@dataclass(frozen=True)
class _Span:
    """A checked request for part of a file: which stream, from which frame, how many frames."""

    path: Path
    info: AudioInfo
    index: int
    start_frame: int
    n_frames: int | None  # None: to the end
    beyond: str  # the message for a start past the end


def _open_span(path, start, duration, stream) -> _Span:
    """Check the arguments ``load_audio`` and ``read_blocks`` share and describe the file."""
    start = checks.seconds(0.0 if start is None else start, "start")
    duration = checks.seconds(duration, "duration (None: to the end)", allow_zero=False)
    path = _check_path(path)
    info, index = _describe(path, stream)
    file_sr = info.sample_rate
    start_frame = int(round(start * file_sr))
    n_frames = None if duration is None else max(1, int(round(duration * file_sr)))
    if info.frames_exact and info.frames == 0:
        raise AudioFileError(f"{path} contains no audio frames (a header without samples): {_FIX_CORRUPT}.")
    beyond = (
        f"start={start} s is beyond the end of {path}, which lasts {info.duration:.3f} s"
        f"{'' if info.frames_exact else ' (estimated)'}; pass a smaller start."
    )
    # ffprobe's length is an estimate, so for ffmpeg files only a clearly late start is refused
    # here; a start just past the real end shows up below as an empty decode.
    limit = info.frames if info.frames_exact else info.frames + file_sr
    if start_frame > 0 and start_frame >= limit:
        raise AudioFileError(beyond)
    return _Span(path, info, index, start_frame, n_frames, beyond)


def load_audio(
    path, sr=None, channels=None, start=0.0, duration=None, stream=None
) -> tuple[np.ndarray, int]:
    """Load an audio file as float32 ``(channels, samples)`` and return it with its sample rate.

    * ``sr``: resample to this rate (band-limited, :func:`mssbook.signal.resample.resample`);
      None keeps the file's rate. The returned rate is ``sr`` when given.
    * ``channels``: None keeps the file's; mono -> N duplicates the channel, N -> 1 averages.
    * ``start``, ``duration``: the span to read, in seconds (``duration=None``: to the end). A span
      that runs past the end is cut short; a ``start`` at or beyond the end is an error.
    * ``stream``: the audio stream of a multi-stream file such as MUSDB18's ``.stem.mp4``: an
      index (0 = mixture) or a source name (``"vocals"``, see ``STEM_STREAMS``); default 0.

    Every problem with the file raises :class:`~mssbook.errors.AudioFileError` naming the file
    and the fix; reading compressed formats without ffmpeg raises MissingDependencyError.
    """
    if channels is not None and (not isinstance(channels, (int, np.integer)) or channels < 1):
        raise ValueError(f"channels must be a positive int or None, got {channels!r}")
    if sr is not None:
        sr = _sample_rate(sr)
    span = _open_span(path, start, duration, stream)
    path, info, index, start_frame, n_frames = span.path, span.info, span.index, span.start_frame, span.n_frames
    file_sr, beyond = info.sample_rate, span.beyond

    if info.backend == "soundfile":
        audio = _read_soundfile(path, start_frame, n_frames)
    else:
        audio = _read_ffmpeg(path, index, info.channels, start_frame, n_frames)
    if audio.shape[-1] == 0:
        if start_frame > 0:
            raise AudioFileError(beyond)
        raise AudioFileError(
            f"no audio could be decoded from {path} (stream {index}): the file is empty or damaged: "
            f"{_FIX_CORRUPT}."
        )

    if channels is not None:
        audio = _convert_channels(audio, int(channels), path)
    if sr is not None and sr != file_sr:
        return resample(audio, file_sr, sr).astype(np.float32, copy=False), sr
    return audio, file_sr


# --------------------------------------------------------------------------------------------
# Decoding in blocks
# --------------------------------------------------------------------------------------------

#: Frames per block :func:`read_blocks` yields by default (about 1.5 s at 44.1 kHz).
DEFAULT_BLOCK = 1 << 16


class AudioBlocks:
    """A file decoded block by block: iterate for float32 ``(channels, n)`` arrays, in order.

    Made by :func:`read_blocks`. ``sample_rate``, ``channels`` and ``info`` are known before any
    decoding; ``frames`` is the length of the requested span, exact for soundfile files and
    ffprobe's estimate for ffmpeg ones (the blocks themselves always hold exactly what decodes).
    Only one block is in memory at a time, so any length of file decodes in bounded memory.
    The decoder (an open soundfile, or an ffmpeg process) lives while the iteration runs; use the
    object as a context manager, or call :meth:`close`, to release it early.
    Iterating raises :class:`~mssbook.errors.AudioFileError` as :func:`load_audio` does when
    nothing decodes (a start past the real end, a damaged file) or ffmpeg fails.
    """

    def __init__(self, span: _Span, block_frames: int):
        self.path = span.path
        self.info = span.info
        self.sample_rate = span.info.sample_rate
        self.channels = span.info.channels
        total = max(0, span.info.frames - span.start_frame)
        self.frames = total if span.n_frames is None else min(total, span.n_frames)
        self._span = span
        self._block = int(block_frames)
        self._gen = None

    def __iter__(self):
        if self._gen is not None:
            raise RuntimeError("an AudioBlocks object is read once; call read_blocks again to re-read.")
        reader = self._soundfile_blocks if self.info.backend == "soundfile" else self._ffmpeg_blocks
        self._gen = self._checked(reader())
        return self._gen

    def close(self) -> None:
        """Stop decoding (closes the file, ends ffmpeg)."""
        if self._gen is not None:
            self._gen.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _checked(self, blocks):
        """Pass the blocks on; nothing at all is the error load_audio raises for an empty decode."""
        got = False
        try:
            for block in blocks:
                if block.shape[-1]:
                    got = True
                    yield block
        finally:
            blocks.close()
        if not got:
            span = self._span
            if span.start_frame > 0:
                raise AudioFileError(span.beyond)
            raise AudioFileError(
                f"no audio could be decoded from {span.path} (stream {span.index}): the file is empty "
                f"or damaged: {_FIX_CORRUPT}."
            )

    def _soundfile_blocks(self):
        span = self._span
        left = span.n_frames  # None: to the end
        try:
            with sf.SoundFile(str(span.path)) as f:
                if span.start_frame:
                    f.seek(span.start_frame)
                while left is None or left > 0:
                    n = self._block if left is None else min(self._block, left)
                    data = f.read(n, dtype="float32", always_2d=True)  # (n, C)
                    if data.shape[0] == 0:
                        break
                    if left is not None:
                        left -= data.shape[0]
                    yield np.ascontiguousarray(data.T)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise AudioFileError(
                f"decoding {span.path} failed ({exc}); the file is probably truncated or damaged: "
                f"{_FIX_CORRUPT}."
            ) from exc

    def _ffmpeg_blocks(self):
        span = self._span
        channels = self.channels
        cmd = [
            "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", _ffmpeg_input(span.path),
            "-map", f"0:a:{span.index}", "-ac", str(channels), "-f", "f32le", "-acodec", "pcm_f32le",
            "pipe:1",
        ]  # fmt: skip
        frame_bytes = 4 * channels
        skip = span.start_frame * frame_bytes  # bytes to discard before the span (sample-exact)
        left = None if span.n_frames is None else span.n_frames * frame_bytes
        finished = False
        with tempfile.TemporaryFile() as err:  # a stderr pipe nobody reads could stall ffmpeg
            try:
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
            except OSError as exc:
                raise AudioFileError(f"could not start ffmpeg to decode {span.path}: {exc}") from exc
            try:
                pending = b""  # bytes of an incomplete frame carried to the next read
                while left is None or left > 0:
                    want = self._block * frame_bytes
                    raw = proc.stdout.read(want if left is None else min(want, left + skip))
                    if not raw:
                        finished = True
                        break
                    if skip:
                        dropped = min(skip, len(raw))
                        raw, skip = raw[dropped:], skip - dropped
                    if left is not None:
                        raw = raw[:left]
                        left -= len(raw)
                    raw = pending + raw
                    cut = len(raw) - len(raw) % frame_bytes
                    raw, pending = raw[:cut], raw[cut:]
                    if raw:
                        data = np.frombuffer(raw, dtype="<f4").astype(np.float32)  # writable copy
                        yield np.ascontiguousarray(data.reshape(-1, channels).T)
                # leaving with left == 0: we have the span, ffmpeg need not decode the rest
            finally:
                proc.stdout.close()
                if proc.poll() is None:
                    proc.kill()
                returncode = proc.wait()
            if finished and returncode != 0:
                err.seek(0)
                message = _last_line(err.read().decode("utf-8", "replace"), span.path)
                reason = message or f"exit code {returncode}"
                raise AudioFileError(
                    f"ffmpeg could not decode {span.path} (stream {span.index}): {reason}. {_FIX_CORRUPT}."
                )


def read_blocks(path, block: int = DEFAULT_BLOCK, start=0.0, duration=None, stream=None) -> AudioBlocks:
    """Decode an audio file in blocks of ``block`` frames, at its own rate and channel count.

    The streaming counterpart of :func:`load_audio` (same decoders, same ``start``, ``duration``
    and ``stream`` arguments, same errors): concatenating the blocks gives exactly what
    ``load_audio(path, start=start, duration=duration, stream=stream)[0]`` returns, but only one
    block is held at a time. Use it for files too long to hold in memory::

        with read_blocks("song.flac") as blocks:
            for chunk in blocks:          # (channels, n) float32, n <= block
                ...

    The file is opened and checked here (missing file, stream, start beyond the end); decoding
    happens during the iteration.
    """
    if not (isinstance(block, (int, np.integer)) and not isinstance(block, bool) and block > 0):
        raise ValueError(f"block must be a positive number of frames, got {block!r}")
    return AudioBlocks(_open_span(path, start, duration, stream), int(block))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def save_audio(path, audio, sr, overwrite: bool = False, subtype: str | None = None) -> Path:
    """Write ``audio`` (``(channels, samples)`` or 1-D mono; numpy or torch) to a WAV or FLAC file.

    The format follows the extension. ``subtype`` defaults to ``"PCM_16"`` (CD quality, what
    players expect); use ``"PCM_24"`` or, for WAV, ``"FLOAT"`` to keep more precision or values
    beyond [-1, 1], which integer subtypes clip (with a warning). The file is written to a
    temporary name and renamed into place, so an error never leaves a half-written file, and an
    existing file is kept unless ``overwrite=True`` (otherwise OutputExistsError).
    Returns the path written.
    """
    path = Path(os.fspath(path)).expanduser()
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioFileError(
            f"cannot write {path}: unsupported extension {path.suffix!r}. save_audio writes "
            f"{', '.join(SAVE_FORMATS)}; for MP3/M4A, save a WAV and convert it with ffmpeg."
        )
    subtype = (subtype or "PCM_16").upper()
    if not sf.check_format(fmt, subtype):
        valid = ", ".join(sorted(sf.available_subtypes(fmt)))
        raise ValueError(
            f"subtype={subtype!r} is not valid for {fmt} files ({path.name}); choose one of: {valid}"
        )
    sr = _sample_rate(sr)

    if hasattr(audio, "detach"):  # a torch tensor, possibly on a GPU
        audio = audio.detach().cpu().float().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise ValueError(
            f"audio must be (channels, samples) or 1-D mono, got shape {audio.shape} for {path.name}"
        )
    if audio.shape[0] > max(audio.shape[1], 16):
        warnings.warn(
            f"saving {path.name}: audio shape {audio.shape} has more channels than samples; "
            "mssbook expects (channels, samples) - did you pass (samples, channels)?",
            stacklevel=2,
        )
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"audio for {path} contains NaN or infinite values; refusing to write it.")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 1.0 and subtype not in ("FLOAT", "DOUBLE"):
        warnings.warn(
            f"saving {path}: peak {peak:.3f} exceeds 1.0 and is clipped by the integer subtype "
            f"{subtype}; scale the audio down, or pass subtype='FLOAT' (WAV) to keep it.",
            stacklevel=2,
        )
        audio = np.clip(audio, -1.0, 1.0)

    with atomic_path(path, overwrite=overwrite) as tmp:
        sf.write(str(tmp), audio.T, sr, format=fmt, subtype=subtype)
    return path
