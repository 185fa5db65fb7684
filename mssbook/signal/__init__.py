"""Signal layer: STFT and spectrogram views, resampling (later: Wiener filter, losses, metrics).

Depends on numpy, scipy and torch only.
"""
