"""Keras 2 HDF5 checkpoints (``.hdf5``): the official source-separation Wavenet (Keras 2.1.5, Theano).

The releases are the training checkpoints of francesclluis/source-separation-wavenet,
``sessions/<mode>/checkpoints/checkpoint.000NN-0.hdf5``, written by Keras' ``ModelCheckpoint``:
a whole-model file with the weights under ``model_weights/<layer>/<layer>/kernel`` (``:0`` with
the TensorFlow backend) and the Adam slots under ``optimizer_weights`` (ignored). Files written by
``save_weights`` (layers at the root) load too. The session's ``config.json`` beside the
``checkpoints/`` folder (or beside the file) gives the sizes that the weights cannot: the target
field and its padding, and, if the layers were renamed, the dilations.

Mapping (by layer order, as Keras' own ``load_weights`` does; every layer with weights is a 1-D
convolution, kernel ``(k, in, out)``):

=====================================  =========================================================
Keras layer (in the file's order)      mssbook ``Wavenet``
=====================================  =========================================================
``initial_causal_conv``                ``network.initial.weight``
``res_{i}_dilated_conv_d{d}_s{s}``     ``network.blocks.{i-1}.dilated.weight`` (dilation d, stack s)
the 1×1 conv after it (``conv1d_N``)   ``network.blocks.{i-1}.mix.weight``
the head convs (``conv1d_N``)          ``network.head.{1, 3, …}.weight`` (after each ReLU)
the last conv, with bias               ``network.output.weight``, ``network.output.bias``
=====================================  =========================================================

Reshape: ``kernel.transpose(2, 1, 0)[..., ::-1]``: Keras' (k, in, out) becomes PyTorch's
(out, in, k), **flipped in time**. Keras' Theano backend calls ``theano.tensor.nnet.conv2d`` with
its default ``filter_flip=True``, a true convolution, while PyTorch (and Keras on TensorFlow)
cross-correlate; without the flip every k = 3 kernel runs backwards and the network separates
badly with no error. (Measured against the official code, ``tests/test_weights_keras.py``; a file
whose root attribute ``backend`` is ``"tensorflow"`` is not flipped.) The gate split needs no
reordering: both take tanh of the first half of the dilated conv's channels and sigmoid of the
second, and the 1×1 conv's first ``residual`` channels are the residual, the rest the skip.

Separation: the model's defaults are the seed's (target field from ``config.json``, 1601; 10
windows per pass). mssbook deliberately differs in three ways (:func:`separate_like_official`
reproduces the seed exactly): it separates each channel of a stereo input (the seed averages
(L + R) / 2 to mono), it pads the track with R // 2 zeros at each end so that the estimates cover
all L samples (the seed returns L − R + 1 samples, from sample R // 2 on, 4092 at each end of the
paper model dropped), and it gives each window 3 more samples of context per side so that the
result does not depend on where the windows fall (the seed's windows start at sample 0 of the track
and the outermost 3 samples of every target field see the head convs' zero padding).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .common import ConversionError, Release, load_mapped, require_h5py

SUFFIXES = (".hdf5",)

_REPO = "https://github.com/francesclluis/source-separation-wavenet"
_COMMIT = "c80bb531f32d9fb7de21c42d6f3a016bc2cd72b3"  # 2020-01-31, the last commit
_RAW = f"https://raw.githubusercontent.com/francesclluis/source-separation-wavenet/{_COMMIT}/sessions"

#: The seed's inference settings (``main.py --mode inference``: ``config.json``'s target field and
#: batch size) that :meth:`~mssbook.models.wavenet.Wavenet.separate` already uses by default.
SEPARATION = {"target_field_length": 1601, "batch_size": 10}

_NOTES = ("Mono 16 kHz non-causal Wavenet (Lluís, Pons & Serra, Interspeech 2019), Keras 2.1.5 on "
          "Theano 1.0.1; the file is the training checkpoint (with Adam's slots, ignored). No SHA-256 "
          "is published; the file's git blob id is {blob}. Official inference (main.py --mode inference, "
          "separate.py): (L + R) / 2 mono at 16 kHz, windows of 9785 samples every 1601, 10 per batch, "
          "output from sample 4092 to L - 4092; mssbook instead separates each channel and covers the "
          "whole track (mssbook.weights.keras.separate_like_official gives the seed's output).")

RELEASES = (
    Release(
        name="wavenet-multi-instrument",
        model="wavenet",
        format="keras",
        # README "Usage": "A pre-trained multi-instrument model ... can be found in
        # sessions/multi-instrument/checkpoints"; the file name is the repository's (git ls-tree)
        urls=(f"{_RAW}/multi-instrument/checkpoints/checkpoint.00045-0.hdf5",
              f"{_RAW}/multi-instrument/config.json"),
        targets=("vocals", "drums", "bass", "other"),
        files=("checkpoint.00045-0.hdf5", "config.json"),
        trained_on="MUSDB18 at 16 kHz mono (75% of train)",
        license="MIT",
        homepage=f"{_REPO}#usage",
        options=dict(SEPARATION),
        notes=_NOTES.format(blob="3b63e9ab9ec8f6e26f98c6c1fc311079e7588c6c") + " Epoch 45; 3,277,763 parameters; "
              "'other' = mixture - vocals - drums - bass.",
    ),
    Release(
        name="wavenet-singing-voice",
        model="wavenet",
        format="keras",
        urls=(f"{_RAW}/singing-voice/checkpoints/checkpoint.00058-0.hdf5",
              f"{_RAW}/singing-voice/config.json"),
        targets=("vocals", "accompaniment"),
        files=("checkpoint.00058-0.hdf5", "config.json"),
        trained_on="MUSDB18 at 16 kHz mono (75% of train)",
        license="MIT",
        homepage=f"{_REPO}#usage",
        options=dict(SEPARATION),
        notes=_NOTES.format(blob="2088145d7a6dad8bbadff6adb44f1a683e977085") + " Epoch 58; 3,277,249 parameters; "
              "'accompaniment' = mixture - vocals.",
    ),
)

_DILATED = re.compile(r"dilated_conv_d(\d+)_s(\d+)$")


# --- reading ---------------------------------------------------------------------------------------
def read_layers(path: str | Path) -> tuple[list[tuple[str, dict[str, np.ndarray]]], str]:
    """The layers with weights, in the file's order: ``[(layer name, {"kernel": …, "bias": …})]``,
    and the Keras backend that wrote the file (``"theano"``, ``"tensorflow"``; ``""`` if unknown)."""
    h5py = require_h5py()
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            backend = _text(f.attrs.get("backend", ""))
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise ConversionError(f"{path} is not a Keras weight file (no 'layer_names' attribute "
                                      "in its root or its 'model_weights' group).")
            layers = []
            for layer in (_text(n) for n in root.attrs["layer_names"]):
                if layer not in root:
                    raise ConversionError(f"{path}: layer {layer!r} is listed but has no group")
                group = root[layer]
                names = [_text(n) for n in group.attrs.get("weight_names", [])]
                if not names:
                    continue
                weights = {}
                for name in names:
                    if name not in group:
                        raise ConversionError(f"{path}: weight {layer}/{name} is listed but missing")
                    weights[name.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(group[name][()])
                layers.append((layer, weights))
    except OSError as exc:
        raise ConversionError(f"{path} is not a readable HDF5 file ({exc}).") from None
    return layers, backend


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def find_files(source: str | Path) -> tuple[Path, Path | None]:
    """The ``.hdf5`` file of ``source`` (the file, or the one file in a folder) and the session's
    ``config.json`` (beside the file, or beside its ``checkpoints/`` folder), or None."""
    source = Path(source)
    if source.is_file():
        file = source
    elif source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if len(files) != 1:
            raise ConversionError(
                f"{source} holds {len(files) or 'no'} Keras {'/'.join(SUFFIXES)} files"
                f"{': ' + ', '.join(p.name for p in files) if files else ''}; pass the checkpoint file itself "
                "(e.g. sessions/multi-instrument/checkpoints/checkpoint.00045-0.hdf5).")
        file = files[0]
    else:
        raise ConversionError(f"{source} does not exist; pass the downloaded .hdf5 checkpoint or its folder.")
    for folder in (file.parent, file.parent.parent):
        if (folder / "config.json").is_file():
            return file, folder / "config.json"
    return file, None


def read_config(path: Path | None) -> dict:
    """The ``model`` section of the official session ``config.json`` ({} without one)."""
    if path is None:
        return {}
    try:
        model = json.loads(Path(path).read_text()).get("model", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise ConversionError(f"{path} is not the Wavenet's session config.json ({exc})") from None
    if not isinstance(model, dict):
        raise ConversionError(f"{path}: 'model' is not a section of settings")
    return model


# --- mapping ---------------------------------------------------------------------------------------
def torch_kernel(kernel: np.ndarray, flip: bool = True) -> np.ndarray:
    """Keras' Conv1D kernel (k, in, out) as PyTorch's (out, in, k), flipped in time for Theano."""
    weight = np.transpose(kernel, (2, 1, 0))
    return (weight[..., ::-1] if flip else weight).copy()  # a copy: torch takes no negative strides


def _kernel(source: str, layer: str, weights: dict, shape: tuple, role: str) -> np.ndarray:
    """The layer's kernel, checked against ``shape`` (None entries: any size)."""
    if "kernel" not in weights:
        raise ConversionError(f"{source}: layer {layer!r} ({role}) has no kernel; it holds {sorted(weights)}")
    kernel = weights["kernel"]
    if kernel.ndim != 3 or any(s is not None and s != d for s, d in zip(shape, kernel.shape)):
        want = "(" + ", ".join("k" if s is None else str(s) for s in shape) + ")"
        raise ConversionError(f"{source}: {layer}/kernel ({role}) has shape {tuple(kernel.shape)}; expected "
                              f"{want} (a Conv1D kernel: length, input channels, output channels)")
    return kernel


