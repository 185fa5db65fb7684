"""Model registry: one switch for the CLI, the notebooks and the tests.

    >>> from mssbook import models
    >>> umx = models.create("umx", preset="paper", target="vocals")
    >>> models.available()

Each architecture file registers a builder with named presets: ``"paper"`` is the published
configuration (exact parameter counts), ``"tutorial"`` a CPU-sized one; some families add more.
``create`` merges ``overrides`` into the preset and records the full configuration on the model
(``model.config``) so that checkpoints can rebuild it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Callable

from ..errors import MSSBookError
from .base import SeparationModel


@dataclass(frozen=True)
class Option:
    """A command-line flag a model family adds to ``mssbook train`` (its seed's argument names).

    ``key`` names a model constructor argument (``where="model"``), a
    :class:`mssbook.training.TrainConfig` or ``DataConfig`` field (``where="train"``), or a
    separation option of :meth:`SeparationModel.separate` (``where="separate"``, added to
    ``mssbook separate`` and ``mssbook evaluate``). ``type`` converts the text; use
    :func:`mssbook.utils.parse_bool` for booleans (argparse's ``type=bool`` turns "False" into True).
    """

    flag: str
    key: str
    type: Callable = str
    help: str = ""
    choices: tuple | None = None
    where: str = "model"


@dataclass
class ModelEntry:
    name: str
    builder: Callable[..., SeparationModel]
    presets: dict[str, dict] = field(default_factory=dict)
    description: str = ""
    default_targets: tuple[str, ...] = ("vocals", "drums", "bass", "other")
    #: the seed's training recipe: TrainConfig fields and sampler settings (seq_dur, gain_range, ...)
    training: dict = field(default_factory=dict)
    #: extra command-line flags (the seed's own argument names), see :class:`Option`
    cli_options: tuple[Option, ...] = ()
    #: recipe settings for one target (or mode) on top of ``training``, e.g. the Wavenet's
    #: singing-voice data settings: ``{target: {field: value}}``
    target_training: dict = field(default_factory=dict)


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, presets: dict[str, dict], description: str = "",
             default_targets: tuple[str, ...] = ("vocals", "drums", "bass", "other"),
             training: dict | None = None, cli_options: tuple[Option, ...] = (),
             target_training: dict | None = None):
    """Decorator registering ``builder(targets=..., **config) -> SeparationModel`` under ``name``.

    ``training`` holds the published recipe's settings that differ from the trainer's defaults
    (Open-Unmix's): :class:`mssbook.training.TrainConfig` fields and the sampler's ``seq_dur``,
    ``samples_per_track``, ``gain_range``, ``source_augmentations``. ``cli_options`` are the
    family's own command-line flags (:class:`Option`); ``target_training`` adds settings for one
    target or mode (``{target: {field: value}}``, see :func:`training_recipe`).
    """

    def wrap(builder):
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, presets, description, tuple(default_targets),
                                     dict(training or {}), tuple(cli_options), dict(target_training or {}))
        return builder

    return wrap


def available() -> list[str]:
    """Registered model names."""
    return sorted(_REGISTRY)


def entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MSSBookError(f"unknown model {name!r}; available: {', '.join(available()) or 'none'}") from None


def presets(name: str) -> dict[str, dict]:
    """The named presets of a model (a copy)."""
    return {k: dict(v) for k, v in entry(name).presets.items()}


def create(name: str, preset: str | None = "tutorial", target=None, **overrides) -> SeparationModel:
    """Build model ``name`` from ``preset`` (None: the builder's defaults) with ``overrides`` on top.

    ``target`` is one source name, a sequence of names, or None for the model's default targets.
    """
    model_entry = entry(name)
    config: dict = {}
    if preset is not None:
        if preset not in model_entry.presets:
            raise MSSBookError(
                f"model {name!r} has no preset {preset!r}; choose one of {', '.join(model_entry.presets)}"
            )
        config.update(model_entry.presets[preset])
    config.update(overrides)
    if target is None:
        targets = tuple(config.pop("targets", model_entry.default_targets))
    else:
        config.pop("targets", None)
        targets = (target,) if isinstance(target, str) else tuple(target)
    model = model_entry.builder(targets=targets, **config)
    model.name = name
    model.config = {"targets": list(targets), **config}
    return model


def training_recipe(name: str, targets=None) -> dict:
    """The published training recipe of model ``name`` for ``targets`` (a name, names, or None for
    the recipe's own): the registry's ``training`` dict with the settings of those targets on top
    (``target_training``). Keys are :class:`mssbook.training.TrainConfig` and ``DataConfig``
    fields, plus ``targets``."""
    model_entry = entry(name)
    recipe = dict(model_entry.training)
    if targets is None:
        targets = recipe.get("targets", model_entry.default_targets)
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    for target in targets:
        recipe.update(model_entry.target_training.get(target, {}))
    recipe["targets"] = targets
    return recipe


def family_options(where: str) -> dict[str, tuple[Option, list[str]]]:
    """Every registered :class:`Option` with ``where``, by flag: ``{flag: (option, model names)}``.

    Two families may share a flag only with the same key (a registration error otherwise)."""
    out: dict[str, tuple[Option, list[str]]] = {}
    for name in available():
        for option in entry(name).cli_options:
            if option.where != where:
                continue
            if option.flag in out:
                known, names = out[option.flag]
                if known.key != option.key:
                    raise ValueError(f"flag {option.flag} means {known.key!r} for {names} but {option.key!r} for {name!r}")
                names.append(name)
            else:
                out[option.flag] = (option, [name])
    return out


FAMILY_DEST = "family_option:"


def add_family_arguments(parser: argparse.ArgumentParser, where: tuple[str, ...]) -> None:
    """The flags model families register (:class:`mssbook.models.Option`, e.g. the U-Nets' seed
    arguments ``--n_fft --tfc_tdf_bias``) in one argument group; a flag the parser already has
    (``--lr``) stays that flag (it must mean the same setting)."""

    group = parser.add_argument_group("model family options (each applies to the models named)")
    for kind in where:
        for flag, (option, names) in family_options(kind).items():
            try:
                group.add_argument(flag, dest=FAMILY_DEST + flag, type=option.type, choices=option.choices,
                                   default=None, help=f"{option.help} [{', '.join(names)}]".strip())
            except argparse.ArgumentError:  # the generic flag of the same name (e.g. --lr) already exists
                continue


def family_values(args: argparse.Namespace, model_name: str | None, where: tuple[str, ...]) -> dict[str, dict]:
    """``{where: {key: value}}`` of the family flags set on the command line for ``model_name``;
    a flag of another family is an error naming the models that have it (``model_name=None``: not
    checked here; the separator checks a checkpoint's options itself)."""
    out: dict[str, dict] = {kind: {} for kind in where}
    for kind in where:
        for flag, (option, names) in family_options(kind).items():
            value = getattr(args, FAMILY_DEST + flag, None)
            if value is None:
                continue
            if model_name is not None and model_name not in names:
                raise MSSBookError(f"{flag} is an option of {', '.join(names)}, not of model {model_name!r}")
            out[kind][option.key] = value
    return out


def from_config(name: str, config: dict) -> SeparationModel:
    """Rebuild a model from the ``config`` recorded on it (used by checkpoints)."""
    config = dict(config)
    targets = config.pop("targets")
    return create(name, preset=None, target=targets, **config)


from . import umx  # noqa: E402,F401  (registers "umx")
from . import xumx  # noqa: E402,F401  (registers "xumx")
from . import d3net  # noqa: E402,F401  (registers "d3net")
from . import bsrnn  # noqa: E402,F401  (registers "bsrnn")
from . import wavenet  # noqa: E402,F401  (registers "wavenet")
from . import tfc_tdf_unet  # noqa: E402,F401  (registers "tfc_net", "tdf_net", "tfc_tdf_net", "tdc_net", "tdc_rnn_net")

__all__ = ["SeparationModel", "Option", "training_recipe", "family_options", "add_family_arguments",
           "family_values", "register", "create", "from_config", "available", "presets", "entry"]
