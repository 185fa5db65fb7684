"""Training runs on disk: where they live and how a chapter keeps its run for the others.

Chapters train in a temporary folder (a rerun trains afresh instead of resuming) and then keep a
copy of the run in ``<data dir>/runs/<name>-<profile>/`` with :func:`keep_run`, where chapter 01's
comparison, the separation player and chapter 08 (:mod:`mssbook.comparison`) find it
(:func:`chapter_runs`, :func:`kept_run_dir`). Workflow layer: the notebooks use it through
:mod:`mssbook.notebook`, which re-exports these names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

#: The file :func:`keep_run` writes next to the kept checkpoint (what was kept, from where, when).
RUN_INFO = "run.json"
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def runs_dir() -> Path:
    """``<data dir>/runs``: where training runs live (``mssbook train --output``, the demo, the chapters)."""
    from .paths import data_dir

    return data_dir() / "runs"


def kept_run_dir(name: str, profile_name: str | None = None, root: str | os.PathLike | None = None) -> Path:
    """The folder :func:`keep_run` uses for ``name``: ``<root>/<name>-<profile>`` (nothing is created).

    ``root`` defaults to :func:`runs_dir`, ``profile_name`` to the active profile
    (:func:`mssbook.profile.current`). ``name`` must be a plain folder name (letters, digits,
    ``.``, ``_``, ``-``; not starting with ``.`` or ``-``), e.g. ``"ch02-umx-vocals"``.
    """
    from . import profile
    from .errors import MSSBookError

    if not isinstance(name, str) or not _RUN_NAME.fullmatch(name):
        raise MSSBookError(f"run name {name!r} is not a plain folder name: use letters, digits, '.', '_' and '-', "
                           "starting with a letter or digit (e.g. 'ch02-umx-vocals').")
    profile_name = profile.current() if profile_name is None else profile_name
    if profile_name not in profile.PROFILES:
        raise MSSBookError(f"profile {profile_name!r} is not one of {', '.join(profile.PROFILES)}.")
    return Path(root if root is not None else runs_dir()) / f"{name}-{profile_name}"


def keep_run(trained: str | os.PathLike, name: str, checkpoint: str = "best.pt",
             root: str | os.PathLike | None = None) -> Path:
    """Copy a finished training run to ``<data dir>/runs/<name>-<profile>/`` and return that folder.

    Chapters train in a temporary folder, so that running a chapter again trains afresh instead of
    resuming; this copy is what chapter 01's comparison, the separation player
    (:func:`mssbook.widgets.player.find_checkpoints`) and the final comparison find. The kept
    folder holds:

    * ``best.pt``: a byte copy of ``<trained>/<checkpoint>`` (``"best.pt"``, the epoch with the
      lowest monitored loss, or ``"last.pt"`` for a chapter that goes on with its last epoch);
      it is always named ``best.pt``, the checkpoint a run folder offers for evaluation, and
      loads with :func:`mssbook.checkpoints.load_model`;
    * ``history.json``: the trainer's history, when the run has one;
    * ``run.json`` (:data:`RUN_INFO`): ``{"name", "profile", "source", "checkpoint", "kept_at"}``
      (``source``: the trained folder; ``kept_at``: seconds since the epoch).

    The copy is written into a hidden temporary folder next to the destination and renamed into
    place, so a reader never sees a half-written run; an older copy of the same ``name`` and
    profile is replaced (runs of the other profile are left alone). Keeping under the ci profile
    gives ``<name>-ci``, which chapter 01 leaves out of its comparison at the default profile.

    Args:
        trained: the folder the trainer wrote (``Trainer(output=...)``, ``train_model(output=...)``).
        name: the run's name without the profile, e.g. ``"ch02-umx-vocals"``, ``"ch05-tfc-tdf"``.
        checkpoint: which checkpoint of ``trained`` to keep: ``"best.pt"`` or ``"last.pt"``.
        root: the runs folder (default :func:`runs_dir`; tests pass a temporary folder).

    Raises:
        MSSBookError: a bad ``name`` or ``checkpoint``, or no such checkpoint in ``trained``.
    """
    from . import profile
    from .errors import MSSBookError

    if checkpoint not in ("best.pt", "last.pt"):
        raise MSSBookError(f"checkpoint={checkpoint!r}: keep 'best.pt' or 'last.pt' of a training run.")
    trained = Path(trained)
    source = trained / checkpoint
    if not source.is_file():
        found = sorted(p.name for p in trained.glob("*.pt")) if trained.is_dir() else []
        raise MSSBookError(f"no {checkpoint} in {trained} (found: {', '.join(found) or 'nothing'}): pass the folder "
                           "the trainer wrote (its `output`), after training for at least one epoch.")
    dest = kept_run_dir(name, root=root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    old = None
    try:
        shutil.copyfile(source, tmp / "best.pt")
        if (trained / "history.json").is_file():
            shutil.copyfile(trained / "history.json", tmp / "history.json")
        info = {"name": name, "profile": profile.current(), "source": str(trained.resolve()),
                "checkpoint": checkpoint, "kept_at": round(time.time(), 3)}
        (tmp / RUN_INFO).write_text(json.dumps(info, indent=2) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes the folder private
        if dest.exists():
            old = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(dest, old)
        os.replace(tmp, dest)
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return dest


def chapter_runs(profile_name: str | None = None, prefix: str = "",
                 root: str | os.PathLike | None = None) -> list[Path]:
    """The checkpoints (``.../best.pt``) of the runs kept by :func:`keep_run`, sorted by folder name.

    Only folders that :func:`keep_run` wrote count (they hold :data:`RUN_INFO`); the demo's and
    ``mssbook train``'s runs do not. A checkpoint's folder name is ``<name>-<profile>``; its
    ``run.json`` has the name, profile and source.

    Args:
        profile_name: keep runs of this profile only: ``None`` (default) the active profile,
            ``"default"`` or ``"ci"``, or ``"all"`` for every profile.
        prefix: keep runs whose name starts with this (``"ch04-"``: chapter 04's runs).
        root: the runs folder (default :func:`runs_dir`).
    """
    from . import profile
    from .errors import MSSBookError

    wanted = profile.current() if profile_name is None else profile_name
    if wanted != "all" and wanted not in profile.PROFILES:
        raise MSSBookError(f"profile_name {wanted!r} is not one of all, {', '.join(profile.PROFILES)}.")
    root = Path(root if root is not None else runs_dir())
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / "best.pt").is_file() or not (folder / RUN_INFO).is_file():
            continue
        try:
            info = json.loads((folder / RUN_INFO).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not str(info.get("name", "")).startswith(prefix):
            continue
        if wanted != "all" and info.get("profile") != wanted:
            continue
        found.append(folder / "best.pt")
    return found
