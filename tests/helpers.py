"""Helpers several test files share: a tiny training set, the shared MUSDB18 sample."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mssbook.paths import shared_data_dir


def musdb_sample_root() -> Path:
    """The MUSDB18 STEMS sample in shared/data (stempeg's excerpt); skips the test when absent."""
    shared = shared_data_dir()
    root = shared / "musdb18-sample" if shared else None
    if root is None or not (root / "train").is_dir():
        pytest.skip("shared/data/musdb18-sample is not available next to this checkout")
    return root


class ToneDataset(Dataset):
    """Vocals = a sine at a pitch drawn per item; the rest = noise; the mixture is their sum.

    Item ``i`` is the same on every call: (mixture (2, length), vocals (1, 2, length)). The
    trainer's own tests use an epoch-aware variant (tests/test_train.py)."""

    def __init__(self, n: int = 4, length: int = 4000, sr: int = 8000):
        self.n, self.length, self.sr = n, length, sr

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        t = np.arange(self.length) / self.sr
        vocals = 0.5 * np.sin(2 * np.pi * rng.uniform(200, 800) * t)
        noise = 0.1 * rng.standard_normal((2, self.length))
        refs = np.stack([np.stack([vocals, vocals]), noise]).astype(np.float32)
        return torch.from_numpy(refs.sum(0)), torch.from_numpy(refs[:1])


def fit_tiny_batch(model, mixture: torch.Tensor, references: torch.Tensor, steps: int, lr: float) -> list[float]:
    """Adam on ``model.loss`` for one fixed batch, ``steps`` times; the loss before each step.

    The models' "overfits a tiny batch" tests: a model that can learn drives this far down."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss, _ = model.loss(mixture, references)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
