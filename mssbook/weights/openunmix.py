"""Open-Unmix's own format (``openunmix`` package, Zenodo releases): one PyTorch state dict per target.

The networks are mssbook's :class:`~mssbook.models.umx.OpenUnmix` layer for layer, so the keys map
one to one; extra keys of some releases (``stft.window``, ``sample_rate``) are ignored. The sizes
(hidden units, layers, channels, the bandwidth through ``max_bin``) are read from the shapes, so a
local file trained with other settings loads too.

Separation defaults are ``openunmix.Separator``'s: one EM iteration of the multichannel Wiener
filter over blocks of 300 frames, no residual, no soft mask.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import models
from ..signal import max_bin_to_bandwidth
from ..models.umx import openunmix_config_from_state_dict
from .common import ConversionError, Release, find_target_files

SUFFIXES = (".pth", ".pt")
ZENODO = "https://zenodo.org/records/{record}/files/{file}"
HOMEPAGE = "https://github.com/sigsep/open-unmix-pytorch#-pretrained-models"


def _release(name: str, record: int, files: dict[str, str], trained_on: str, license: str, sdr: dict) -> Release:
    return Release(
        name=name, model="umx", format="openunmix",
        urls=tuple(ZENODO.format(record=record, file=f) for f in files.values()),
        targets=tuple(files), files=tuple(files.values()), trained_on=trained_on, license=license,
        homepage=HOMEPAGE, sdr=sdr,
        notes="SHA-256 prefix in each file name (torch hub's convention); published SDR: median over "
              "the 50 MUSDB18 test tracks of the median over 1 s frames (open-unmix README).",
    )


RELEASES = (
    _release("umxhq", 3370489, {"vocals": "vocals-b62c91ce.pth", "drums": "drums-9619578f.pth",
                                "bass": "bass-8d85a5bd.pth", "other": "other-b52fbbf7.pth"},
             "MUSDB18-HQ", "MIT", {"vocals": 6.25, "drums": 6.04, "bass": 5.07, "other": 4.28}),
    _release("umx", 3370486, {"vocals": "vocals-c8df74a5.pth", "drums": "drums-5a48008b.pth",
                              "bass": "bass-646024d3.pth", "other": "other-f8e132cc.pth"},
             "MUSDB18", "MIT", {"vocals": 6.32, "drums": 5.73, "bass": 5.23, "other": 4.02}),
    _release("umxl", 5069601, {"vocals": "vocals-bccbd9aa.pth", "drums": "drums-69e0ebd4.pth",
                               "bass": "bass-2ca1ce51.pth", "other": "other-c8c5b3e6.pth"},
             "MUSDB18-HQ and extra private data", "CC BY-NC-SA 4.0 (non-commercial)",
             {"vocals": 7.21, "drums": 7.15, "bass": 6.02, "other": 4.89}),
)


def is_openunmix_state(obj) -> bool:
    return isinstance(obj, dict) and "fc1.weight" in obj and "input_mean" in obj


def read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConversionError(f"{path} is not a readable PyTorch weight file ({type(exc).__name__}: {exc}).") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not is_openunmix_state(state):
        raise ConversionError(f"{path} is not an Open-Unmix state dict (no fc1.weight / input_mean); "
                              "pass the per-target .pth files of an openunmix release.")
    return state


def convert(source: str | Path, model: str | None = None, targets=None):
    """A :class:`~mssbook.models.umx.UMX` with the weights of ``openunmix`` ``.pth`` file(s)."""
    if model not in (None, "umx"):
        raise ConversionError(f"Open-Unmix .pth files hold umx networks, not {model!r}.")
    files = find_target_files(source, SUFFIXES, targets, what="Open-Unmix weights")
    states = {target: read_state(file) for target, file in files.items()}
    configs = {}
    for target, state in states.items():
        try:
            configs[target] = openunmix_config_from_state_dict(state)
        except ValueError as exc:
            raise ConversionError(f"{files[target]}: {exc}") from None
    first = next(iter(configs.values()))
    for target, config in configs.items():
        if config != first:
            raise ConversionError(f"{files[target]} has other sizes ({config}) than "
                                  f"{next(iter(files.values()))} ({first}); one model needs one configuration.")
    n_fft = 2 * (first["nb_bins"] - 1)
    umx = models.create(
        "umx", preset="paper", target=list(states), hidden_size=first["hidden_size"], nb_layers=first["nb_layers"],
        unidirectional=first["unidirectional"], nb_channels=first["nb_channels"], n_fft=n_fft,
        bandwidth=max_bin_to_bandwidth(44100, n_fft, first["max_bin"]),
    )
    for target, state in states.items():
        try:
            umx.load_target_state_dict(target, state)
        except ValueError as exc:
            raise ConversionError(f"{files[target]}: {exc}") from None
    return umx.eval()
