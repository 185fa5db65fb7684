"""Prepared models: each model chapter's tutorial network, trained longer, once, on the toy songs.

A chapter trains its model live for two minutes or so: enough to see training work, not enough
to hear a clean separation. ``mssbook course prepare`` trains the *same* tutorial preset with the
family's CPU recipe (:data:`mssbook.comparison.FAMILIES`, as chapter 08 trains it) for a fixed
number of epochs, seeded (about 10-15 minutes per model on two CPU cores), and keeps the result
with its scores on the toy test songs; a chapter then shows "what two minutes of training gives"
(live) next to "what the prepared model gives" (:func:`load_prepared`, :func:`prepared_scores`),
and says how to prepare it when it is missing (:func:`how_to_prepare`). Nothing is downloaded:
every prepared model is the project's own code trained on the project's own songs. ::

    mssbook course prepare                  # every model chapter, one after the other
    mssbook course prepare --chapter 06     # BSRNN only
    mssbook course status                   # what is prepared, its epochs, minutes and scores

A prepared model lives in ``<data dir>/prepared/<run>-<profile>-<dataset fingerprint>/``
(:func:`prepared_dir`): ``model.pt`` (loads with :func:`mssbook.checkpoints.load_model`),
``history.json``, ``prepared.json`` (the recipe, the epochs, the training time) and ``scores/``
(its BSSEval scores on the test songs, computed once). Regenerating the toy songs gives a new
fingerprint, so a model is never shown with songs it was not prepared on. An interrupted
``prepare`` resumes where it stopped (the trainer's ``last.pt`` in ``.training/``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from .errors import MSSBookError

__all__ = [
    "Preparation",
    "PREPARATIONS",
    "preparation",
    "prepared_dir",
    "Prepared",
    "prepare",
    "load_prepared",
    "prepared_scores",
    "chapter_prepared",
    "how_to_prepare",
]


@dataclass(frozen=True)
class Preparation:
    """How one chapter's model is prepared.

    ``family``: the :data:`mssbook.comparison.FAMILIES` label whose tutorial preset and CPU recipe
    are trained; ``epochs``: a fixed number of epochs (not a time budget: the result does not
    depend on the machine's load); ``recipe``: training settings on top of the family's recipe;
    ``model_options``: changes to the tutorial preset (:func:`mssbook.models.create`);
    ``name``: the folder name (default: the family's run name). Under ``MSSBOOK_PROFILE=ci`` the
    same code prepares a token model: :data:`CI_RECIPE` (one epoch of two batches).
    """

    family: str
    epochs: int
    recipe: Mapping = field(default_factory=dict)
    model_options: Mapping = field(default_factory=dict)
    name: str | None = None

    @property
    def item(self):
        from .comparison import family

        return family(self.family)

    @property
    def chapter(self) -> str:
        return self.item.chapter

    @property
    def folder_name(self) -> str:
        return self.name or self.item.run


#: What the ci profile changes in every preparation: a code test, not a model.
CI_RECIPE = {"epochs": 1, "max_batches_per_epoch": 2}

#: One preparation per model chapter (02-07), in course order.
PREPARATIONS: tuple[Preparation, ...] = (
    Preparation("UMX", epochs=250),
    Preparation("X-UMX", epochs=120),
    Preparation("D3Net", epochs=80),
    Preparation("TFC-TDF U-Net", epochs=300),
    Preparation("BSRNN", epochs=300),
    Preparation("Wavenet", epochs=200),
)


def preparation(key: str) -> Preparation:
    """The :data:`PREPARATIONS` entry of a chapter (``"06"``, ``"6"``) or a family label (``"BSRNN"``)."""
    wanted = str(key).strip()
    for prep in PREPARATIONS:
        if wanted in (prep.family, prep.chapter) or (wanted.isdigit() and int(wanted) == int(prep.chapter)):
            return prep
    known = ", ".join(f"{p.chapter} ({p.family})" for p in PREPARATIONS)
    raise MSSBookError(f"no prepared model for {key!r}; the model chapters are {known}.")


def _root(root):
    if root is not None:
        return Path(root)
    from .data.toy import ensure_toy_dataset

    return Path(ensure_toy_dataset(progress=False))


def prepared_dir(key: str, root=None, base=None) -> Path:
    """``<base>/<name>-<profile>-<fingerprint of the dataset at root>`` (nothing is created).

    ``base`` defaults to ``<data dir>/prepared``, ``root`` to the toy dataset; the profile is the
    active one (:func:`mssbook.profile.current`), so the ci profile's token models never stand in
    for the real ones.
    """
    from . import profile
    from .comparison import dataset_scores_dir
    from .paths import data_dir

    prep = preparation(key)
    base = Path(base) if base is not None else data_dir() / "prepared"
    return dataset_scores_dir(_root(root), f"{prep.folder_name}-{profile.current()}", base=base)


@dataclass
class Prepared:
    """A prepared model: ``model`` (eval mode), ``path`` (its ``model.pt``), ``epochs``,
    ``seconds`` (training time), ``info`` (``prepared.json``); ``scores``: its
    :func:`prepared_scores` once :func:`chapter_prepared` has read them."""

    preparation: Preparation
    model: object
    path: Path
    epochs: int
    seconds: float
    info: dict
    scores: dict | None = None

    @property
    def folder(self) -> Path:
        return self.path.parent

    def describe(self) -> str:
        return (f"{self.preparation.family} prepared with `mssbook course prepare`: {self.epochs} epochs "
                f"({self.info.get('steps', '?')} steps, {self.seconds / 60:.1f} min of training)")


def how_to_prepare(key: str) -> str:
    """The sentence a chapter prints when its prepared model is missing."""
    prep = preparation(key)
    return (f"No prepared {prep.family} yet. In a terminal run `mssbook course prepare --chapter {prep.chapter}` "
            f"(or in a cell: `from mssbook.course import prepare; prepare('{prep.chapter}')`); it trains this "
            f"chapter's tutorial model for {prep.epochs} epochs, about 10-15 minutes on two CPU cores, once. "
            "Then run this chapter again.")


def prepare(keys: str | Iterable[str] | None = None, root=None, *, base=None, force: bool = False,
            progress: bool = True, evaluate: bool = True, log=print) -> list[Path]:
    """Prepare the models of ``keys`` (chapters or family labels; default: every model chapter).

    Each model trains in ``<folder>/.training/`` (resumed when an earlier call was interrupted)
    for :attr:`Preparation.epochs` epochs with the family's CPU recipe (the one chapter 08 trains
    with), seeded; its last epoch's weights become ``<folder>/model.pt`` (written atomically),
    then it is scored on the test songs (``evaluate=False``: later, by :func:`prepared_scores`).
    A model already prepared is left as it is unless ``force``, which trains afresh and replaces
    it only once the new one is complete. Returns the folders.
    """
    import torch

    from . import __version__, models, profile
    from .checkpoints import load_model, save_checkpoint
    from .comparison import recipe_configs
    from .training import train_model
    from .utils import atomic_path

    root = _root(root)
    keys = [keys] if isinstance(keys, str) else keys
    preps = list(PREPARATIONS) if keys is None else [preparation(k) for k in keys]
    folders = []
    for prep in preps:
        folder = prepared_dir(prep.family, root, base)
        target = folder / "model.pt"
        if target.is_file() and not force:
            log(f"{prep.family} (chapter {prep.chapter}): already prepared in {folder}")
            folders.append(folder)
            continue
        training = folder / ".training"
        if force:  # train afresh; the old model stays in place until the new one replaces it
            shutil.rmtree(training, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        item = prep.item
        recipe = {"epochs": prep.epochs, **dict(prep.recipe)}
        if profile.current() == "ci":
            recipe.update(CI_RECIPE)
        data, config = recipe_configs(item, root, patience=recipe["epochs"], time_budget=None, progress=progress,
                                      **recipe)
        torch.manual_seed(config.seed)
        model = models.create(item.model, preset="tutorial", target=item.target, **prep.model_options)
        log(f"{prep.family} (chapter {prep.chapter}): training {model.num_parameters():,d} parameters for "
            f"{config.epochs} epochs in {training}")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        trainer = train_model(model, data, config, output=training, resume="auto")
        history = trainer.history
        per_epoch = len(trainer.train_set) // config.batch_size
        steps = len(history) * min(per_epoch, config.max_batches_per_epoch or per_epoch)
        seconds = sum(float(h["seconds"]) for h in history)
        shutil.copyfile(training / "history.json", folder / "history.json")
        # the last epoch's weights without the optimizer's state (a third of the size), written atomically
        save_checkpoint(target, load_model(training / "last.pt"), epoch=len(history), prepared=prep.family)
        info = {"family": prep.family, "chapter": prep.chapter, "model": item.model, "target": item.target,
                "preset": "tutorial", "model_options": dict(prep.model_options), "epochs": len(history),
                "steps": steps, "seconds": round(seconds, 1), "threads": torch.get_num_threads(),
                "load_average": load, "profile": profile.current(), "recipe": {**dict(item.cpu), **recipe},
                "mssbook": __version__, "prepared_at": round(time.time(), 3)}
        with atomic_path(folder / "prepared.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(info, indent=2) + "\n")
        shutil.rmtree(training, ignore_errors=True)
        shutil.rmtree(folder / "scores", ignore_errors=True)  # scores of an earlier model
        log(f"{prep.family}: {len(history)} epochs, {steps} steps in {seconds / 60:.1f} min -> {target}")
        if evaluate:
            prepared = load_prepared(prep.family, root, base)
            result = prepared_scores(prepared, root)
            log(f"{prep.family}: scored on {len(result['tracks'])} test songs in {result['seconds']:.0f} s")
        folders.append(folder)
    return folders


def load_prepared(key: str, root=None, base=None) -> Prepared | None:
    """The prepared model of a chapter, or None when it is not prepared (or cannot be loaded: a
    warning says why; :func:`prepare` with ``force=True`` replaces it)."""
    from .checkpoints import load_model

    prep = preparation(key)
    folder = prepared_dir(key, root, base)
    path = folder / "model.pt"
    if not path.is_file():
        return None
    try:
        info = json.loads((folder / "prepared.json").read_text())
        model = load_model(path).eval()
    except (OSError, json.JSONDecodeError, MSSBookError, RuntimeError, KeyError) as exc:
        warnings.warn(f"the prepared {prep.family} in {folder} could not be loaded ({type(exc).__name__}: {exc}); "
                      f"prepare it again: mssbook course prepare --chapter {prep.chapter} --force")
        return None
    return Prepared(prep, model, path, int(info.get("epochs", 0)), float(info.get("seconds", 0.0)), info)


def prepared_scores(prepared: Prepared, root=None, tracks=None) -> dict:
    """BSSEval scores of a prepared model on the test songs, as its chapter scores the live model
    (the family's evaluation options, mssbook's fast BSSEval): the summary of
    :func:`mssbook.evaluation.evaluate_tracks`. Kept in ``<folder>/scores``: the first call
    separates, later calls read."""
    from .evaluation import evaluate_tracks

    if not isinstance(prepared, Prepared):
        raise MSSBookError(f"prepared_scores takes what load_prepared returns, not {type(prepared).__name__}; "
                           "load_prepared gives None when the model is not prepared.")
    return evaluate_tracks(prepared.path, root=_root(root), subset="test", output_dir=prepared.folder / "scores",
                           tracks=tracks, device="cpu", backend="fast", progress=False,
                           **dict(prepared.preparation.item.evaluate))


def chapter_prepared(key: str, root=None, tracks=None, *, prepare_if_missing: bool = False, score: bool = True,
                     log=print) -> Prepared | None:
    """What a chapter shows of its prepared model: the :class:`Prepared` with its ``scores`` on
    ``tracks`` of the test songs (``score=False``: none), or None after printing
    :func:`how_to_prepare`. ``prepare_if_missing`` prepares it first (the ci profile does, with
    its token recipe; at the default profile that is about 10-15 minutes)."""
    prepared = load_prepared(key, root)
    if prepared is None and prepare_if_missing:
        prepare(key, root, progress=False, evaluate=False, log=log)
        prepared = load_prepared(key, root)
    if prepared is None:
        log(how_to_prepare(key))
        return None
    log(prepared.describe())
    if score:
        prepared.scores = prepared_scores(prepared, root, tracks=tracks)
    return prepared


# --------------------------------------------------------------------------------------------
# The command line: mssbook course ...
# --------------------------------------------------------------------------------------------


def configure_parser(parser) -> None:
    sub = parser.add_subparsers(dest="course_command", metavar="ACTION", required=True)
    p = sub.add_parser("prepare", help="train each model chapter's tutorial model longer, once "
                                       "(about 10-15 min each)")
    p.add_argument("--chapter", "--chapters", dest="chapters", nargs="+", default=None,
                   help="only these chapters (02-07) or families (UMX, BSRNN, ...); default: all")
    p.add_argument("--force", action="store_true", help="train again even when a prepared model exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_root(p)
    p.set_defaults(func=_cmd_prepare)
    p = sub.add_parser("status", help="which chapters' models are prepared, and how well they separate")
    _add_root(p)
    p.set_defaults(func=_cmd_status)


def _add_root(parser) -> None:
    parser.add_argument("--root", type=Path, default=None,
                        help="the dataset to train and score on (default: the toy songs, generated if missing)")


def _cmd_prepare(args) -> int:
    prepare(args.chapters, args.root, force=args.force, progress=not args.quiet)
    return _cmd_status(args)


def _cmd_status(args) -> int:
    from .comparison import gain_baseline, over_gain

    root = _root(args.root)
    print(f"{'chapter':8s} {'model':15s} {'epochs':>6s} {'minutes':>8s} {'SDR dB':>7s} {'over gain':>9s}  folder")
    gain = None
    for prep in PREPARATIONS:
        prepared = load_prepared(prep.family, root)
        if prepared is None:
            print(f"{prep.chapter:8s} {prep.family:15s} {'-':>6s} {'-':>8s} {'-':>7s} {'-':>9s}  not prepared "
                  f"(mssbook course prepare --chapter {prep.chapter})")
            continue
        scores = prepared_scores(prepared, root)
        table = scores["table"]
        gain = gain or gain_baseline(root, tracks=scores["tracks"], is_wav=True)
        names = [t for t in ("vocals", "drums", "bass", "other") if t in table]
        names = names if prep.family == "X-UMX" else ["vocals"]
        figures = over_gain({t: table[t]["SDR"] for t in names}, gain["table"])
        sdr = figures["gain_baseline_db"] + figures["over_gain_db"]
        print(f"{prep.chapter:8s} {prep.family:15s} {prepared.epochs:6d} {prepared.seconds / 60:8.1f} {sdr:7.2f} "
              f"{figures['over_gain_db']:+9.2f}  {prepared.folder}")
    print("SDR: median over the test songs at 44.1 kHz stereo (vocals; X-UMX: the average of its four sources), "
          "over gain: minus the fitted gain's; chapter 07 scores its Wavenet at the model's 16 kHz mono instead.")
    return 0
