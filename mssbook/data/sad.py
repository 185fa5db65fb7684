"""Source activity detection (SAD): where in a song does a source really play?

BSRNN (spec: architectures.md §4.4) trains only on *salient* excerpts of its target: a 6 s window
in which the vocals are silent teaches a vocals model little, and MUSDB18 vocals are silent for
about a third of every song. Before training, a preparation step scans every training track once
and lists the salient windows of the target stem in a text file; the sampler then draws its
target excerpts from inside those windows (:class:`mssbook.data.sampler.MUSDBTrainSet`,
``fragments=``). The Wavenet seed does the same for half of its fragments (§6.3).

The rule is that of the BSRNN seed (amanteur/BandSplitRNN-Pytorch, ``src/data/preprocessing.py:
SAD`` with ``conf/sad/default.yaml``; ``src/prepare_dataset.py`` writes the file). For one target
signal ``y`` (C, L) at rate ``sr``::

    y (C, L)
      -> windows of W = window_s * sr samples, hop H = W * (1 - overlap)   (C, S, W)
         (6 s, 50 % overlap; an incomplete last window is dropped)
      -> each window cut into n_chunks equal chunks                        (C, S, K, W/K)
      -> RMS of every chunk, digital silence (RMS 0) set to eps            (C, S, K)
      -> per window and channel: threshold = max(quantile_q(chunk RMS), gamma)
         (q = 0.15 over the window's own K chunks, gamma = 1e-3 = -60 dBFS)
      -> active = fraction of chunks whose RMS is strictly above it        (C, S)
      -> salient = active > min_active (0.5) in every channel              (S,)
      -> fragments: (start, start + W) of every salient window, in samples

Because the threshold is the window's own 15 % quantile, about 85 % of a window's chunks beat it
whenever their levels differ; so in practice a window is salient when more than half of its
chunks are louder than gamma (-60 dBFS RMS) in every channel. One quirk is kept on purpose: chunks
whose RMS *equals* the threshold do not count, so a perfectly stationary test signal (every chunk
exactly as loud as the others) is never salient; real recordings never tie.

File format (the seed's ``{target}_{train,valid,test}.txt``): one line per salient window,
``{track name}\\t{start}\\t{end}``, in samples at the track's own rate (44100 for MUSDB18), ``end``
exclusive; overlapping windows are listed separately, so a sampler that picks a line uniformly
weights doubly covered stretches twice, as the seed's dataset does. Tracks without any salient
window have no line.

Differences from the seed: windows whose length is not a multiple of ``n_chunks`` work (the chunks
then differ by one sample; the seed's ``torch.stack`` fails); the energies are computed in float64;
``overlap`` means overlap (the seed's ``overlap_ratio`` is the hop as a fraction of the window,
which is the same number at the default 0.5); a train subset opened without a split writes
``{target}_train.txt`` (the seed would name it ``_test.txt``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import soundfile as sf

from ..errors import DatasetError, MSSBookError
from ..utils import atomic_path

#: A fragment: (first sample, one past the last sample) at the track's rate.
Fragment = tuple[int, int]


@dataclass(frozen=True)
class SADParams:
    """The detector's settings; the defaults are the BSRNN seed's ``conf/sad/default.yaml``."""

    window_s: float = 6.0  # window length in seconds (seed window_size_in_sec)
    overlap: float = 0.5  # overlap of consecutive windows, 0 <= overlap < 1 (hop = (1 - overlap) W)
    n_chunks: int = 10  # chunks per window (seed n_chunks_per_segment)
    quantile: float = 0.15  # per-window threshold quantile (seed threshold_max_quantile)
    gamma: float = 1e-3  # floor of the threshold, linear RMS (seed gamma; -60 dBFS)
    min_active: float = 0.5  # a window needs more than this fraction of active chunks (seed threshold_segment)
    eps: float = 1e-5  # RMS given to digitally silent chunks (seed eps)

    def __post_init__(self) -> None:
        checks = [
            (self.window_s > 0, "window_s must be a positive number of seconds"),
            (0 <= self.overlap < 1, "overlap must lie in [0, 1)"),
            (int(self.n_chunks) == self.n_chunks and self.n_chunks >= 1, "n_chunks must be a whole number >= 1"),
            (0 <= self.quantile <= 1, "quantile must lie in [0, 1]"),
            (self.gamma >= 0, "gamma must be >= 0"),
            (0 <= self.min_active < 1, "min_active must lie in [0, 1)"),
            (self.eps >= 0, "eps must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message}; got {self}")

    def window(self, sr: int) -> int:
        """Window length in samples at rate ``sr``."""
        return int(round(self.window_s * sr))

    def hop(self, sr: int) -> int:
        """Samples between the starts of consecutive windows (at least 1)."""
        return max(1, int(round(self.window(sr) * (1.0 - self.overlap))))


# --------------------------------------------------------------------------------------------
# The rule, step by step
# --------------------------------------------------------------------------------------------


def _as_signal(y) -> np.ndarray:
    """(C, L) or (L,) numpy/torch audio as a (C, L) array (any float dtype)."""
    if hasattr(y, "detach"):  # torch tensor
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[None]
    if y.ndim != 2 or not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"expected a signal shaped (channels, samples) or (samples,), got {y.dtype} {y.shape}")
    return y


def window_starts(length: int, window: int, hop: int) -> np.ndarray:
    """First samples of the complete windows of a signal of ``length`` samples (torch ``unfold``)."""
    if length < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - window + 1, hop, dtype=np.int64)


def chunk_rms(y, window: int, hop: int, n_chunks: int) -> np.ndarray:
    """RMS of every chunk of every window: (C, L) -> (C, S, K) float64.

    Window ``s`` covers samples ``[s * hop, s * hop + window)``; its ``K = n_chunks`` chunks split
    it into equal parts (lengths differ by one sample when ``window`` is not a multiple of K).
    """
    y = _as_signal(y)
    if window < n_chunks:
        raise ValueError(f"a window of {window} samples cannot hold {n_chunks} chunks; use a longer window")
    starts = window_starts(y.shape[-1], window, hop)
    edges = np.round(np.linspace(0, window, n_chunks + 1)).astype(np.int64)  # chunk borders in a window
    rms = np.empty((y.shape[0], len(starts), n_chunks))
    for s, start in enumerate(starts):
        power = y[:, start : start + window].astype(np.float64) ** 2  # (C, W)
        rms[:, s] = np.sqrt(np.add.reduceat(power, edges[:-1], axis=-1) / np.diff(edges))  # (C, K)
    return rms


def salient_windows(rms: np.ndarray, params: SADParams | None = None) -> np.ndarray:
    """The seed's decision per window: (C, S, K) chunk RMS -> (S,) bool."""
    p = params or SADParams()
    if rms.shape[1] == 0:
        return np.zeros(0, dtype=bool)
    rms = np.where(rms == 0, p.eps, rms)  # digital silence
    threshold = np.quantile(rms, p.quantile, axis=-1, keepdims=True)  # (C, S, 1), linear interpolation
    threshold = np.maximum(threshold, p.gamma)  # never below -60 dBFS
    active = np.mean(rms > threshold, axis=-1)  # (C, S): fraction of chunks above the threshold
    return np.all(active > p.min_active, axis=0)  # (S,): salient in every channel


