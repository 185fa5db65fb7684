"""Where mssbook keeps generated data: ``$MSSBOOK_DATA``, a checkout's ``data/``, or ``~/mssbook_data``."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The source checkout that holds this package (a git clone), or None for a wheel install."""
    root = PACKAGE_DIR.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "mssbook"' in pyproject.read_text(errors="replace"):
        return root
    return None


def data_dir() -> Path:
    """Root folder for generated datasets, reports and caches (created on demand by writers)."""
    if os.environ.get("MSSBOOK_DATA"):
        return Path(os.environ["MSSBOOK_DATA"]).expanduser()
    root = checkout_root()
    if root is not None:
        return root / "data"
    return Path.home() / "mssbook_data"


def shared_data_dir() -> Path | None:
    """The ``shared/data`` folder of real excerpts next to a checkout, when present (tests, demos)."""
    candidates = []
    if os.environ.get("MSSBOOK_SHARED_DATA"):
        candidates.append(Path(os.environ["MSSBOOK_SHARED_DATA"]))
    root = checkout_root()
    if root is not None:
        candidates.append(root.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None
