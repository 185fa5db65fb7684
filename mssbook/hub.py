"""Pretrained weights: the official releases of the seed systems, loaded into mssbook's models.

``mssbook.pretrained("umxhq")`` downloads the release's files (with a progress bar) into the cache
``<data dir>/weights/<name>/`` (or ``$MSSBOOK_WEIGHTS/<name>/``), verifies each against its published
checksum (or the SHA-256 prefix in its name), unpacks zip archives, and hands the files to the
converter of their format (:mod:`mssbook.weights`): a ready :class:`~mssbook.models.SeparationModel`
in eval mode whose separation defaults reproduce the official inference.

Offline, the error lists the URLs to fetch on a connected machine and the folder to put them in;
``path=`` loads a copy fetched by hand (a file, a zip, or a folder), and a folder or file passed as
the name is converted from whatever format it holds.

Names: see :func:`names` (``mssbook.hub.describe()`` prints a table). BSRNN has no official weights
of the paper's model: :data:`NO_OFFICIAL` says why and what to do instead.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import torch

from .errors import MSSBookError
from .paths import data_dir
from .utils import atomic_path
from .weights import FORMATS, ConversionError, Release, module
from .weights.common import names_target

SOURCES = ("vocals", "drums", "bass", "other")

NO_OFFICIAL = {
    "bsrnn": (
        "no official weights of BSRNN exist: the paper's authors (Luo & Yu 2022) released no code or "
        "checkpoint, and the public BandSplitRNN-Pytorch vocals checkpoint (amanteur) is another design "
        "(stereo merged into the band features, other norms and mask MLP, other band edges), so it "
        "cannot load into mssbook's faithful BSRNN. Train one instead: mssbook train --model bsrnn "
        "--preset paper (chapter 06 shows a short run)."
    ),
}

_HASH_IN_NAME = re.compile(r"-(?P<hash>[0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_RELEASES: dict[str, Release] | None = None


def releases() -> dict[str, Release]:
    """Every official release mssbook knows, ``{name: Release}``, from the converter modules."""
    global _RELEASES
    if _RELEASES is None:
        _RELEASES = {}
        for fmt in FORMATS:
            for release in module(fmt).RELEASES:
                _RELEASES[release.name] = release
    return _RELEASES


def register_release(release: Release) -> None:
    """Add (or replace) a release, e.g. a mirror or a model of your own served the same way."""
    releases()[release.name] = release


def names() -> list[str]:
    """Names :func:`load_pretrained` (``mssbook.pretrained``) accepts."""
    return list(releases())


def describe() -> str:
    """A table of the releases: name, family, format, targets, training data, licence."""
    rows = [("name", "model", "format", "targets", "trained on", "licence")]
    for r in releases().values():
        rows.append((r.name, r.model, r.format, ",".join(r.targets), r.trained_on, r.license))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def weights_dir() -> Path:
    """Cache folder for downloaded weights: ``$MSSBOOK_WEIGHTS`` or ``<data dir>/weights``."""
    return Path(os.environ.get("MSSBOOK_WEIGHTS", data_dir() / "weights")).expanduser()


def release(name: str) -> Release:
    if name in NO_OFFICIAL:
        raise MSSBookError(NO_OFFICIAL[name])
    table = releases()
    if name not in table:
        raise MSSBookError(f"unknown pretrained model {name!r}; available: {', '.join(table)} "
                           "(or pass a file or folder of weights in an official format)")
    return table[name]


# --- files, checksums, downloads ----------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_hash(rel: Release | None, file_name: str) -> str | None:
    """The published SHA-256 (or prefix) of ``file_name``: the release's table, else its name."""
    if rel is not None and file_name in rel.sha256:
        return rel.sha256[file_name].lower()
    match = _HASH_IN_NAME.search(file_name)
    return match["hash"] if match else None


def check_file(path: Path, rel: Release | None = None, name: str | None = None) -> None:
    """Raise if ``path`` does not match its published checksum."""
    expected = expected_hash(rel, name or path.name)
    if expected and not _sha256(path).startswith(expected):
        raise MSSBookError(
            f"{path} does not match the checksum published for {name or path.name} ({expected[:12]}…): the "
            "file is damaged or not the official one. Delete it and download it again."
        )


def file_name(url: str) -> str:
    return urllib.parse.unquote(Path(urllib.parse.urlparse(url).path).name)


