"""PyTorch Lightning checkpoints (``.ckpt``) of ws-choi's ISMIR 2020 U-Nets → mssbook's U-Nets.

The official code (github.com/ws-choi/ISMIR2020_U_Nets_SVS, ``source_separation/``) trains one
LightningModule per target and saves ``vocals_epoch=2007.ckpt``-style files: a ``torch.save``'d
dict whose ``state_dict`` holds the module's weights (``spec2spec.*``: the U-Net;
``stft.stft.window``: the frozen Hann window) and whose ``hyper_parameters`` hold the command line
the model was built from (``n_fft``, ``hop_length``, ``num_frame``, ``spec_type``, …).

The five U-Nets of the family load (``tfc_tdf_net``, ``tfc_net``, ``tdf_net``, ``tdc_net``,
``tdc_rnn_net``); the block is read from the weight names, the sizes from the weight shapes
(channels, blocks, layers, kernels, which levels halve time, biases), the rest from
``hyper_parameters``. The weights keep their shapes; only names change (:data:`RULES`). Checked
against the official forward pass and track inference in ``tests/test_weights_lightning.py``
(fixtures made by ``tools/official_lightning_tfc_tdf.py``).

Inference: the official code cuts a track into chunks of ``hop · (num_frame − 1) − 2 · trim``
samples and pads **each chunk with zeros** (``trim`` per side, ``SingleTrackSet``), so a converted
model separates with ``context="zeros"`` by default; mssbook's own default, ``context="audio"``,
gives every chunk its neighbouring audio instead (overlapping windows). Pass ``context="audio"`` to
get that.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from .common import ConversionError, Release, find_target_files, load_mapped, rename

SUFFIXES = (".ckpt",)
FAMILIES = ("tfc_tdf_net", "tfc_net", "tdf_net", "tdc_net", "tdc_rnn_net")
_REPO = "https://github.com/ws-choi/ISMIR2020_U_Nets_SVS"
_RAW = f"{_REPO}/raw/master/etc/checkpoints/tfc_tdf_net"
#: what the official inference does that the mssbook model's own defaults do not (its batch of 4
#: windows changes memory and speed, not the result: the model picks its window batch per device)
OFFICIAL_OPTIONS = {"context": "zeros"}

RELEASES = (
    Release(
        name="tfc_tdf_net-large",
        model="tfc_tdf_net",
        format="lightning",
        # the checkpoint is a file of the repository (git blob f953ce3758fc3db04e63c715eacc4c8ee4a6525c);
        # the README's Colab demo ("Demonstration: A Pretrained Model (TFC_TDF_Net (large))") uses it
        urls=(f"{_RAW}/debug_large/vocals_epoch=2007.ckpt",),
        targets=("vocals",),
        files=("vocals_epoch=2007.ckpt",),
        trained_on="MUSDB18 (train split)",
        license="MIT",
        homepage=f"{_REPO}#reproducible-experimental-results",
        sdr={"vocals": 8.029},
        options=dict(OFFICIAL_OPTIONS),
        notes="TFC-TDF U-Net 'large' (README 'TFC_TDF_large': n_fft 4096, hop 1024, 128 frames, 9 blocks, "
              "24 channels, 5 layers of 3x3, TDF bias on; 2,232,132 parameters), vocals only. SDR: README "
              "'evaluation result (epoch 2007)' (museval median of medians, MUSDB18 test). No SHA-256 is "
              "published; the file's git blob id is f953ce3758fc3db04e63c715eacc4c8ee4a6525c.",
    ),
    Release(
        name="tfc_tdf_net-seed",
        model="tfc_tdf_net",
        format="lightning",
        urls=(f"{_RAW}/debug/vocals_epoch=891.ckpt",),
        targets=("vocals",),
        files=("vocals_epoch=891.ckpt",),
        trained_on="MUSDB18 (train split)",
        license="MIT",
        homepage=f"{_REPO}#3-evaluation",
        sdr={"vocals": 6.954695},
        options=dict(OFFICIAL_OPTIONS),
        notes="The README tutorial's TFC-TDF U-Net (n_fft 2048, hop 1024, 128 frames, 7 blocks, TDF bias off; "
              "987,476 parameters), vocals only; SDR from the README's evaluation output (epoch 891). "
              "Git blob id 987a462f515c74213a7efeee6a3df2257f6c2631.",
    ),
)

# official name → mssbook name, relative to one target's U-Net (``spec2spec.`` already stripped)
_SAMPLING = [
    (r"^(down|up)samplings\.(\d+)\.0\.", r"\1samplings.\2.conv."),  # 2-D: Sequential(conv, BN)
    (r"^(down|up)samplings\.(\d+)\.1\.", r"\1samplings.\2.norm."),
    (r"^(down|up)samplings\.(\d+)\.bn\.", r"\1samplings.\2.norm."),  # 1-D (TDC_sampling): .conv, .bn
    (r"^last_conv\.0\.", "last_conv."),
]
_BLOCK = r"^((?:encoders|decoders)\.\d+|mid_block)\."
RULES = {
    "tfc_tdf_net": [(r"\.tfc\.H\.", ".tfc.layers."), (r"\.tif\.tif\.", ".tdf.mlp.")] + _SAMPLING,
    "tfc_net": [(_BLOCK + r"H\.", r"\1.layers.")] + _SAMPLING,
    "tdc_net": [(_BLOCK + r"H\.", r"\1.layers.")] + _SAMPLING,
    # decoders of the TDF net: Sequential(TDF, 1x1 conv) in both codes
    "tdf_net": [(r"^((?:encoders|decoders)\.\d+(?:\.0)?|mid_block)\.tif\.", r"\1.mlp.")] + _SAMPLING,
    "tdc_rnn_net": [(r"\.tic\.H\.", ".tdc.layers."), (r"\.bn\.", ".norm."),
                    (r"\.tif_f1_to_f2\.tif\.", ".mlp.mlp.")] + _SAMPLING,
}
# the activation hyper-parameter of each net's blocks (mssbook's blocks use ReLU)
_BLOCK_ACTIVATION = {"tfc_tdf_net": "tfc_tdf_activation", "tfc_net": "tfc_activation", "tdf_net": "tdf_activation",
                     "tdc_net": "tdc_activation", "tdc_rnn_net": "tdc_rnn_activation"}


# --- reading a checkpoint ------------------------------------------------------------------------------
class _Opaque:
    """Stands in for a pickled object of a class the checkpoint names but mssbook does not import
    (e.g. ``argparse.Namespace``): it only keeps the pickled attributes."""

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.__dict__.update(state)


def read_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint as a dict, loaded with ``weights_only=True`` (no code runs).

    Classes of other packages that the file pickles come back as plain dicts (dict subclasses such
    as Lightning's ``AttributeDict``) or as attribute holders (``argparse.Namespace``).
    """
    path = Path(path)
    stand_ins: dict[str, type] = {}  # "module.Class" the file names → what to build instead
    last = None
    for _ in range(64):
        try:
            with torch.serialization.safe_globals([(cls, name) for name, cls in stand_ins.items()]):
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
            break
        except (pickle.UnpicklingError, AttributeError, TypeError) as exc:  # the last two: a wrong guess
            found = re.search(r"GLOBAL ([\w.]+) was not an allowed global", str(exc))
            if found and found.group(1) not in stand_ins:
                last = found.group(1)
                stand_ins[last] = dict  # first guess: a dict subclass (items set with SETITEMS)
            elif last is not None and stand_ins[last] is dict:
                stand_ins[last] = _Opaque  # not a dict: an object restored from its attributes
            else:
                raise ConversionError(f"{path} is not a readable PyTorch checkpoint ({str(exc)[-300:]}).") from None
        except (RuntimeError, OSError, EOFError, ValueError) as exc:
            raise ConversionError(f"{path} is not a readable PyTorch checkpoint ({str(exc)[:200]}).") from None
    else:
        raise ConversionError(f"{path}: too many unknown classes pickled in the checkpoint.")
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ConversionError(f"{path} is not a PyTorch Lightning checkpoint: it has no 'state_dict'.")
    return checkpoint


