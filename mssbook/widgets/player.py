"""The separation player: pick a model and a song, separate, and open the stem mixer on the result.

The plain functions do the work (:func:`find_checkpoints`, :func:`find_songs`, :func:`load_song`,
:func:`separate_song`); :class:`SeparationPlayer` only wires them to a dropdown of checkpoints, a
dropdown of songs, an upload button, a progress bar and a :class:`~mssbook.widgets.StemMixer`.

Models: every ``best.pt`` (else ``last.pt``) under ``<data dir>/runs/`` — the runs that the
chapters, ``scripts/demo.sh`` and ``mssbook train --output data/runs/NAME`` leave there — or
whatever you pass (checkpoint paths, run folders, pretrained names, model objects). Songs: the toy
test songs (with their true stems), the real excerpts of ``../shared/data`` when present, the
MUSDB18 excerpt that ships inside ``stempeg``, and your own file (an upload; on Colab through
``google.colab.files``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..checks import AUDIO_SUFFIXES
from ..data.audio import STEM_STREAMS
from ..paths import data_dir, shared_data_dir
from .base import View, ipywidgets, is_static
from .mixer import StemMixer, with_residual

SOURCES = ("vocals", "drums", "bass", "other")


@dataclass(frozen=True)
class Song:
    """A song to separate: its mixture file and, where known, the files of its true stems.

    ``references`` maps a source name to ``(path, stream)``; stream is None for a single-stream
    file and the stream index inside a ``.stem.mp4``.
    """

    name: str
    path: Path
    stream: int | None = None
    references: Mapping[str, tuple[Path, int | None]] = field(default_factory=dict)


def find_checkpoints(root: str | os.PathLike | None = None) -> list[Path]:
    """Checkpoints of training runs under ``root`` (default ``<data dir>/runs``): each run's
    ``best.pt``, or its ``last.pt`` when it has no best yet; newest first."""
    root = Path(root) if root is not None else data_dir() / "runs"
    if not root.is_dir():
        return []
    found = {}
    for path in sorted(root.rglob("*.pt")):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)  # a copy being written
        if path.name in ("best.pt", "last.pt") and not hidden:
            if path.name == "best.pt" or path.parent not in found:
                found[path.parent] = path
    return sorted(found.values(), key=lambda p: p.stat().st_mtime, reverse=True)


def find_songs(toy_root: str | os.PathLike | None = None, subset: str = "test") -> list[Song]:
    """Songs at hand: the toy ``subset`` songs (with stems), the shared real excerpts and the
    MUSDB18 excerpt inside ``stempeg``, when present. Nothing is generated or downloaded."""
    songs = []
    if toy_root is None:
        from ..data.toy import default_toy_root

        toy_root = default_toy_root()
    for folder in sorted(Path(toy_root, subset).glob("*/")):
        if (folder / "mixture.wav").is_file():
            refs = {s: (folder / f"{s}.wav", None) for s in SOURCES if (folder / f"{s}.wav").is_file()}
            songs.append(Song(f"toy: {folder.name}", folder / "mixture.wav", None, refs))
    stem_files = []
    shared = shared_data_dir()
    if shared is not None:
        stem_files += sorted(shared.glob("musdb18-sample/*/*.stem.mp4"))
        songs += [Song(f"real: {p.stem}", p) for p in sorted(shared.glob("mixtures/*")) if p.suffix.lower() in AUDIO_SUFFIXES]
    try:
        import stempeg

        stem_files.append(Path(stempeg.example_stem_path()))
    except Exception:  # stempeg missing or broken: its excerpt is simply not offered
        pass
    for path in stem_files:
        if path.is_file():
            refs = {s: (path, k) for s, k in STEM_STREAMS.items() if s in SOURCES}
            songs.append(Song(f"MUSDB18: {path.name.removesuffix('.stem.mp4')}", path, 0, refs))
    return songs


def load_song(song: Song | str | os.PathLike) -> tuple[np.ndarray, int, dict[str, np.ndarray]]:
    """``(mixture (C, L), sr, {source: (C, L)})``; the references are empty when unknown."""
    from ..data.audio import load_audio

    if not isinstance(song, Song):
        song = Song(Path(song).name, Path(song))
    mixture, sr = load_audio(song.path, stream=song.stream)
    refs = {}
    for name, (path, stream) in song.references.items():
        audio, ref_sr = load_audio(path, stream=stream)
        if ref_sr != sr:
            raise ValueError(f"{path}: the {name} stem is at {ref_sr} Hz and the mixture at {sr} Hz.")
        n = min(audio.shape[-1], mixture.shape[-1])
        refs[name] = audio[:, :n]
    if refs:  # decoded AAC streams can differ by a few samples: trim everything to the shortest
        n = min(a.shape[-1] for a in [mixture, *refs.values()])
        mixture, refs = mixture[:, :n], {k: v[:, :n] for k, v in refs.items()}
    return mixture, sr, refs


@dataclass
class Separation:
    """What :func:`separate_song` returns: the estimates (targets + ``residual``), the references
    of the same names when the song has true stems (else None), the mixture and its rate."""

    estimates: dict[str, np.ndarray]
    references: dict[str, np.ndarray] | None
    mixture: np.ndarray
    sr: int


def separate_song(model, song: Song | str | os.PathLike, progress: Callable[[int, int], None] | None = None,
                  device: str | None = None) -> Separation:
    """Separate a song with ``model`` (a model, checkpoint, run folder or pretrained name).

    The estimates are the model's targets plus ``residual`` (the mixture minus them), so the
    mixer's 0 dB mix is the mixture. When the song has true stems, the references have the same
    names: each target's true stem, and the rest of the mixture as the true residual.
    """
    from ..separation import resolve_model, separate

    net = resolve_model(model, device)
    mixture, sr, refs = load_song(song)
    estimates = separate(mixture, sr, net, residual=True, progress=progress or False)
    references = None
    targets = [name for name in estimates if name != "residual"]
    if refs and all(t in refs for t in targets):
        references = with_residual(mixture, {t: refs[t] for t in targets})
    return Separation(estimates, references, mixture, sr)


def _label(path: Path) -> str:
    try:
        return str(path.relative_to(data_dir()))
    except ValueError:
        return str(path)


class SeparationPlayer(View):
    """Separate a song with a trained model, then listen in a :class:`StemMixer`.

    Args:
        models: what to offer: ``{label: model}`` or a list of checkpoint paths / run folders /
            pretrained names; None: :func:`find_checkpoints` (the runs in ``<data dir>/runs``).
        songs: a list of :class:`Song` or paths; None: :func:`find_songs`.
        static: True for a static view (it lists the models and songs it found).

    From Python, :meth:`run` does what the *separate* button does and returns the mixer.
    """

    def __init__(self, models=None, songs=None, static: bool | None = None):
        if models is None:
            models = find_checkpoints()
        if isinstance(models, Mapping):
            self.models = {str(k): v for k, v in models.items()}
        else:
            self.models = {_label(Path(m)) if isinstance(m, (str, os.PathLike)) and Path(m).exists() else str(m): m
                           for m in models}
        songs = find_songs() if songs is None else songs
        self.songs = {s.name if isinstance(s, Song) else Path(s).name: s for s in songs}
        self.mixer: StemMixer | None = None
        self.result: Separation | None = None
        self.static = is_static(static)
        self.widget = None
        if not self.static:
            self._build()

    def run(self, model: str | None = None, song: str | None = None) -> StemMixer:
        """Separate ``song`` with ``model`` (labels as listed; default: the selected or first ones)."""
        if not self.models:
            raise ValueError("no model to separate with: train one (e.g. run chapter 02, or `mssbook train "
                             "--toy --output data/runs/umx-vocals`), or pass models=[path or pretrained name].")
        if not self.songs:
            raise ValueError("no song to separate: generate the toy songs (`mssbook toy`), upload a file, "
                             "or pass songs=[path].")
        if self.widget is not None:
            model = model or self.model_choice.value
            song = song or self.song_choice.value
        model = model or next(iter(self.models))
        song = song or next(iter(self.songs))
        if model not in self.models or song not in self.songs:
            raise KeyError(f"choose a model among {list(self.models)} and a song among {list(self.songs)}")
        self._progress(0, 1, f"separating {song} with {model} ...")
        self.result = separate_song(self.models[model], self.songs[song],
                                    progress=lambda done, total: self._progress(done, total, "separating"))
        self.mixer = StemMixer(self.result.estimates, self.result.sr, reference=self.result.references,
                               mixture=self.result.mixture, title=f"{song} · {model}", static=self.static)
        self._progress(1, 1, "done: A = estimates" + (", B = true stems" if self.result.references else ""))
        if self.widget is not None:
            self.output.children = [self.mixer.widget]
        return self.mixer

    def add_song(self, name: str, data: bytes) -> str:
        """Keep an uploaded file (its bytes) as a song; returns its label."""
        suffix = Path(name).suffix.lower()
        if suffix not in AUDIO_SUFFIXES:
            raise ValueError(f"{name}: not an audio file mssbook reads ({', '.join(AUDIO_SUFFIXES)}).")
        folder = Path(tempfile.mkdtemp(prefix="mssbook-upload-"))
        path = folder / Path(name).name
        path.write_bytes(bytes(data))
        label = f"upload: {Path(name).name}"
        self.songs[label] = Song(label, path)
        if self.widget is not None:
            self.song_choice.options = list(self.songs)
            self.song_choice.value = label
        return label

    # -- the view ------------------------------------------------------------------------------------

    def _progress(self, done: int, total: int, text: str) -> None:
        if self.widget is not None:
            self.bar.value = done / max(total, 1)
            self.stage.value = text

    def _build(self) -> None:
        w = ipywidgets()
        self.model_choice = w.Dropdown(options=list(self.models), description="model",
                                       layout=w.Layout(width="520px")).add_class("mssbook-player-model")
        self.song_choice = w.Dropdown(options=list(self.songs), description="song",
                                      layout=w.Layout(width="520px")).add_class("mssbook-player-song")
        self.go = w.Button(description="separate", button_style="primary").add_class("mssbook-player-go")
        self.go.on_click(lambda _: self._on_go())
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0)
        self.stage = w.Label("" if self.models else "no trained model found in data/runs: train one first")
        from ..notebook import in_colab

        if in_colab():
            self.upload = w.Button(description="upload a song").add_class("mssbook-player-upload")
            self.upload.on_click(lambda _: self._colab_upload())
        else:
            self.upload = w.FileUpload(accept="audio/*," + ",".join(AUDIO_SUFFIXES), multiple=False,
                                       description="upload a song").add_class("mssbook-player-upload")
            self.upload.observe(self._on_upload, names="value")
        self.output = w.VBox([])
        self.widget = w.VBox([self.model_choice, w.HBox([self.song_choice, self.upload]),
                              w.HBox([self.go, self.bar, self.stage]), self.output])
        self.widget.add_class("mssbook-separation-player")

    def _on_go(self) -> None:
        try:
            self.run()
        except Exception as exc:  # shown in the widget: a click must not end in a silent traceback
            self.stage.value = f"error: {exc}"

    def _on_upload(self, change) -> None:
        for item in change["new"] or ():
            self.add_song(item["name"], item["content"])

    def _colab_upload(self) -> None:  # pragma: no cover - needs Google Colab
        from google.colab import files

        for name, data in files.upload().items():
            self.add_song(name, data)

    def static_html(self) -> str:
        from .base import table_html

        rows = [["model", m] for m in self.models] + [["song", s] for s in self.songs]
        body = table_html(rows, ["", "available"]) if rows else "<p>no models or songs found</p>"
        mixer = self.mixer.static_html() if self.mixer is not None else ""
        return f'<div class="mssbook-separation-player-static">{body}{mixer}</div>'