def find_salient_fragments(y, sr: int, params: SADParams | None = None, **overrides: Any) -> list[Fragment]:
    """Salient fragments of one target signal ``y`` (C, L) or (L,) at rate ``sr``.

    Returns ``[(start, end), ...]`` in samples (``end`` exclusive), one per salient window, in
    order; consecutive windows overlap. ``params`` (default: the seed's) can be adjusted with
    keyword overrides, e.g. ``find_salient_fragments(vocals, 44100, window_s=1.0)``.
    """
    p = dataclasses.replace(params or SADParams(), **overrides)
    if not (isinstance(sr, (int, np.integer)) or float(sr).is_integer()) or sr <= 0:
        raise ValueError(f"sr must be a positive whole number of samples per second, got {sr!r}")
    window, hop = p.window(int(sr)), p.hop(int(sr))
    y = _as_signal(y)
    starts = window_starts(y.shape[-1], window, hop)
    mask = salient_windows(chunk_rms(y, window, hop, p.n_chunks), p)
    return [(int(s), int(s) + window) for s in starts[mask]]


def merge_fragments(fragments: Iterable[Fragment]) -> list[Fragment]:
    """The union of (possibly overlapping) fragments as sorted, disjoint ``(start, end)`` pairs."""
    merged: list[list[int]] = []
    for start, end in sorted(fragments):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


# --------------------------------------------------------------------------------------------
# Over a MUSDB18 database
# --------------------------------------------------------------------------------------------


def _tracks(db) -> list:
    return list(db.tracks) if hasattr(db, "tracks") else list(db)


