"""Data layer: audio I/O, toy songs, MUSDB18 access, source activity detection and the training sampler.

Uses only :mod:`mssbook.signal` below it; never imports models or workflows. musdb (which needs
ffmpeg) is imported only when a MUSDB18 function is called.
"""

from .audio import AudioInfo, audio_info, load_audio, save_audio
from .musdb import convert_to_wav, describe_musdb, open_musdb
from .sad import SADParams, detect_fragments, find_salient_fragments, read_fragments, write_fragments
from .sampler import SEED_PRESETS, MUSDBTrainSet, MUSDBValidSet
from .stems import SAMPLE_RATE, SOURCES, STEM_STREAMS

__all__ = [
    "SOURCES", "STEM_STREAMS", "SAMPLE_RATE", "load_audio", "save_audio", "audio_info", "AudioInfo",
    "open_musdb", "describe_musdb", "convert_to_wav", "MUSDBTrainSet", "MUSDBValidSet", "SEED_PRESETS",
    "SADParams", "find_salient_fragments", "detect_fragments", "read_fragments", "write_fragments",
]
