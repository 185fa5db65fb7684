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

from dataclasses import dataclass, field
from typing import Callable

from ..errors import MSSBookError
from .base import SeparationModel


@dataclass
class ModelEntry:
    name: str
    builder: Callable[..., SeparationModel]
    presets: dict[str, dict] = field(default_factory=dict)
    description: str = ""
    default_targets: tuple[str, ...] = ("vocals", "drums", "bass", "other")
    #: the seed's training recipe: TrainConfig fields and sampler settings (seq_dur, gain_range, ...)
    training: dict = field(default_factory=dict)


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, presets: dict[str, dict], description: str = "",
             default_targets: tuple[str, ...] = ("vocals", "drums", "bass", "other"),
             training: dict | None = None):
    """Decorator registering ``builder(targets=..., **config) -> SeparationModel`` under ``name``.

    ``training`` holds the published recipe's settings that differ from the trainer's defaults
    (Open-Unmix's): :class:`mssbook.training.TrainConfig` fields and the sampler's ``seq_dur``,
    ``samples_per_track``, ``gain_range``, ``source_augmentations``.
    """

    def wrap(builder):
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, presets, description, tuple(default_targets), dict(training or {}))
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


def from_config(name: str, config: dict) -> SeparationModel:
    """Rebuild a model from the ``config`` recorded on it (used by checkpoints)."""
    config = dict(config)
    targets = config.pop("targets")
    return create(name, preset=None, target=targets, **config)


from . import umx  # noqa: E402,F401  (registers "umx")
from . import xumx  # noqa: E402,F401  (registers "xumx")
from . import d3net  # noqa: E402,F401  (registers "d3net")

__all__ = ["SeparationModel", "register", "create", "from_config", "available", "presets", "entry"]
