"""Training and validation datasets that reproduce the seeds' MUSDB18 sampling.

The reference is Open-Unmix's ``openunmix/data.py: MUSDBDataset`` with the defaults of its
``scripts/train.py`` (spec: architectures.md §1.5), which X-UMX and D3Net copy:

* an epoch holds ``samples_per_track`` excerpts per track (64), so ``len = n_tracks * 64``, and
  item ``index`` belongs to track ``index // samples_per_track``;
* each excerpt lasts ``seq_dur`` seconds (6.0) and starts at a uniformly random offset;
* **random track mixing**: each source comes from a randomly chosen track at its own random
  offset, so the mixture is a new "song" that never existed (``--random-track-mix``);
* per-source augmentations applied before mixing: ``gain`` (uniform gain, U(0.25, 1.25) in UMX,
  U(0.75, 1.25) in D3Net's ``data.py``) and ``channelswap`` (swap left/right with p = 0.5);
* the mixture is the **sum of the augmented sources** (not MUSDB's real mixture, which differs
  from the sum because of AAC coding), the target is the augmented target source;
* validation uses full-length tracks, the real mixture, batch size 1.

Two deliberate differences from ``openunmix/data.py``:

* **Randomness is a pure function of (seed, epoch, index)**: every item draws from
  ``np.random.default_rng([seed, epoch, index])``. UMX seeds Python's global ``random`` once, so
  its excerpts depend on which worker draws what, and a DataLoader with ``num_workers > 0`` is not
  reproducible. Here ``num_workers=0`` and ``num_workers=8`` give identical batches, and
  :meth:`MUSDBTrainSet.set_epoch` changes the draw from one epoch to the next (call it before
  each epoch's ``iter(loader)``; with ``persistent_workers=True`` the workers would keep the old
  epoch, so leave that option off).
* **Balanced even with track mixing**: UMX redraws the track of *every* source when it mixes, so
  its ``index // samples_per_track`` track is then not used at all. Here the track of the first
  target's source stays the indexed one, and only the other sources come from random tracks, so
  each track's target material is seen ``samples_per_track`` times per epoch.

Extensions for the later seeds (all off by default, so the UMX sampling above is unchanged):

* ``fragments`` (BSRNN, architectures.md §4.4; Wavenet's ``extract_voice_percentage``, §6.3): a
  fraction ``fragment_p`` of the items take the first target's excerpt from inside a salient
  fragment of its track, as listed by source activity detection (:mod:`mssbook.data.sad`);
* ``silence_target_p`` (BSRNN): the first target's source is replaced by silence before mixing;
* the ``gain_db`` augmentation (BSRNN: uniform gain in dB, ±10 dB, per source);
* ``sample_rate``: excerpts (and validation tracks) are resampled with
  :func:`mssbook.signal.resample.resample`, so a 16 kHz model (Wavenet) trains on 44.1 kHz files.

Everything is a module-level class (no lambdas), so the datasets pickle and work with
``num_workers > 0`` under both the fork and the spawn start method (the Windows/macOS default;
open-unmix#121, #123).

Reading: the ``musdb.DB`` supplies the track list, paths and lengths; the audio is read here.
WAV trees at their native rate are read with soundfile, only the frames needed
(``start``/``frames``): about 3 ms per 6 s source. STEMS (``.stem.mp4``) excerpts are decoded by
:func:`ffmpeg_excerpts`: one ffmpeg process per item for all four sources (even from four
different songs), each seeked on the input side, so the cost does not grow with the offset
(about 0.15 s per item). musdb's own ``chunk_start``/``chunk_duration`` would start one ffmpeg
process (plus one ffprobe) per source and decode each file from its beginning up to the offset
(0.6 to 1 s per item on a 4-minute song). Even so, STEMS cost about as much as a training step on
2 CPU cores, the slowness UMX's FAQ warns about: for real training convert once with
:func:`mssbook.data.musdb.convert_to_wav` (or musdb's ``musdbconvert``), or use MUSDB18-HQ.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ..errors import AudioFileError, DatasetError
from ..signal.resample import resample
from .sad import read_fragments

#: The derived target that UMX also supports: the sum of every mixing source except the vocals.
ACCOMPANIMENT = "accompaniment"

#: Sampling settings of the seed recipes (pass as ``**SEED_PRESETS["d3net"]``). D3Net also trains
#: on all 100 train tracks (``split=None``, no validation split) and X-UMX uses batch 16 (NNabla)
#: or 14 (asteroid); batch size belongs to the DataLoader, split to :func:`open_musdb`.
SEED_PRESETS: dict[str, dict[str, Any]] = {
    # openunmix scripts/train.py + docs/training.md (architectures.md §1.5)
    "umx": dict(
        seq_dur=6.0,
        samples_per_track=64,
        random_track_mix=True,
        source_augmentations=("gain", "channelswap"),
        gain_range=(0.25, 1.25),
    ),
}
# x-umx/args.py and asteroid egs/musdb18/X-UMX (architectures.md §2.3): same as UMX
SEED_PRESETS["x-umx"] = dict(SEED_PRESETS["umx"])
# d3net/music-source-separation data.py (architectures.md §3.4): narrower gain range
SEED_PRESETS["d3net"] = dict(SEED_PRESETS["umx"], gain_range=(0.75, 1.25))
# BSRNN (architectures.md §4.4; magronp conf/dset/musdb18hq_sad.yaml, amanteur train_dataset):
# 3 s excerpts, 20 000 per epoch (about 233 per track for MUSDB18's 86 training tracks), random
# track mixing, gain ±10 dB per source, target silenced with p 0.1; pass the SAD file as
# ``fragments=`` (``mssbook prepare-sad``).
SEED_PRESETS["bsrnn"] = dict(
    seq_dur=3.0,
    samples_per_track=233,
    random_track_mix=True,
    source_augmentations=("gain_db",),
    gain_db_range=(-10.0, 10.0),
    silence_target_p=0.1,
)


# --------------------------------------------------------------------------------------------
# Augmentations: module-level classes, so that they pickle. Each one first draws its random
# parameters from the item's generator (``draw``), then applies them (``apply``); the split lets
# ``MUSDBTrainSet.describe_item`` say exactly what was done to each source.
# --------------------------------------------------------------------------------------------


class Gain:
    """Multiply a source by a gain drawn uniformly from ``[low, high]`` (UMX ``_augment_gain``)."""

    name = "gain"

    def __init__(self, low: float = 0.25, high: float = 1.25):
        if not 0 <= low <= high:
            raise ValueError(f"gain range must satisfy 0 <= low <= high, got ({low}, {high})")
        self.low, self.high = float(low), float(high)

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def apply(self, audio: np.ndarray, gain: float) -> np.ndarray:
        return audio * np.float32(gain)

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(audio, self.draw(rng))

    def __repr__(self) -> str:
        return f"Gain({self.low}, {self.high})"


class ChannelSwap:
    """Swap the two channels of a stereo source with probability ``p`` (UMX ``_augment_channelswap``)."""

    name = "channelswap"

    def __init__(self, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"channelswap probability must lie in [0, 1], got {p}")
        self.p = float(p)

    def draw(self, rng: np.random.Generator) -> bool:
        return bool(rng.random() < self.p)  # always draw, so later draws do not depend on the result

    def apply(self, audio: np.ndarray, swap: bool) -> np.ndarray:
        return audio[::-1] if swap and audio.shape[0] == 2 else audio

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(audio, self.draw(rng))

    def __repr__(self) -> str:
        return f"ChannelSwap(p={self.p})"


class GainDB:
    """Multiply a source by ``10 ** (g / 20)``, ``g`` drawn uniformly from ``[low_db, high_db]`` dB.

    BSRNN's per-source gain (magronp ``_augment_rescale_db``, ±10 dB). ``describe_item`` reports
    the gain in dB.
    """

    name = "gain_db"

    def __init__(self, low_db: float = -10.0, high_db: float = 10.0):
        if not low_db <= high_db:
            raise ValueError(f"gain_db range must satisfy low <= high (in dB), got ({low_db}, {high_db})")
        self.low_db, self.high_db = float(low_db), float(high_db)

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low_db, self.high_db))

    def apply(self, audio: np.ndarray, gain_db: float) -> np.ndarray:
        return audio * np.float32(10.0 ** (gain_db / 20.0))

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(audio, self.draw(rng))

    def __repr__(self) -> str:
        return f"GainDB({self.low_db}, {self.high_db})"


#: Augmentation names accepted in ``source_augmentations`` (UMX's ``--source-augmentations`` names,
#: and BSRNN's ``gain_db``); underscores and dashes are ignored when matching.
AUGMENTATIONS = {"gain": Gain, "channelswap": ChannelSwap, "gain_db": GainDB}


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def build_augmentations(
    names: Iterable[Any] | None,
    gain_range: tuple[float, float] = (0.25, 1.25),
    gain_db_range: tuple[float, float] = (-10.0, 10.0),
) -> tuple:
    """Turn names like ``("gain", "channelswap")`` into augmentation objects.

    ``gain`` uses ``gain_range`` (linear), ``gain_db`` uses ``gain_db_range`` (dB). Items may also
    be objects with ``draw(rng)`` and ``apply(audio, params)`` methods (module-level classes, so
    that they pickle).
    """
    known = {_key(name): cls for name, cls in AUGMENTATIONS.items()}
    out = []
    for item in names or ():
        if isinstance(item, str):
            cls = known.get(_key(item))
            if cls is None:
                raise ValueError(
                    f"unknown augmentation {item!r}; choose from {', '.join(AUGMENTATIONS)} "
                    "or pass an object with draw(rng) and apply(audio, params) methods."
                )
            out.append(Gain(*gain_range) if cls is Gain else GainDB(*gain_db_range) if cls is GainDB else cls())
        elif hasattr(item, "draw") and hasattr(item, "apply"):
            out.append(item)
        else:
            raise ValueError(f"augmentation {item!r} is neither a name nor an object with draw/apply.")
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Reading audio
# --------------------------------------------------------------------------------------------


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """Crop or zero-pad ``audio`` (..., L') on the right to (..., length)."""
    if audio.shape[-1] >= length:
        return audio[..., :length]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, length - audio.shape[-1])]
    return np.pad(audio, pad)