def _offline_help(rel: Release, urls: list[str], folder: Path) -> str:
    names = [file_name(u) for u in urls]
    packed = any(n.lower().endswith(".zip") for n in names)
    wanted = ", ".join(rel.files if packed and rel.files else names)
    listing = "\n  ".join(urls)
    return (f"Fetch on a connected machine:\n  {listing}\nand put them in {folder} (a zip may stay "
            f"packed; the files needed are {wanted}), or load your copy with "
            f"mssbook.pretrained({rel.name!r}, path='path/to/file/or/folder').")


def _download(url: str, dest: Path, rel: Release, timeout: float, progress: bool, help_text: str) -> None:
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
            check_file(tmp, rel, dest.name)
    except MSSBookError:
        raise
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MSSBookError(f"could not download {url} ({reason}). Offline? {help_text}") from None


def _unpack(archive: Path, folder: Path) -> None:
    """Extract a zip into ``folder`` (through a temporary folder, so a failure leaves nothing half-done)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = [n for n in zf.namelist() if n.startswith("/") or ".." in Path(n).parts]
            if bad:
                raise MSSBookError(f"{archive} holds unsafe paths ({bad[0]}); not extracting it.")
            with tempfile.TemporaryDirectory(dir=folder, prefix=".unpack-") as tmp:
                zf.extractall(tmp)
                for item in Path(tmp).iterdir():
                    target = folder / item.name
                    if not target.exists():
                        os.replace(item, target)
    except zipfile.BadZipFile:
        raise MSSBookError(f"{archive} is not a valid zip archive; delete it and download it again.") from None


def _wanted_urls(rel: Release, targets) -> list[str]:
    """The release's URLs needed for ``targets``: those naming a wanted target, and shared ones."""
    if not targets:
        return list(rel.urls)
    wanted = []
    for url in rel.urls:
        named = [t for t in rel.targets if names_target(file_name(url), t)]
        if not named or any(t in targets for t in named):
            wanted.append(url)
    return wanted


def download_release(name: str, targets=None, cache_dir: str | os.PathLike | None = None,
                     base_url: str | None = None, timeout: float = 30.0, progress: bool = True,
                     download: bool = True) -> Path:
    """The cache folder holding release ``name`` (for ``targets``), downloading what it lacks.

    ``base_url`` (or ``$MSSBOOK_WEIGHTS_URL``) replaces the folder part of every URL: a mirror.
    ``download=False`` uses the cache only: a missing file raises the offline instructions.
    """
    rel = release(name)
    folder = Path(cache_dir) if cache_dir else weights_dir() / name
    base_url = base_url or os.environ.get("MSSBOOK_WEIGHTS_URL")
    urls = [base_url.rstrip("/") + "/" + file_name(u) if base_url else u for u in _wanted_urls(rel, targets)]
    help_text = _offline_help(rel, urls, folder)
    for url in urls:
        dest = folder / file_name(url)
        cached = dest.is_file() or (folder / f".{dest.name}.unpacked").is_file()
        if not download and not cached:
            raise MSSBookError(f"{rel.name}: {dest.name} is not in the cache {folder} (download=False). {help_text}")
        if dest.suffix.lower() == ".zip":
            marker = folder / f".{dest.name}.unpacked"
            if marker.is_file():
                continue
            if dest.is_file():
                check_file(dest, rel)
            else:
                _download(url, dest, rel, timeout, progress, help_text)
            _unpack(dest, folder)
            marker.write_text(dest.name)
        elif dest.is_file():
            check_file(dest, rel)
        else:
            _download(url, dest, rel, timeout, progress, help_text)
    return folder


