"""Optional dependencies, loaded only where they are used, with errors that name the fix.

``import mssbook`` needs numpy, scipy, soundfile and torch only. torchaudio (a CUDA build on PyPI
that loads only with the torch it was built for), ffmpeg (needed by musdb/stempeg and for
mp3/mp4 files) and matplotlib are checked here, when a feature asks for them.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

from .errors import MissingDependencyError

FFMPEG_HINT = (
    "Install ffmpeg (it provides ffmpeg and ffprobe): `sudo apt-get install ffmpeg` on "
    "Debian/Ubuntu, `conda install -c conda-forge ffmpeg` in a conda environment, or "
    "`brew install ffmpeg` on macOS; `bash scripts/setup.sh` in a checkout does it for you."
)


def ffmpeg_paths() -> dict[str, str | None]:
    """Paths of the ffmpeg and ffprobe binaries on PATH (None where missing)."""
    return {name: shutil.which(name) for name in ("ffmpeg", "ffprobe")}


def require_ffmpeg(purpose: str = "this") -> None:
    """Raise a clear error unless both ffmpeg and ffprobe are on PATH."""
    missing = [name for name, path in ffmpeg_paths().items() if path is None]
    if missing:
        raise MissingDependencyError(
            f"{' and '.join(missing)} not found on PATH, but {purpose} needs it. {FFMPEG_HINT}"
        )


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str | None:
    """First line of ``ffmpeg -version``, or None."""
    path = shutil.which("ffmpeg")
    if path is None:
        return None
    try:
        out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None


def import_musdb():
    """Import the ``musdb`` package (which imports stempeg, which needs ffmpeg)."""
    require_ffmpeg("the musdb package (through stempeg)")
    try:
        import musdb
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"the musdb package could not be imported ({exc}); install it with `pip install musdb`."
        ) from exc
    return musdb


def torchaudio_status() -> tuple[bool, str]:
    """Whether torchaudio loads with this torch, and its version or the reason it does not."""
    try:
        import torch
        import torchaudio
        import torchaudio.functional  # noqa: F401  (loads the compiled extension)
    except Exception as exc:  # ImportError, OSError from a mismatched binary, ...
        return False, f"{type(exc).__name__}: {exc}".strip()
    return True, f"{torchaudio.__version__} (torch {torch.__version__})"


def import_torchaudio():
    """Import torchaudio, or explain why it cannot load with the installed torch."""
    ok, detail = torchaudio_status()
    if not ok:
        import torch

        raise MissingDependencyError(
            f"torchaudio cannot be loaded with torch {torch.__version__} ({detail}). torchaudio must "
            "match torch's minor version and build: install a matching pair, for example "
            "`pip install torch==2.11.0 torchaudio==2.11.0`, or run `bash scripts/setup.sh` in a "
            "checkout. Everything that does not say it needs torchaudio works without it."
        )
    import torchaudio

    return torchaudio


def import_matplotlib_pyplot():
    """Import matplotlib.pyplot (plots are optional: ``pip install mssbook[notebooks]``)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependencyError(
            "plots need matplotlib: `pip install matplotlib` (or `pip install mssbook[notebooks]`)."
        ) from exc
    return plt