def _blocks(source: str, layers: list, config: dict) -> list[tuple[int, int]]:
    """(dilation, stack) of each residual block: from the layer names, else from config.json."""
    from ..models.wavenet import dilation_list

    from_config = None
    if "num_stacks" in config and "dilations" in config:
        from_config = [(d, s) for s in range(int(config["num_stacks"])) for d in dilation_list(config["dilations"])]
    named = [(int(m.group(1)), int(m.group(2))) for name, _ in layers if (m := _DILATED.search(name))]
    if named and from_config is not None and named != from_config:
        raise ConversionError(f"{source}: the layer names give residual blocks (dilation, stack) {named}, the "
                              f"config.json {from_config}")
    blocks = named or from_config
    if not blocks:
        raise ConversionError(f"{source}: cannot tell the residual blocks' dilations: no layer is named "
                              "'res_<i>_dilated_conv_d<dilation>_s<stack>' and no config.json with "
                              "'num_stacks' and 'dilations' lies beside the file or its checkpoints folder")
    return blocks


def map_weights(layers: list, config: dict, source: str, flip: bool = True) -> tuple[dict, dict]:
    """``({mssbook key: array}, mssbook Wavenet settings)`` from the Keras layers, in order."""
    blocks = _blocks(source, layers, config)
    n_convs = 1 + 2 * len(blocks)
    if len(layers) < n_convs + 1:
        have = ", ".join(name for name, _ in layers)
        raise ConversionError(f"{source}: {len(blocks)} residual blocks need {n_convs} convs and a head, the file has "
                              f"{len(layers)} layers with weights ({have}); missing layers after {layers[-1][0]!r}")
    stacks = 1 + max(s for _, s in blocks)
    dilations = [d for d, s in blocks if s == 0]
    if blocks != [(d, s) for s in range(stacks) for d in dilations]:
        raise ConversionError(f"{source}: the residual blocks' (dilation, stack) {blocks} do not repeat one "
                              "pattern of dilations per stack, as the mssbook Wavenet does")

    name, weights = layers[0]
    initial = _kernel(source, name, weights, (None, 1, None), "the initial conv")
    k, res = initial.shape[0], initial.shape[2]
    arrays = {"network.initial.weight": torch_kernel(initial, flip)}
    skip = None
    for i in range(len(blocks)):
        (dname, dweights), (mname, mweights) = layers[1 + 2 * i], layers[2 + 2 * i]
        dilated = _kernel(source, dname, dweights, (k, res, 2 * res), f"block {i + 1}'s dilated conv")
        mix = _kernel(source, mname, mweights, (1, res, None if skip is None else res + skip),
                      f"block {i + 1}'s 1x1 residual/skip conv")
        skip = mix.shape[2] - res
        if skip < 1:
            raise ConversionError(f"{source}: {mname}/kernel has shape {tuple(mix.shape)}; expected (1, {res}, "
                                  f"{res} + skip channels)")
        arrays[f"network.blocks.{i}.dilated.weight"] = torch_kernel(dilated, flip)
        arrays[f"network.blocks.{i}.mix.weight"] = torch_kernel(mix, flip)

    head, channels, head_channels, head_kernels = layers[n_convs:], skip, [], []
    for j, (name, weights) in enumerate(head[:-1]):
        kernel = _kernel(source, name, weights, (None, channels, None), f"head conv {j + 1}")
        if "bias" in weights:
            raise ConversionError(f"{source}: head conv {name!r} has a bias; the Wavenet's head convs have none")
        arrays[f"network.head.{2 * j + 1}.weight"] = torch_kernel(kernel, flip)
        channels = kernel.shape[2]
        head_channels.append(int(channels))
        head_kernels.append(int(kernel.shape[0]))
    name, weights = head[-1]
    output = _kernel(source, name, weights, (1, channels, None), "the output conv")
    if "bias" not in weights:
        raise ConversionError(f"{source}: the output conv {name!r} has no bias (the Wavenet's last conv has one)")
    if weights["bias"].shape != (output.shape[2],):
        raise ConversionError(f"{source}: {name}/bias has shape {tuple(weights['bias'].shape)}; expected "
                              f"({output.shape[2]},)")
    arrays["network.output.weight"] = torch_kernel(output, flip)
    arrays["network.output.bias"] = weights["bias"]
    settings = dict(stacks=stacks, dilations=dilations, residual_channels=int(res), skip_channels=int(skip),
                    head_channels=head_channels, head_kernel_sizes=head_kernels, kernel_size=int(k))
    return arrays, settings