def hyper_parameters(checkpoint: dict) -> dict:
    """The checkpoint's hyper-parameters (``hyper_parameters``; older Lightning: ``hparams``)."""
    hparams = checkpoint.get("hyper_parameters", checkpoint.get("hparams")) or {}
    if not isinstance(hparams, dict):
        hparams = dict(getattr(hparams, "__dict__", {}))
    return dict(hparams)


def family_of(state: dict) -> str:
    """Which U-Net of the family the (``spec2spec.``-stripped) weight names belong to."""
    names = list(state)
    has = lambda pattern: any(re.search(pattern, n) for n in names)  # noqa: E731
    if has(r"\.tic\.H\.") and has(r"\.rnn\."):
        return "tdc_rnn_net"
    if has(r"\.tfc\.H\.") and has(r"\.tif\.tif\."):
        return "tfc_tdf_net"
    if has(r"^encoders\.\d+\.tif\."):
        return "tdf_net"
    if has(r"^encoders\.\d+\.H\.\d+\.0\.weight"):
        w = next(v for k, v in state.items() if re.match(r"^encoders\.0\.H\.0\.0\.weight$", k))
        return "tfc_net" if w.dim() == 4 else "tdc_net"
    raise ConversionError("the checkpoint's weights are none of ws-choi's U-Nets (tfc_tdf_net, tfc_net, tdf_net, "
                          f"tdc_net, tdc_rnn_net); first names: {', '.join(names[:6])}")


