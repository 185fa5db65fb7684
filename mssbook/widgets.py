"""Listening in notebooks: audio players that keep relative loudness.

IPython's ``Audio`` rescales every clip to full scale by default, so a quiet bass stem sounds as
loud as the mixture and estimates cannot be compared by ear. Everything here turns that off and,
when several clips are shown together, scales them by one common factor (only if needed to stay
within [-1, 1]).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .errors import MissingDependencyError
from .utils import as_channels_first as _as_numpy


def common_scale(clips: Mapping[str, np.ndarray] | list) -> float:
    """The one factor that brings the loudest clip's peak to at most 1 (1.0 when none exceeds it)."""
    values = clips.values() if isinstance(clips, Mapping) else clips
    peak = max((float(np.max(np.abs(_as_numpy(c)))) for c in values), default=0.0)
    return 1.0 if peak <= 1.0 else 1.0 / peak


def play(audio, sr: int, scale: float | None = None):
    """An IPython audio player that does **not** normalise: what you hear is what the array holds.

    ``audio`` is (channels, samples) or (samples,), numpy or torch. A clip that peaks above 1 is
    scaled down by its peak (pass ``scale`` to use a factor shared with other clips instead).
    """
    try:
        from IPython.display import Audio
    except ImportError as exc:  # pragma: no cover - IPython comes with Jupyter
        raise MissingDependencyError("players need IPython: `pip install ipython`.") from exc
    audio = _as_numpy(audio)
    scale = common_scale([audio]) if scale is None else scale
    return Audio(np.clip(audio * scale, -1.0, 1.0), rate=sr, normalize=False)


def players(clips: Mapping[str, object], sr: int):
    """Labelled players for several clips (e.g. mixture and stems) sharing one loudness scale.

    Returns one HTML block (a grid of labelled ``<audio>`` elements): it renders in Jupyter, Colab,
    exported notebooks and on GitHub, and needs no widget front end (ipywidgets' ``Output``
    can stall headless notebook runners).
    """
    from html import escape

    from IPython.display import HTML

    arrays = {name: _as_numpy(audio) for name, audio in clips.items()}
    scale = common_scale(arrays)
    cells = "".join(
        f'<div style="margin:2px 8px"><div><b>{escape(str(name))}</b></div>{play(audio, sr, scale=scale)._repr_html_()}</div>'
        for name, audio in arrays.items()
    )
    return HTML(f'<div style="display:flex;flex-wrap:wrap;align-items:flex-end">{cells}</div>')
