"""Listening and playing in notebooks: players, and interactive widgets over plain functions.

* :func:`play`, :func:`players`: static ``<audio>`` players that keep relative loudness (one common
  scale, never per-clip normalisation) and embed compact audio (MP3/Ogg, see :mod:`.audio`).
* :class:`StemMixer`: gain, mute and solo per stem, A/B/X between estimates and references.
* :class:`ABPlayer`: one player switched between versions of a sound (and a blind X).
* :class:`MaskExplorer`: oracle masks (IBM, IRM, Wiener) with sliders and live metrics.
* :class:`STFTExplorer`: window length, hop and window type, with resolution and reconstruction.
* :class:`SeparationPlayer`: a checkpoint and a song in, the stem mixer on the separation out.
* :class:`FunctionExplorer`: sliders over any function that draws a figure (the chapters' probes).

Each widget is a thin view over functions that tests and scripts call without a browser
(:func:`mix_stems`, :func:`mask_explorer_state`, :func:`stft_view`, ...). ipywidgets is needed
only by the interactive views and imported when one is built; every view also renders a static
fallback (HTML players and images) where no widget front end runs: exported HTML, GitHub, headless
runners, or anywhere ``MSSBOOK_WIDGETS=static`` is set (or ``static=True`` is passed).
"""

from __future__ import annotations

import importlib

from .audio import AudioClip, EncodedAudio, common_scale, encode_audio, play, players, players_html
from .base import WIDGETS_ENV, is_static

# Interactive views and their functions, imported on first use (they pull in torch and matplotlib).
_LAZY = {
    "StemMixer": "mixer",
    "mix_stems": "mixer",
    "with_residual": "mixer",
    "ABPlayer": "compare",
    "FunctionExplorer": "explore",
    "MaskExplorer": "masks",
    "mask_explorer_state": "masks",
    "STFTExplorer": "stft",
    "stft_view": "stft",
    "SeparationPlayer": "player",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AudioClip",
    "EncodedAudio",
    "WIDGETS_ENV",
    "common_scale",
    "encode_audio",
    "is_static",
    "play",
    "players",
    "players_html",
    *_LAZY,
]
