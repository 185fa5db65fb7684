"""Every model family of the course side by side: the closing comparison (chapter 08).

Chapters 02-07 each train a tutorial-size model of one family and keep the run
(:func:`mssbook.runs.keep_run`). :func:`load_or_train` loads that run when it is there and
otherwise trains the family's tutorial preset briefly with the registry recipe (adapted to a CPU
budget as the family's chapter adapts it), so the comparison works in any order and on Colab.
The baselines a trained model is always shown next to: the mixture itself and the mixture times
one gain fitted on the training songs (:func:`fit_gains`, :func:`evaluate_gain`). The costs:
:func:`separation_seconds` (per second of audio) and :func:`training_step_seconds`::

    from mssbook.comparison import FAMILIES, load_or_train
    loaded = load_or_train(FAMILIES[0], root="data/toy", time_budget=20, output="/tmp/ch08")
    loaded.model, loaded.source            # the model, and "loaded" or "trained here"
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tempfile
import time
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch

from .errors import MSSBookError

__all__ = [
    "Family",
    "FAMILIES",
    "family",
    "Loaded",
    "load_or_train",
    "recipe_configs",
    "fit_gains",
    "evaluate_gain",
    "gain_baseline",
    "over_gain",
    "separation_seconds",
    "training_step_seconds",
    "dataset_scores_dir",
]


@dataclass(frozen=True)
class Family:
    """One model family of the course, as its chapter trains it.

    ``run``: the name its chapter keeps the run under (``keep_run``); ``model``/``target``: the
    registry name and target of :func:`mssbook.models.create`; ``cpu``: what the chapter changes
    in the registry recipe for a CPU budget (DataConfig and TrainConfig fields); ``evaluate``:
    options of :func:`mssbook.evaluation.evaluate_tracks`; ``published``: its row in
    ``data/published_scores.csv`` (None: none on MUSDB18).
    """

    label: str
    chapter: str
    run: str
    model: str
    target: str | None
    cpu: Mapping = field(default_factory=dict)
    evaluate: Mapping = field(default_factory=dict)
    published: str | None = None


#: The families of chapters 02-07, in course order. ``cpu`` follows each chapter's parameters.
FAMILIES: tuple[Family, ...] = (
    Family("UMX", "02", "ch02-umx-vocals", "umx", "vocals",
           cpu=dict(seq_dur=6.0, samples_per_track=2, batch_size=4, validation=False),
           evaluate=dict(residual=True, niter=1), published="UMX"),
    Family("X-UMX", "03", "ch03-xumx", "xumx", None,
           cpu=dict(seq_dur=2.0, samples_per_track=2, batch_size=4, validation=False), published="X-UMX"),
    Family("D3Net", "04", "ch04-d3net-vocals", "d3net", "vocals",
           cpu=dict(seq_dur=1.5, samples_per_track=2, batch_size=4), evaluate=dict(residual=True),
           published="D3Net"),
    Family("TFC-TDF U-Net", "05", "ch05-tfc-tdf", "tfc_tdf_net", "vocals",
           cpu=dict(samples_per_track=1, batch_size=4, validation=False), published="TFC-TDF U-Net (large)"),
    Family("BSRNN", "06", "ch06-bsrnn-vocals", "bsrnn", "vocals",
           cpu=dict(seq_dur=1.5, samples_per_track=1, batch_size=4, lr=3e-3, validation=False),
           published="BSRNN"),
    Family("Wavenet", "07", "ch07-wavenet", "wavenet", "multi-instrument",
           cpu=dict(samples_per_track=5, validation=False)),
)


def family(label: str) -> Family:
    """The :data:`FAMILIES` entry called ``label`` (``"UMX"``, ``"BSRNN"``, ...)."""
    for item in FAMILIES:
        if item.label == label:
            return item
    raise MSSBookError(f"no family {label!r}; the families are {', '.join(f.label for f in FAMILIES)}")


def recipe_configs(item: Family, root, *, seed: int = 42, **overrides):
    """``(DataConfig, TrainConfig)``: the registry recipe of ``item`` with its CPU changes and
    ``overrides`` on top (as ``mssbook train`` and the chapters build them)."""
    from .models import training_recipe
    from .training import DataConfig, TrainConfig

    recipe = {k: v for k, v in training_recipe(item.model, item.target).items() if k != "targets"}
    recipe.update(root=str(root), is_wav=True, seed=seed, progress=False)
    recipe.update(item.cpu)
    recipe.update(overrides)
    data_keys = {f.name for f in fields(DataConfig)}
    train_keys = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(recipe) - data_keys - train_keys)
    if unknown:
        raise MSSBookError(f"{item.label}: {unknown} are neither DataConfig nor TrainConfig fields")
    return (DataConfig(**{k: v for k, v in recipe.items() if k in data_keys}),
            TrainConfig(**{k: v for k, v in recipe.items() if k in train_keys}))


@dataclass
class Loaded:
    """A family's model for the comparison and where it comes from.

    ``source``: ``"loaded"`` (a chapter's kept run, ``path``) or ``"trained here"``;
    ``train_seconds``/``epochs``: the training it had (from the run's history; None when the
    kept run has none); ``data``/``config``: the settings a training step is timed with.
    """

    family: Family
    model: torch.nn.Module
    source: str
    path: Path | None
    train_seconds: float | None
    epochs: int | None
    data: object
    config: object


def _history(folder: Path) -> list[dict] | None:
    try:
        epochs = json.loads((folder / "history.json").read_text()).get("epochs")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return epochs if isinstance(epochs, list) else None


def load_or_train(item: Family, root, *, time_budget: float, output, epochs: int = 1000, seed: int = 42,
                  runs_root=None, use_runs: bool = True, **overrides) -> Loaded:
    """The model of ``item``: its chapter's kept run if there is one, else trained here.

    A kept run is ``<runs_root>/<item.run>-<profile>/best.pt`` (:func:`mssbook.runs.kept_run_dir`,
    the active profile). Otherwise the tutorial preset trains with :func:`recipe_configs` for
    at most ``time_budget`` seconds (the trainer stops after the epoch in which it runs out) in
    a new folder ``output/<run>-*``, and the last epoch is used. A kept run that cannot be loaded
    (another mssbook version) is reported with a warning and replaced by training.
    ``use_runs=False`` always trains. ``overrides``
    change the recipe further (e.g. ``max_batches_per_epoch=2`` for a quick test).
    """
    from . import models
    from .checkpoints import load_model
    from .runs import kept_run_dir
    from .training import train_model

    if time_budget is None or time_budget <= 0:
        raise MSSBookError(f"time_budget={time_budget!r}: give the seconds a missing family may train (> 0).")
    data, config = recipe_configs(item, root, seed=seed, epochs=epochs, patience=epochs,
                                  time_budget=time_budget, **overrides)
    kept = kept_run_dir(item.run, root=runs_root)
    if use_runs and (kept / "best.pt").is_file():
        try:
            model = load_model(kept / "best.pt")
        except (MSSBookError, RuntimeError, KeyError) as exc:  # e.g. a checkpoint of another mssbook version
            warnings.warn(f"{kept / 'best.pt'} could not be loaded ({type(exc).__name__}: {exc}); "
                          f"training {item.label} here instead. Run chapter {item.chapter} again to replace it.")
        else:
            history = _history(kept)
            seconds = sum(float(h.get("seconds", 0.0)) for h in history) if history else None
            return Loaded(item, model, "loaded", kept / "best.pt", seconds, len(history) if history else None,
                          data, config)
    torch.manual_seed(seed)
    model = models.create(item.model, preset="tutorial", target=item.target)
    Path(output).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{item.run}-", dir=output))  # a fresh run, whatever output holds
    trainer = train_model(model, data, config, output=folder, resume="never")
    history = trainer.history
    return Loaded(item, load_model(folder / "last.pt"), "trained here", folder / "last.pt",
                  sum(h["seconds"] for h in history), len(history), data, config)


def dataset_scores_dir(root, name: str, base=None) -> Path:
    """``<base>/<name>-<fingerprint>``: a folder for scores that are facts of the dataset at ``root``
    (oracles, the gain baseline), reused as long as its audio files are the same.

    ``base`` defaults to ``<data dir>/scores``. The fingerprint hashes the relative path and size
    of every ``.wav``/``.mp4`` file under ``root`` and its ``toy.json``: a regenerated dataset
    gets a new folder, so old scores are never mixed with new songs.
    """
    import hashlib

    from .paths import data_dir

    root = Path(root)
    if not root.is_dir():
        raise MSSBookError(f"{root} is not a folder: pass the dataset root (e.g. ensure_toy_dataset()).")
    digest = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".wav", ".mp4") or p.name == "toy.json"):
        digest.update(f"{path.relative_to(root).as_posix()}:{path.stat().st_size}\n".encode())
        if path.name == "toy.json":
            digest.update(path.read_bytes())
    base = Path(base) if base is not None else data_dir() / "scores"
    return base / f"{name}-{digest.hexdigest()[:10]}"


# ----------------------------------------------------------------------------------------------
# The fitted-gain baseline
# ----------------------------------------------------------------------------------------------


def fit_gains(root, targets: Iterable[str] = ("vocals", "drums", "bass", "other"), *, subset: str = "train",
              split: str | None = None, is_wav: bool | None = None) -> dict[str, float]:
    """Per target, the one least-squares gain ``g`` from mixture to target over the songs of ``subset``:
    ``g = Σ x·s / Σ x·x`` over every sample and channel of every song (``x`` mixture, ``s`` target).

    ``g · mixture`` is the estimate of a model that learned only how loud the target is: BSSEval's
    SDR is not scale-invariant, so this alone beats the mixture where the target is quieter than the
    rest. Fit it on training songs and score it on test songs (:func:`evaluate_gain`).
    """
    from .data.musdb import open_musdb

    targets = list(targets)
    db = open_musdb(root, subsets=subset, split=split, is_wav=is_wav)
    if not db.tracks:
        raise MSSBookError(f"no {subset} songs under {root}: fit the gains on a dataset with songs in it.")
    num = dict.fromkeys(targets, 0.0)
    den = 0.0
    for track in db.tracks:
        x = np.asarray(track.audio, dtype=np.float64)
        den += float(np.sum(x * x))
        for target in targets:
            if target not in track.targets:
                raise MSSBookError(f"{track.name} has no target {target!r}; it has {', '.join(track.targets)}")
            num[target] += float(np.sum(x * np.asarray(track.targets[target].audio, dtype=np.float64)))
    if den == 0.0:
        raise MSSBookError(f"the {subset} mixtures under {root} are silent: no gain can be fitted.")
    return {target: num[target] / den for target in targets}


def evaluate_gain(gains: Mapping[str, float], root=None, subset: str = "test", *, output_dir,
                  tracks=None, backend: str = "fast", is_wav: bool | None = None, overwrite: bool = False,
                  progress: bool = False) -> dict:
    """Score ``gains[target] · mixture`` as the estimate of each target (like
    :func:`mssbook.oracles.evaluate_oracle`, resumably); returns the same summary dict."""
    from .evaluation import evaluate_dataset

    gains = {str(k): float(v) for k, v in gains.items()}
    if not gains:
        raise MSSBookError("gains is empty: pass {target: gain}, e.g. fit_gains(root).")

    def estimator(track) -> dict:
        mixture = np.asarray(track.audio, dtype=np.float32).T
        return {target: gain * mixture for target, gain in gains.items()}

    return evaluate_dataset(estimator, root, subset, output_dir=output_dir,
                            settings={"baseline": "fitted gain", "gains": gains}, is_wav=is_wav, tracks=tracks,
                            backend=backend, overwrite=overwrite, progress=progress, description="gain")


GAIN_SOURCES = ("vocals", "drums", "bass", "other")


def gain_baseline(root, tracks=None, *, is_wav: bool | None = None, base=None, backend: str = "fast",
                  progress: bool = False) -> dict:
    """The fitted-gain baseline of a dataset, as every model chapter shows it next to its model.

    Fits one gain per source on the ``train`` songs (:func:`fit_gains`) and scores ``gain ·
    mixture`` on the ``test`` songs (``tracks``: all, a number or names, as
    :func:`mssbook.evaluation.evaluate_tracks`), for the four sources at once. The scores are facts
    of the dataset: they are kept in ``dataset_scores_dir(root, "gain", base)`` (the folder chapter
    08 uses too), so the first chapter pays for them and the others read them. Returns
    :func:`evaluate_gain`'s summary with ``"gains"`` added: ``{target: gain}``.
    """
    gains = fit_gains(root, GAIN_SOURCES, is_wav=is_wav)
    result = evaluate_gain(gains, root, output_dir=dataset_scores_dir(root, "gain", base), tracks=tracks,
                           backend=backend, is_wav=is_wav, progress=progress)
    return {**result, "gains": gains}


def over_gain(model_sdr: Mapping[str, float], gain_table, targets: Iterable[str] | None = None) -> dict[str, float]:
    """How far a model is above the fitted-gain baseline: ``{"gain_baseline_db", "over_gain_db"}``.

    ``model_sdr``: the model's SDR per target (median over songs, as the tables print);
    ``gain_table``: :func:`gain_baseline`'s ``"table"`` on the same songs. With several targets
    both figures are the averages over ``targets`` (default: those of ``model_sdr``), each target
    compared with its own gain, as chapter 03 does for X-UMX's four sources.
    """
    targets = list(model_sdr) if targets is None else list(targets)
    missing = [t for t in targets if t not in model_sdr or t not in gain_table]
    if not targets or missing:
        raise MSSBookError(f"no SDR for {missing or 'any target'} in the model's scores or in the gain table; "
                           f"the model has {sorted(model_sdr)}, the gain table {sorted(gain_table.targets())}.")
    baseline = float(np.mean([gain_table[t]["SDR"] for t in targets]))
    model = float(np.mean([model_sdr[t] for t in targets]))
    return {"gain_baseline_db": baseline, "over_gain_db": model - baseline}


# ----------------------------------------------------------------------------------------------
# Costs
# ----------------------------------------------------------------------------------------------


def separation_seconds(model, audio: np.ndarray, sr: int, repeats: int = 1, **options) -> float:
    """Seconds ``separate`` takes per second of ``audio`` ((channels, samples) at ``sr``), on the CPU;
    the fastest of ``repeats`` runs."""
    from .separation import separate

    duration = audio.shape[-1] / sr
    if duration <= 0:
        raise MSSBookError("audio is empty: time the separation of at least a few seconds.")
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        separate(audio, sr, model, device="cpu", **options)
        best = min(best, time.perf_counter() - start)
    return best / duration


def training_step_seconds(loaded: Loaded, repeats: int = 2) -> float:
    """Seconds of one training step (forward, backward, Adam update) of a copy of ``loaded.model``
    on one batch of the training sampler its family trains with (``loaded.data``,
    ``loaded.config.batch_size``); one warm-up step, then the fastest of ``repeats``."""
    from .training import build_datasets

    model = copy.deepcopy(loaded.model).train()
    # the excerpts the family trains on; source activity detection only chooses where they start
    data = dataclasses.replace(loaded.data, fragments=None, validation=False)
    train_set, _ = build_datasets(model, data)
    size = loaded.config.batch_size
    if len(train_set) < size:
        raise MSSBookError(f"{loaded.family.label}: the sampler gives {len(train_set)} excerpts, fewer than a batch "
                           f"of {size}; raise samples_per_track in loaded.data")
    items = [train_set[i] for i in range(size)]
    mixture = torch.stack([torch.as_tensor(m) for m, _ in items])
    references = torch.stack([torch.as_tensor(r) for _, r in items])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    best = float("inf")
    for i in range(max(1, repeats) + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, _ = model.loss(mixture, references)
        loss.backward()
        optimizer.step()
        if i > 0:  # the first step allocates the optimizer's state
            best = min(best, time.perf_counter() - start)
    return best
