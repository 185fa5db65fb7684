"""Data layer: audio I/O, toy songs, MUSDB18 access and the training sampler.

Uses only :mod:`mssbook.signal` below it; never imports models or workflows. musdb (which needs
ffmpeg) is imported only when a MUSDB18 function is called.
"""

from .audio import AudioInfo, audio_info, load_audio, save_audio
from .stems import SAMPLE_RATE, SOURCES, STEM_STREAMS

__all__ = ["SOURCES", "STEM_STREAMS", "SAMPLE_RATE", "load_audio", "save_audio", "audio_info", "AudioInfo"]