# --- loading ------------------------------------------------------------------------------------
def detect_format(path: Path) -> str:
    """The weight format of a file or folder, from its suffixes (and, for ``.pt/.pth``, its content)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    suffixes = {p.suffix.lower() for p in files}
    if ".ckpt" in suffixes:
        return "lightning"
    if ".hdf5" in suffixes:
        return "keras"
    if ".h5" in suffixes:
        return "nnabla"
    torch_files = [p for p in files if p.suffix.lower() in (".pth", ".pt")]
    if torch_files:
        try:  # asteroid's files record the torch version as a TorchVersion object: allow that one class
            with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
                obj = torch.load(torch_files[0], map_location="cpu", weights_only=True)
        except Exception as exc:
            raise MSSBookError(f"{torch_files[0]} is not a readable PyTorch file ({type(exc).__name__}: {exc}).") from None
        if isinstance(obj, dict) and obj.get("format") == "mssbook-checkpoint-1":
            return "mssbook"
        state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
        if isinstance(state, dict) and any(str(k).startswith(("layer_enc", "layer_lstm", "mean_scale")) for k in state):
            return "asteroid"
        return "openunmix"
    raise MSSBookError(
        f"{path} holds no weight file mssbook can convert: expected Open-Unmix or asteroid .pth, nnabla .h5, "
        "Lightning .ckpt or Keras .hdf5 files (unpack a downloaded zip, or pass it as path=)."
    )


def convert_source(source: str | os.PathLike, model: str | None = None, fmt: str | None = None, targets=None):
    """Convert a file, zip or folder of official weights to an mssbook model (eval mode, CPU)."""
    source = Path(source).expanduser()
    if not source.exists():
        raise MSSBookError(f"{source} does not exist; pass the downloaded weight file, zip or folder.")
    if isinstance(targets, str):
        targets = [targets]
    if source.is_file() and source.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="mssbook-weights-") as tmp:
            _unpack(source, Path(tmp))
            return convert_source(tmp, model, fmt, targets)
    for file in [source] if source.is_file() else sorted(source.rglob("*")):
        if file.is_file() and _HASH_IN_NAME.search(file.name):
            check_file(file)  # torch hub's convention: <name>-<sha256 prefix>.<ext>
    fmt = fmt or detect_format(source)
    if fmt == "mssbook":
        from .checkpoints import load_model

        return load_model(source)
    try:
        return module(fmt).convert(source, model=model, targets=targets)
    except ConversionError:
        raise
    except MSSBookError:
        raise
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ConversionError(f"{source}: could not convert as {fmt} weights ({type(exc).__name__}: {exc}).") from None


def with_options(model, **options):
    """``model`` rebuilt with other constructor defaults (e.g. ``niter=2``), weights kept."""
    if not options:
        return model
    from .models import from_config

    known = set(model.config)
    unknown = [k for k in options if k not in known]
    if unknown:
        raise MSSBookError(f"{model.name} has no setting {', '.join(unknown)}; its settings: {', '.join(sorted(known))}")
    rebuilt = from_config(model.name, {**model.config, **options})
    rebuilt.load_state_dict(model.state_dict())
    return rebuilt.eval()


def load_pretrained(name: str | os.PathLike = "umxhq", path: str | os.PathLike | None = None, targets=None,
                    device: str | torch.device = "cpu", cache_dir=None, base_url: str | None = None,
                    progress: bool = True, download: bool = True, **options):
    """A pretrained :class:`~mssbook.models.SeparationModel` in eval mode on ``device``.

    ``name``: a release (:func:`names`: ``"umxhq"``, ``"xumx"``, ``"d3net"``, ...), or a file/folder of
    weights in an official format. ``path``: a copy of the release fetched by hand (file, zip or
    folder): nothing is downloaded. ``targets``: a subset of the release's targets. ``options``:
    separation defaults to change (``niter=2``, ``residual=True``, ...). ``download=False``: the
    cache only, never the network.
    """
    if isinstance(targets, str):
        targets = [targets]
    text = os.fspath(name)
    if text not in releases() and text not in NO_OFFICIAL and Path(text).expanduser().exists():
        model = convert_source(text, targets=targets)
    else:
        rel = release(text)
        if targets:
            unknown = [t for t in targets if t not in rel.targets]
            if unknown:
                raise MSSBookError(f"{rel.name} has no {', '.join(map(repr, unknown))} model; targets: {', '.join(rel.targets)}")
        if path is not None:
            source = Path(path).expanduser()
            if not source.exists():
                raise MSSBookError(f"{source} does not exist; pass the file, zip or folder you downloaded "
                                   f"from {', '.join(rel.urls)}.")
            if source.is_file() and source.suffix.lower() != ".zip":
                check_file(source, rel)
        else:
            source = download_release(rel.name, targets, cache_dir, base_url, progress=progress, download=download)
        model = convert_source(source, model=rel.model, fmt=rel.format, targets=targets)
    return with_options(model, **options).to(device).eval()


__all__ = ["load_pretrained", "download_release", "convert_source", "detect_format", "releases", "names",
           "describe", "register_release", "release", "weights_dir", "NO_OFFICIAL", "with_options"]