def _stereo(audio: np.ndarray) -> np.ndarray:
    """(C, L) -> (2, L): mono is duplicated, extra channels dropped (UMX ``_augment_force_stereo``)."""
    if audio.shape[0] == 2:
        return audio
    if audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    return audio[:2]


#: Seconds decoded before each excerpt and thrown away, so that the AAC decoder is warmed up and
#: the excerpt equals the same stretch of a full decode exactly.
PREROLL_S = 0.1


def ffmpeg_excerpts(
    requests: Sequence[tuple[str, int, int]],
    length: int | None,
    sample_rate: int,
) -> np.ndarray:
    """Decode several excerpts in **one** ffmpeg process: ``requests`` = ``[(path, stream, start), ...]``.

    ``stream`` is the audio-stream index in the file (MUSDB18 STEMS: 0 mixture, 1 drums, 2 bass,
    3 other, 4 vocals; a WAV file: 0), ``start`` and ``length`` count samples at ``sample_rate``
    (ffmpeg resamples when a file's rate differs). ``length=None`` reads to the end (the shortest
    request then sets the length). Returns (len(requests), 2, length) float32, each excerpt
    forced to stereo and zero-padded past the end of its file.

    Each input is seeked on the input side (the cost does not grow with the offset) to
    ``PREROLL_S`` before its excerpt, and the pre-roll is trimmed sample-exactly after decoding,
    which gives the same samples as decoding the whole file (checked on MUSDB18 files; only bands
    an encoder coded as noise, AAC "PNS", decode to different noise). musdb's own chunk reading
    (``Track.chunk_start`` through ``stempeg.read_stems``) seeks on the output side, i.e. decodes
    from the beginning of the file up to the offset, runs an extra ffprobe and one ffmpeg process
    per source; process start-up dominates, so one process per item is the main saving here.
    """
    import subprocess

    from ..errors import AudioFileError

    sr = int(sample_rate)
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error"]
    chains = []
    for i, (path, stream, start) in enumerate(requests):
        pre = min(int(start), int(round(PREROLL_S * sr)))  # samples of pre-roll
        if start - pre > 0:
            cmd += ["-ss", f"{(start - pre) / sr:.6f}"]
        cmd += ["-i", str(path)]
        chain = f"[{i}:a:{int(stream)}]aresample={sr},aformat=sample_fmts=flt:channel_layouts=stereo"
        if pre > 0:
            chain += f",atrim=start_sample={pre},asetpts=PTS-STARTPTS"
        if length is not None:
            chain += ",apad"  # a short file: zeros, and the other inputs keep going
        chains.append(chain)
    k = len(requests)
    if k == 1:
        graph = chains[0] + "[out]"
    else:
        graph = ";".join(f"{c}[s{i}]" for i, c in enumerate(chains))
        graph += ";" + "".join(f"[s{i}]" for i in range(k)) + f"amerge=inputs={k}[out]"
    cmd += ["-filter_complex", graph, "-map", "[out]"]
    if length is not None:  # a little more than needed (ffmpeg's -t can fall short), cut below
        cmd += ["-t", f"{(length + 4096) / sr:.6f}"]
    cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    except OSError as exc:
        raise AudioFileError(f"could not start ffmpeg to decode {requests[0][0]}: {exc}") from exc
    if proc.returncode != 0:
        last = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        files = ", ".join(sorted({str(r[0]) for r in requests}))
        raise AudioFileError(f"ffmpeg could not decode {files}: {last[0]}")
    raw = np.frombuffer(proc.stdout, dtype="<f4")
    raw = raw[: raw.size - raw.size % (2 * k)].reshape(-1, k, 2)  # (L, K, 2), interleaved
    if length is not None:
        raw = raw[:length]
    audio = np.ascontiguousarray(raw.transpose(1, 2, 0), dtype=np.float32)  # (K, 2, L)
    return audio if length is None else _fit(audio, length)