def target_audio(track, target: str) -> tuple[np.ndarray, int]:
    """The target stem of a musdb track at its own rate: ((C, L) float32, rate).

    A target is a weighted sum of sources (``track.targets``, musdb's setup: a source, or
    ``accompaniment``, ...). WAV files are read with soundfile, STEMS decoded with one ffmpeg call.
    """
    targets = track.targets or {}
    if target not in targets:
        raise DatasetError(f"track {track.name!r} has no target {target!r}; it has {', '.join(targets)}.")
    sources = targets[target].sources
    rate = int(round(track.rate))
    if track.is_wav:
        parts = []
        for source in sources:
            audio, file_rate = sf.read(source.path, dtype="float32", always_2d=True)
            if file_rate != rate:
                raise DatasetError(f"{source.path} is at {file_rate} Hz, the track's mixture at {rate} Hz.")
            parts.append(audio.T * np.float32(source.gain))
    else:
        from .sampler import ffmpeg_excerpts

        decoded = ffmpeg_excerpts([(track.path, int(s.stem_id), 0) for s in sources], None, rate)
        parts = [audio * np.float32(s.gain) for audio, s in zip(decoded, sources)]
    n = min(p.shape[-1] for p in parts)  # stems may differ by a few samples
    channels = min(p.shape[0] for p in parts)
    return np.sum([p[:channels, :n] for p in parts], axis=0, dtype=np.float32), rate


def detect_fragments(db, target: str = "vocals", params: SADParams | None = None, progress: bool = False,
                     **overrides: Any) -> dict[str, list[Fragment]]:
    """Salient fragments of ``target`` in every track of ``db`` (a ``musdb.DB`` or a list of its tracks).

    Returns ``{track name: [(start, end), ...]}`` in the DB's track order, samples at each track's
    rate; tracks without salient windows map to ``[]``.
    """
    p = dataclasses.replace(params or SADParams(), **overrides)
    tracks = _tracks(db)
    if not tracks:
        raise DatasetError("no tracks to scan for source activity.")
    if progress:
        from tqdm.auto import tqdm

        tracks = tqdm(tracks, desc=f"SAD {target}", unit="track")
    out = {}
    for track in tracks:
        audio, rate = target_audio(track, target)
        out[track.name] = find_salient_fragments(audio, rate, p)
    return out


# --------------------------------------------------------------------------------------------
# The file
# --------------------------------------------------------------------------------------------


def sad_filename(target: str, subset: str = "train", split: str | None = "train") -> str:
    """The seed's file name: ``{target}_train.txt``, ``{target}_valid.txt`` or ``{target}_test.txt``."""
    if subset == "test":
        return f"{target}_test.txt"
    return f"{target}_{'valid' if split == 'valid' else 'train'}.txt"


def write_fragments(fragments: Mapping[str, Iterable[Fragment]], path: str | os.PathLike,
                    overwrite: bool = False) -> Path:
    """Write ``{track: [(start, end), ...]}`` as ``track<TAB>start<TAB>end`` lines (atomic write).

    An existing file is an :class:`~mssbook.errors.OutputExistsError` unless ``overwrite``.
    """
    lines = []
    for name, pairs in fragments.items():
        if not name or any(c in name for c in "\t\r\n"):
            raise ValueError(f"track name {name!r} cannot be written: it is empty or holds a tab or newline.")
        for start, end in pairs:
            start, end = int(start), int(end)
            if not 0 <= start < end:
                raise ValueError(f"fragment ({start}, {end}) of {name!r} is not 0 <= start < end.")
            lines.append(f"{name}\t{start}\t{end}\n")
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")
    return path