def _mode(n_out: int, config: dict, targets, source: str) -> str:
    from ..models.wavenet import MODES, resolve_mode

    by_heads = {len(sources) - 1: mode for mode, sources in MODES.items()}
    if n_out not in by_heads:
        raise ConversionError(f"{source}: the output conv has {n_out} channels; the Wavenet has 3 (multi-instrument) "
                              "or 1 (singing voice)")
    mode = by_heads[n_out]
    wanted = config.get("type") if targets is None else targets
    if wanted is not None:
        try:
            asked = resolve_mode(wanted)
        except ValueError as exc:
            raise ConversionError(f"{source}: {exc}") from None
        if asked != mode:
            raise ConversionError(f"{source} holds a {mode} Wavenet ({n_out} output channels), not {asked}")
    return mode


def convert(source: str | Path, model: str | None = None, targets=None):
    """An mssbook :class:`~mssbook.models.wavenet.Wavenet` with the weights of an official Keras checkpoint.

    ``source``: the ``.hdf5`` file, or a folder holding one (with the session's ``config.json``
    beside it or beside its ``checkpoints/`` folder). ``targets``: None, or the mode
    (``"multi-instrument"``, ``"singing-voice"``) the file must hold. Returns the model on CPU in
    eval mode.
    """
    from ..models import create

    if model not in (None, "wavenet"):
        raise ConversionError(f"Keras checkpoints convert to the wavenet, not {model!r}.")
    file, config_path = find_files(source)
    config = read_config(config_path)
    layers, backend = read_layers(file)
    if not layers:
        raise ConversionError(f"{file} holds no layer with weights.")
    arrays, settings = map_weights(layers, config, str(file), flip=backend != "tensorflow")
    mode = _mode(int(arrays["network.output.bias"].shape[0]), config, targets, str(file))
    extra = {}
    for key in ("target_field_length", "target_padding"):
        if key in config:
            extra[key] = int(config[key])
    lengths = config.get("filters", {}).get("lengths", {}) if isinstance(config.get("filters"), dict) else {}
    if "res" in lengths and int(lengths["res"]) != settings["kernel_size"]:
        raise ConversionError(f"{file}: config.json gives residual kernels of {lengths['res']}, the file "
                              f"{settings['kernel_size']}")
    try:
        net = create("wavenet", preset="paper", target=mode, **settings, **extra)
    except ValueError as exc:
        raise ConversionError(f"{file}: the weights describe a Wavenet mssbook cannot build ({exc})") from None
    load_mapped(net, arrays, str(file))
    return net.eval()


