"""Sony's official D3Net weights (NNabla ``.h5``, one file per target) → :class:`~mssbook.models.d3net.D3Net`.

The release ``d3net-mss.zip`` (sony/ai-research-code, ``d3net/music-source-separation/README.md``)
holds ``vocals.h5``, ``drums.h5``, ``bass.h5``, ``other.h5``, saved by ``nn.save_parameters`` with
every parameter named by its scope path under the target, e.g.
``vocals/dense_band/0/ds_layers/dense_block0/initial_block/layers/layer1/bottleneck/conv1/conv/W``.

Mapping (one to one, no transposes; checked against the official forward pass in
``tests/test_weights_nnabla_d3net.py``, fixtures made by ``tools/official_nnabla_d3net.py``):

* ``in_offset``, ``in_scale``, ``decode_scale``, ``decode_bias`` → same names, (1, 1, 1, N) → (N,)
* ``features_init/{b}/conv`` → ``band_init.{b}``; ``features_init_full/conv`` → ``full_init``
* ``dense_band/{b}/`` → ``band_nets.{b}.``; ``dense_full/`` → ``full_net.`` (MD3 U-Nets)
* ``match_fm_conv/{b}/norm/bn``, ``match_fm_conv/{b}/conv/conv`` → ``band_match.{b}.0``, ``.1``
* ``final_dense/`` → ``final.`` (a D2 block)
* ``out_gate/bn/bn``, ``out_gate/conv_gate/conv/conv``, ``out_gate/conv_filt/conv/conv`` →
  ``gate_norm``, ``gate_conv``, ``filter_conv``
* in a U-Net with n down levels: ``ds_layers/dense_block{i}`` → ``down.{i}``; ``bottleneck_block``
  → ``bottleneck``; ``us_layers/upsample{j}/upsample/norm/bn`` and ``…/transconv/deconv`` →
  ``upsample.{j}.norm`` and ``upsample.{j}.conv``; ``us_layers/dense_block{n+1+j}`` → ``up.{j}``
* in a D3 block: ``initial_block`` → ``blocks.0``; ``layers/layer{m}`` → ``blocks.{m}`` (D2 blocks)
* in a D2 block: ``initial_layer/bottleneck`` → ``layers.0``; ``layers/layer{i}/bottleneck`` →
  ``layers.{i}``; in each unit ``norm1/bn`` → ``norm``, ``conv1/conv`` → ``conv``

Leaves: ``W``/``b`` → ``weight``/``bias`` (convolution (out, in, kh, kw) and deconvolution
(in, out, kh, kw) kernels are already in PyTorch's layout); BatchNorm ``gamma``/``beta``/``mean``/
``var`` (1, C, 1, 1) → ``weight``/``bias``/``running_mean``/``running_var`` (C,). NNabla's and
PyTorch's BatchNorm both use eps 1e-5.

The sizes (bins, processed bins, channels, every U-Net's growth rates, layers and blocks, the
final block, the kernel) are read from the shapes, so reduced or retrained configurations load.
Two settings are not in the weights: the **band split** and the **test patch length / hop**. They
come from the official ``configs/<target>.yaml`` (table :data:`OFFICIAL_CONFIGS`; unknown target
names get vocals'), or from a ``<target>.yaml`` found beside the ``.h5`` file (or in a ``configs/``
folder there), or from ``configs={target: {...}}`` (the yaml's keys).

Separation defaults = ``separate.py`` (``run_separation(..., apply_mwf_flag=True,
ch_flip_average=True)``): librosa STFT 4096/1024 (Hann, centred) of each channel; each target's
magnitude in patches of 256 frames every 128 (bass 384/192), overlap-added; every patch averaged
with the prediction for its channel-swapped input; magnitude × mixture phase; **one** iteration of
the multichannel Wiener filter with the spatial covariances over the whole track (``niter=1``,
``wiener_win_len=0``); inverse STFT. These are :class:`D3Net`'s ``paper`` defaults. Deliberate
differences (numbers in ``tests/test_weights_nnabla_d3net.py``):

* overlap-add: the official ``calc_output_overlap_add`` divides every frame by patch/hop (2), but
  when T mod patch exceeds the hop (256: 128, bass 384: 192) the last frames lie in one patch
  only and come out halved; mssbook pads so that every frame is averaged over patch/hop patches;
* STFT padding: mssbook pads reflectively (librosa's default until 0.10, the version of the
  release's time, and NNabla's training STFT); ``separate.py`` with librosa >= 0.10 zero-pads,
  which changes the first and last two frames;
* Wiener filter: mssbook's :func:`~mssbook.signal.wiener.wiener` regularises with √eps·I and
  rescales large signals (Open-Unmix's variant); ``filter.apply_mwf`` floors each PSD at
  1e-10 × its maximum and falls back to a pseudo-inverse for singular mixture covariances. They
  agree to ~1e-6 where every source's estimate is well above zero, and differ (up to ~1e-2 of the
  peak in the test's random networks) in bins where an estimate is exactly zero (the ReLU) next to
  an ill-conditioned spatial covariance of another source. ``wiener_eps`` stays at 1e-10: float64's
  machine epsilon (apply_mwf's normaliser) matches the official output to ~3e-5 of the peak on
  stereo input, but then mssbook's float32 closed-form 2×2 solve returns NaN for identical
  channels (a mono file; apply_mwf switches to a pseudo-inverse there), already at 1e-11;
* the official output length is that of ``librosa.istft`` without ``length`` (a multiple of the
  hop); mssbook returns the input's length.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .common import ConversionError, Release, find_target_files, load_mapped, read_h5

SUFFIXES = (".h5",)
HOMEPAGE = "https://github.com/sony/ai-research-code/tree/master/d3net/music-source-separation"
URL = "https://nnabla.org/pretrained-models/ai-research-code/d3net/mss/d3net-mss.zip"

#: the official per-target settings the weights do not carry (``configs/<target>.yaml``)
OFFICIAL_CONFIGS = {
    "vocals": dict(band_split_idxs=[256], test_patch_len=256, out_shift=128),
    "drums": dict(band_split_idxs=[128], test_patch_len=256, out_shift=128),
    "bass": dict(band_split_idxs=[192], test_patch_len=384, out_shift=192),
    "other": dict(band_split_idxs=[256], test_patch_len=256, out_shift=128),
}
_COMMON = dict(fft_size=4096, hop_size=1024, fs=44100)

RELEASES = (
    Release(
        name="d3net", model="d3net", format="nnabla", urls=(URL,),
        targets=("vocals", "drums", "bass", "other"),
        files=("vocals.h5", "drums.h5", "bass.h5", "other.h5"),
        trained_on="MUSDB18 (all 100 train tracks)", license="unstated (code: Apache-2.0)", homepage=HOMEPAGE,
        sdr={"vocals": 7.14, "drums": 6.85, "bass": 5.32, "other": 4.82},
        options={},  # separate.py's settings are D3Net's paper defaults already (module docstring)
        notes="d3net-mss.zip unpacks to one nnabla .h5 per target (separate.py loads "
              "<model dir>/<target>.h5). Published SDR: median over tracks of the median over frames, MUSDB18 "
              "test (README 'NNabla' column; the paper: 7.24 / 7.01 / 5.25 / 4.53). No checksum is published. "
              "Separation as separate.py: patches of 256 frames every 128 (bass 384/192), channel-swap average, "
              "one-shot multichannel Wiener filter over the whole track.",
    ),
)

_BN = {"gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var"}
_CONV = {"W": "weight", "b": "bias"}
_SCALERS = ("in_offset", "in_scale", "decode_scale", "decode_bias")


# --- reading the configuration from the shapes -------------------------------------------------
class _Params:
    """The arrays of one target, without the ``<target>/`` prefix, with errors naming the file."""

    def __init__(self, arrays: dict, source: str):
        self.source = source
        offsets = [k for k in arrays if k == "in_offset" or k.endswith("/in_offset")]
        if len(offsets) != 1:
            raise ConversionError(f"{source}: not a D3Net parameter file (expected one '<target>/in_offset', "
                                  f"found {len(offsets)})")
        self.prefix = offsets[0][: -len("in_offset")]
        self.arrays = {k[len(self.prefix):]: v for k, v in arrays.items() if k.startswith(self.prefix)}
        others = [k for k in arrays if not k.startswith(self.prefix)]
        if others:
            raise ConversionError(f"{source}: parameters outside '{self.prefix}': {', '.join(sorted(others)[:4])}")

    def shape(self, key: str) -> tuple[int, ...]:
        if key not in self.arrays:
            raise ConversionError(f"{self.source}: missing weights {self.prefix}{key}")
        return tuple(self.arrays[key].shape)

    def indices(self, pattern: str) -> list[int]:
        """Sorted distinct integers captured by ``pattern`` (a regex with one group) over the keys."""
        rx = re.compile(pattern)
        return sorted({int(m.group(1)) for k in self.arrays if (m := rx.match(k))})


def _d2(p: _Params, scope: str) -> tuple[int, int, int]:
    """(c_in, growth, layers) of the D2 block at ``scope``."""
    c_out, c_in = p.shape(f"{scope}/initial_layer/bottleneck/conv1/conv/W")[:2]
    layers = 1 + len(p.indices(rf"{re.escape(scope)}/layers/layer(\d+)/bottleneck/"))
    if c_out % layers:
        raise ConversionError(f"{p.source}: {p.prefix}{scope}/initial_layer/bottleneck/conv1/conv/W has {c_out} "
                              f"output channels, not a multiple of its block's {layers} layers")
    return c_in, c_out // layers, layers


def _d3(p: _Params, scope: str) -> tuple[int, int, int]:
    """(growth k, layers L, blocks M) of the D3 block at ``scope``."""
    blocks = 1 + len(p.indices(rf"{re.escape(scope)}/layers/layer(\d+)/initial_layer/"))
    _, growth, layers = _d2(p, f"{scope}/initial_block")
    if growth % blocks:
        raise ConversionError(f"{p.source}: {p.prefix}{scope}/initial_block grows by {growth} channels, not a "
                              f"multiple of the D3 block's {blocks} D2 blocks")
    return growth // blocks, layers, blocks


def _unet(p: _Params, scope: str) -> tuple[list[int], list[int], int]:
    """(ks, n_layers, n_blocks) of the MD3 U-Net at ``scope`` (``dense_band/0``, ``dense_full``)."""
    down = p.indices(rf"{re.escape(scope)}/ds_layers/dense_block(\d+)/")
    n = len(down)
    if down != list(range(n)):
        raise ConversionError(f"{p.source}: {p.prefix}{scope}/ds_layers has blocks {down}, expected 0..{n - 1}")
    up = p.indices(rf"{re.escape(scope)}/us_layers/dense_block(\d+)/")
    if up != list(range(n + 1, 2 * n + 1)):
        raise ConversionError(f"{p.source}: {p.prefix}{scope}/us_layers has dense blocks {up}, expected "
                              f"{list(range(n + 1, 2 * n + 1))} after {n} down-sampling blocks")
    scopes = ([f"{scope}/ds_layers/dense_block{i}" for i in range(n)] + [f"{scope}/bottleneck_block"]
              + [f"{scope}/us_layers/dense_block{i}" for i in range(n + 1, 2 * n + 1)])
    shapes = [_d3(p, s) for s in scopes]
    blocks = {m for _, _, m in shapes}
    if len(blocks) != 1:
        raise ConversionError(f"{p.source}: {p.prefix}{scope} has D3 blocks of {sorted(blocks)} D2 blocks; "
                              "mssbook's MD3UNet uses one count for all its levels")
    return [k for k, _, _ in shapes], [n_l for _, n_l, _ in shapes], blocks.pop()


def _yaml_values(path: Path) -> dict:
    """The ``key: value`` pairs of an official config yaml (PyYAML when installed, else flat JSON values)."""
    text = path.read_text()
    try:
        import yaml
    except ImportError:
        import json

        values = {}
        for line in text.splitlines():
            if ":" in line and not line.lstrip().startswith("#"):
                key, value = line.split(":", 1)
                try:
                    values[key.strip()] = json.loads(value.strip())
                except ValueError:
                    values[key.strip()] = value.strip()
        return values
    return dict(yaml.safe_load(text) or {})


def official_config(target: str, file: Path | None = None, configs: dict | None = None) -> dict:
    """The yaml settings of ``target``: the official table, a ``<target>.yaml`` beside ``file``, ``configs``."""
    values = {**_COMMON, **OFFICIAL_CONFIGS.get(target, OFFICIAL_CONFIGS["vocals"])}
    if file is not None:
        for candidate in (file.with_suffix(".yaml"), file.parent / "configs" / f"{target}.yaml"):
            if candidate.is_file():
                values.update(_yaml_values(candidate))
                break
    if configs and target in configs:
        values.update(configs[target])
    return values


def network_config_from_params(p: _Params, yaml_config: dict) -> dict:
    """:class:`D3NetNetwork` arguments (plus ``patch_length``, ``patch_hop``, ``nb_bins``, ``nb_channels``)."""
    bands = p.indices(r"features_init/(\d+)/conv/W")
    if bands != list(range(len(bands))) or not bands:
        raise ConversionError(f"{p.source}: expected {p.prefix}features_init/0, 1, ... /conv/W; found bands {bands}")
    valid = p.shape("decode_scale")[-1]
    splits = [int(s) for s in yaml_config["band_split_idxs"]]
    if len(splits) != len(bands) - 1:
        raise ConversionError(f"{p.source}: {len(bands)} bands need {len(bands) - 1} band splits; the config gives "
                              f"{splits} (pass configs={{target: {{'band_split_idxs': [...]}}}} or a <target>.yaml)")
    if "valid_signal_idx" in yaml_config and int(yaml_config["valid_signal_idx"]) != valid:
        raise ConversionError(f"{p.source}: {p.prefix}decode_scale has {valid} bins, the config's valid_signal_idx "
                              f"is {yaml_config['valid_signal_idx']}")
    band_init, band_ks, band_layers, band_blocks = [], [], [], []
    for b in bands:
        band_init.append(p.shape(f"features_init/{b}/conv/W")[0])
        ks, n_layers, blocks = _unet(p, f"dense_band/{b}")
        band_ks.append(ks), band_layers.append(n_layers), band_blocks.append(blocks)
    full_ks, full_layers, full_blocks = _unet(p, "dense_full")
    _, final_k, final_layers = _d2(p, "final_dense")
    return dict(
        nb_bins=p.shape("in_offset")[-1],
        nb_channels=p.shape("out_gate/conv_gate/conv/conv/W")[0],
        valid_bins=valid, band_splits=splits, band_init=band_init, band_ks=band_ks, band_layers=band_layers,
        band_blocks=band_blocks, full_init=p.shape("features_init_full/conv/W")[0], full_ks=full_ks,
        full_layers=full_layers, full_blocks=full_blocks, final_k=final_k, final_layers=final_layers,
        kernel_size=p.shape("features_init_full/conv/W")[-1],
        patch_length=int(yaml_config["test_patch_len"]), patch_hop=int(yaml_config["out_shift"]),
    )


# --- renaming ----------------------------------------------------------------------------------
def _leaf(rest: list[str], kind: str, key: str, source: str) -> str:
    table = _BN if kind == "bn" else _CONV
    if len(rest) != 2 or rest[0] != kind or rest[1] not in table:
        raise ConversionError(f"{source}: unexpected parameter {key}")
    return table[rest[1]]


def _unit(segs: list[str], key: str, source: str) -> str:
    """``norm1/bn/gamma`` → ``norm.weight``; ``conv1/conv/W`` → ``conv.weight``."""
    if segs[:1] == ["norm1"]:
        return "norm." + _leaf(segs[1:], "bn", key, source)
    if segs[:1] == ["conv1"]:
        return "conv." + _leaf(segs[1:], "conv", key, source)
    raise ConversionError(f"{source}: unexpected parameter {key}")


def _d2_name(segs: list[str], key: str, source: str) -> str:
    if segs[:2] == ["initial_layer", "bottleneck"]:
        return "layers.0." + _unit(segs[2:], key, source)
    if len(segs) > 3 and segs[0] == "layers" and re.fullmatch(r"layer\d+", segs[1]) and segs[2] == "bottleneck":
        return f"layers.{int(segs[1][5:])}." + _unit(segs[3:], key, source)
    raise ConversionError(f"{source}: unexpected parameter {key}")


def _d3_name(segs: list[str], key: str, source: str) -> str:
    if segs[:1] == ["initial_block"]:
        return "blocks.0." + _d2_name(segs[1:], key, source)
    if len(segs) > 2 and segs[0] == "layers" and re.fullmatch(r"layer\d+", segs[1]):
        return f"blocks.{int(segs[1][5:])}." + _d2_name(segs[2:], key, source)
    raise ConversionError(f"{source}: unexpected parameter {key}")


def _unet_name(segs: list[str], n_down: int, key: str, source: str) -> str:
    if len(segs) > 2 and segs[0] == "ds_layers" and re.fullmatch(r"dense_block\d+", segs[1]):
        return f"down.{int(segs[1][11:])}." + _d3_name(segs[2:], key, source)
    if segs[:1] == ["bottleneck_block"]:
        return "bottleneck." + _d3_name(segs[1:], key, source)
    if len(segs) > 2 and segs[0] == "us_layers" and re.fullmatch(r"dense_block\d+", segs[1]):
        return f"up.{int(segs[1][11:]) - n_down - 1}." + _d3_name(segs[2:], key, source)
    if len(segs) == 6 and segs[0] == "us_layers" and re.fullmatch(r"upsample\d+", segs[1]) and segs[2] == "upsample":
        j = int(segs[1][8:])
        if segs[3] == "norm":
            return f"upsample.{j}.norm." + _leaf(segs[4:], "bn", key, source)
        if segs[3] == "transconv":
            return f"upsample.{j}.conv." + _leaf(segs[4:], "deconv", key, source)
    raise ConversionError(f"{source}: unexpected parameter {key}")


def mssbook_name(key: str, n_down: dict[str, int], source: str = "") -> str:
    """The :class:`D3NetNetwork` state-dict key of NNabla parameter ``key`` (without the target prefix).

    ``n_down``: down-sampling levels per U-Net scope (``"dense_band/0"``, ``"dense_full"``).
    """
    segs = key.split("/")
    if len(segs) == 1 and key in _SCALERS:
        return key
    if len(segs) == 4 and segs[0] == "features_init" and segs[2] == "conv":
        return f"band_init.{int(segs[1])}." + _leaf(segs[2:], "conv", key, source)
    if segs[0] == "features_init_full":
        return "full_init." + _leaf(segs[1:], "conv", key, source)
    if len(segs) > 2 and segs[0] == "dense_band":
        return f"band_nets.{int(segs[1])}." + _unet_name(segs[2:], n_down[f"dense_band/{segs[1]}"], key, source)
    if segs[0] == "dense_full":
        return "full_net." + _unet_name(segs[1:], n_down["dense_full"], key, source)
    if len(segs) == 5 and segs[0] == "match_fm_conv":
        if segs[2] == "norm":
            return f"band_match.{int(segs[1])}.0." + _leaf(segs[3:], "bn", key, source)
        if segs[2] == "conv":
            return f"band_match.{int(segs[1])}.1." + _leaf(segs[3:], "conv", key, source)
    if segs[0] == "final_dense":
        return "final." + _d2_name(segs[1:], key, source)
    if segs[0] == "out_gate":
        if segs[1:3] == ["bn", "bn"]:
            return "gate_norm." + _leaf(segs[2:], "bn", key, source)
        if segs[1:3] == ["conv_gate", "conv"]:
            return "gate_conv." + _leaf(segs[3:], "conv", key, source)
        if segs[1:3] == ["conv_filt", "conv"]:
            return "filter_conv." + _leaf(segs[3:], "conv", key, source)
    raise ConversionError(f"{source}: unexpected parameter {key}")


def mapped_arrays(p: _Params, n_down: dict[str, int]) -> dict[str, np.ndarray]:
    """``{mssbook key: array}`` for one target's network, reshaped (BN and scalers flattened)."""
    out = {}
    for key, value in p.arrays.items():
        try:
            name = mssbook_name(key, n_down)
        except (ConversionError, KeyError, ValueError):
            raise ConversionError(f"{p.source}: unexpected parameter {p.prefix}{key} (no place for it in "
                                  "mssbook's D3Net)") from None
        if key in _SCALERS or key.rsplit("/", 1)[-1] in _BN:
            value = value.reshape(-1)  # scalers (1, 1, 1, N) and BN (1, C, 1, 1) → (N,)
        out[name] = value
    return out


