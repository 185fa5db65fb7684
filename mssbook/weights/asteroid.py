"""asteroid's X-UMX checkpoints (``XUMX.serialize()``, ``.pth``) → mssbook's :class:`~mssbook.models.xumx.XUMX`.

asteroid (https://github.com/asteroid-team/asteroid) publishes the X-UMX of Sawata et al. trained on
MUSDB18 (its recipe ``egs/musdb18/X-UMX``). The file is a ``torch.save``-d dict: ``model_name``,
``model_args`` (the constructor arguments: ``sources``, ``in_chan`` = n_fft, ``n_hop``,
``hidden_size``, ``max_bin``, ...), ``state_dict`` and ``infos``. A bare state dict is read too
(then the hop, the sample rate and the source order come from defaults: n_fft / 4, 44.1 kHz, the
order of the keys).

The mapping (asteroid → mssbook; same shapes, renames only, for every source ``s``)::

    layer_enc.s.enc.0.weight          → target_models.s.fc1.weight
    layer_enc.s.enc.1.*               → target_models.s.bn1.*
    layer_lstm.s.*                    → target_models.s.lstm.*
    layer_dec.s.dec.{0,1,3,4}.*       → target_models.s.{fc2,bn2,fc3,bn3}.*   (dec.2 is the ReLU)
    mean_scale.{input_mean,input_scale,output_mean,output_scale}_s → target_models.s.{same name}
    encoder.0.window, decoder.window  → dropped (the Hann window of the STFT; mssbook makes its own)

Both compute the same network: asteroid's ``forward_masker`` adds ``input_mean``, multiplies by
``input_scale``, encodes (fc1, BN, tanh), averages the encodings (bridge 1), runs each LSTM on the
average, concatenates each branch's own encoding with its LSTM output, averages those (bridge 2),
decodes (fc2, BN, ReLU, fc3, BN), applies ``output_scale``/``output_mean`` and a ReLU: the mask.

Separation defaults: those of the recipe's ``eval.py``, which produced the README's scores: the
whole track through the network at once, ``norbert.wiener`` with 1 EM iteration, no softmask
(mixture phase), no residual (except for a single-source model, where ``eval.py`` adds one), the
Wiener filter over **all frames at once** (``wiener_win_len=0``; Open-Unmix uses blocks of 300).
Where mssbook's separation differs:

* the Wiener filter's regularisation: mssbook's :func:`~mssbook.signal.wiener.wiener` uses
  Open-Unmix's ``eps = 1e-10`` (``√eps·I`` added to the mixture covariance), norbert the machine
  epsilon of float64 (2.2e-16) and float64 arithmetic; the converted model takes norbert's
  (``wiener_eps``). It matters where all but one source are masked to zero in a bin: on the
  random-weight test fixture the separated waveforms differ by about 5 % of their peak with
  1e-10, and by 1.1e-6 with norbert's eps (computed in float32);
* the inverse STFT is torch's, trimmed (or padded) to the input length; the official scipy
  ``istft`` returns ``(T - 1) · hop`` samples, the input rounded down to a multiple of the hop;
* ``eval.py`` duplicates a mono file to stereo and resamples to 44.1 kHz before the model; mssbook
  leaves channels and rate to its separation front end.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..signal.transforms import bandwidth_to_max_bin, max_bin_to_bandwidth
from .common import ConversionError, Release, load_mapped

SUFFIXES = (".pth", ".pt", ".bin")

#: what the recipe's eval.py does after the network (its defaults: --niter 1, no --softmask, no
#: --residual-model) and the whole track at once; see the module docstring for the differences
SEPARATION = dict(niter=1, softmask=False, residual=False, wiener_win_len=0,
                  wiener_eps=float(np.finfo(np.float64).eps))  # norbert's regularisation

RELEASES = (
    Release(
        name="xumx",
        model="xumx",
        format="asteroid",
        # asteroid/utils/hub_utils.py, MODELS_URLS_HASHTABLE["r-sawata/XUMX_MUSDB18_music_separation"]
        # (the name egs/musdb18/X-UMX/eval.py loads when no local model is given)
        urls=("https://zenodo.org/record/4704231/files/pretrained_xumx.pth?download=1",),
        targets=("bass", "drums", "vocals", "other"),
        trained_on="MUSDB18 (as in the X-UMX paper)",
        license="see Zenodo record 4704231 (asteroid's code: MIT)",
        homepage="https://github.com/asteroid-team/asteroid/tree/master/egs/musdb18/X-UMX",
        files=("pretrained_xumx.pth",),
        # README "Results on MUSDB18", X-UMX, median over tracks of the median over frames
        sdr={"vocals": 6.612, "drums": 6.471, "bass": 5.426, "other": 4.639},
        options=dict(SEPARATION),
        notes=("asteroid's PyTorch port of Sony's X-UMX (one file, the four bridged branches). Official "
               "inference: egs/musdb18/X-UMX/eval.py (whole track, norbert Wiener filter, 1 iteration). "
               "X-UMXL, trained on more data, is https://zenodo.org/record/7128659/files/pretrained_xumxl.pth"
               "?download=1 (eval.py --large) in the same format."),
    ),
)

_MEAN_SCALE = ("input_mean", "input_scale", "output_mean", "output_scale")

# asteroid key → mssbook key, for every source (regular expressions; \1 is the source name)
RULES = (
    (r"^layer_enc\.(.+)\.enc\.0\.", r"target_models.\1.fc1."),
    (r"^layer_enc\.(.+)\.enc\.1\.", r"target_models.\1.bn1."),
    (r"^layer_lstm\.(.+?)\.((weight|bias)_(ih|hh)_l\d+(_reverse)?)$", r"target_models.\1.lstm.\2"),
    (r"^layer_dec\.(.+)\.dec\.0\.", r"target_models.\1.fc2."),
    (r"^layer_dec\.(.+)\.dec\.1\.", r"target_models.\1.bn2."),
    (r"^layer_dec\.(.+)\.dec\.3\.", r"target_models.\1.fc3."),
    (r"^layer_dec\.(.+)\.dec\.4\.", r"target_models.\1.bn3."),
    (r"^mean_scale\.(input_mean|input_scale|output_mean|output_scale)_(.+)$", r"target_models.\2.\1"),
)
_DROPPED = ("encoder.0.window", "decoder.window")

# mssbook layer of a branch → asteroid's, to name the asteroid key a model parameter comes from
_INVERSE = (
    (r"^target_models\.(.+?)\.fc1\.", r"layer_enc.\1.enc.0."),
    (r"^target_models\.(.+?)\.bn1\.", r"layer_enc.\1.enc.1."),
    (r"^target_models\.(.+?)\.lstm\.", r"layer_lstm.\1."),
    (r"^target_models\.(.+?)\.fc2\.", r"layer_dec.\1.dec.0."),
    (r"^target_models\.(.+?)\.bn2\.", r"layer_dec.\1.dec.1."),
    (r"^target_models\.(.+?)\.fc3\.", r"layer_dec.\1.dec.3."),
    (r"^target_models\.(.+?)\.bn3\.", r"layer_dec.\1.dec.4."),
    (r"^target_models\.(.+?)\.(input_mean|input_scale|output_mean|output_scale)$", r"mean_scale.\2_\1"),
)


def asteroid_key(mssbook_key: str) -> str:
    """The asteroid name of an mssbook X-UMX parameter (``target_models.vocals.fc1.weight`` →
    ``layer_enc.vocals.enc.0.weight``)."""
    for pattern, replacement in _INVERSE:
        if re.search(pattern, mssbook_key):
            return re.sub(pattern, replacement, mssbook_key)
    return mssbook_key


def mssbook_key(key: str) -> str | None:
    """The mssbook name of an asteroid X-UMX key; None for a key that has no place in mssbook."""
    for pattern, replacement in RULES:
        if re.search(pattern, key):
            return re.sub(pattern, replacement, key)
    return None


# --- reading -------------------------------------------------------------------------------------
def _torch_load(path: Path):
    # serialize() stores torch.__version__ (a TorchVersion, a str subclass) in infos: allow just that
    allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    try:
        if allow is None:
            return torch.load(path, map_location="cpu", weights_only=True)
        with allow([torch.torch_version.TorchVersion]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - classify below
        first = exc
    if not isinstance(first, __import__("pickle").UnpicklingError):
        raise ConversionError(f"{path} is not a readable PyTorch file ({type(first).__name__}: {first}).") from None
    # an older asteroid checkpoint may pickle objects the weights-only loader refuses
    warnings.warn(f"{path}: the weights-only loader refused it ({first}); loading it with full unpickling. "
                  "Only do this with files from a source you trust.", stacklevel=3)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"{path} is not a readable PyTorch file ({type(exc).__name__}: {exc}).") from None


def _find_file(source: Path) -> Path:
    if source.is_file():
        return source
    if not source.is_dir():
        raise ConversionError(f"{source} does not exist; pass the downloaded asteroid X-UMX file "
                              f"(e.g. {RELEASES[0].files[0]}) or its folder.")
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise ConversionError(f"{source} holds no asteroid checkpoint ({', '.join(SUFFIXES)}); expected e.g. "
                              f"{RELEASES[0].files[0]}.")
    preferred = [p for p in files if "xumx" in p.name.lower()]
    if len(preferred) == 1 or len(files) == 1:
        return (preferred or files)[0]
    raise ConversionError(f"{source} holds several PyTorch files ({', '.join(p.name for p in files[:6])}); "
                          "pass the X-UMX checkpoint itself.")


def read_checkpoint(source) -> tuple[dict[str, torch.Tensor], dict, str]:
    """``(state_dict, model_args, name)`` of an asteroid checkpoint: a file, a folder holding one,
    or the loaded object (a ``serialize()`` dict or a bare state dict). ``model_args`` is ``{}`` for
    a bare state dict."""
    if isinstance(source, Mapping):
        obj, name = source, "the given checkpoint"
    else:
        path = _find_file(Path(source).expanduser())
        obj, name = _torch_load(path), str(path)
    if not isinstance(obj, Mapping):
        raise ConversionError(f"{name} holds a {type(obj).__name__}, not an asteroid checkpoint (a dict).")
    if "state_dict" in obj:
        state, args = obj["state_dict"], obj.get("model_args") or {}
        if obj.get("model_name", "XUMX") != "XUMX":
            raise ConversionError(f"{name} is an asteroid {obj.get('model_name')} model, not XUMX.")
    else:
        state, args = obj, {}
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise ConversionError(f"{name}: its state_dict is not a mapping of tensors.")
    if not any(str(k).startswith("mean_scale.") for k in state):
        raise ConversionError(f"{name} is not an asteroid X-UMX checkpoint: no mean_scale.* keys "
                              f"(found {', '.join(list(map(str, state))[:4])} ...).")
    return {str(k): v for k, v in state.items()}, dict(args), name


def _get(state: Mapping, key: str, name: str) -> torch.Tensor:
    if key not in state:
        raise ConversionError(f"{name}: missing key {key}")
    return state[key]


def sources_of(state: Mapping, args: Mapping, name: str = "checkpoint") -> list[str]:
    """The source names, in the file's order (``model_args["sources"]``, else the keys' order)."""
    # the encoders' ModuleDict keeps the constructor's order (mean_scale's ParameterDict is sorted)
    found = [m.group(1) for key in state if (m := re.match(r"^layer_enc\.(.+)\.enc\.0\.weight$", key))]
    scaled = [m.group(1) for key in state if (m := re.match(r"^mean_scale\.input_mean_(.+)$", key))]
    sources = list(args.get("sources") or found or scaled)
    for what, names in (("layer_enc.*.enc.0.weight", found), ("mean_scale.input_mean_*", scaled)):
        if sorted(sources) != sorted(names):
            missing = sorted(set(sources) - set(names))
            key = (f"layer_enc.{missing[0]}.enc.0.weight" if what.startswith("layer") else
                   f"mean_scale.input_mean_{missing[0]}") if missing else what
            raise ConversionError(f"{name}: the sources are {sources}, {what} has {names}"
                                  + (f": missing key {key}" if missing else ""))
    return sources


def config_from_checkpoint(state: Mapping, args: Mapping, name: str = "checkpoint") -> dict:
    """mssbook ``XUMX`` constructor arguments (``targets`` included) from the shapes and model_args."""
    sources = sources_of(state, args, name)
    first = sources[0]
    fc1 = _get(state, f"layer_enc.{first}.enc.0.weight", name)
    max_bin = int(_get(state, f"mean_scale.input_mean_{first}", name).shape[0])
    nb_bins = int(_get(state, f"mean_scale.output_mean_{first}", name).shape[0])
    if fc1.ndim != 2 or max_bin < 1 or fc1.shape[1] % max_bin:
        raise ConversionError(f"{name}: layer_enc.{first}.enc.0.weight has shape {tuple(fc1.shape)}, not (hidden, "
                              f"channels × {max_bin}) for the {max_bin} bins of mean_scale.input_mean_{first}")
    hidden_size, nb_channels = int(fc1.shape[0]), int(fc1.shape[1] // max_bin)
    n_fft = 2 * (nb_bins - 1)
    if "in_chan" in args and int(args["in_chan"]) != n_fft:
        raise ConversionError(f"{name}: mean_scale.output_mean_{first} has {nb_bins} bins, model_args in_chan="
                              f"{args['in_chan']} needs {int(args['in_chan']) // 2 + 1}")
    window_length = int(args.get("window_length", n_fft))
    window = state.get("encoder.0.window")
    if window_length != n_fft or (window is not None and window.shape[0] != n_fft):
        raise ConversionError(f"{name}: an STFT window of {window_length} samples for n_fft={n_fft}; mssbook's "
                              "STFT uses a window of n_fft samples")
    if int(args.get("spec_power", 1)) != 1:
        raise ConversionError(f"{name}: spec_power={args['spec_power']}; mssbook's X-UMX reads magnitudes (1)")
    layers = sorted({int(m.group(1)) for k in state
                     if (m := re.match(rf"^layer_lstm\.{re.escape(first)}\.weight_ih_l(\d+)$", k))})
    if not layers:
        raise ConversionError(f"{name}: missing key layer_lstm.{first}.weight_ih_l0")
    bidirectional = f"layer_lstm.{first}.weight_ih_l0_reverse" in state
    if "bidirectional" in args and bool(args["bidirectional"]) != bidirectional:
        raise ConversionError(f"{name}: model_args bidirectional={args['bidirectional']} but "
                              f"layer_lstm.{first}.weight_ih_l0_reverse is {'present' if bidirectional else 'absent'}")
    sample_rate = int(args.get("sample_rate", 44100))
    if "max_bin" in args and int(args["max_bin"] or nb_bins) != max_bin:  # None: all bins
        raise ConversionError(f"{name}: model_args max_bin={args['max_bin']}, mean_scale.input_mean_{first} has "
                              f"{max_bin} bins")
    # the paper's 16 kHz when it gives this max_bin (1487 at 44.1 kHz / 4096), else the exact bin frequency
    bandwidth = (16000.0 if bandwidth_to_max_bin(sample_rate, n_fft, 16000) == max_bin
                 else max_bin_to_bandwidth(sample_rate, n_fft, max_bin))
    return dict(
        targets=tuple(sources),
        sample_rate=sample_rate,
        nb_channels=nb_channels,
        n_fft=n_fft,
        n_hop=int(args.get("n_hop", n_fft // 4)),
        hidden_size=hidden_size,
        nb_layers=len(layers),
        unidirectional=not bidirectional,
        bandwidth=bandwidth,
    )


# --- converting ----------------------------------------------------------------------------------
def convert_state(model, state: Mapping[str, torch.Tensor], name: str) -> None:
    """Copy an asteroid X-UMX state dict into mssbook ``model`` (its targets = the file's sources).

    Errors name the asteroid key: missing, misshapen, or without a place in mssbook.
    """
    own = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        if key in _DROPPED:
            continue
        new = mssbook_key(key)
        if new in own:
            mapped[new] = value
        else:
            unknown.append(key)
    if unknown:
        raise ConversionError(f"{name}: no place in mssbook's X-UMX for {', '.join(sorted(unknown)[:8])}")
    for key, target in own.items():
        if key not in mapped:
            if key.endswith("num_batches_tracked"):
                continue
            raise ConversionError(f"{name}: missing key {asteroid_key(key)} (for mssbook's {key})")
        if tuple(mapped[key].shape) != tuple(target.shape):
            raise ConversionError(f"{name}: {asteroid_key(key)} has shape {tuple(mapped[key].shape)}, mssbook's "
                                  f"{key} expects {tuple(target.shape)}")
    load_mapped(model, mapped, name)


def convert(source, model: str | None = None, targets=None):
    """mssbook's X-UMX with the weights of an asteroid X-UMX checkpoint.

    ``source``: the ``.pth`` file (``serialize()`` dict or bare state dict), a folder holding it, or
    the loaded dict. ``targets``: None, or the file's sources in another order (X-UMX's bridges
    average over all branches, so a subset cannot be taken: separate with all and pick). Returns the
    model on the CPU in eval mode, sizes read from the file, separation defaults of the official
    inference (:data:`SEPARATION`).
    """
    if model not in (None, "xumx"):
        raise ConversionError(f"asteroid checkpoints convert to xumx (X-UMX), not {model!r}.")
    state, args, name = read_checkpoint(source)
    config = config_from_checkpoint(state, args, name)
    sources = config.pop("targets")
    if isinstance(targets, str):
        targets = [targets]
    if targets:
        if sorted(targets) != sorted(sources):
            raise ConversionError(f"{name}: X-UMX's branches are bridged (averaged), so all of {', '.join(sources)} "
                                  f"load together; asked for {', '.join(targets)}. Load all and pick the outputs.")
        sources = list(targets)
    options = dict(SEPARATION)
    if len(sources) == 1:
        options["residual"] = True  # eval.py adds the residual ("accompaniment") to a one-source model
    from ..models import create

    net = create("xumx", preset="paper", target=tuple(sources), **config, **options)
    convert_state(net, state, name)
    return net.cpu().eval()


__all__ = ["SUFFIXES", "RELEASES", "SEPARATION", "RULES", "convert", "read_checkpoint", "config_from_checkpoint",
           "convert_state", "asteroid_key", "mssbook_key", "sources_of"]
