"""What every weight converter shares: reading foreign files, finding per-target files, and
loading a renamed state dict into an mssbook model with errors that name the key at fault.

A converter module (one per foreign format: :mod:`.openunmix`, :mod:`.nnabla`, :mod:`.asteroid`,
:mod:`.lightning`, :mod:`.keras`) is a mapping table plus the reshapes; it builds the mssbook model
from the shapes it finds and calls :func:`load_mapped` with ``{mssbook key: array}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from ..errors import MSSBookError, MissingDependencyError

SOURCES = ("vocals", "drums", "bass", "other")


class ConversionError(MSSBookError):
    """A foreign weight file lacks a key, has a misshapen one, or is not the expected format."""


def require_h5py():
    try:
        import h5py
    except ImportError:
        raise MissingDependencyError(
            "reading nnabla (.h5) or Keras (.hdf5) weight files needs h5py, a dependency of mssbook: "
            "pip install h5py."
        ) from None
    return h5py


def read_h5(path: str | Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file as ``{"group/sub/name": array}`` (no leading slash)."""
    h5py = require_h5py()
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    arrays[name] = np.asarray(obj[()])
            f.visititems(visit)
    except OSError as exc:
        raise ConversionError(f"{path} is not a readable HDF5 file ({exc}).") from None
    return arrays


def names_target(file_name: str, target: str) -> bool:
    """Whether ``file_name`` names ``target`` as a word (``vocals.h5``, ``vocals-b62c91ce.pth``,
    ``vocals_epoch=2007.ckpt``; not ``basses.h5``), case-insensitively."""
    return re.search(rf"(^|[^a-z]){re.escape(target.lower())}([^a-z]|$)", file_name.lower()) is not None


def find_target_files(path: str | Path, suffixes: Iterable[str], targets=None,
                      what: str = "weights") -> dict[str, Path]:
    """``{target: file}`` from one file or a folder of per-target files.

    A file belongs to the first of vocals/drums/bass/other that its name contains (``vocals.h5``,
    ``vocals-b62c91ce.pth``, ``vocals_epoch=2007.ckpt``); folders are searched recursively.
    ``targets`` (None: every target found) must all be present.
    """
    path = Path(path)
    suffixes = tuple(s.lower() for s in suffixes)
    if path.is_file():
        candidates = [path]
    elif path.is_dir():
        candidates = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    else:
        raise ConversionError(f"{path} does not exist; pass the downloaded weight file or its folder.")
    found: dict[str, Path] = {}
    for file in candidates:
        for target in SOURCES:
            if names_target(file.name, target) and target not in found:
                found[target] = file
                break
    if isinstance(targets, str):
        targets = [targets]
    wanted = list(targets) if targets else [t for t in SOURCES if t in found]
    missing = [t for t in wanted if t not in found]
    if not wanted or missing:
        raise ConversionError(
            f"{path} holds no {what} for {', '.join(missing or ['any target'])}: expected files named "
            f"after their target (vocals, drums, bass, other) ending in {' or '.join(suffixes)}."
        )
    return {t: found[t] for t in wanted}


def rename(key: str, rules: Iterable[tuple[str, str]]) -> str:
    """Apply regular-expression ``(pattern, replacement)`` rules in order."""
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


def load_mapped(model: torch.nn.Module, arrays: Mapping[str, np.ndarray | torch.Tensor], source: str,
                prefix: str = "", ignore_unused: Iterable[str] = ()) -> None:
    """Copy ``arrays`` (mssbook names, relative to ``prefix``) into ``model``'s parameters and buffers.

    Every parameter and floating buffer under ``prefix`` must be given with its exact shape; an
    array the model has no place for is an error too (a silently dropped weight is a wrong model).
    ``num_batches_tracked`` counters may be absent. Errors name ``source`` and the key.
    """
    state = {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}
    given = {prefix + k: v for k, v in arrays.items()}
    ignore = [re.compile(p) for p in ignore_unused]
    unused = [k for k in given if k not in state and not any(p.search(k) for p in ignore)]
    if unused:
        raise ConversionError(f"{source}: no place in the mssbook model for {', '.join(sorted(unused)[:8])}"
                              f"{' ...' if len(unused) > 8 else ''}")
    missing = [k for k in state if k not in given and not k.endswith("num_batches_tracked")]
    if missing:
        raise ConversionError(f"{source}: missing weights for {', '.join(sorted(missing)[:8])}"
                              f"{' ...' if len(missing) > 8 else ''}")
    with torch.no_grad():
        for key, value in given.items():
            if key not in state:
                continue
            tensor = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
            target = state[key]
            if tuple(tensor.shape) != tuple(target.shape):
                raise ConversionError(f"{source}: {key} has shape {tuple(tensor.shape)}, the mssbook model "
                                      f"expects {tuple(target.shape)}")
            target.copy_(tensor.to(target.dtype))


from dataclasses import dataclass, field  # noqa: E402


@dataclass(frozen=True)
class Release:
    """One official weight release, as :func:`mssbook.pretrained` knows it.

    ``urls``: the files to download, in order (a ``.zip`` is unpacked into the cache folder);
    ``sha256``: ``{file name: full SHA-256 or a prefix}`` where the authors published one (or the
    file name carries one); ``files``: the file names a hand-made copy must contain (what the
    offline error lists); ``options``: separation settings the official inference uses that are not
    already the mssbook model's defaults.
    """

    name: str
    model: str
    format: str
    urls: tuple[str, ...]
    targets: tuple[str, ...]
    trained_on: str
    license: str
    homepage: str
    files: tuple[str, ...] = ()
    sha256: dict[str, str] = field(default_factory=dict)
    sdr: dict[str, float] = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    notes: str = ""
