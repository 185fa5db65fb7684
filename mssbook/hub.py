"""Pretrained weights: the official Open-Unmix models, loaded into mssbook's UMX.

``mssbook.pretrained("umxhq")`` downloads the per-target weight files that the ``openunmix``
package uses (Zenodo), checks each file's SHA-256 against the 8-digit prefix in its name (torch
hub's convention), caches them under ``<data dir>/weights/<name>/`` and returns a ready
:class:`mssbook.models.umx.UMX`. Offline it fails with a message saying how to fetch the files by
hand; a local folder (or one file) of weights works without any network.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import models
from .errors import MSSBookError
from .models.umx import UMX, openunmix_config_from_state_dict
from .paths import data_dir
from .utils import atomic_path

SOURCES = ("vocals", "drums", "bass", "other")


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    base_url: str
    files: dict[str, str]  # target → file name "<target>-<first 8 hex digits of sha256>.pth"
    trained_on: str
    license: str
    sdr: dict[str, float] = field(default_factory=dict)  # published median/median SDR (open-unmix README)


PRETRAINED = {
    "umxhq": PretrainedModel(
        "umxhq", "https://zenodo.org/records/3370489/files/",
        {"bass": "bass-8d85a5bd.pth", "drums": "drums-9619578f.pth", "other": "other-b52fbbf7.pth",
         "vocals": "vocals-b62c91ce.pth"},
        "MUSDB18-HQ", "MIT", {"vocals": 6.25, "drums": 6.04, "bass": 5.07, "other": 4.28},
    ),
    "umx": PretrainedModel(
        "umx", "https://zenodo.org/records/3370486/files/",
        {"bass": "bass-646024d3.pth", "drums": "drums-5a48008b.pth", "other": "other-f8e132cc.pth",
         "vocals": "vocals-c8df74a5.pth"},
        "MUSDB18", "MIT", {"vocals": 6.32, "drums": 5.73, "bass": 5.23, "other": 4.02},
    ),
    "umxl": PretrainedModel(
        "umxl", "https://zenodo.org/records/5069601/files/",
        {"bass": "bass-2ca1ce51.pth", "drums": "drums-69e0ebd4.pth", "other": "other-c8c5b3e6.pth",
         "vocals": "vocals-bccbd9aa.pth"},
        "MUSDB18-HQ and extra private data", "CC BY-NC-SA 4.0 (non-commercial)",
        {"vocals": 7.21, "drums": 7.15, "bass": 6.02, "other": 4.89},
    ),
}

_HASHED = re.compile(r"^(?P<target>[a-z]+)(?:-(?P<hash>[0-9a-f]{8,}))?\.pth?$")


def weights_dir() -> Path:
    """Cache folder for downloaded weights: ``$MSSBOOK_WEIGHTS`` or ``<data dir>/weights``."""
    return Path(os.environ.get("MSSBOOK_WEIGHTS", data_dir() / "weights")).expanduser()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(path: Path, file_name: str) -> None:
    match = _HASHED.match(file_name)
    if match and match["hash"] and not _sha256(path).startswith(match["hash"]):
        raise MSSBookError(
            f"{path} does not match the checksum in its name ({match['hash']}…): the file is damaged or "
            "not the official one. Delete it and download it again."
        )


def _download(url: str, dest: Path, timeout: float, progress: bool) -> None:
    """Fetch ``url`` to ``dest`` through a temporary file; verify the checksum before renaming."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(dest, overwrite=True) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False)
            with open(tmp, "wb") as f:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    f.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            if bar is not None:
                bar.close()
            _check_hash(tmp, dest.name)
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
        if isinstance(exc, MSSBookError):
            raise
        reason = getattr(exc, "reason", exc)
        raise MSSBookError(
            f"could not download {url} ({reason}). Offline? Fetch the file on a connected machine, put it "
            f"in a folder, and load that folder: mssbook.pretrained('path/to/folder')."
        ) from None


