"""Run-size profiles: one code path, smaller sizes under ``MSSBOOK_PROFILE=ci``.

Notebooks and scripts pick their sizes with :func:`choose`, so the test suite runs the very code a
student runs, only shorter::

    n_songs = mssbook.profile.choose(default=20, ci=4)
"""

from __future__ import annotations

import os
from typing import TypeVar

from .errors import MSSBookError

PROFILES = ("default", "ci")
ENV_VAR = "MSSBOOK_PROFILE"

T = TypeVar("T")


def current() -> str:
    """The active profile: ``$MSSBOOK_PROFILE``, or ``"default"`` (classroom size on a laptop CPU)."""
    name = os.environ.get(ENV_VAR, "").strip().lower() or "default"
    if name not in PROFILES:
        raise MSSBookError(
            f"{ENV_VAR}={name!r} is not a known profile; use one of {', '.join(PROFILES)} "
            f"(or unset {ENV_VAR} for the default)."
        )
    return name


def choose(default: T, ci: T) -> T:
    """Return ``ci`` under the ci profile, else ``default``."""
    return ci if current() == "ci" else default
