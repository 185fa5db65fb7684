"""Sony's nnabla Open-Unmix (``umxhq.zip``, ``umx.zip``) and X-UMX (``x-umx.h5``) → mssbook.

The files are written by ``nn.save_parameters`` from ``sony/ai-research-code/x-umx/model.py``
(``OpenUnmix``: one file per target; ``OpenUnmix_CrossNet``: one file, the scopes suffixed
``_bass``, ``_drums``, ``_vocals``, ``_other``). Every branch maps onto an
:class:`~mssbook.models.umx.OpenUnmix` (``{s}`` is empty for UMX, ``_<target>`` for X-UMX):

* ``input_mean{s}``, ``input_scale{s}`` (max_bin,) → ``input_mean``, ``input_scale`` (both already
  hold −mean and 1/std, as mssbook's); ``output_scale{s}``, ``output_mean{s}`` (nb_bins,) → same names;
* ``fc1{s}/affine/W`` (C·max_bin, H), ``fc2{s}/affine/W`` (2H, H), ``fc3{s}/affine/W`` (H, C·nb_bins):
  transposed → ``fc1.weight``, ``fc2.weight``, ``fc3.weight`` (no biases; channel-major features);
* ``fc{k}{s}/bn/gamma|beta|mean|var`` (1, 1, n): squeezed → ``bn{k}.weight|bias|running_mean|running_var``;
* ``lstm{s}/lstm/weight_l0`` (D, 4, h, H + h) → layer 0, ``lstm{s}/lstm/weight``
  (L − 1, D, 4, h, D·h + h) → layers 1 … L − 1 (``lstm.weight_ih_l*``, ``lstm.weight_hh_l*``),
  ``lstm{s}/lstm/bias`` (L, D, 4, h) → ``lstm.bias_ih_l*`` (``bias_hh``: zero).

Each packed LSTM row block is ``[input weights | recurrent weights]``; direction 1 is torch's
``_reverse``; the gates come in torch's order (input, forget, cell, output: checked by running
nnabla's ``PF.lstm`` beside ``torch.nn.LSTM``). nnabla has one bias per gate where torch has two,
so it goes to ``bias_ih`` and ``bias_hh`` is zero. Hidden size, layers, directions, channels, bins
(→ ``n_fft``) and ``max_bin`` (→ the bandwidth) are read from the shapes, so reduced configurations
load too; the hop is ``n_fft / 4`` as in every official configuration.

Separation defaults reproduce the official inference (``x-umx/test.py: separate``, also used by
``eval.py`` for the published scores): centred STFT (reflect padding, periodic Hann), the networks
on the whole excerpt, ``norbert.wiener`` with one EM iteration over **all frames at once**, no
soft mask, no residual (a single UMX target gets one, as ``separate`` adds "accompaniment"), then
the inverse STFT. mssbook differs in small ways: its Wiener filter computes in float32 (norbert in float64; the
converted model takes norbert's ``eps``, float64's machine epsilon, as its ``wiener_eps``), and its
output has the input's length (the official ``scipy.signal.istft`` returns ``(frames − 1) · hop`` samples). The
X-UMX README suggests ``--chunk-dur 10`` (independent 10 s pieces, no overlap) only to save GPU
memory; the default and ``eval.py`` separate whole tracks, as mssbook does.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import models
from ..signal import bandwidth_to_max_bin, max_bin_to_bandwidth
from .common import SOURCES, ConversionError, Release, find_target_files, load_mapped, read_h5

SUFFIXES = (".h5",)
SAMPLE_RATE = 44100
#: the order of ``OpenUnmix_CrossNet``'s branches and outputs (``x-umx/model.py``)
XUMX_BRANCHES = ("bass", "drums", "vocals", "other")
#: separation settings of the official ``test.separate`` / ``eval.py`` (defaults of ``args.py``)
#: (norbert regularises with float64's machine epsilon, Open-Unmix with 1e-10)
OPTIONS = {"niter": 1, "softmask": False, "residual": False, "wiener_win_len": 0,
           "wiener_eps": float(np.finfo(np.float64).eps)}

UMX_HOME = "https://github.com/sony/ai-research-code/blob/master/x-umx/umx.md"
XUMX_HOME = "https://github.com/sony/ai-research-code/blob/master/x-umx/x-umx.md"
_UMX_FILES = tuple(f"{t}.h5" for t in SOURCES)
_UMX_NOTES = ("nnabla port of Open-Unmix; the zip holds one <target>.h5 per target (x-umx/test.py loads "
              "'<folder>/<target>.h5'). Published SDR: the 'NNabla' column of umx.md (median over frames, "
              "median over the MUSDB18 test tracks). No checksum is published.")

RELEASES = (
    Release(
        name="umxhq-nnabla", model="umx", format="nnabla",
        urls=("https://nnabla.org/pretrained-models/open-unmix-nnabla/umxhq.zip",),
        targets=SOURCES, files=_UMX_FILES, trained_on="MUSDB18-HQ", license="MIT",
        homepage=UMX_HOME, sdr={"vocals": 6.30, "drums": 5.78, "bass": 5.21, "other": 4.17},
        options=dict(OPTIONS), notes=_UMX_NOTES,
    ),
    Release(
        name="umx-nnabla", model="umx", format="nnabla",
        urls=("https://nnabla.org/pretrained-models/open-unmix-nnabla/umx.zip",),
        targets=SOURCES, files=_UMX_FILES, trained_on="MUSDB18", license="MIT",
        homepage=UMX_HOME, sdr={"vocals": 6.41, "drums": 5.58, "bass": 5.30, "other": 4.24},
        options=dict(OPTIONS), notes=_UMX_NOTES,
    ),
    Release(
        name="xumx-nnabla", model="xumx", format="nnabla",
        urls=("https://nnabla.org/pretrained-models/ai-research-code/x-umx/x-umx.h5",),
        targets=SOURCES, files=("x-umx.h5",), trained_on="MUSDB18",
        license="Apache-2.0 (ai-research-code)",
        homepage=XUMX_HOME, sdr={"vocals": 6.61, "drums": 6.47, "bass": 5.43, "other": 4.64},
        options=dict(OPTIONS),
        notes="One file holds the four bridged branches. x-umx.md says the file gives the scores of the "
              "paper (Sawata et al., ICASSP 2021); the SDRs listed are the paper's X-UMX row as the asteroid "
              "X-UMX README quotes it. x-umx.md suggests --chunk-dur 10 to save GPU memory; eval.py "
              "separates whole tracks. No checksum is published.",
    ),
)


# --- reading ------------------------------------------------------------------------------------
def _strip_scope(arrays: dict) -> dict:
    """Drop a parameter scope wrapped around a whole UMX file (e.g. saved under ``vocals/``)."""
    if "input_mean" in arrays or any(k.startswith("input_mean_") for k in arrays):
        return arrays
    tails = [k[: -len("input_mean")] for k in arrays if k.endswith("/input_mean")]
    if len(tails) == 1 and all(k.startswith(tails[0]) for k in arrays):
        return {k[len(tails[0]):]: v for k, v in arrays.items()}
    return arrays


def family_of(arrays: dict) -> str:
    """"xumx" or "umx" from the parameter names of one nnabla file (:class:`ConversionError` if neither)."""
    names = list(_strip_scope(arrays))
    if any(re.fullmatch(r"(input_mean|input_scale)_[a-z]+|(fc[123]|lstm)_[a-z]+/.*", n) for n in names):
        return "xumx"
    if any(n in ("input_mean", "input_scale") or re.match(r"(fc[123]|lstm)/", n) for n in names):
        return "umx"
    shown = ", ".join(sorted(names)[:5]) or "nothing"
    raise ConversionError(f"not an nnabla Open-Unmix or X-UMX parameter file (it holds {shown}); expected "
                          "input_mean, fc1/affine/W, lstm/lstm/weight_l0, ... (or their _bass/_drums/... forms).")


def _get(arrays: dict, key: str, source: str, ndim: int) -> np.ndarray:
    if key not in arrays:
        raise ConversionError(f"{source}: the parameter {key!r} is missing (an nnabla Open-Unmix branch has "
                              "input_mean, input_scale, output_scale, output_mean, fc1/fc2/fc3 affine + bn, lstm).")
    value = np.asarray(arrays[key], dtype=np.float32)
    if value.ndim != ndim:
        raise ConversionError(f"{source}: {key} has shape {value.shape}, expected {ndim} dimensions.")
    return value


def _expect(key: str, value: np.ndarray, shape: tuple, source: str, why: str) -> None:
    if tuple(value.shape) != tuple(shape):
        raise ConversionError(f"{source}: {key} has shape {tuple(value.shape)}, expected {tuple(shape)} ({why}).")


def _branch(arrays: dict, suffix: str, source: str) -> tuple[dict, dict]:
    """One Open-Unmix branch: ``({mssbook key inside OpenUnmix: array}, sizes)``; ``suffix`` is ``""``
    (UMX) or ``"_bass"`` ... (X-UMX). Errors name the nnabla key at fault."""
    mean = _get(arrays, f"input_mean{suffix}", source, 1)
    max_bin = mean.shape[0]
    scale = _get(arrays, f"input_scale{suffix}", source, 1)
    _expect(f"input_scale{suffix}", scale, (max_bin,), source, f"input_mean{suffix} has {max_bin} bins")
    out_mean = _get(arrays, f"output_mean{suffix}", source, 1)
    nb_bins = out_mean.shape[0]
    out_scale = _get(arrays, f"output_scale{suffix}", source, 1)
    _expect(f"output_scale{suffix}", out_scale, (nb_bins,), source, f"output_mean{suffix} has {nb_bins} bins")

    key = f"fc1{suffix}/affine/W"
    w1 = _get(arrays, key, source, 2)
    if w1.shape[0] % max_bin:
        raise ConversionError(f"{source}: {key} has shape {w1.shape}: its input size is not a multiple of "
                              f"the {max_bin} bins of input_mean{suffix}.")
    channels, hidden = w1.shape[0] // max_bin, w1.shape[1]
    w2 = _get(arrays, f"fc2{suffix}/affine/W", source, 2)
    _expect(f"fc2{suffix}/affine/W", w2, (2 * hidden, hidden), source, f"hidden size {hidden} from {key}")
    w3 = _get(arrays, f"fc3{suffix}/affine/W", source, 2)
    _expect(f"fc3{suffix}/affine/W", w3, (hidden, channels * nb_bins), source,
            f"{channels} channels × {nb_bins} bins")
    mapped = {"input_mean": mean, "input_scale": scale, "output_mean": out_mean, "output_scale": out_scale,
              "fc1.weight": w1.T, "fc2.weight": w2.T, "fc3.weight": w3.T}
    for k, width in ((1, hidden), (2, hidden), (3, channels * nb_bins)):
        for nn_name, torch_name in (("gamma", "weight"), ("beta", "bias"), ("mean", "running_mean"),
                                    ("var", "running_var")):
            bn_key = f"fc{k}{suffix}/bn/{nn_name}"
            value = _get(arrays, bn_key, source, 3)
            _expect(bn_key, value, (1, 1, width), source, f"the width of fc{k}")
            mapped[f"bn{k}.{torch_name}"] = value.reshape(width)

    scope = f"lstm{suffix}/lstm"
    bias = _get(arrays, f"{scope}/bias", source, 4)  # (L, D, 4, h)
    layers, directions, _, h = bias.shape
    if bias.shape[2] != 4 or directions not in (1, 2) or directions * h != hidden:
        raise ConversionError(f"{source}: {scope}/bias has shape {bias.shape}, expected (layers, directions, 4, "
                              f"h) with directions · h = {hidden} (the hidden size of {key}).")
    w_first = _get(arrays, f"{scope}/weight_l0", source, 4)
    _expect(f"{scope}/weight_l0", w_first, (directions, 4, h, hidden + h), source, "first LSTM layer")
    packed = [w_first]
    if layers > 1:
        w_rest = _get(arrays, f"{scope}/weight", source, 5)
        _expect(f"{scope}/weight", w_rest, (layers - 1, directions, 4, h, directions * h + h), source,
                f"LSTM layers 1..{layers - 1}")
        packed += list(w_rest)
    for layer, weights in enumerate(packed):
        n_in = weights.shape[-1] - h
        for d in range(directions):
            name = f"l{layer}{'_reverse' if d else ''}"
            rows = weights[d].reshape(4 * h, n_in + h)  # gates i, f, g, o stacked, as torch
            mapped[f"lstm.weight_ih_{name}"] = rows[:, :n_in]
            mapped[f"lstm.weight_hh_{name}"] = rows[:, n_in:]
            mapped[f"lstm.bias_ih_{name}"] = bias[layer, d].reshape(4 * h)
            mapped[f"lstm.bias_hh_{name}"] = np.zeros(4 * h, dtype=np.float32)
    sizes = {"hidden_size": int(hidden), "nb_layers": int(layers), "unidirectional": directions == 1,
             "nb_channels": int(channels), "nb_bins": int(nb_bins), "max_bin": int(max_bin)}
    return mapped, sizes


def _build(name: str, targets, sizes: dict, residual: bool):
    n_fft = 2 * (sizes["nb_bins"] - 1)
    bandwidth = 16000 if bandwidth_to_max_bin(SAMPLE_RATE, n_fft, 16000) == sizes["max_bin"] else \
        max_bin_to_bandwidth(SAMPLE_RATE, n_fft, sizes["max_bin"])
    model = models.create(
        name, preset="paper", target=list(targets), sample_rate=SAMPLE_RATE, nb_channels=sizes["nb_channels"],
        n_fft=n_fft, n_hop=n_fft // 4, hidden_size=sizes["hidden_size"], nb_layers=sizes["nb_layers"],
        unidirectional=sizes["unidirectional"], bandwidth=bandwidth, **{**OPTIONS, "residual": residual},
    )
    return model


# --- converters ---------------------------------------------------------------------------------
def convert_umx(source: str | Path, targets=None):
    """:class:`~mssbook.models.umx.UMX` from nnabla Open-Unmix files: one ``<target>.h5`` or a folder
    of them (e.g. the unpacked ``umxhq.zip``)."""
    files = find_target_files(source, SUFFIXES, targets, what="nnabla Open-Unmix weights")
    mapped, sizes = {}, {}
    for target, file in files.items():
        arrays = _strip_scope(read_h5(file))
        if family_of(arrays) != "umx":
            raise ConversionError(f"{file} holds X-UMX parameters (fc1_bass/..., input_mean_bass); "
                                  "convert it with convert_xumx or model='xumx'.")
        mapped[target], sizes[target] = _branch(arrays, "", str(file))
    first_target, first = next(iter(sizes.items()))
    for target, config in sizes.items():
        if config != first:
            raise ConversionError(f"{files[target]} has other sizes ({config}) than {files[first_target]} "
                                  f"({first}); one model needs one configuration.")
    model = _build("umx", files, first, residual=len(files) == 1)
    load_mapped(model, {f"target_models.{t}.{k}": v for t, arrays in mapped.items() for k, v in arrays.items()},
                str(source))
    return model.eval()


def _single_file(source: Path) -> Path:
    if source.is_file():
        return source
    if not source.is_dir():
        raise ConversionError(f"{source} does not exist; pass the downloaded x-umx.h5.")
    files = sorted(source.rglob("*.h5"))
    named = [f for f in files if "umx" in f.name.lower()]
    if len(files) == 1 or len(named) == 1:
        return files[0] if len(files) == 1 else named[0]
    raise ConversionError(f"{source} holds {len(files)} .h5 files; pass the X-UMX file (x-umx.h5) itself.")


def convert_xumx(source: str | Path, targets=None):
    """:class:`~mssbook.models.xumx.XUMX` from the nnabla X-UMX file (``x-umx.h5``: all four branches).

    ``targets`` may only reorder vocals, drums, bass, other (default: that order): the bridges average
    all four branches, so none can be left out; pick the outputs you need after separating.
    """
    path = _single_file(Path(source))
    arrays = read_h5(path)
    if family_of(arrays) != "xumx":
        raise ConversionError(f"{path} holds Open-Unmix (UMX) parameters of one target; convert it with "
                              "convert_umx or model='umx'.")
    found = sorted({m.group(1) for k in arrays if (m := re.fullmatch(r"input_mean_([a-z]+)", k))})
    if sorted(found) != sorted(XUMX_BRANCHES):
        raise ConversionError(f"{path}: an X-UMX file has the branches {', '.join(XUMX_BRANCHES)} "
                              f"(input_mean_<target>); found {', '.join(found) or 'none'}.")
    if isinstance(targets, str):
        targets = [targets]
    order = tuple(targets) if targets else SOURCES
    if sorted(order) != sorted(XUMX_BRANCHES):
        raise ConversionError(f"X-UMX bridges all four branches ({', '.join(XUMX_BRANCHES)}), so it cannot be "
                              f"loaded for {', '.join(order)} alone; load all four and keep the outputs you need.")
    mapped, sizes = {}, {}
    for target in order:
        mapped[target], sizes[target] = _branch(arrays, f"_{target}", str(path))
    first = sizes[order[0]]
    for target, config in sizes.items():
        if config != first:
            raise ConversionError(f"{path}: the {target} branch has other sizes ({config}) than the "
                                  f"{order[0]} branch ({first}).")
    model = _build("xumx", order, first, residual=False)
    load_mapped(model, {f"target_models.{t}.{k}": v for t, branch in mapped.items() for k, v in branch.items()},
                str(path))
    return model.eval()


def convert(source: str | Path, model: str | None = None, targets=None):
    """UMX or X-UMX from nnabla ``.h5`` file(s), the family read from the parameter names."""
    source = Path(source)
    if model is None:
        probe = source if source.is_file() else next(iter(sorted(source.rglob("*.h5"))), None)
        if probe is None:
            raise ConversionError(f"{source} holds no nnabla .h5 parameter file.")
        model = family_of(read_h5(probe))
    if model == "umx":
        return convert_umx(source, targets)
    if model == "xumx":
        return convert_xumx(source, targets)
    raise ConversionError(f"nnabla Open-Unmix weights convert to umx or xumx, not {model!r}.")


__all__ = ["RELEASES", "SUFFIXES", "OPTIONS", "XUMX_BRANCHES", "family_of", "convert", "convert_umx", "convert_xumx"]
