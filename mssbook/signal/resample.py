"""Band-limited resampling of numpy arrays and torch tensors shaped ``(..., samples)``.

Changing the sample rate is not "pick every other sample": a tone above the *new* Nyquist
frequency (half the new rate) would fold back into the audible band as a false tone (aliasing).
A proper resampler low-pass filters at the lower of the two Nyquist frequencies while it
interpolates. Two backends do this:

* ``"scipy"`` (default): :func:`scipy.signal.resample_poly`, a polyphase FIR filter designed with
  a Kaiser window. The rate ratio is reduced to ``up / down`` by their gcd (44100 -> 48000 is
  160 / 147). It runs on the CPU, needs no torchaudio and gives the same numbers everywhere.
  Tensors go through numpy and come back on their device (no gradient flows through it).
* ``"torchaudio"``: :func:`torchaudio.functional.resample` (windowed sinc). It stays on the
  tensor's device (GPU batches) and is differentiable, but needs a torchaudio that matches torch.

Both give ``ceil(n * new_sr / orig_sr)`` output samples for ``n`` input samples, so one second
at 22050 Hz becomes exactly one second at 44100 Hz, and 1001 samples become 2002.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

BACKENDS = ("scipy", "torchaudio")


def _check_rate(name: str, rate) -> int:
    """A sample rate as a positive int; integral floats such as 44100.0 are accepted."""
    bad = ValueError(f"{name} must be a positive whole number of samples per second, got {rate!r}")
    if isinstance(rate, (str, bytes, bool)):
        raise bad
    try:
        value = Fraction(rate)
    except TypeError:  # numpy float32 and friends: go through float
        try:
            value = Fraction(float(rate))
        except (TypeError, ValueError, OverflowError):
            raise bad from None
    except (ValueError, OverflowError):  # nan, inf
        raise bad from None
    if value <= 0 or value.denominator != 1:
        raise bad
    return int(value)


def resampled_length(n: int, orig_sr: int, new_sr: int) -> int:
    """Number of samples :func:`resample` returns for ``n`` input samples: ``ceil(n * new / orig)``."""
    # Integer arithmetic: float rounding must not add or drop a sample for long signals.
    return -(-n * int(new_sr) // int(orig_sr))


def resample(x, orig_sr, new_sr, backend: str = "scipy"):
    """Resample ``x`` (numpy array or torch tensor, time on the last axis) from ``orig_sr`` to ``new_sr``.

    Returns the same type as ``x`` (a tensor on the same device), with ``ceil(n * new_sr /
    orig_sr)`` samples on the last axis. Floating dtypes are kept (float32 in, float32 out);
    integer input comes back as float32. When the rates are equal, ``x`` itself is returned.
    ``backend`` is ``"scipy"`` (polyphase, CPU, default) or ``"torchaudio"`` (device-native).
    """
    orig_sr = _check_rate("orig_sr", orig_sr)
    new_sr = _check_rate("new_sr", new_sr)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if orig_sr == new_sr:
        return x

    is_tensor = type(x).__module__.startswith("torch")
    if backend == "torchaudio":
        return _resample_torchaudio(x, orig_sr, new_sr, is_tensor)
    if is_tensor:
        import torch

        xc = x.detach().cpu()
        if xc.dtype in (torch.float16, torch.bfloat16):  # numpy/scipy have no bfloat16
            xc = xc.float()
        out = torch.from_numpy(_resample_scipy(xc.numpy(), orig_sr, new_sr))
        return out.to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)
    return _resample_scipy(np.asarray(x), orig_sr, new_sr)


def _resample_scipy(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    from scipy.signal import resample_poly

    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
    n_out = resampled_length(x.shape[-1], orig_sr, new_sr)
    if x.shape[-1] == 0:
        return np.zeros(x.shape[:-1] + (0,), dtype=dtype)
    g = math.gcd(orig_sr, new_sr)
    up, down = new_sr // g, orig_sr // g
    # resample_poly already returns ceil(n * up / down) samples; the slice only guards that rule.
    y = resample_poly(x.astype(dtype, copy=False), up, down, axis=-1)
    return np.ascontiguousarray(y[..., :n_out], dtype=dtype)


def _resample_torchaudio(x, orig_sr: int, new_sr: int, is_tensor: bool):
    from ..deps import import_torchaudio

    torchaudio = import_torchaudio()  # clear MissingDependencyError when torch/torchaudio mismatch
    import torch

    t = x if is_tensor else torch.from_numpy(np.ascontiguousarray(x))
    if not torch.is_floating_point(t):
        t = t.to(torch.float32)
    y = torchaudio.functional.resample(t, orig_sr, new_sr)
    # torchaudio documents the same ceil rule; trimming keeps the two backends interchangeable.
    y = y[..., : resampled_length(t.shape[-1], orig_sr, new_sr)]
    if is_tensor:
        return y
    return y.cpu().numpy()
