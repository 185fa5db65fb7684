"""Audio for notebooks: compact encoding and players that keep relative loudness.

IPython's ``Audio`` rescales every clip to full scale by default, so a quiet bass stem sounds as
loud as the mixture and estimates cannot be compared by ear. Everything here turns that off and,
when several clips are shown together, scales them by one common factor (only if needed to stay
within [-1, 1]).

A player embeds its audio in the notebook. As 16-bit WAV an 8 s stereo clip at 44.1 kHz is 1.4 MB
(1.9 MB once base64-encoded), so a chapter with a dozen players weighs tens of megabytes when
executed. :func:`encode_audio` compresses instead: MP3 (every browser plays it) through
soundfile/libsndfile, Ogg Vorbis for sample rates MP3 does not have, and WAV as the fallback when
the installed libsndfile has no encoder. ``MSSBOOK_AUDIO=wav`` (or ``codec="wav"``) keeps the exact
samples.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from html import escape
from typing import Mapping

import numpy as np

from ..utils import as_channels_first as _as_numpy

#: Environment variable choosing the codec of every player: ``auto`` (default), ``mp3``, ``ogg``, ``wav``.
CODEC_ENV = "MSSBOOK_AUDIO"
CODECS = ("auto", "mp3", "ogg", "wav")

#: Sample rates an MPEG-1/2/2.5 layer III stream can carry.
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)

_FORMATS = {  # codec -> (soundfile format, subtype, MIME type, ipywidgets.Audio format)
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg", "mp3"),
    "ogg": ("OGG", "VORBIS", "audio/ogg", "ogg"),
    "wav": ("WAV", "PCM_16", "audio/wav", "wav"),
}


@dataclass(frozen=True)
class EncodedAudio:
    """Bytes of an audio file in memory: ``data``, its ``codec`` (mp3, ogg, wav) and MIME type."""

    data: bytes
    codec: str
    sample_rate: int

    @property
    def mimetype(self) -> str:
        return _FORMATS[self.codec][2]

    @property
    def widget_format(self) -> str:
        """The ``format`` of an ``ipywidgets.Audio`` holding these bytes."""
        return _FORMATS[self.codec][3]

    def show_in(self, player, autoplay: bool | None = None) -> None:
        """Hand these bytes to an ``ipywidgets.Audio`` (its ``<audio>`` gets a new source)."""
        if autoplay is not None:
            player.autoplay = bool(autoplay)
        player.format = self.widget_format
        player.value = self.data

    def data_uri(self) -> str:
        return f"data:{self.mimetype};base64,{base64.b64encode(self.data).decode('ascii')}"

    def decode(self) -> np.ndarray:
        """The samples back, float32 (channels, samples) (lossy codecs: approximately)."""
        import soundfile as sf

        audio, _ = sf.read(io.BytesIO(self.data), dtype="float32", always_2d=True)
        return audio.T


def _codec_choice(codec: str | None) -> str:
    chosen = (codec or os.environ.get(CODEC_ENV, "") or "auto").strip().lower()
    if chosen not in CODECS:
        source = "codec" if codec else CODEC_ENV
        raise ValueError(f"{source}={chosen!r} is not a known audio codec; use one of {', '.join(CODECS)}.")
    return chosen


def _candidates(codec: str, sr: int, channels: int) -> list[str]:
    if codec == "wav" or channels > 2:  # the lossy encoders here take mono and stereo only
        return ["wav"]
    if codec == "auto":
        return (["mp3"] if sr in MP3_RATES else []) + ["ogg", "wav"]
    return [codec, "wav"]


def encode_audio(audio, sr: int, codec: str | None = None) -> EncodedAudio:
    """Encode ``audio`` ((channels, samples) or (samples,), in [-1, 1]) as a compact file in memory.

    ``codec``: ``"auto"`` (MP3 where the rate allows it, else Ogg Vorbis), ``"mp3"``, ``"ogg"`` or
    ``"wav"`` (16-bit PCM, exact up to quantisation); None reads ``$MSSBOOK_AUDIO``. Whatever the
    choice, a codec the installed libsndfile cannot write falls back to WAV, so a player always
    works. Samples beyond [-1, 1] are clipped (scale them first; see :func:`common_scale`).
    """
    import soundfile as sf

    x = np.clip(_as_numpy(audio), -1.0, 1.0)  # (C, L)
    sr = int(sr)
    if x.shape[-1] == 0:
        raise ValueError("cannot encode an empty clip (0 samples)")
    for name in _candidates(_codec_choice(codec), sr, x.shape[0]):
        fmt, subtype, _, _ = _FORMATS[name]
        buffer = io.BytesIO()
        try:
            sf.write(buffer, x.T, sr, format=fmt, subtype=subtype)
        except (sf.LibsndfileError, ValueError, TypeError, RuntimeError):
            continue  # no encoder for this format/rate in this libsndfile: try the next one
        return EncodedAudio(buffer.getvalue(), name, sr)
    raise RuntimeError("soundfile could not even write WAV; reinstall soundfile (`pip install -U soundfile`).")


def common_scale(clips: Mapping[str, np.ndarray] | list) -> float:
    """The one factor that brings the loudest clip's peak to at most 1 (1.0 when none exceeds it)."""
    values = clips.values() if isinstance(clips, Mapping) else clips
    peak = max((float(np.max(np.abs(_as_numpy(c)))) for c in values), default=0.0)
    return 1.0 if peak <= 1.0 else 1.0 / peak