# --- the seed's inference --------------------------------------------------------------------------
def separate_like_official(net, mixture, target_field_length: int | None = None,
                           batch_size: int | None = None) -> torch.Tensor:
    """The official ``separate.py`` result: sources (S, L − R + 1) for the track samples R // 2 … L − R // 2 − 1.

    ``mixture``: (L,) mono or (C, L) at 16 kHz, averaged to mono as the seed's ``read_wav`` (its
    first two channels). The seed's windows start at sample 0 of the track; mssbook's
    ``separate(seed_windows=True)`` is given s = (−R // 2) mod T zeros in front so that its windows
    fall on the same samples, and the estimates are cut to the seed's span. The last source is the
    residual, as the seed's.
    """
    x = torch.as_tensor(np.asarray(mixture) if not torch.is_tensor(mixture) else mixture, dtype=torch.float32)
    if x.ndim == 2:
        x = x[:2].mean(dim=0) if x.shape[0] > 1 else x[0]
    if x.ndim != 1:
        raise ValueError(f"mixture must be (samples,) or (channels, samples); got {tuple(x.shape)}")
    R = net.receptive_field_length
    T = int(target_field_length or net.target_field_length)
    if x.shape[-1] < R:
        raise ValueError(f"the official inference needs at least the receptive field, {R} samples; got {x.shape[-1]}")
    shift = (-(R // 2)) % T
    padded = F.pad(x, (shift, 0))[None, None]  # (1, 1, s + L)
    with torch.no_grad():
        est = net.separate(padded, target_field_length=T, batch_size=batch_size, seed_windows=True)[0, :, 0]
    start = shift + R // 2
    return est[:, start : start + x.shape[-1] - R + 1]


__all__ = ["SUFFIXES", "RELEASES", "SEPARATION", "convert", "read_layers", "read_config", "find_files",
           "map_weights", "torch_kernel", "separate_like_official"]