# --- the configuration -------------------------------------------------------------------------------
def _need(state: dict, key: str, source) -> torch.Tensor:
    if key not in state:
        raise ConversionError(f"{source}: missing weights for spec2spec.{key}")
    return state[key]


def _count(state: dict, pattern: str) -> int:
    found = {int(m.group(1)) for k in state for m in [re.match(pattern, k)] if m}
    return max(found) + 1 if found else 0


def _hp(hparams: dict, key: str, default=None, kind=None):
    value = hparams.get(key, default)
    if value is None or kind is None:
        return value
    if kind is bool and isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    if kind is int and isinstance(value, str) and value.strip().lower() == "none":
        return None
    return kind(value)


def config_of(family: str, state: dict, hparams: dict, source) -> dict:
    """mssbook constructor arguments for one target: sizes from shapes, the rest from hparams."""
    first = _need(state, "first_conv.0.weight", source)  # (c, C_in, 1, 2)
    c, in_channels = int(first.shape[0]), int(first.shape[1])
    n = _count(state, r"^encoders\.(\d+)\.")
    spec_type = _hp(hparams, "spec_type", "complex" if in_channels == 4 else "magnitude")
    if spec_type not in ("complex", "magnitude"):
        raise ConversionError(f"{source}: unknown spec_type {spec_type!r} in hyper_parameters")
    nb_channels = in_channels // 2 if spec_type == "complex" else in_channels
    if nb_channels * (2 if spec_type == "complex" else 1) != in_channels:
        raise ConversionError(f"{source}: spec2spec.first_conv.0.weight has {in_channels} input channels, "
                              f"which does not fit spec_type {spec_type!r}")
    missing = [k for k in ("n_fft", "hop_length") if hparams.get(k) is None]
    if missing:
        raise ConversionError(f"{source}: the checkpoint's hyper_parameters lack {', '.join(missing)} "
                              "(needed to build the STFT)")
    for key in ("first_conv_activation", _BLOCK_ACTIVATION[family]):
        if _hp(hparams, key, "relu") != "relu":
            raise ConversionError(f"{source}: {key} is {hparams[key]!r}; mssbook's U-Nets use ReLU there")
    last_activation = _hp(hparams, "last_activation", "identity")
    config = dict(
        sample_rate=44100, nb_channels=nb_channels, n_fft=_hp(hparams, "n_fft", kind=int),
        hop_length=_hp(hparams, "hop_length", kind=int), num_frame=_hp(hparams, "num_frame", 128, int),
        n_blocks=2 * n + 1, internal_channels=c, spec_type=spec_type,
        spec_est_mode=_hp(hparams, "spec_est_mode", "mapping"), last_activation=last_activation,
    )
    for key in ("train_loss", "val_loss"):
        if hparams.get(key) in ("spec_mse", "raw_l1"):
            config[key] = hparams[key]
    if family in ("tfc_tdf_net", "tfc_net", "tdc_rnn_net"):
        # which levels halve time: the downsampling kernel is (2, 2) there, (1, 2) elsewhere
        t_down = [i for i in range(n) if _need(state, f"downsamplings.{i}.0.weight", source).shape[-2] == 2]
        config["t_down_layers"] = None if t_down == list(range(n)) else t_down  # None: every level
    if family in ("tfc_tdf_net", "tfc_net"):
        head = "encoders.0.tfc.H" if family == "tfc_tdf_net" else "encoders.0.H"
        kernel = _need(state, f"{head}.0.0.weight", source)  # (c, c, kt, kf)
        config.update(n_internal_layers=_count(state, rf"^{re.escape(head)}\.(\d+)\."),
                      kernel_size_t=int(kernel.shape[-2]), kernel_size_f=int(kernel.shape[-1]))
    if family in ("tdc_net", "tdc_rnn_net"):
        head = "encoders.0.H" if family == "tdc_net" else "encoders.0.tic.H"
        kernel = _need(state, f"{head}.0.0.weight", source)  # (c, c, kf)
        config.update(n_internal_layers=_count(state, rf"^{re.escape(head)}\.(\d+)\."),
                      kernel_size_f=int(kernel.shape[-1]))
    if family in ("tfc_tdf_net", "tdf_net"):
        mlp = "encoders.0.tif.tif" if family == "tfc_tdf_net" else "encoders.0.tif"
        config.update(
            tfc_tdf_bias=f"{mlp}.0.bias" in state,
            bn_factor=_hp(hparams, "bn_factor", 16, int) if f"{mlp}.3.weight" in state else None,
            min_bn_units=_hp(hparams, "min_bn_units", 16, int),
        )
        units, bins = _need(state, f"{mlp}.0.weight", source).shape  # (units or F, F)
        if int(bins) != config["n_fft"] // 2:
            raise ConversionError(f"{source}: spec2spec.{mlp}.0.weight has {bins} inputs, but n_fft = "
                                  f"{config['n_fft']} gives {config['n_fft'] // 2} bins")
    if family == "tdc_rnn_net":
        mlp = "encoders.0.tif_f1_to_f2.tif"
        config.update(
            bn_factor_rnn=_hp(hparams, "bn_factor_rnn", 16, int),
            min_bn_units_rnn=_hp(hparams, "min_bn_units_rnn", 16, int),
            num_layers_rnn=_count(state, r"^encoders\.0\.rnn\.weight_ih_l(\d+)$"),
            bias_rnn="encoders.0.rnn.bias_ih_l0" in state, bias_tdf=f"{mlp}.0.bias" in state,
            bn_factor_tdf=_hp(hparams, "bn_factor_tdf", 16, int) if f"{mlp}.3.weight" in state else None,
            min_bn_units=16,  # the official MLP after the GRU keeps its default floor of 16
        )
    return config


