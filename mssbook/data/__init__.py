"""Data layer: audio I/O, toy songs, MUSDB18 access and the training sampler.

Uses only :mod:`mssbook.signal` below it; never imports models or workflows.
"""

from .stems import SAMPLE_RATE, SOURCES, STEM_STREAMS

__all__ = ["SOURCES", "STEM_STREAMS", "SAMPLE_RATE"]
