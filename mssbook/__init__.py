"""mssbook: a course and PyTorch library on music source separation.

Layers (each imports only the ones below it):

* face: ``mssbook.cli`` and the notebooks;
* workflows: training, separation, evaluation, oracles;
* ``mssbook.models``: one file per architecture;
* ``mssbook.data``: audio I/O, toy songs, MUSDB18 access, the training sampler;
* ``mssbook.signal``: STFT, resampling, (later) Wiener filter, losses, metrics.

Plots, widgets, torchaudio and ffmpeg are optional and loaded only when used.
"""

__version__ = "0.1.0"

from . import profile  # noqa: E402
from .errors import (  # noqa: E402
    AudioFileError,
    DatasetError,
    InvalidValueError,
    MissingDependencyError,
    MSSBookError,
    OutputExistsError,
)

# Convenience names, imported on first use so that `import mssbook` stays light.
_LAZY = {
    "load_audio": ("mssbook.data.audio", "load_audio"),
    "save_audio": ("mssbook.data.audio", "save_audio"),
    "pretrained": ("mssbook.hub", "load_pretrained"),
    "separate": ("mssbook.separation", "separate"),
}


# Submodules reachable as attributes (``import mssbook; mssbook.models.create(...)``), imported on
# first use like the names above.
_SUBMODULES = (
    "architecture", "checkpoints", "cli", "comparison", "data", "demo", "doctor", "evaluation", "exercises",
    "hub", "metrics", "models", "notebook", "oracles", "paths", "plots", "runs", "runtime", "separation",
    "signal", "sisec", "training", "utils", "weights", "widgets",
)


def __getattr__(name):
    import importlib

    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'mssbook' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


__all__ = [
    "load_audio",
    "save_audio",
    "pretrained",
    "separate",
    "__version__",
    "profile",
    "MSSBookError",
    "MissingDependencyError",
    "AudioFileError",
    "DatasetError",
    "InvalidValueError",
    "OutputExistsError",
]