# --- conversion ------------------------------------------------------------------------------------------
def _weights(checkpoint: dict, source) -> dict:
    """The U-Net's weights (``spec2spec.`` stripped), after checking the frozen STFT window."""
    state, net = checkpoint["state_dict"], {}
    for key, value in state.items():
        if key.startswith("spec2spec."):
            net[key[len("spec2spec."):]] = value
        elif key == "stft.stft.window":
            hann = torch.hann_window(value.numel(), dtype=torch.float64)
            if value.dim() != 1 or not torch.allclose(value.double(), hann, atol=1e-6):
                raise ConversionError(f"{source}: stft.stft.window is not the periodic Hann window of "
                                      f"{value.numel()} samples (a trained window?); mssbook's STFT has no place "
                                      "for it")
        else:
            raise ConversionError(f"{source}: no place in the mssbook model for {key}")
    if not net:
        raise ConversionError(f"{source}: the checkpoint's state_dict has no spec2spec.* weights (the U-Net)")
    return net


def convert(source: str | Path, model: str | None = None, targets=None):
    """An mssbook U-Net with the weights of ws-choi's Lightning checkpoint(s).

    ``source``: one ``.ckpt`` (its target read from the file name, e.g. ``vocals_epoch=2007.ckpt``,
    else from ``hyper_parameters['target_name']``) or a folder of per-target checkpoints; ``model``:
    the registry name to check against (None: read from the weights); ``targets``: the targets to
    load (None: every one found). The per-target checkpoints must share one configuration. The model
    is returned on the CPU in eval mode, with ``separate`` defaulting to the official inference
    (:data:`OFFICIAL_OPTIONS`).
    """
    from .. import models

    source = Path(source)
    try:
        files = find_target_files(source, SUFFIXES, targets, what="Lightning checkpoints")
    except ConversionError:
        if not source.is_file():
            raise
        checkpoint = read_checkpoint(source)
        target = hyper_parameters(checkpoint).get("target_name")
        if target not in ("vocals", "drums", "bass", "other") or (targets and [target] != list(targets)):
            raise
        files = {target: source}
    family, config, weights = None, None, {}
    for target, path in files.items():
        checkpoint = read_checkpoint(path)
        hparams = hyper_parameters(checkpoint)
        named = hparams.get("target_name")
        if named and named != target:
            raise ConversionError(f"{path} is named after {target} but its hyper_parameters say target_name={named!r}")
        state = _weights(checkpoint, path)
        found = family_of(state)
        if model is not None and model != found:
            raise ConversionError(f"{path} holds a {found}, not a {model}")
        if hparams.get("model") not in (None, found):
            raise ConversionError(f"{path}: hyper_parameters say model={hparams['model']!r}, the weights are a {found}")
        this = config_of(found, state, hparams, path)
        if config is not None and (found, this) != (family, config):
            raise ConversionError(f"{path}: its configuration differs from the other targets' "
                                  f"({found} {this} vs {family} {config}); load them separately")
        family, config = found, this
        weights[target] = (path, {rename(k, RULES[found]): (k, v) for k, v in state.items()})
    # the official inference pads each chunk with zeros: a constructor setting of the model, so it
    # is kept in checkpoints and when hub.with_options rebuilds the model
    config = dict(config, context=OFFICIAL_OPTIONS["context"])
    try:
        net = models.create(family, preset=None, target=tuple(files), **config)
    except ValueError as exc:
        raise ConversionError(f"{source}: mssbook cannot build this {family} ({exc})") from None
    for target, (path, arrays) in weights.items():
        try:
            load_mapped(net, {k: v for k, (_, v) in arrays.items()}, str(path), prefix=f"target_models.{target}.")
        except ConversionError as exc:  # add the checkpoint's own name of each key the message cites
            def cite(match, arrays=arrays):
                name = match.group(1)
                return match.group(0) + (f" (spec2spec.{arrays[name][0]} in the checkpoint)" if name in arrays else "")

            raise ConversionError(re.sub(rf"target_models\.{re.escape(target)}\.([\w.]+\w)", cite, str(exc))) from None
    return net.eval()


__all__ = ["SUFFIXES", "RELEASES", "FAMILIES", "RULES", "OFFICIAL_OPTIONS", "convert", "read_checkpoint",
           "hyper_parameters", "family_of", "config_of"]
