"""Checkpoints: what the trainer writes and what the separator and evaluator load.

A checkpoint is one ``torch.save`` dict holding the model's registry name and configuration (so it
can be rebuilt without the training script), its weights, and, for training checkpoints, the
optimizer, scheduler, RNG states, epoch and history needed to resume. Files are written
atomically: an interrupted save never leaves a truncated ``last.pt`` behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .errors import MSSBookError
from .models import SeparationModel, from_config
from .utils import atomic_path

FORMAT = "mssbook-checkpoint-1"


def save_checkpoint(path: str | os.PathLike, model: SeparationModel, **extra: Any) -> Path:
    """Write ``model`` (plus any training state in ``extra``) to ``path`` atomically, replacing it."""
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {
        "format": FORMAT,
        "mssbook_version": __version__,
        "model_name": model.name,
        "model_config": model.config,
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(state, tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint dict on the CPU, with a clear error for anything that is not one."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise MSSBookError(f"{path} is a folder without best.pt or last.pt; pass a checkpoint file.")
    if not path.is_file():
        raise MSSBookError(f"no checkpoint at {path}; pass the .pt file the trainer wrote (best.pt or last.pt).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise MSSBookError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MSSBookError(
            f"{path} is not an mssbook checkpoint (no '{FORMAT}' marker). Official weights load with "
            "mssbook.pretrained(...) or convert with `mssbook convert`."
        )
    weights = state.get("model_state")
    if not isinstance(weights, dict) or not all(torch.is_tensor(v) for v in weights.values()):
        raise MSSBookError(f"{path} is damaged: its model weights are missing or unreadable. Use another copy "
                           "(a run keeps best.pt and last.pt) or train again.")
    bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise MSSBookError(f"{path} is damaged: {len(bad)} weight tensor(s) hold NaN or infinite values "
                           f"({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}). Use another copy (a run keeps "
                           "best.pt and last.pt) or train again.")
    return state


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> SeparationModel:
    """Rebuild the model stored in a checkpoint, with its weights, in eval mode."""
    state = read_checkpoint(path)
    model = from_config(state["model_name"], state["model_config"])
    model.load_state_dict(state["model_state"])
    return model.to(device).eval()
