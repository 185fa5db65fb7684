"""Make the D3Net fixtures of ``tests/test_weights_nnabla_d3net.py`` with Sony's official NNabla code.

Official code: https://github.com/sony/ai-research-code, folder ``d3net/music-source-separation``
(``model.py``: ``D3NetMSS``; ``util.py``: ``model_separate``, ``stft2time_domain``; ``filter.py``:
``apply_mwf``; ``configs/<target>.yaml``), commit ``cfe96dfeef567eaaaffe0045b5bcab9ca7fb9e00``
(2023-09-12). Nothing of it is copied here: this script imports it from a checkout.

What it does, for the targets vocals and bass:

1. Loads the official ``configs/<target>.yaml`` and overrides the network sizes in that dict (a
   *reduced* configuration: 320 processed bins, thin 3- and 5-level U-Nets, two D2 blocks per D3
   block so every scope of the official layout occurs, and a match convolution on band 1). The
   band split, STFT size and test patch/hop stay the official per-target values.
2. Builds the official ``D3NetMSS`` graph (test mode) under ``nn.parameter_scope(target)`` as
   ``separate.py`` does, gives every parameter (BN running statistics included) seeded random
   values, and saves them with ``nn.save_parameters`` to ``<target>.h5``, the layout of the
   released ``d3net-mss.zip``. ``decode_scale``/``decode_bias`` are drawn from U(5, 15) so that the
   estimates have the mixture's scale, as a trained network's do.
3. Network fixture: a seeded (1, 16 frames, 2, 2049) magnitude input (float16-representable, so
   it is stored exactly as float16); the official forward output is stored for the processed bins
   (above them the official network copies its input).
4. Inference fixture: a deterministic 2.9 s stereo signal (``test_signal`` below; the test rebuilds
   it with the same integer arithmetic), STFT as ``util.generate_data`` computes it (librosa,
   4096/1024, centred) with librosa's pre-0.10 default ``pad_mode="reflect"`` made explicit (the
   release dates from librosa 0.8; librosa >= 0.10 pads with zeros), then, as
   ``separate.run_separation``: ``nn.load_parameters(<target>.h5)``, ``util.model_separate`` with
   the channel-swap average, magnitude x mixture phase, ``filter.apply_mwf`` (one-shot MWF over
   the whole track), ``util.stft2time_domain``. 128 frames (2.9 s, 127 hops): every frame lies in
   two patches, and neither target hits the official overlap-add's halving of the last frames
   (T mod 256 = 128 <= 128, T mod 384 = 128 <= 192). Stored: each target's magnitude estimate
   (``model_separate``'s output: patches, overlap-add, channel-swap average) for every 5th
   processed bin, and every 29th sample of the two separated stereo signals.

Outputs in ``--out``: ``d3net-mss-reduced.zip`` (``vocals.h5``, ``bass.h5``: the release's
layout, zipped like ``d3net-mss.zip``; zipping shrinks HDF5's per-group overhead about fivefold),
``official_d3net.npz`` (inputs and official outputs) and ``official_d3net.json`` (how they were
made).

Run (Python 3.10 venv with nnabla 1.39, librosa 0.11, numpy 1.26, h5py, pyyaml, scipy, soundfile,
scikit-learn, tqdm; ``pydub`` is replaced by an empty module if missing, as only
``util.generate_data``, not used here, needs it)::

    git clone https://github.com/sony/ai-research-code /tmp/ai-research-code
    git -C /tmp/ai-research-code checkout cfe96dfeef567eaaaffe0045b5bcab9ca7fb9e00
    /work/venvs/nnabla/bin/python tools/official_nnabla_d3net.py --repo /tmp/ai-research-code \
        --out tests/fixtures/official/d3net

It takes about ten seconds on two CPU cores and reproduces the stored fixtures exactly (same
zip bytes, same arrays).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np

COMMIT = "cfe96dfeef567eaaaffe0045b5bcab9ca7fb9e00"
TARGETS = ("vocals", "bass")
SEED = 15
NET_FRAMES = 16
SIGNAL_FRAMES = 128  # centred STFT frames of the inference fixture
HOP = 1024
SAMPLE_STRIDE = 29  # keep every 29th output sample
BIN_STRIDE = 5  # keep every 5th processed bin of the per-target magnitude estimates

#: the reduced network (keys of the official yaml); everything else stays the official value
REDUCED = dict(
    valid_signal_idx=320,
    num_init_features=[4, 3],
    dens_k=[[3, 2, 3], [2, 2, 2, 2, 2]],
    num_layer_blocks=[[2, 3, 2], [1, 1, 1, 1, 1]],
    b_n_blocks=[[2, 2, 2], [1, 1, 1, 1, 1]],
    comp_rates=[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]],
    f_num_init_features=4,
    f_dens_k=[2, 3, 4, 3, 2],
    f_num_layer_block=[2, 2, 3, 2, 2],
    f_n_blocks=[2, 2, 2, 2, 2],
    f_comp_rates=[1.0, 1.0, 1.0, 1.0, 1.0],
    ttl_dens_k=3,
    ttl_num_layer_block=2,
)


def test_signal(n_samples: int) -> np.ndarray:
    """(n_samples, 2) float32: tones, a glide and hashed noise, different in each channel.

    Integer hashing (exact everywhere) for the noise; ``tests/test_weights_nnabla_d3net.py`` has
    the same function.
    """
    n = np.arange(n_samples, dtype=np.uint64)
    channels = []
    for c in range(2):
        h = (n * np.uint64(2654435761) + np.uint64(97 + 31 * c)) % np.uint64(2**32)
        h = (h ^ (h >> np.uint64(13))) * np.uint64(1274126177) % np.uint64(2**32)
        h = h ^ (h >> np.uint64(16))
        noise = h.astype(np.float64) / 2**32 - 0.5
        t = np.arange(n_samples, dtype=np.float64) / 44100.0
        tone = (0.25 + 0.1 * c) * np.sin(2 * np.pi * (110.0 + 55.0 * c) * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
        glide = 0.15 * np.sin(2 * np.pi * (400.0 * t + 150.0 * t**2)) * (0.6 if c else 1.0)
        burst = (np.sin(2 * np.pi * 2.0 * t) > 0.6) * noise * (0.3 if c else 0.2)
        channels.append(tone + glide + burst + 0.02 * noise)
    return np.stack(channels, axis=1).astype(np.float32)


def _randomize(nn, rng: np.random.RandomState) -> list[str]:
    """Seeded values for every parameter (sorted by name), scaled to keep activations moderate."""
    names = []
    params = nn.get_parameters(grad_only=False)
    for name in sorted(params):
        var = params[name]
        shape = var.shape
        leaf = name.rsplit("/", 1)[-1]
        if leaf == "W":
            fan_in = int(np.prod(shape[1:])) if "deconv" not in name else int(shape[0] * np.prod(shape[2:]))
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=shape)
        elif leaf == "b":
            value = rng.normal(0.0, 0.1, size=shape)
        elif leaf == "gamma":
            value = rng.uniform(0.5, 1.5, size=shape)
        elif leaf == "beta":
            value = rng.normal(0.0, 0.2, size=shape)
        elif leaf == "mean":
            value = rng.normal(0.0, 0.2, size=shape)
        elif leaf == "var":
            value = rng.uniform(0.5, 1.5, size=shape)
        elif leaf == "in_offset":
            value = rng.uniform(0.0, 0.2, size=shape)
        elif leaf == "in_scale":
            value = rng.uniform(0.5, 2.0, size=shape)
        elif leaf == "decode_scale":  # estimates on the mixture's scale, as a trained network's
            value = rng.uniform(5.0, 15.0, size=shape)
        elif leaf == "decode_bias":
            value = rng.uniform(5.0, 15.0, size=shape)
        else:
            raise SystemExit(f"unexpected parameter {name}")
        var.d = value.astype(np.float32)
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True, help="checkout of sony/ai-research-code")
    parser.add_argument("--out", default="tests/fixtures/official/d3net")
    args = parser.parse_args()
    repo = Path(args.repo).resolve()
    mss = repo / "d3net" / "music-source-separation"
    if not (mss / "model.py").is_file():
        raise SystemExit(f"{mss}/model.py not found: --repo must be a checkout of sony/ai-research-code")
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    if commit != COMMIT:
        print(f"warning: checkout at {commit}, the fixtures were made at {COMMIT}", file=sys.stderr)

    try:
        import pydub  # noqa: F401
    except ImportError:  # util.py imports it for generate_data only
        stub = types.ModuleType("pydub")
        stub.AudioSegment = None
        stub.utils = types.ModuleType("pydub.utils")
        stub.utils.mediainfo = None
        sys.modules["pydub"], sys.modules["pydub.utils"] = stub, stub.utils
    sys.path.insert(0, str(mss))
    import librosa
    import nnabla as nn
    import yaml
    from filter import apply_mwf
    from model import D3NetMSS
    from util import model_separate, stft2time_domain

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    h5_dir = Path(tempfile.mkdtemp(prefix="d3net-fixture-"))
    rng = np.random.RandomState(SEED)
    hparams = {}
    for target in TARGETS:
        with open(mss / "configs" / f"{target}.yaml") as f:
            hparams[target] = {**yaml.safe_load(f), **REDUCED}

    # --- network fixture -----------------------------------------------------------------------
    bins = hparams[TARGETS[0]]["fft_size"] // 2 + 1
    net_in = np.abs(rng.normal(0.0, 1.0, size=(1, NET_FRAMES, 2, bins))).astype(np.float16).astype(np.float32)
    arrays = {"net_input": net_in.astype(np.float16)}
    for target in TARGETS:
        nn.clear_parameters()
        with nn.parameter_scope(target):
            D3NetMSS(hparams[target], test=True)(nn.Variable(net_in.shape))  # creates the parameters
        names = _randomize(nn, rng)
        nn.save_parameters(str(h5_dir / f"{target}.h5"))
        with nn.parameter_scope(target):
            y = D3NetMSS(hparams[target], test=True)(nn.Variable.from_numpy_array(net_in))
        y.forward(clear_buffer=True)
        y = np.array(y.d)  # (1, T, C, F)
        valid = hparams[target]["valid_signal_idx"]
        assert np.array_equal(y[..., valid:], net_in[..., valid:])
        arrays[f"net_output_{target}"] = y[..., :valid].astype(np.float32)
        print(f"{target}: {len(names)} parameters, output mean {y[..., :valid].mean():.4f}")

    # --- inference fixture (separate.run_separation's steps) ---------------------------------
    audio = test_signal((SIGNAL_FRAMES - 1) * HOP)  # (L, 2)
    fft, hop = hparams[TARGETS[0]]["fft_size"], hparams[TARGETS[0]]["hop_size"]
    inp_stft = np.stack([librosa.stft(audio[:, i], n_fft=fft, hop_length=hop, pad_mode="reflect").T
                         for i in range(2)], axis=1).astype(np.complex64)  # (T, C, F)
    assert inp_stft.shape[0] == SIGNAL_FRAMES
    magnitude = np.abs(np.ascontiguousarray(inp_stft))
    nn.clear_parameters()
    out_stfts = {}
    for target in TARGETS:
        nn.load_parameters(str(h5_dir / f"{target}.h5"))
        with nn.parameter_scope(target):
            est = model_separate(magnitude, hparams[target], ch_flip_average=True)
        arrays[f"estimate_{target}"] = est[..., : hparams[target]["valid_signal_idx"]:BIN_STRIDE].astype(np.float32)
        out_stfts[target] = est * np.exp(1j * np.angle(inp_stft))
    out_stfts = apply_mwf(out_stfts, inp_stft)
    for target in TARGETS:
        wave = stft2time_domain(out_stfts[target], hop)  # (L, 2)
        assert wave.shape == audio.shape, wave.shape
        arrays[f"separated_{target}"] = wave[::SAMPLE_STRIDE].astype(np.float32)
        print(f"{target}: separated rms {np.sqrt(np.mean(wave**2)):.4f}")

    with zipfile.ZipFile(out / "d3net-mss-reduced.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for target in TARGETS:
            info = zipfile.ZipInfo(f"{target}.h5", date_time=(2021, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, (h5_dir / f"{target}.h5").read_bytes())
    np.savez_compressed(out / "official_d3net.npz", **arrays)
    meta = dict(repository="https://github.com/sony/ai-research-code", commit=commit,
                tool="tools/official_nnabla_d3net.py", nnabla=nn.__version__, librosa=librosa.__version__,
                seed=SEED, targets=list(TARGETS), reduced=REDUCED, net_frames=NET_FRAMES,
                signal_frames=SIGNAL_FRAMES, sample_stride=SAMPLE_STRIDE, bin_stride=BIN_STRIDE,
                patches={t: [hparams[t]["test_patch_len"], hparams[t]["out_shift"]] for t in TARGETS},
                band_split_idxs={t: hparams[t]["band_split_idxs"] for t in TARGETS})
    (out / "official_d3net.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(h5_dir)
    print("wrote", sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main()