def _as_db(db, split_default: str | None, open_kwargs: dict):
    """A musdb.DB from a DB, a root path, or None (``$MUSDB_PATH``) plus :func:`open_musdb` kwargs."""
    if hasattr(db, "tracks") and hasattr(db, "setup"):
        if open_kwargs:
            raise TypeError(f"{sorted(open_kwargs)} only apply when a root is given, not a musdb.DB")
        return db
    from .musdb import open_musdb

    kwargs = {"subsets": "train", "split": split_default, **open_kwargs}
    return open_musdb(root=db, **kwargs)


def _check_sample_rate(sample_rate) -> int | None:
    """The items' rate as an int (None: keep the read rate)."""
    if sample_rate is None:
        return None
    try:
        ok = not isinstance(sample_rate, bool) and float(sample_rate) > 0 and float(sample_rate).is_integer()
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"sample_rate must be a positive whole number of Hz or None, not {sample_rate!r}")
    return int(sample_rate)


class _MUSDBBase(Dataset):
    """Shared bookkeeping: tracks, targets, sample rates, and fast excerpt reads.

    Three rates: ``native_rate`` (the files), ``read_rate`` (what excerpts are read at: the
    native rate, or the ``musdb.DB``'s own ``sample_rate``, through ffmpeg) and ``sample_rate``
    (the items; differs from ``read_rate`` only when the ``sample_rate`` argument asks for it, and
    then every read is resampled with :func:`mssbook.signal.resample.resample`). Offsets and
    ``lengths`` count samples at ``read_rate``.
    """

    def __init__(self, db, targets, sources, split_default, open_kwargs, sample_rate=None):
        sample_rate = _check_sample_rate(sample_rate)
        self.db = _as_db(db, split_default, open_kwargs)
        self.tracks = list(self.db.tracks)
        if not self.tracks:
            raise DatasetError(f"the musdb.DB at {self.db.root} holds no tracks.")
        available = list(self.db.setup["sources"])
        self.sources = tuple(available if sources is None else ([sources] if isinstance(sources, str) else sources))
        for s in self.sources:
            if s not in available:
                raise ValueError(f"unknown source {s!r}; this dataset has the sources {', '.join(available)}.")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"sources repeat a name: {self.sources}")
        self.single_target = isinstance(targets, str)
        self.targets = (targets,) if self.single_target else tuple(targets)
        if not self.targets:
            raise ValueError("targets is empty; name one source (str) or several (sequence).")
        for t in self.targets:
            if t not in self.sources and t != ACCOMPANIMENT:
                raise ValueError(
                    f"unknown target {t!r}; targets must be among the mixing sources "
                    f"{', '.join(self.sources)} or {ACCOMPANIMENT!r}."
                )
        if ACCOMPANIMENT in self.targets and not [s for s in self.sources if s != "vocals"]:
            raise ValueError(f"{ACCOMPANIMENT!r} needs at least one mixing source besides vocals.")
        for track in self.tracks:
            missing = [s for s in self.sources if s not in (track.sources or {})]
            if missing:
                raise DatasetError(f"track {track.name!r} ({track.path}) lacks the source(s) {', '.join(missing)}.")

        rates = {int(round(t.rate)) for t in self.tracks if t.rate}
        if len(rates) != 1:
            raise DatasetError(f"tracks of {self.db.root} have mixed or unknown sample rates {sorted(rates)}.")
        self.native_rate = rates.pop()
        self.read_rate = int(round(self.db.sample_rate)) if self.db.sample_rate else self.native_rate
        self.sample_rate = self.read_rate if sample_rate is None else sample_rate
        #: True when excerpts are read with soundfile (WAV tree at its native rate); else with ffmpeg.
        self.direct = bool(self.db.is_wav) and self.read_rate == self.native_rate
        self.lengths = np.array([self._track_length(t) for t in self.tracks], dtype=np.int64)

    def _track_length(self, track) -> int:
        """Samples usable from every mixing source, at the read rate."""
        if self.direct:
            return min(sf.info(track.sources[s].path).frames for s in self.sources)
        if not track.samples:
            raise DatasetError(f"track {track.name!r}: {track.path} is missing or holds no audio.")
        return int(track.samples * self.read_rate // self.native_rate)

    def _read_length(self, length: int) -> int:
        """Samples to read at ``read_rate`` so that resampling gives at least ``length`` samples."""
        return -(-length * self.read_rate // self.sample_rate)

    def _to_sample_rate(self, audio: np.ndarray, length: int | None) -> np.ndarray:
        """A read (C, n) at ``read_rate`` -> (C, length) at ``sample_rate`` (``None``: all it gives)."""
        if self.sample_rate == self.read_rate:
            return audio
        audio = resample(audio, self.read_rate, self.sample_rate)
        return audio if length is None else _fit(audio, length)

    def _stream(self, t: int, name: str) -> tuple[str, int]:
        """(file, audio-stream index) holding stem ``name`` (a source or ``"mixture"``) of track ``t``."""
        track = self.tracks[t]
        if track.is_wav:
            return (track.path if name == "mixture" else track.sources[name].path), 0
        return track.path, int(self.db.setup["stem_ids"][name])

    def _read(self, picks: Sequence[tuple[str, int, int]], length: int | None) -> list[np.ndarray]:
        """Read stems: ``picks`` = ``[(name, track, offset), ...]`` -> list of (2, length) float32.

        WAV at its native rate: soundfile reads just those frames (``length=None``: to the end).
        Otherwise (STEMS, or a DB opened with its own ``sample_rate``): one ffmpeg process for all
        picks (:func:`ffmpeg_excerpts`). Offsets and ``length`` count samples at ``read_rate``.
        """
        if not self.direct:
            requests = [(*self._stream(t, name), offset) for name, t, offset in picks]
            return list(ffmpeg_excerpts(requests, length, self.read_rate))
        out = []
        for name, t, offset in picks:
            path, _ = self._stream(t, name)
            audio, _ = sf.read(path, start=offset, frames=-1 if length is None else length,
                               dtype="float32", always_2d=True)  # (L, C)
            audio = _stereo(np.ascontiguousarray(audio.T))  # (C, L)
            out.append(audio if length is None else _fit(audio, length))
        return out

    def _stack_targets(self, stems: dict[str, np.ndarray]) -> np.ndarray:
        """(C, L) for one target, (n_targets, C, L) for a sequence."""
        ys = []
        for name in self.targets:
            if name == ACCOMPANIMENT:
                ys.append(np.sum([stems[s] for s in self.sources if s != "vocals"], axis=0))
            else:
                ys.append(stems[name])
        return ys[0] if self.single_target else np.stack(ys)

    @property
    def track_names(self) -> list[str]:
        return [t.name for t in self.tracks]


class MUSDBTrainSet(_MUSDBBase):
    """Random excerpts of MUSDB18 tracks, remixed and augmented as in Open-Unmix's training.

    Args:
        db: a ``musdb.DB`` (e.g. from :func:`mssbook.data.musdb.open_musdb`), or a root path, or
            None for ``$MUSDB_PATH``; a path is opened with ``subsets="train", split="train"``
            unless ``open_kwargs`` say otherwise (D3Net trains with ``split=None``).
        targets: one source name (``"vocals"``; the item's target is then (C, L)) or a sequence
            (``("vocals", "drums", "bass", "other")``; the target is (n_targets, C, L)), among
            ``sources`` or ``"accompaniment"``.
        sources: the sources summed into the mixture; default all four of the DB's setup.
        seq_dur: excerpt length in seconds (UMX 6.0). Tracks shorter than that are zero-padded.
        samples_per_track: excerpts per track per epoch (UMX 64); ``len = n_tracks * samples_per_track``.
        random_track_mix: draw the non-anchor sources from random tracks at their own offsets
            (UMX ``--random-track-mix``); False takes all sources from the indexed track at one offset.
        source_augmentations: names (``"gain"``, ``"channelswap"``, ``"gain_db"``) or augmentation
            objects, applied to each source in that order before mixing.
        gain_range: the ``gain`` augmentation's uniform range (UMX (0.25, 1.25), D3Net (0.75, 1.25)).
        gain_db_range: the ``gain_db`` augmentation's uniform range in dB (BSRNN (-10, 10)).
        fragments: salient fragments of the first target (source activity detection, BSRNN): None
            (off), a ``{track name: [(start, end), ...]}`` dict, or the path of a SAD file
            (:func:`mssbook.data.sad.read_fragments`, made by ``mssbook prepare-sad``). Samples at
            the files' own rate, ``end`` exclusive; names of tracks outside the DB are ignored.
        fragment_p: fraction of the items whose anchor excerpt comes from a fragment (BSRNN 1.0,
            the Wavenet singing-voice model 0.5); ignored without ``fragments``.
        silence_target_p: probability that the first target is replaced by silence before mixing
            (BSRNN 0.1): the mixture is then the sum of the other sources and that target is zero.
            For ``"accompaniment"``, all of its sources are silenced.
        sample_rate: the items' rate; None keeps the read rate (the files' rate, or the one the
            ``musdb.DB`` was opened with). When it differs, every source excerpt is read at the
            read rate, just long enough, resampled with :func:`mssbook.signal.resample.resample`
            and cut to ``round(seq_dur * sample_rate)`` samples; WAV files are still read with
            soundfile (faster than ``open_musdb(sample_rate=...)``, which decodes through ffmpeg).
        seed: base seed; item ``i`` of epoch ``e`` draws from ``default_rng([seed, e, i])``.
        **open_kwargs: passed to :func:`open_musdb` when ``db`` is a path (``is_wav``,
            ``split``, ``subsets``, ``download``).

    Fragment items: with probability ``fragment_p`` an item takes its anchor from a fragment. The
    anchor track is the indexed one if it has fragments; tracks without any are skipped for these
    items (the anchor then comes from a track drawn uniformly among those with fragments; the
    other items still use them). A fragment of that track is chosen uniformly, then an offset
    uniformly among those that keep the excerpt inside the fragment. A fragment shorter than the
    excerpt is covered whole instead: the offset is uniform among those whose excerpt contains
    the fragment (and stays inside the track). The other sources follow the usual rules (without
    track mixing they share the anchor's offset).

    Items: ``(mixture, target)`` float32 tensors; mixture (C, L) with C = 2 and
    L = round(seq_dur * sample_rate); the mixture equals the sum of the augmented sources.
    """

    def __init__(
        self,
        db=None,
        targets: str | Sequence[str] = "vocals",
        *,
        sources: Sequence[str] | None = None,
        seq_dur: float = 6.0,
        samples_per_track: int = 64,
        random_track_mix: bool = True,
        source_augmentations: Iterable[Any] | None = ("gain", "channelswap"),
        gain_range: tuple[float, float] = (0.25, 1.25),
        gain_db_range: tuple[float, float] = (-10.0, 10.0),
        fragments: Mapping[str, Sequence[tuple[int, int]]] | str | os.PathLike | None = None,
        fragment_p: float = 1.0,
        silence_target_p: float = 0.0,
        sample_rate: int | None = None,
        seed: int = 42,
        **open_kwargs,
    ):
        super().__init__(db, targets, sources, "train", open_kwargs, sample_rate)
        if not (seq_dur and seq_dur > 0):
            raise ValueError(f"seq_dur must be a positive number of seconds, not {seq_dur!r}; "
                             "use MUSDBValidSet for full tracks.")
        if int(samples_per_track) < 1:
            raise ValueError(f"samples_per_track must be >= 1, not {samples_per_track!r}")
        for name, p in (("fragment_p", fragment_p), ("silence_target_p", silence_target_p)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], not {p!r}")
        self.seq_dur = float(seq_dur)
        self.seq_len = int(round(self.seq_dur * self.sample_rate))  # samples per item
        self.read_len = self._read_length(self.seq_len)  # samples read per source, at read_rate
        self.samples_per_track = int(samples_per_track)
        self.random_track_mix = bool(random_track_mix)
        self.augmentations = build_augmentations(source_augmentations, gain_range, gain_db_range)
        self.fragment_p = float(fragment_p)
        self.silence_target_p = float(silence_target_p)
        self.seed = int(seed)
        self.epoch = 0
        # The source whose track is the indexed one (balanced sampling), see the module docstring.
        first = self.targets[0]
        self.anchor = first if first in self.sources else next(s for s in self.sources if s != "vocals")
        #: the sources that make up the first target (silenced together)
        self.first_target_sources = (first,) if first in self.sources else tuple(s for s in self.sources if s != "vocals")
        self.fragment_file = str(fragments) if isinstance(fragments, (str, os.PathLike)) else None
        #: per track, its fragments as an (n, 2) int64 array at read_rate (None: fragments off)
        self.fragments = None if fragments is None else self._load_fragments(fragments)
        self.fragment_tracks = (np.zeros(0, dtype=np.int64) if self.fragments is None else
                                np.array([t for t, f in enumerate(self.fragments) if len(f)], dtype=np.int64))

    def _load_fragments(self, fragments) -> list[np.ndarray]:
        """Fragments per track, converted to ``read_rate`` samples and clipped to the track."""
        where = self.fragment_file or "the fragments dict"
        if self.fragment_file is not None:
            fragments = read_fragments(self.fragment_file)
        elif not isinstance(fragments, Mapping):
            raise ValueError("fragments must be None, a {track name: [(start, end), ...]} dict or the path "
                             f"of a SAD file, not {type(fragments).__name__}")
        out = []
        for t, track in enumerate(self.tracks):
            try:
                pairs = np.array(fragments.get(track.name) or [], dtype=np.int64).reshape(-1, 2)
            except (TypeError, ValueError):
                raise DatasetError(f"{where}: the fragments of {track.name!r} are not (start, end) pairs "
                                   "of whole samples.") from None
            if np.any(pairs[:, 0] < 0) or np.any(pairs[:, 1] <= pairs[:, 0]):
                raise DatasetError(f"{where}: a fragment of {track.name!r} is not 0 <= start < end.")
            if self.read_rate != self.native_rate:  # the file counts samples at the files' own rate
                pairs = np.stack([-(-pairs[:, 0] * self.read_rate // self.native_rate),
                                  pairs[:, 1] * self.read_rate // self.native_rate], axis=1)
            n = int(self.lengths[t])
            if len(pairs) and pairs[:, 0].max() >= n:
                raise DatasetError(
                    f"{where}: a fragment of {track.name!r} starts at sample {pairs[:, 0].max()}, past the "
                    f"end of the track ({n} samples at {self.read_rate} Hz). Was it made from other "
                    "files or at another sample rate? Make it again with `mssbook prepare-sad`."
                )
            pairs[:, 1] = np.minimum(pairs[:, 1], n)
            out.append(pairs[pairs[:, 1] > pairs[:, 0]])
        if not any(len(p) for p in out):
            named = sorted(fragments)[:2]
            raise DatasetError(
                f"{where} has no fragment for any of the {len(self.tracks)} tracks of {self.db.root} "
                f"(it names {len(fragments)} track(s){', e.g. ' + repr(named[0]) if named else ''}). Was it "
                "made for another subset, split or target? Make it with `mssbook prepare-sad`."
            )
        return out

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's draw. Call before ``iter(loader)`` (workers copy the dataset then)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.tracks) * self.samples_per_track

    def _draw_fragment(self, track: int, rng: np.random.Generator) -> tuple[int, tuple[int, int], int]:
        """(track, fragment, offset) of a fragment item whose indexed track is ``track``."""
        if not len(self.fragments[track]):  # skipped: no fragments here
            track = int(self.fragment_tracks[rng.integers(len(self.fragment_tracks))])
        frags = self.fragments[track]
        start, end = (int(v) for v in frags[rng.integers(len(frags))])
        L = self.read_len
        if end - start >= L:  # the excerpt fits inside the fragment
            lo, hi = start, end - L
        else:  # the excerpt covers the whole fragment, inside the track
            lo, hi = max(end - L, 0), min(start, max(int(self.lengths[track]) - L, 0))
        return track, (start, end), int(rng.integers(lo, hi + 1))

    def describe_item(self, index: int) -> list[dict[str, Any]]:
        """The random choices behind item ``index`` of the current epoch, one dict per source.

        Each dict has ``source``, ``track`` (index into ``self.tracks``), ``name`` (track name),
        ``offset`` (first sample, at ``read_rate``), ``augment`` (a list of ``(augmentation name,
        parameter)``, e.g. ``("gain", 0.83)``, ``("gain_db", -3.1)``, ``("channelswap", True)``),
        ``fragment`` (the anchor of a fragment item: its ``(start, end)`` at ``read_rate``; else
        None) and ``silenced`` (True for the first target's sources when they are replaced by
        silence). ``__getitem__`` follows exactly this plan.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        anchor_track = index // self.samples_per_track
        L = self.read_len

        def offset_in(t: int) -> int:
            return int(rng.integers(0, max(int(self.lengths[t]) - L, 0) + 1))

        # Draws only happen for the features that are on, so the default plan is UMX's.
        fragment = anchor_offset = None
        if self.fragments is not None and rng.random() < self.fragment_p:
            anchor_track, fragment, anchor_offset = self._draw_fragment(anchor_track, rng)
        shared_offset = None
        if not self.random_track_mix:
            shared_offset = anchor_offset if fragment is not None else offset_in(anchor_track)
        plan = []
        for source in self.sources:  # fixed order, so the draws are reproducible
            if self.random_track_mix:
                t = anchor_track if source == self.anchor else int(rng.integers(len(self.tracks)))
                offset = anchor_offset if fragment is not None and source == self.anchor else offset_in(t)
            else:
                t, offset = anchor_track, shared_offset
            augment = [(aug.name if hasattr(aug, "name") else type(aug).__name__, aug.draw(rng)) for aug in self.augmentations]
            plan.append({"source": source, "track": t, "name": self.tracks[t].name, "offset": offset, "augment": augment,
                         "fragment": fragment if source == self.anchor else None, "silenced": False})
        if self.silence_target_p > 0 and rng.random() < self.silence_target_p:
            for p in plan:
                p["silenced"] = p["source"] in self.first_target_sources
        return plan

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The excerpt ``index``; one whose file cannot be read (damaged or removed since the dataset
        was opened) is skipped with a warning naming the file, and the next one is returned."""
        for attempt in range(len(self)):
            try:
                return self._item((index + attempt) % len(self))
            except (sf.LibsndfileError, AudioFileError, OSError) as exc:
                warnings.warn(f"skipping training excerpt {(index + attempt) % len(self)}: {exc}. "
                              "Replace the damaged file (or remove its track) and train again.", stacklevel=2)
        raise DatasetError("no training excerpt could be read: every file failed (see the warnings above).")

    def _item(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        plan = self.describe_item(index)
        raw = self._read([(p["source"], p["track"], p["offset"]) for p in plan], self.read_len)  # [(C, L')] * S
        stems = {}
        for p, audio in zip(plan, raw):
            audio = self._to_sample_rate(audio, self.seq_len)  # (C, L)
            if p["silenced"]:
                audio = np.zeros_like(audio)
            for aug, (_, param) in zip(self.augmentations, p["augment"]):
                audio = aug.apply(audio, param)
            stems[p["source"]] = np.ascontiguousarray(audio, dtype=np.float32)
        mixture = np.sum([stems[s] for s in self.sources], axis=0, dtype=np.float32)  # (C, L)
        target = self._stack_targets(stems)  # (C, L) or (n_targets, C, L)
        return torch.from_numpy(mixture), torch.from_numpy(np.ascontiguousarray(target))

    def __repr__(self) -> str:
        extras = ""
        if self.fragments is not None:
            extras += (f", fragments={self.fragment_file or 'dict'} ({len(self.fragment_tracks)} tracks), "
                       f"fragment_p={self.fragment_p}")
        if self.silence_target_p:
            extras += f", silence_target_p={self.silence_target_p}"
        if self.sample_rate != self.read_rate:
            extras += f", resampled from {self.read_rate} Hz"
        return (
            f"MUSDBTrainSet({len(self.tracks)} tracks x {self.samples_per_track} = {len(self)} excerpts of "
            f"{self.seq_dur} s at {self.sample_rate} Hz, targets={list(self.targets)}, "
            f"random_track_mix={self.random_track_mix}, augmentations={list(self.augmentations)}{extras}, "
            f"seed={self.seed}, epoch={self.epoch}, reader={'soundfile' if self.direct else 'ffmpeg'})"
        )


class MUSDBValidSet(_MUSDBBase):
    """Full-length MUSDB18 tracks for validation (UMX: ``split="valid"``, batch size 1).

    Args:
        db: a ``musdb.DB``, a root path or None (``$MUSDB_PATH``); a path is opened with
            ``subsets="train", split="valid"`` unless ``open_kwargs`` say otherwise (for the test
            set pass ``subsets="test", split=None``).
        targets: one source name or a sequence, as in :class:`MUSDBTrainSet`.
        sources: the sources ``"accompaniment"`` sums (all but vocals); default all four.
        max_duration: keep only the first ``max_duration`` seconds of each track (quick runs); None
            keeps the full track.
        sample_rate: the items' rate; None keeps the read rate. When it differs, each stem is
            resampled with :func:`mssbook.signal.resample.resample` (``ceil(T * new / old)``
            samples for a full track, ``round(max_duration * sample_rate)`` for a cropped one).

    Items: ``(mixture, target)`` float32 tensors; the mixture is the track's real mixture (C, T),
    the target (C, T) or (n_targets, C, T), T the track's length. Use ``batch_size=1``.
    """

    def __init__(
        self,
        db=None,
        targets: str | Sequence[str] = "vocals",
        *,
        sources: Sequence[str] | None = None,
        max_duration: float | None = None,
        sample_rate: int | None = None,
        **open_kwargs,
    ):
        super().__init__(db, targets, sources, "valid", open_kwargs, sample_rate)
        if max_duration is not None and not max_duration > 0:
            raise ValueError(f"max_duration must be positive or None, not {max_duration!r}")
        self.max_duration = max_duration

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} tracks")
        length = None if self.max_duration is None else int(round(self.max_duration * self.sample_rate))
        needed = [s for s in self.sources if s in self.targets or (ACCOMPANIMENT in self.targets and s != "vocals")]
        names = ["mixture", *needed]
        read = None if length is None else self._read_length(length)
        audio = dict(zip(names, self._read([(n, index, 0) for n in names], read)))
        n = min(a.shape[1] for a in audio.values())  # decoded streams can differ by a few samples
        audio = {k: self._to_sample_rate(v[:, :n], length) for k, v in audio.items()}
        return torch.from_numpy(audio["mixture"]), torch.from_numpy(np.ascontiguousarray(self._stack_targets(audio)))

    def __repr__(self) -> str:
        dur = "full length" if self.max_duration is None else f"first {self.max_duration} s"
        rate = f"{self.sample_rate} Hz" + (f" (resampled from {self.read_rate} Hz)" if self.sample_rate != self.read_rate else "")
        return f"MUSDBValidSet({len(self.tracks)} tracks, {dur}, targets={list(self.targets)}, {rate})"


__all__ = [
    "ACCOMPANIMENT",
    "AUGMENTATIONS",
    "SEED_PRESETS",
    "ChannelSwap",
    "Gain",
    "GainDB",
    "MUSDBTrainSet",
    "MUSDBValidSet",
    "build_augmentations",
]