def read_fragments(path: str | os.PathLike) -> dict[str, list[Fragment]]:
    """Read a SAD file back: ``{track: [(start, end), ...]}`` in file order (blank lines are skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"SAD file {path} does not exist; make it with `mssbook prepare-sad`.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"SAD file {path} could not be read: {exc}") from None
    out: dict[str, list[Fragment]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            if len(fields) != 3 or not fields[0]:
                raise ValueError("expected 3 tab-separated fields: track name, start, end")
            start, end = int(fields[1]), int(fields[2])
            if not 0 <= start < end:
                raise ValueError("expected 0 <= start < end")
        except ValueError as exc:
            raise DatasetError(
                f"{path}, line {number}: {exc}, got {line!r}. Each line must read "
                "'<track name>\\t<start sample>\\t<end sample>'; regenerate the file with `mssbook prepare-sad`."
            ) from None
        out.setdefault(fields[0], []).append((start, end))
    return out


# --------------------------------------------------------------------------------------------
# mssbook prepare-sad
# --------------------------------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``mssbook prepare-sad`` to ``parser`` (and ``func=run_cli``)."""
    parser.description = (
        "Source activity detection (BSRNN): list the salient windows of a target stem in every "
        "track, as '{track}\\t{start}\\t{end}' lines (samples at the track rate) in "
        "OUTDIR/{target}_{train,valid,test}.txt, for MUSDBTrainSet(fragments=...)."
    )
    d = SADParams()
    parser.add_argument("--root", type=Path, default=None,
                        help="MUSDB18 folder holding train/ and test/ (default: $MUSDB_PATH)")
    parser.add_argument("-t", "--target", "--targets", dest="targets", nargs="+", default=["vocals"],
                        metavar="TARGET", help="target stem(s), one file each (default: vocals)")
    parser.add_argument("--subset", choices=("train", "test"), default="train", help="default: train")
    parser.add_argument("--split", choices=("train", "valid", "all"), default="train",
                        help="with --subset train: musdb's train or validation split, or all tracks (default: train)")
    parser.add_argument("--is-wav", action="store_true", default=None,
                        help="the root is a WAV/HQ tree (default: detect)")
    parser.add_argument("-o", "--outdir", "--output-dir", dest="outdir", type=Path, required=True,
                        help="folder for the {target}_{split}.txt files")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite existing files")
    group = parser.add_argument_group("detector (defaults: the BSRNN seed's conf/sad/default.yaml)")
    group.add_argument("--window", dest="window_s", type=float, default=d.window_s,
                       help=f"window length in seconds (default {d.window_s:g})")
    group.add_argument("--overlap", type=float, default=d.overlap, help=f"window overlap (default {d.overlap:g})")
    group.add_argument("--chunks", dest="n_chunks", type=int, default=d.n_chunks,
                       help=f"chunks per window (default {d.n_chunks})")
    group.add_argument("--quantile", type=float, default=d.quantile,
                       help=f"threshold quantile of the window's chunk RMS (default {d.quantile:g})")
    group.add_argument("--gamma", type=float, default=d.gamma,
                       help=f"lowest threshold, linear RMS (default {d.gamma:g} = -60 dBFS)")
    group.add_argument("--min-active", type=float, default=d.min_active,
                       help=f"a window needs more than this fraction of active chunks (default {d.min_active:g})")
    group.add_argument("--eps", type=float, default=d.eps, help=f"RMS of digital silence (default {d.eps:g})")
    parser.set_defaults(func=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``mssbook prepare-sad``: one file per target, and a short summary per file."""
    from .musdb import open_musdb

    try:
        params = SADParams(window_s=args.window_s, overlap=args.overlap, n_chunks=args.n_chunks,
                           quantile=args.quantile, gamma=args.gamma, min_active=args.min_active, eps=args.eps)
    except ValueError as exc:
        raise MSSBookError(str(exc)) from None
    split = None if args.subset == "test" or args.split == "all" else args.split
    paths = {t: Path(args.outdir) / sad_filename(t, args.subset, split) for t in args.targets}
    for path in paths.values():  # refuse before any work
        if path.exists() and not args.force:
            raise MSSBookError(f"{path} already exists; pass --force to replace it, or choose another -o folder.")
    db = open_musdb(args.root, subsets=args.subset, split=split, is_wav=args.is_wav)
    total = sum(int(t.samples or 0) / float(t.rate or 1) for t in db.tracks)
    for target, path in paths.items():
        start = time.perf_counter()
        fragments = detect_fragments(db, target, params, progress=sys.stderr.isatty())
        write_fragments(fragments, path, overwrite=args.force)
        rates = {t.name: float(t.rate) for t in db.tracks}
        kept = sum(sum(b - a for a, b in merge_fragments(f)) / rates[name] for name, f in fragments.items())
        print(f"{path}: {len(fragments)} tracks ({sum(1 for f in fragments.values() if f)} with fragments), "
              f"{sum(len(f) for f in fragments.values())} fragments of {params.window_s:g} s; "
              f"{kept:.1f} s of {total:.1f} s kept ({100 * kept / max(total, 1e-9):.1f} %), "
              f"{time.perf_counter() - start:.1f} s")
    return 0


__all__ = [
    "Fragment",
    "SADParams",
    "chunk_rms",
    "configure_parser",
    "detect_fragments",
    "find_salient_fragments",
    "merge_fragments",
    "read_fragments",
    "run_cli",
    "sad_filename",
    "salient_windows",
    "target_audio",
    "window_starts",
    "write_fragments",
]