def download_weights(name: str, targets=None, cache_dir: str | os.PathLike | None = None,
                     base_url: str | None = None, timeout: float = 30.0, progress: bool = True) -> dict[str, Path]:
    """Local paths of the weight files of ``name`` for ``targets``, downloading what the cache lacks."""
    spec = _spec(name)
    targets = list(targets or SOURCES)
    folder = Path(cache_dir) if cache_dir else weights_dir() / name
    base_url = base_url or os.environ.get("MSSBOOK_WEIGHTS_URL") or spec.base_url
    paths = {}
    for target in targets:
        if target not in spec.files:
            raise MSSBookError(f"{name} has no {target!r} model; targets: {', '.join(spec.files)}")
        path = folder / spec.files[target]
        if path.is_file():
            _check_hash(path, path.name)
        else:
            _download(base_url.rstrip("/") + "/" + spec.files[target], path, timeout, progress)
        paths[target] = path
    return paths


def _spec(name: str) -> PretrainedModel:
    if name not in PRETRAINED:
        raise MSSBookError(f"unknown pretrained model {name!r}; available: {', '.join(PRETRAINED)} "
                           "(or pass a folder of Open-Unmix .pth files)")
    return PRETRAINED[name]


def _local_files(path: Path, targets) -> dict[str, Path]:
    """Weight files in a folder (``<target>.pth`` or ``<target>-<hash>.pth``) or one file."""
    candidates = [path] if path.is_file() else sorted(path.glob("*.pth")) + sorted(path.glob("*.pt"))
    found = {}
    for file in candidates:
        match = _HASHED.match(file.name)
        if match and match["target"] in SOURCES:
            found[match["target"]] = file
    wanted = list(targets) if targets else [t for t in SOURCES if t in found]
    missing = [t for t in wanted if t not in found]
    if not wanted or missing:
        raise MSSBookError(
            f"{path} holds no Open-Unmix weights for {', '.join(missing or ['any target'])}: expected files "
            "named <target>.pth or <target>-<sha256 prefix>.pth (vocals, drums, bass, other)."
        )
    return {t: found[t] for t in wanted}


def load_pretrained(name_or_path: str | os.PathLike = "umxhq", targets=None, device: str = "cpu",
                    niter: int = 1, residual: bool = False, wiener_win_len: int | None = 300,
                    cache_dir=None, base_url: str | None = None, progress: bool = True) -> UMX:
    """An Open-Unmix :class:`~mssbook.models.umx.UMX` with official (or local) weights, in eval mode.

    ``name_or_path``: ``"umxhq"``, ``"umx"``, ``"umxl"``, or a folder/file of ``.pth`` weights in
    the ``openunmix`` format. ``targets``: a subset of vocals, drums, bass, other (default: all).
    """
    path = Path(name_or_path).expanduser()
    if isinstance(name_or_path, (str, os.PathLike)) and str(name_or_path) not in PRETRAINED and path.exists():
        files = _local_files(path, targets)
    else:
        if isinstance(targets, str):
            targets = [targets]
        files = download_weights(str(name_or_path), targets, cache_dir, base_url, progress=progress)
    states = {}
    for target, file in files.items():
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise MSSBookError(f"{file} is not a readable PyTorch weight file ({exc}).") from exc
        _check_hash(file, file.name)
        states[target] = state
    first = openunmix_config_from_state_dict(next(iter(states.values())))
    if first["nb_bins"] != 2049:
        raise MSSBookError(f"{next(iter(files.values()))} has {first['nb_bins']} bins; only n_fft 4096 models load here.")
    model = models.create(
        "umx", preset="paper", target=list(states), hidden_size=first["hidden_size"], nb_layers=first["nb_layers"],
        unidirectional=first["unidirectional"], nb_channels=first["nb_channels"], niter=niter,
        residual=residual, wiener_win_len=wiener_win_len,
    )
    for target, state in states.items():
        try:
            model.load_target_state_dict(target, state)
        except ValueError as exc:
            raise MSSBookError(f"{files[target]}: {exc}") from None
    return model.to(device).eval()
