"""Small helpers shared by every layer: atomic writes and seeding."""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import OutputExistsError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    A crash or an exception leaves the user's existing file untouched and no half-written file
    behind. Without ``overwrite`` an existing file is an error, checked before any work is done.
    The file gets the permissions the umask gives any new file (not the temporary file's 0600).
    The temporary name keeps the suffix so that writers choosing a format by extension work.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{path} already exists; pass overwrite=True (CLI: --force) to replace it, "
            "or choose another output path."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp creates 0600: give the file the mode any new file gets (the umask's)
            os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_channels_first(audio) -> np.ndarray:
    """Numpy or torch audio, (channels, samples) or (samples,), as a float32 (channels, samples) array."""
    if hasattr(audio, "detach"):  # torch tensor
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise ValueError(f"expected audio shaped (channels, samples) or (samples,), got {audio.shape}")
    return audio


_TRUE, _FALSE = ("true", "t", "yes", "y", "1", "on"), ("false", "f", "no", "n", "0", "off")


def parse_bool(text) -> bool:
    """A command-line boolean: true/false, yes/no, 1/0, on/off (any case).

    argparse's ``type=bool`` makes every non-empty string True, so ``--bias False`` would turn the
    bias *on* (the TFC-TDF seed's pitfall); this refuses anything it does not recognise.
    """
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    import argparse

    raise argparse.ArgumentTypeError(f"expected a boolean (true/false, yes/no, 1/0), got {text!r}")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that runs repeat exactly."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
