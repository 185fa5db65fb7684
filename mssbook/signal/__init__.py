"""Signal layer: STFT and spectrogram views, resampling, Wiener filtering (later: losses, metrics).

Depends on numpy, scipy and torch only.
"""

from .resample import resample
from .transforms import ISTFT, STFT, bandwidth_to_max_bin, magnitude, max_bin_to_bandwidth

__all__ = ["STFT", "ISTFT", "magnitude", "bandwidth_to_max_bin", "max_bin_to_bandwidth", "resample"]