# --- the converter -------------------------------------------------------------------------------
def _network_overrides(configs: dict[str, dict]) -> dict | None:
    """One ``network=`` dict for :class:`D3Net` reproducing every target's configuration, or None if the
    targets differ in a way the paper's per-target presets do not (then each network is set directly)."""
    from ..models.d3net import network_config

    overrides = {}
    keys = set().union(*configs.values())
    for key in sorted(keys):
        values = {t: c[key] for t, c in configs.items()}
        if all(network_config(t).get(key) == v for t, v in values.items()):
            continue
        distinct = {repr(v) for v in values.values()}
        if len(distinct) > 1:
            return None
        overrides[key] = next(iter(values.values()))
    return overrides


def convert_d3net(source: str | Path, targets=None, configs: dict | None = None):
    """A :class:`~mssbook.models.d3net.D3Net` with the weights of official NNabla D3Net ``.h5`` file(s).

    ``source``: one ``<target>.h5`` or a folder holding several (the unpacked ``d3net-mss.zip``);
    ``targets``: a subset (default: every target found); ``configs``: ``{target: {yaml key: value}}``
    for settings the weights do not carry (``band_split_idxs``, ``test_patch_len``, ``out_shift``,
    ``hop_size``, ``fs``), over the official ``configs/<target>.yaml`` values. Returns the model on
    the CPU in eval mode, with ``separate.py``'s separation defaults.
    """
    from .. import models
    from ..models.d3net import D3NetNetwork

    files = find_target_files(source, SUFFIXES, targets, what="D3Net nnabla weights")
    params, net_configs, yaml_configs, n_downs = {}, {}, {}, {}
    for target, file in files.items():
        p = params[target] = _Params(read_h5(file), str(file))
        yaml_configs[target] = official_config(target, file, configs)
        net_configs[target] = network_config_from_params(p, yaml_configs[target])
        n_downs[target] = {f"dense_band/{b}": (len(ks) - 1) // 2 for b, ks in enumerate(net_configs[target]["band_ks"])}
        n_downs[target]["dense_full"] = (len(net_configs[target]["full_ks"]) - 1) // 2

    order = list(files)
    first = yaml_configs[order[0]]
    shared = {}
    for key in ("nb_bins", "nb_channels"):
        values = {net_configs[t].pop(key) for t in order}
        if len(values) != 1:
            raise ConversionError(f"{source}: the targets' files disagree on {key} ({sorted(values)})")
        shared[key] = values.pop()
    for key in ("hop_size", "fs"):
        if len({int(yaml_configs[t][key]) for t in order}) != 1:
            raise ConversionError(f"{source}: the targets' configs disagree on {key}")
    n_fft = 2 * (shared["nb_bins"] - 1)
    n_hop = int(first["hop_size"]) if int(first["fft_size"]) == n_fft else n_fft // 4
    for cfg in net_configs.values():
        if cfg.get("kernel_size") == 3:
            cfg.pop("kernel_size")
    overrides = _network_overrides(net_configs)
    network = (overrides or None) if overrides is not None else net_configs[order[0]]
    try:
        model = models.create("d3net", preset="paper", target=tuple(order), n_fft=n_fft, n_hop=n_hop,
                              sample_rate=int(first["fs"]), nb_channels=shared["nb_channels"], network=network)
    except ValueError as exc:
        raise ConversionError(f"{source}: the D3Net configuration read from the weights is not buildable: "
                              f"{exc}") from None
    if overrides is None:
        # targets with other configurations than the first: build their networks directly (model.config then
        # describes the first target's network only; rebuilding from it, e.g. with_options, is not possible)
        for target in order[1:]:
            cfg = dict(net_configs[target])
            length, hop = cfg.pop("patch_length"), cfg.pop("patch_hop")
            try:
                net = D3NetNetwork(nb_bins=model.nb_bins, nb_channels=model.nb_channels, **cfg)
            except ValueError as exc:
                raise ConversionError(f"{files[target]}: configuration not buildable: {exc}") from None
            model.target_models[target] = net
            model.patches[target] = (int(length), int(hop))
    for target in order:
        load_mapped(model, mapped_arrays(params[target], n_downs[target]), str(files[target]),
                    prefix=f"target_models.{target}.")
    return model.eval()


def convert(source: str | Path, model: str | None = None, targets=None):
    """:func:`convert_d3net`, with the converter modules' common signature."""
    if model not in (None, "d3net"):
        raise ConversionError(f"D3Net nnabla files hold d3net networks, not {model!r}.")
    return convert_d3net(source, targets)


__all__ = ["RELEASES", "SUFFIXES", "OFFICIAL_CONFIGS", "convert", "convert_d3net", "mssbook_name",
           "network_config_from_params", "official_config"]