class AudioClip:
    """One ``<audio>`` player holding a compact encoding of a clip; renders as HTML everywhere
    (Jupyter, Colab, exported HTML, GitHub), no widget front end needed. ``data`` is the file's
    bytes and ``mimetype`` its type."""

    def __init__(self, encoded: EncodedAudio):
        self.encoded = encoded

    @property
    def data(self) -> bytes:
        return self.encoded.data

    @property
    def mimetype(self) -> str:
        return self.encoded.mimetype

    def _repr_html_(self) -> str:
        return f'<audio controls preload="none" src="{self.encoded.data_uri()}"></audio>'

    def __repr__(self) -> str:
        kb = len(self.encoded.data) / 1024
        return f"<AudioClip {self.encoded.codec}, {self.encoded.sample_rate} Hz, {kb:.0f} KB>"


def play(audio, sr: int, scale: float | None = None, codec: str | None = None) -> AudioClip:
    """A player that does **not** normalise: what you hear is what the array holds.

    ``audio`` is (channels, samples) or (samples,), numpy or torch. A clip that peaks above 1 is
    scaled down by its peak (pass ``scale`` to use a factor shared with other clips instead).
    ``codec`` as :func:`encode_audio` (default: compressed, ``$MSSBOOK_AUDIO``).
    """
    audio = _as_numpy(audio)
    scale = common_scale([audio]) if scale is None else scale
    return AudioClip(encode_audio(audio * scale, sr, codec))


def players_html(clips: Mapping[str, object], sr: int, codec: str | None = None,
                 scale: float | None = None) -> str:
    """The HTML of :func:`players`: a grid of labelled ``<audio>`` elements."""
    arrays = {name: _as_numpy(audio) for name, audio in clips.items()}
    scale = common_scale(arrays) if scale is None else scale
    cells = "".join(
        f'<div style="margin:2px 8px"><div><b>{escape(str(name))}</b></div>'
        f"{play(audio, sr, scale=scale, codec=codec)._repr_html_()}</div>"
        for name, audio in arrays.items()
    )
    return f'<div class="mssbook-players" style="display:flex;flex-wrap:wrap;align-items:flex-end">{cells}</div>'


def players(clips: Mapping[str, object], sr: int, codec: str | None = None):
    """Labelled players for several clips (e.g. mixture and stems) sharing one loudness scale.

    Returns one HTML block (a grid of labelled ``<audio>`` elements): it renders in Jupyter, Colab,
    exported notebooks and on GitHub, and needs no widget front end. For sliders, mute and solo,
    see :class:`mssbook.widgets.StemMixer`.
    """
    from IPython.display import HTML

    return HTML(players_html(clips, sr, codec))
