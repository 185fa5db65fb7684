"""Make the fixtures of ``tests/test_weights_nnabla_umx.py`` with Sony's official nnabla code.

Official code: https://github.com/sony/ai-research-code, folder ``x-umx/`` (``model.py``:
``OpenUnmix`` and ``OpenUnmix_CrossNet``; ``test.py``: ``separate``), commit
cfe96dfeef567eaaaffe0045b5bcab9ca7fb9e00 (2023-09-12). This is the code the released weights
belong to: ``x-umx/umx.md`` links ``umxhq.zip`` / ``umx.zip`` (per-target ``<target>.h5``, loaded
by ``test.py --umx-infer``) and ``x-umx/x-umx.md`` links ``x-umx.h5``. (sigsep/open-unmix-nnabla,
commit e59f6a1013c6449d2fa620691972e978df05e512, has an older training-only model with biased
affine layers and no inference; its README links no weights, so it is not used here.)

What it does, for a *reduced* configuration (n_fft 256, hop 64, hidden size 8, the official three
bidirectional LSTM layers, stereo, 16 kHz bandwidth → 93 input bins):

1. imports the official ``model.py`` and ``test.py`` from ``--repo`` (the audio-file libraries
   ``test.py`` imports at the top but ``separate`` does not use, ``pydub`` and ``resampy``, are
   replaced by empty modules when missing) and changes the default sizes of ``model.BaseClass`` /
   ``model.get_stft`` and the hard-coded 4096-point ``max_bin`` of ``test.separate`` to the
   reduced ones (the official classes take these sizes as constructor arguments, the subclasses
   only do not pass them on);
2. builds the official graphs (``OpenUnmix`` per target, ``OpenUnmix_CrossNet``), replaces every
   parameter by seeded random values (BatchNorm statistics, input/output scalers and LSTM biases
   included) and saves them with ``nn.save_parameters`` as the releases are laid out:
   ``umx-nnabla/{vocals,drums,bass,other}.h5`` (keys ``fc1/affine/W``, ``lstm/lstm/weight_l0``,
   ..., as ``train.py --umx-train`` saves them) and ``xumx-nnabla/x-umx.h5`` (keys
   ``fc1_bass/affine/W``, ``input_mean_bass``, ...);
3. runs the official networks forward in inference mode (``test=True``) on a seeded stereo noise
   input, loading the files back exactly as ``test.separate`` does, and runs ``test.separate``
   itself (nnabla STFT → networks → ``norbert.wiener``, one iteration, whole excerpt →
   ``scipy.signal.istft``);
4. writes ``official.npz`` next to the weights: ``audio`` (C, L) float32, ``mix_spec``
   (T, C, F) the official magnitude spectrogram, ``estimates`` (S, T, C, F) the network outputs
   (target magnitudes), ``separated`` (S, C, L') the official separation, ``targets`` (order of S),
   and ``config`` (JSON: sizes, commit, command).

Command (Python 3.10 venv with nnabla 1.39, numpy 1.26, scipy, h5py, scikit-learn, norbert 0.2.1);
the stored fixtures were made from an exported tree of that commit, hence ``--commit``::

    git clone https://github.com/sony/ai-research-code && git -C ai-research-code checkout cfe96df
    /work/venvs/nnabla/bin/python tools/official_nnabla_umx.py \\
        --repo ai-research-code --out tests/fixtures/official \\
        --commit cfe96dfeef567eaaaffe0045b5bcab9ca7fb9e00

Rerunning it reproduces the stored files byte for byte.

It takes a few seconds on one CPU core.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

COMMIT = "cfe96dfeef567eaaaffe0045b5bcab9ca7fb9e00"
N_FFT, N_HOP, HIDDEN, BANDWIDTH, SAMPLE_RATE = 256, 64, 8, 16000, 44100
LENGTH = 2000  # samples of the stereo test input (32 frames)
UMX_TARGETS = ("vocals", "drums", "bass", "other")
XUMX_TARGETS = ("bass", "drums", "vocals", "other")  # the order of OpenUnmix_CrossNet's outputs


def import_official(repo: Path):
    folder = repo / "x-umx"
    if not (folder / "model.py").is_file():
        raise SystemExit(f"{folder} has no model.py: pass --repo the root of a sony/ai-research-code checkout")
    for name in ("pydub", "pydub.utils", "resampy"):
        try:
            __import__(name)
        except ImportError:
            stub = types.ModuleType(name)
            stub.AudioSegment = stub.mediainfo = stub.resample = None
            sys.modules[name] = stub
    sys.path.insert(0, str(folder))
    import model  # noqa: E402  (the official x-umx/model.py)
    import test as official_test  # noqa: E402  (the official x-umx/test.py)
    import utils  # noqa: E402

    # reduced sizes: the defaults of the official constructor and STFT helper
    params = list(inspect.signature(model.BaseClass.__init__).parameters)[1:]
    defaults = dict(zip(params, model.BaseClass.__init__.__defaults__))
    defaults.update(n_fft=N_FFT, n_hop=N_HOP, hidden_size=HIDDEN)
    model.BaseClass.__init__.__defaults__ = tuple(defaults[p] for p in params)
    model.get_stft.__defaults__ = (N_FFT, N_HOP, True)
    official_test.bandwidth_to_max_bin = lambda sample_rate, n_fft, bandwidth: utils.bandwidth_to_max_bin(
        sample_rate, N_FFT, bandwidth)
    return model, official_test, utils


def randomize(rng: np.random.RandomState) -> None:
    """Every parameter of the current graph: seeded random values of a plausible scale."""
    import nnabla as nn

    for name, param in sorted(nn.get_parameters(grad_only=False).items()):
        shape, leaf = param.shape, name.split("/")[-1]
        if leaf == "W":  # affine (..., out): Glorot-uniform
            fan_in, fan_out = int(np.prod(shape[:-1])), shape[-1]
            value = rng.uniform(-1, 1, shape) * np.sqrt(6.0 / (fan_in + fan_out))
        elif leaf in ("weight_l0", "weight"):
            value = rng.uniform(-1, 1, shape) / np.sqrt(shape[-2])
        elif leaf == "bias":
            value = rng.normal(0, 0.3, shape)
        elif leaf == "var":
            value = rng.uniform(0.5, 2.0, shape)
        elif leaf == "gamma":
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf in ("beta", "mean"):
            value = rng.normal(0, 0.3, shape)
        elif leaf.startswith("input_mean"):
            value = -rng.uniform(1.0, 3.0, shape)
        elif leaf.startswith("input_scale"):
            value = rng.uniform(0.2, 0.6, shape)
        elif leaf.startswith("output_scale"):
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf.startswith("output_mean"):
            value = rng.normal(0.5, 0.5, shape)
        else:
            raise SystemExit(f"unexpected parameter {name} {shape}")
        param.d = value.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="sony/ai-research-code checkout")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/official"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commit", help="the checkout's commit, when --repo is an exported tree without .git")
    args = parser.parse_args()
    commit = args.commit
    if not commit:
        try:
            commit = subprocess.run(["git", "-C", str(args.repo), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            commit = COMMIT + " (not a git checkout: the commit this script was written against)"

    import nnabla as nn

    nn.set_auto_forward(True)  # as the official test.py
    model, official_test, utils = import_official(args.repo)
    rng = np.random.RandomState(args.seed)
    max_bin = int(utils.bandwidth_to_max_bin(SAMPLE_RATE, N_FFT, BANDWIDTH))
    audio = (0.3 * rng.randn(2, LENGTH)).astype(np.float32)  # (C, L)
    audio_nn = nn.Variable.from_numpy_array(audio[None])
    config = dict(n_fft=N_FFT, n_hop=N_HOP, hidden_size=HIDDEN, nb_layers=3, nb_channels=2, max_bin=max_bin,
                  bandwidth=BANDWIDTH, sample_rate=SAMPLE_RATE, seed=args.seed, repository="sony/ai-research-code",
                  folder="x-umx", commit=commit,
                  command="python tools/official_nnabla_umx.py --repo <ai-research-code> --out tests/fixtures/official",
                  separation="test.separate: niter=1, softmask=False, alpha=1, residual_model=False, whole excerpt")
    mix_spec = model.get_spectogram(*model.get_stft(audio_nn, center=True), mono=False).d[:, 0]  # (T, C, F)
    separate_args = argparse.Namespace(softmask=False, alpha=1.0, residual_model=False, niter=1)

    # --- UMX: one OpenUnmix per target, one file each ---------------------------------------------
    folder = args.out / "umx-nnabla"
    folder.mkdir(parents=True, exist_ok=True)
    for target in UMX_TARGETS:
        nn.clear_parameters()
        net = model.OpenUnmix(max_bin=max_bin)
        net(audio_nn, test=True)  # creates every parameter
        randomize(rng)
        nn.save_parameters(str(folder / f"{target}.h5"))
    estimates = []
    for target in UMX_TARGETS:  # loaded back as test.separate does
        nn.clear_parameters()
        with nn.parameter_scope(target):
            net = model.OpenUnmix(max_bin=max_bin)
            nn.load_parameters(str(folder / f"{target}.h5"))
            estimates.append(net(audio_nn, test=True).d[:, 0])  # (T, C, F)
    nn.clear_parameters()
    separated = official_test.separate(audio.T, argparse.Namespace(
        **vars(separate_args), umx_infer=True, targets=list(UMX_TARGETS), model=str(folder)))
    np.savez(folder / "official.npz", audio=audio, mix_spec=mix_spec, estimates=np.stack(estimates),
             separated=np.stack([separated[t].T for t in UMX_TARGETS]).astype(np.float32),
             targets=np.array(UMX_TARGETS), config=json.dumps(config))

    # --- X-UMX: the four bridged branches in one file --------------------------------------------
    folder = args.out / "xumx-nnabla"
    folder.mkdir(parents=True, exist_ok=True)
    nn.clear_parameters()
    net = model.OpenUnmix_CrossNet(max_bin=max_bin, is_predict=True)
    net(audio_nn, test=True)
    randomize(rng)
    nn.save_parameters(str(folder / "x-umx.h5"))
    nn.clear_parameters()
    nn.load_parameters(str(folder / "x-umx.h5"))  # as test.separate does
    net = model.OpenUnmix_CrossNet(max_bin=max_bin, is_predict=True)
    spec, masks, _ = net(audio_nn, test=True)
    estimates = [(masks[..., 2 * j:2 * j + 2, :] * spec).d[:, 0] for j in range(len(XUMX_TARGETS))]
    nn.clear_parameters()
    separated = official_test.separate(audio.T, argparse.Namespace(
        **vars(separate_args), umx_infer=False, targets=list(XUMX_TARGETS), model=str(folder / "x-umx.h5")))
    np.savez(folder / "official.npz", audio=audio, mix_spec=spec.d[:, 0], estimates=np.stack(estimates),
             separated=np.stack([separated[t].T for t in XUMX_TARGETS]).astype(np.float32),
             targets=np.array(XUMX_TARGETS), config=json.dumps(config))
    for path in sorted(args.out.glob("*umx-nnabla/*")):
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
