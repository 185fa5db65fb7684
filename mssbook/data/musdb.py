"""Real MUSDB18 access through the real ``musdb`` package, with the layout checked up front.

:func:`open_musdb` returns a plain ``musdb.DB`` (the object every MUSDB tool understands), but
before it hands the root to ``musdb`` it checks what ``musdb`` itself does not, so that a wrong
path never turns into "0 tracks" or a zero loss later (issue-corpus pain point 9:
facebookresearch/demucs#115, #133; sigsep-mus-db#3, #61):

* the root exists, and each requested subset folder (``train/``, ``test/``, case-sensitive) too;
* the format: ``is_wav=None`` detects it (``<name>.stem.mp4`` files: MUSDB18 STEMS;
  ``<name>/mixture.wav`` folders: MUSDB18-HQ or ``musdbconvert`` output); an explicit ``is_wav``
  that contradicts the files is an error, not an empty dataset;
* every WAV track folder holds every source file;
* hidden and thumbnail folders (``.ipynb_checkpoints``, ``@eaDir``, ``__MACOSX``, ...), which
  ``musdb`` would otherwise turn into tracks without audio, are dropped;
* zero tracks (after the train/valid split) is an error naming the path tried and the layout
  expected.

The two MUSDB18 layouts (``musdb/__init__.py: DB.load_mus_tracks``)::

    root/train/<Artist - Title>.stem.mp4           STEMS (is_wav=False): one MP4, 5 AAC streams
    root/train/<Artist - Title>/mixture.wav         WAV / HQ (is_wav=True): one file per stem,
                               /vocals.wav ...      plus drums.wav, bass.wav, other.wav
    root/test/...                                   the same for the 50 test tracks

The validation split is musdb's fixed 14-track list (``musdb/configs/mus.yaml``). A root that holds
its own ``mus.yaml`` (the toy datasets write one, listing their own validation songs) is read with
``setup_file="mus.yaml"``, so the real ``musdb`` applies that split.
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

from ..deps import import_musdb
from ..errors import DatasetError

#: The subset folders of a MUSDB18 root (case-sensitive, as ``musdb`` reads them).
SUBSETS = ("train", "test")

#: Splits of the train subset (``musdb.DB(split=...)``); None keeps all train tracks.
SPLITS = ("train", "valid")

#: Name of a root's own setup file (``musdb.DB(setup_file=...)``), read when present.
SETUP_FILE = "mus.yaml"

#: Keys ``musdb`` reads from a setup file.
SETUP_KEYS = ("sources", "mixture", "stem_ids", "targets", "validation_tracks")

#: Where ``download=True`` puts musdb's 7 s previews when no root is given (under mssbook's data dir).
PREVIEW_DIRNAME = "MUSDB18-7"

#: Seconds to wait for the preview server before declaring the machine offline.
DOWNLOAD_TIMEOUT_S = 10.0

_JUNK_PREFIXES = (".", "@", "#", "$", "__")  # .ipynb_checkpoints, @eaDir, #recycle, $RECYCLE.BIN, __MACOSX
_STEM_SUFFIX = ".stem.mp4"


def _layout_help(root: Path, subset: str = "train", sources: Iterable[str] = ()) -> str:
    src = ", ".join(f"{s}.wav" for s in sources) or "vocals.wav, drums.wav, bass.wav, other.wav"
    return (
        "Expected a MUSDB18 tree:\n"
        f"  {root / subset}/<Artist - Title>.stem.mp4            (MUSDB18 STEMS, is_wav=False)\n"
        f"  {root / subset}/<Artist - Title>/mixture.wav + {src}"
        "   (MUSDB18-HQ or musdbconvert output, is_wav=True)\n"
        "Hints: `root` is the folder that contains train/ and test/; subset names are "
        "case-sensitive (train, test); is_wav=None detects the format; hidden and thumbnail "
        "folders (.xxx, @eaDir, __MACOSX) are ignored. Without MUSDB18, use musdb's 7 s previews "
        "(download=True, needs internet) or generate toy songs with mssbook.data.toy."
    )


def _is_junk(name: str) -> bool:
    return name.startswith(_JUNK_PREFIXES)


def _read_setup(root: Path) -> tuple[str | None, dict]:
    """The setup file musdb will read (the root's own ``mus.yaml`` when present) and its content."""
    import yaml

    own = root / SETUP_FILE
    if own.is_file():
        try:
            setup = yaml.safe_load(own.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise DatasetError(f"{own} could not be read as YAML ({exc}); fix or delete it.") from exc
        missing = [k for k in SETUP_KEYS if not isinstance(setup, dict) or k not in setup]
        if missing:
            raise DatasetError(
                f"{own} lacks the key(s) {', '.join(missing)} that musdb needs. A root's own "
                f"{SETUP_FILE} must be a complete copy of musdb's configs/mus.yaml (sources, "
                "mixture, stem_ids, targets, validation_tracks), usually with other "
                "validation_tracks; or delete it to use musdb's defaults."
            )
        return SETUP_FILE, setup
    musdb_dir = Path(import_musdb().__path__[0])
    return None, yaml.safe_load((musdb_dir / "configs" / "mus.yaml").read_text())


def _scan_subset(folder: Path, mixture_file: str) -> dict[str, list[str]]:
    """Top-level entries of a subset folder, sorted by kind."""
    found: dict[str, list[str]] = {"stems": [], "wav": [], "ignored": [], "other_dirs": []}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if _is_junk(entry.name):
            found["ignored"].append(entry.name)
        elif entry.is_file() and entry.name.endswith(_STEM_SUFFIX):
            found["stems"].append(entry.name[: -len(_STEM_SUFFIX)])
        elif entry.is_dir():
            if (Path(entry.path) / mixture_file).is_file():
                found["wav"].append(entry.name)
            else:
                found["other_dirs"].append(entry.name)
    return found


def _normalize_subsets(subsets: str | Iterable[str] | None) -> list[str]:
    if subsets is None:
        return list(SUBSETS)
    out = [subsets] if isinstance(subsets, str) else list(subsets)
    if not out:
        raise DatasetError("subsets is empty; use 'train', 'test' or ['train', 'test'].")
    for s in out:
        if s not in SUBSETS:
            raise DatasetError(
                f"unknown subset {s!r}; MUSDB18 has the subsets 'train' and 'test' "
                "(lower case: subset names are case-sensitive)."
            )
    return out


def _resolve_root(root: str | os.PathLike | None, download: bool) -> tuple[Path, str]:
    if root is not None:
        return Path(root).expanduser(), "the root argument"
    env = os.environ.get("MUSDB_PATH", "").strip()
    if env:
        return Path(env).expanduser(), "$MUSDB_PATH"
    if download:
        from ..paths import data_dir

        return data_dir() / PREVIEW_DIRNAME, "the default preview folder"
    raise DatasetError(
        "No MUSDB18 root given: pass root='/path/to/musdb18' (the folder that contains train/ and "
        "test/), or set the MUSDB_PATH environment variable, or pass download=True to fetch "
        "musdb's 7 s previews (needs internet), or generate toy songs with mssbook.data.toy "
        "(no download) and open that folder."
    )


def _check_online(url: str, timeout: float) -> None:
    """Fail fast when the preview server cannot be reached (no traceback soup, no hang)."""
    import threading

    host = urlparse(url).hostname or url
    port = urlparse(url).port or (443 if url.startswith("https") else 80)
    found: dict[str, Any] = {}

    def lookup() -> None:  # getaddrinfo ignores socket timeouts: bound it with a thread
        try:
            found["addr"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    try:
        worker = threading.Thread(target=lookup, daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise OSError(f"looking up {host} took more than {timeout:.0f} s")
        if "error" in found:
            raise found["error"]
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise DatasetError(
            f"cannot download musdb's 7 s previews: {host} is not reachable ({exc}). Are you "
            "offline? Use a local MUSDB18 copy instead (root='/path/to/musdb18' or the MUSDB_PATH "
            "environment variable), or the toy dataset (mssbook.data.toy), which needs no download."
        ) from None


def _download_previews(musdb, root: Path, setup_file: str | None, timeout: float) -> None:
    """Download and unpack musdb's 7 s previews into ``root`` (musdb's own downloader)."""
    import urllib.error
    import zipfile

    if (root / "train").is_dir():
        return  # already there (musdb.DB.download skips it too)
    url = _read_setup_url(musdb)
    _check_online(url, timeout)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # musdb's urlopen has no timeout of its own
    try:
        musdb.DB(root=str(root), download=True, subsets="train", setup_file=setup_file)
    except (urllib.error.URLError, OSError, zipfile.BadZipFile, RuntimeError) as exc:
        raise DatasetError(
            f"downloading musdb's 7 s previews from {url} into {root} failed ({exc}). Are you "
            "offline, or is the server refusing (HTTP 403, sigsep-mus-db#63)? Use a local MUSDB18 "
            "copy (root= or MUSDB_PATH) or the toy dataset (mssbook.data.toy) instead."
        ) from None
    finally:
        socket.setdefaulttimeout(old)


def _read_setup_url(musdb) -> str:
    import yaml

    cfg = yaml.safe_load((Path(musdb.__path__[0]) / "configs" / "mus.yaml").read_text())
    return cfg["sample-url"]


def _probe_wav(path: Path) -> None:
    """Read ``path``'s header (cheap): a damaged or empty file is named now, not mid-training."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # LibsndfileError, RuntimeError: not audio, truncated header, ...
        reason = str(exc).split(": ", 1)[-1] or type(exc).__name__
        raise DatasetError(f"{path} cannot be read as audio ({reason}): the file is damaged or not a WAV. "
                           "Replace it (e.g. from the dataset archive), or move its track folder out of the tree.") from None
    if info.frames <= 0:
        raise DatasetError(f"{path} holds no audio (0 samples). Replace it, or move its track folder out of the tree.")


def _first_unreadable_stem(paths) -> tuple[str, str] | None:
    """The first ``.stem.mp4`` that ffprobe cannot read, with ffprobe's reason (only on errors)."""
    import subprocess

    for path in paths:
        try:
            proc = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=index", "-of", "csv=p=0", path],
                                  capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode != 0 or not proc.stdout.strip():
            reason = (proc.stderr.strip().splitlines() or ["no audio streams"])[-1]
            return path, reason
    return None


def open_musdb(
    root: str | os.PathLike | None = None,
    subsets: str | Iterable[str] | None = "train",
    split: str | None = None,
    is_wav: bool | None = None,
    download: bool = False,
    sample_rate: float | None = None,
):
    """Open a MUSDB18 tree as a ``musdb.DB``, after checking its layout.

    Args:
        root: the folder holding ``train/`` and ``test/``; None reads ``$MUSDB_PATH`` (and, with
            ``download=True`` and no ``MUSDB_PATH``, uses ``<mssbook data dir>/MUSDB18-7``).
        subsets: ``"train"``, ``"test"``, a list of both, or None for both.
        split: ``"train"`` or ``"valid"`` selects musdb's train/validation split of the train
            subset (the fixed 14 validation songs, or those of ``root/mus.yaml``); None keeps all.
            Only valid with ``subsets="train"``.
        is_wav: True for WAV/HQ trees, False for STEMS, None (default) to detect it.
        download: fetch musdb's 7 s previews (STEMS, all 150 tracks) into ``root`` when it has no
            ``train/`` yet. Preview numbers are not comparable with published scores.
        sample_rate: resample on the fly (ffmpeg; the samplers then read through ffmpeg); None keeps
            the files' rate (44.1 kHz for MUSDB18).

    Returns:
        a ``musdb.DB`` whose ``tracks`` are the valid tracks, sorted by subset then name. It also
        carries ``db.mssbook_format`` (``"wav"`` or ``"stems"``), ``db.mssbook_subsets`` and
        ``db.mssbook_split``.

    Raises:
        DatasetError: missing root or subset folder, a format mismatch, incomplete WAV tracks,
            zero tracks, or a failed download; the message names the path and the fix.
        MissingDependencyError: ffmpeg/ffprobe or musdb missing.
    """
    musdb = import_musdb()
    root, origin = _resolve_root(root, download)
    subsets_l = _normalize_subsets(subsets)
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; use 'train', 'valid' or None (no split).")
    if split is not None and subsets_l != ["train"]:
        raise DatasetError(
            f"split={split!r} selects part of the train subset, so it needs subsets='train' "
            f"(got subsets={subsets_l}); use split=None with the test subset."
        )
    if sample_rate is not None and not float(sample_rate) > 0:
        raise DatasetError(f"sample_rate must be positive or None, not {sample_rate!r}.")

    if download:
        if root.exists() and not root.is_dir():
            raise DatasetError(f"{root} ({origin}) is a file; download=True needs a folder.")
        setup_file = SETUP_FILE if (root / SETUP_FILE).is_file() else None
        _download_previews(musdb, root, setup_file, DOWNLOAD_TIMEOUT_S)

    if not root.exists():
        raise DatasetError(f"MUSDB18 root {root} ({origin}) does not exist.\n" + _layout_help(root))
    if not root.is_dir():
        raise DatasetError(f"MUSDB18 root {root} ({origin}) is not a folder.\n" + _layout_help(root))

    setup_file, setup = _read_setup(root)
    source_files = dict(setup["sources"])  # name -> file name, e.g. vocals -> vocals.wav
    mixture_file = setup["mixture"]

    # Scan every requested subset: which format does each hold?
    scans = {}
    for subset in subsets_l:
        folder = root / subset
        if not folder.is_dir():
            near = [p.name for p in root.iterdir() if p.is_dir() and p.name.lower() == subset]
            nested = [p.name for p in root.iterdir() if p.is_dir() and (p / subset).is_dir()]
            hint = ""
            if near:
                hint = f" There is {near[0]}/: subset folder names are case-sensitive (use '{subset}')."
            elif nested:
                hint = f" {root / nested[0] / subset} exists: did you mean root={root / nested[0]}?"
            raise DatasetError(
                f"subset folder {folder} does not exist (root {root}, {origin}).{hint}\n"
                + _layout_help(root, subset, source_files)
            )
        scans[subset] = _scan_subset(folder, mixture_file)

    n_stems = sum(len(s["stems"]) for s in scans.values())
    n_wav = sum(len(s["wav"]) for s in scans.values())
    tried = ", ".join(str(root / s) for s in subsets_l)
    if is_wav is None:
        if n_wav and n_stems:
            warnings.warn(
                f"{tried} holds both .stem.mp4 files and WAV track folders; using the WAV folders "
                "(faster to read). Pass is_wav=False to use the STEMS.",
                stacklevel=2,
            )
        is_wav = bool(n_wav)
    if n_stems + n_wav == 0:
        other = sorted({d for s in scans.values() for d in s["other_dirs"]})
        ignored = sorted({d for s in scans.values() for d in s["ignored"]})
        found = ""
        if other:
            found += f" Folders without {mixture_file}: {', '.join(other[:5])}{' ...' if len(other) > 5 else ''}."
        if ignored:
            found += f" Ignored hidden/thumbnail entries: {', '.join(ignored[:5])}."
        raise DatasetError(
            f"0 tracks found in {tried} (root {root}, {origin}).{found}\n"
            + _layout_help(root, subsets_l[0], source_files)
        )
    if is_wav and n_wav == 0:
        raise DatasetError(
            f"is_wav=True but {tried} holds no <track>/{mixture_file} folders; it holds "
            f"{n_stems} .stem.mp4 file(s), i.e. a STEMS tree: pass is_wav=False (or None to detect).\n"
            + _layout_help(root, subsets_l[0], source_files)
        )
    if not is_wav and n_stems == 0:
        raise DatasetError(
            f"is_wav=False but {tried} holds no .stem.mp4 files; it holds {n_wav} WAV track "
            "folder(s), i.e. a WAV/HQ tree: pass is_wav=True (or None to detect).\n"
            + _layout_help(root, subsets_l[0], source_files)
        )

    # The tracks we accept (musdb walks sub-folders recursively and would add junk as tracks).
    expected: set[str] = set()
    for subset, scan in scans.items():
        folder = root / subset
        if is_wav:
            for name in scan["wav"]:
                missing = [f for f in source_files.values() if not (folder / name / f).is_file()]
                if missing:
                    raise DatasetError(
                        f"WAV track folder {folder / name} lacks {', '.join(missing)}; every track "
                        f"needs {mixture_file} and {', '.join(source_files.values())}. Complete or "
                        "remove it (or list fewer sources in the root's own mus.yaml)."
                    )
                for file in [mixture_file, *source_files.values()]:
                    _probe_wav(folder / name / file)
                expected.add(os.path.normpath(str(folder / name / mixture_file)))
        else:
            for name in scan["stems"]:
                expected.add(os.path.normpath(str(folder / (name + _STEM_SUFFIX))))
        if is_wav and scan["stems"]:
            warnings.warn(f"{folder}: ignoring {len(scan['stems'])} .stem.mp4 file(s) (is_wav=True).", stacklevel=2)

    try:
        db = musdb.DB(
            root=str(root),
            setup_file=setup_file,
            is_wav=bool(is_wav),
            subsets=subsets_l,
            split=split,
            sample_rate=sample_rate,
        )
    except Exception as exc:  # ffprobe on a corrupt file, unreadable folder, ...
        bad = None if is_wav else _first_unreadable_stem(sorted(expected))
        if bad is not None:
            raise DatasetError(f"{bad[0]} cannot be read ({bad[1]}): the file is damaged or not a MUSDB18 "
                               "stem file. Replace it, or move it out of the tree.") from None
        raise DatasetError(f"musdb could not open {root}: {type(exc).__name__}: {exc}") from exc

    kept, seen = [], set()
    for track in db.tracks:
        path = os.path.normpath(str(track.path))
        if path in expected and path not in seen:
            seen.add(path)
            kept.append(track)
    db.tracks = kept
    db.mssbook_format = "wav" if is_wav else "stems"
    db.mssbook_subsets = subsets_l
    db.mssbook_split = split

    if not db.tracks:
        valid = setup.get("validation_tracks") or []
        src = f"{root / SETUP_FILE}" if setup_file else "musdb's configs/mus.yaml"
        raise DatasetError(
            f"0 tracks left in {tried} after split={split!r}: "
            + (
                f"none of the {n_stems + n_wav} track(s) is in the validation list of {src} "
                f"({len(valid)} names, e.g. {valid[0]!r})."
                if split == "valid" and valid
                else f"every track there is in the validation list of {src}."
            )
            + f" Use split=None, or write {root / SETUP_FILE} with your own validation_tracks "
            "(a complete copy of musdb's configs/mus.yaml)."
        )
    return db


def describe_musdb(db) -> dict[str, Any]:
    """A summary of an opened ``musdb.DB`` for the CLI and ``mssbook doctor``.

    Returns a dict with ``root``, ``format`` (``"wav"``/``"stems"``), ``sample_rate``,
    ``n_tracks``, ``total_seconds``, ``split`` and ``subsets``: for each subset its ``n_tracks``
    and ``total_seconds``, and for ``train`` also ``n_train``/``n_valid`` (the split according to
    the DB's validation list).
    """
    valid_names = set(db.setup.get("validation_tracks") or [])
    subsets: dict[str, dict[str, Any]] = {}
    total = 0.0
    for track in db.tracks:
        entry = subsets.setdefault(track.subset, {"n_tracks": 0, "total_seconds": 0.0})
        duration = float(track.duration or 0.0)
        entry["n_tracks"] += 1
        entry["total_seconds"] += duration
        total += duration
        if track.subset == "train":
            key = "n_valid" if track.name in valid_names else "n_train"
            entry[key] = entry.get(key, 0) + 1
    for entry in subsets.values():
        entry["total_seconds"] = round(entry["total_seconds"], 2)
        if "n_train" in entry or "n_valid" in entry:
            entry.setdefault("n_train", 0)
            entry.setdefault("n_valid", 0)
    fmt = getattr(db, "mssbook_format", "wav" if db.is_wav else "stems")
    rates = {t.rate for t in db.tracks if t.rate}
    return {
        "root": str(db.root),
        "format": fmt,
        "sample_rate": db.sample_rate or (rates.pop() if len(rates) == 1 else sorted(rates)),
        "n_tracks": len(db.tracks),
        "total_seconds": round(total, 2),
        "split": getattr(db, "mssbook_split", None),
        "subsets": subsets,
    }


def convert_to_wav(
    src,
    dst: str | os.PathLike,
    subsets: str | Iterable[str] | None = None,
    overwrite: bool = False,
    subtype: str = "PCM_16",
    progress: bool = True,
):
    """Decode a STEMS tree once into a WAV tree (the layout of MUSDB18-HQ), then train on that.

    Reading WAV excerpts costs milliseconds, decoding MP4 excerpts a large part of a training step
    (open-unmix's FAQ; pain point 3), so this is worth its disk space: about 10 MB per minute and
    file at 16 bit, i.e. about 30 GB for all of MUSDB18 (5 files per track). It does what musdb's
    ``musdbconvert`` does, with soundfile writes.

    Args:
        src: a STEMS root (opened with :func:`open_musdb`) or a ``musdb.DB`` of STEMS tracks.
        dst: the new root; gets ``<subset>/<track>/mixture.wav, vocals.wav, ...`` and a copy of the
            source root's ``mus.yaml`` if it has one.
        subsets: as in :func:`open_musdb` (None: both train and test).
        overwrite: re-decode tracks that already exist in ``dst``; otherwise they are skipped, so an
            interrupted conversion resumes where it stopped.
        subtype: soundfile subtype, ``"PCM_16"`` (like MUSDB18-HQ; samples beyond [-1, 1] are
            clipped) or ``"FLOAT"`` (exact, twice the size).
        progress: show a tqdm bar.

    Each track is written into a hidden temporary folder and renamed into place when complete, so
    ``dst`` never holds half a track (open_musdb ignores hidden folders). Returns ``Path(dst)``.
    """
    import shutil
    import tempfile

    import numpy as np
    import soundfile as sf

    from .sampler import ffmpeg_excerpts

    db = src if hasattr(src, "tracks") and hasattr(src, "setup") else open_musdb(src, subsets=subsets)
    if db.is_wav:
        raise DatasetError(f"{db.root} is already a WAV tree; convert_to_wav converts STEMS (.stem.mp4) trees.")
    dst = Path(dst).expanduser()
    dst.mkdir(parents=True, exist_ok=True)
    setup = Path(db.root) / SETUP_FILE
    if setup.is_file() and (overwrite or not (dst / SETUP_FILE).exists()):
        shutil.copyfile(setup, dst / SETUP_FILE)
    names = {"mixture": db.setup["mixture"], **db.setup["sources"]}  # stem -> file name
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        progress = False
    umask = os.umask(0)
    os.umask(umask)
    tracks = db.tracks
    bar = tqdm(tracks, desc="STEMS -> WAV", unit="track") if progress else tracks
    for track in bar:
        final = dst / track.subset / track.name
        if final.is_dir() and not overwrite:
            continue
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{track.name}.", suffix=".partial", dir=final.parent))
        try:
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the final folder should not be
            rate = int(round(track.rate))
            for stem, file_name in names.items():
                stream = int(db.setup["stem_ids"][stem])
                audio = ffmpeg_excerpts([(track.path, stream, 0)], None, rate)[0]  # (2, T)
                if subtype.upper().startswith("PCM"):
                    audio = np.clip(audio, -1.0, 1.0)
                sf.write(tmp / file_name, audio.T, rate, subtype=subtype)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dst
