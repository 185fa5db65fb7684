"""The contract between every architecture and the one trainer, separator and evaluator.

A model is a :class:`SeparationModel`: it knows its sample rate, channel count and targets, turns a
batch of mixtures and references into a loss (:meth:`~SeparationModel.loss`), and turns mixtures
into waveform estimates (:meth:`~SeparationModel.separate`). Everything domain-specific (STFT,
masks, Wiener filtering, band splits, receptive fields) stays inside the model file, so the
workflows never need to know which architecture they drive.

Shapes: mixtures ``(batch, channels, samples)``; references and estimates
``(batch, targets, channels, samples)``, targets in the order of :attr:`SeparationModel.targets`.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch import nn


class SeparationModel(nn.Module):
    #: registry name, set by :func:`mssbook.models.register`
    name: str = ""

    def __init__(self, targets: Iterable[str], sample_rate: int = 44100, nb_channels: int = 2) -> None:
        super().__init__()
        self.targets = tuple(targets)
        if not self.targets:
            raise ValueError("a separation model needs at least one target")
        self.sample_rate = int(sample_rate)
        self.nb_channels = int(nb_channels)
        self.config: dict = {}  # constructor arguments, filled by the registry (checkpoints rebuild from it)

    # -- training ---------------------------------------------------------------------------
    def loss(self, mixture: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss for a batch: ``mixture`` (B, C, L), ``references`` (B, S, C, L).

        Returns the scalar to minimise and a dict of named values worth logging.
        """
        raise NotImplementedError

    def training_seq_dur(self) -> float | None:
        """Seconds per training excerpt this configuration needs (e.g. the U-Nets' hop·(frames − 1)
        samples), or None to use the recipe's ``seq_dur``."""
        return None

    @property
    def label(self) -> str:
        """The model's name in messages (the class name unless a model says otherwise)."""
        return type(self).__name__

    def _check_mixture(self, mixture: torch.Tensor) -> None:
        """Raise a clear error unless ``mixture`` is (batch, channels, samples) with the model's
        channel count (models that accept other channel counts override this)."""
        if mixture.ndim != 3:
            raise ValueError(
                f"{self.label} expects mixtures shaped (batch, channels, samples); got {tuple(mixture.shape)}. "
                "Add a batch dimension with mixture[None] for a single (channels, samples) signal."
            )
        if mixture.shape[1] != self.nb_channels:
            raise ValueError(
                f"this {self.label} was built for {self.nb_channels} channels but the mixture has "
                f"{mixture.shape[1]} (shape {tuple(mixture.shape)}); convert the audio to {self.nb_channels} "
                "channels first"
            )
        if mixture.shape[-1] == 0:
            raise ValueError("the mixture is empty (0 samples); pass at least one sample of audio")

    def _check_references(self, mixture: torch.Tensor, references: torch.Tensor) -> None:
        """Raise a clear error unless ``references`` is (B, S, C, L) for ``mixture`` (B, C, L)."""
        self._check_mixture(mixture)
        expected = (mixture.shape[0], len(self.targets), mixture.shape[1], mixture.shape[2])
        if tuple(references.shape) != expected:
            raise ValueError(
                f"references must be (batch, targets={len(self.targets)} {list(self.targets)}, channels, samples) "
                f"= {expected} to match the mixture; got {tuple(references.shape)}"
            )

    def validation_loss(self, mixture: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """Loss on full validation tracks; the training loss unless a model says otherwise."""
        return self.loss(mixture, references)[0]

    def initialize_from_data(self, mixtures: Iterable[np.ndarray]) -> None:
        """Hook run once before training on the training mixtures (``(C, L)`` arrays).

        Models that normalise their inputs with dataset statistics (Open-Unmix, D3Net) compute
        them here; others ignore it.
        """

    # -- inference ----------------------------------------------------------------------------
    def separate(self, mixture: torch.Tensor, **options) -> torch.Tensor:
        """Waveform estimates ``(B, S, C, L)`` for mixtures ``(B, C, L)`` at the model's rate."""
        raise NotImplementedError

    def separation_options(self) -> dict:
        """Keyword options :meth:`separate` accepts, with their defaults (for the CLI and docs)."""
        return {}

    # -- bookkeeping --------------------------------------------------------------------------
    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def extra_repr(self) -> str:
        return f"targets={self.targets}, sample_rate={self.sample_rate}, nb_channels={self.nb_channels}"
