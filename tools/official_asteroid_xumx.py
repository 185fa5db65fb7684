"""Make the fixtures of ``tests/test_weights_asteroid.py`` with asteroid's official X-UMX code.

Official code: https://github.com/asteroid-team/asteroid, commit
92c8d83a9dbe7c3afd1cd097e31254e0b4f82881 (2025-07-23): ``asteroid/models/x_umx.py`` (the model,
``XUMX.serialize`` writes the released checkpoint layout) and ``egs/musdb18/X-UMX/eval.py`` (the
inference the README's published numbers come from). Nothing of it is stored in mssbook: pass a
checkout with ``--repo``; its ``asteroid`` package is put first on ``sys.path``.

Why a checkout and not just PyPI: the newest release on PyPI, ``asteroid`` 0.7.0, replaces ``XUMX``
by a class whose constructor raises "XUMX is broken in torch 2.0" (its ``torch.stft`` call used
``return_complex=False``). The fix, commit d10b407b "Quick fix for XUMX in torch 2.0 (#684)", is
after 0.7.0 and in no release; it changes only the complex layout of the STFT/ISTFT calls. PyPI's
0.7.0 is still installed for the dependencies (``asteroid_filterbanks``, ``pytorch_lightning`` used
by ``serialize``, ...).

How the fixtures were made (about 10 s on 2 CPU cores)::

    ~/.pyenv/versions/3.10.13/bin/python -m venv /work/venvs/asteroid
    /work/venvs/asteroid/bin/pip install "torch<2.6" asteroid==0.7.0 torchaudio==2.5.1 \\
        norbert==0.2.1 requests
    # → torch 2.5.1, pytorch-lightning 2.6.6, numpy 2.2.6, scipy 1.15.3, norbert 0.2.1
    git clone https://github.com/asteroid-team/asteroid /tmp/asteroid
    git -C /tmp/asteroid checkout 92c8d83a9dbe7c3afd1cd097e31254e0b4f82881
    /work/venvs/asteroid/bin/python tools/official_asteroid_xumx.py --repo /tmp/asteroid \\
        --out tests/fixtures/official/xumx-asteroid

For each reduced configuration of ``CONFIGS`` the script builds asteroid's ``XUMX`` with seeded
random weights (every parameter, the BatchNorm running statistics and the input/output
mean/scale, so that a swapped or misplaced array changes the output), and writes

* ``<name>.pth``: ``torch.save(model.serialize())``, exactly what ``egs/musdb18/X-UMX/train.py``
  saves as ``best_model.pth`` and what the released ``pretrained_xumx.pth`` holds (``model_name``,
  ``state_dict``, ``model_args``, ``infos``);
* ``<name>_io.npz``: ``audio`` (seeded random (B, C, L) waveforms), ``masked`` (the first output of
  ``XUMX.forward`` in eval mode, the masked magnitudes (S, T, B, C, F)) and ``time`` (its second
  output with ``return_time_signals=True``: the inverse STFT of those magnitudes with the mixture
  phase, (S, B, C, L')); for the ``stereo`` configuration also ``separated`` (S, L, C): the
  official inference, ``eval.load_model`` on the saved file then ``eval.separate`` (norbert's
  multichannel Wiener filter, 1 EM iteration, no softmask, no residual, the whole track at once,
  scipy's inverse STFT) on the first item.

``eval.py`` imports ``musdb``, ``museval`` and ``resampy`` at module level for its MUSDB loop; they
are not needed by ``load_model``/``separate`` and are replaced by empty modules here.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

SOURCES = ["bass", "drums", "vocals", "other"]  # the recipe's conf.yml order

#: reduced configurations: small STFT, narrow layers (the model code allows every size)
CONFIGS = {
    "stereo": dict(model=dict(sources=SOURCES, window_length=256, in_chan=256, n_hop=64, hidden_size=16,
                              nb_channels=2, sample_rate=44100, nb_layers=2, max_bin=60, bidirectional=True),
                   batch=2, samples=1024, separate=True, seed=0),
    # another source order and count, a mono (magnitude-downmix) unidirectional one-layer variant
    "mono": dict(model=dict(sources=["vocals", "drums", "other"], window_length=128, in_chan=128, n_hop=32,
                            hidden_size=12, nb_channels=1, sample_rate=22050, nb_layers=1, max_bin=40,
                            bidirectional=False),
                 batch=1, samples=1024, separate=False, seed=1),
}


def randomize(model, torch, seed: int) -> None:
    """Seeded random values for every parameter and BatchNorm buffer (non-trivial statistics)."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=gen)

    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("window"):
                continue  # the STFT window: keep asteroid's Hann window
            if name.endswith("num_batches_tracked"):
                tensor.fill_(7)
            elif name.endswith("running_var"):
                tensor.copy_(uniform(tensor.shape, 0.5, 2.0))
            elif name.endswith("running_mean"):
                tensor.copy_(0.3 * torch.randn(tensor.shape, generator=gen))
            elif ".enc.1." in name or ".dec.1." in name or ".dec.4." in name:  # BN affine
                tensor.copy_(uniform(tensor.shape, 0.5, 1.5) if name.endswith("weight")
                             else 0.2 * torch.randn(tensor.shape, generator=gen))
            elif "input_mean" in name:
                tensor.copy_(-uniform(tensor.shape, 0.5, 3.0))
            elif "input_scale" in name:
                tensor.copy_(uniform(tensor.shape, 0.2, 1.0))
            elif "output_scale" in name:
                tensor.copy_(uniform(tensor.shape, 0.5, 2.0))
            elif "output_mean" in name:
                tensor.copy_(0.5 + 0.5 * torch.randn(tensor.shape, generator=gen))
            elif "layer_lstm" in name:
                tensor.copy_(uniform(tensor.shape, -0.6, 0.6))
            else:  # fc weights
                fan_in = tensor.shape[-1]
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 1.5 / fan_in**0.5)


def stub_modules(names) -> None:
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = types.ModuleType(name)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, type=Path, help="a checkout of asteroid-team/asteroid")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/official/xumx-asteroid"))
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    sys.path.insert(0, str(repo))

    import torch

    import asteroid
    from asteroid.models import XUMX

    if not Path(asteroid.__file__).resolve().is_relative_to(repo):
        raise SystemExit(f"asteroid was imported from {asteroid.__file__}, not from {repo}")
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "(not a git checkout)"
    print(f"asteroid {asteroid.__version__} from {repo} at {commit}; torch {torch.__version__}")

    # the recipe's inference script, as a module (its MUSDB-loop imports are not needed)
    stub_modules(["musdb", "museval", "resampy"])
    spec = importlib.util.spec_from_file_location("xumx_eval", repo / "egs/musdb18/X-UMX/eval.py")
    official_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official_eval)

    args.out.mkdir(parents=True, exist_ok=True)
    for name, cfg in CONFIGS.items():
        torch.manual_seed(cfg["seed"])
        model = XUMX(**cfg["model"], return_time_signals=True)
        randomize(model, torch, cfg["seed"])
        model.eval()
        path = args.out / f"{name}.pth"
        torch.save(model.serialize(), path)

        gen = torch.Generator().manual_seed(100 + cfg["seed"])
        channels = 2  # asteroid's eval feeds stereo; the mono model downmixes the magnitudes itself
        envelope = torch.linspace(0.2, 1.0, cfg["samples"])
        audio = 0.5 * torch.randn(cfg["batch"], channels, cfg["samples"], generator=gen) * envelope
        with torch.no_grad():
            masked, time = model(audio)
        arrays = {"audio": audio.numpy(), "masked": masked.numpy(), "time": time.numpy()}

        if cfg["separate"]:
            loaded, instruments = official_eval.load_model(str(path))
            estimates = official_eval.separate(audio[0].double().numpy().T, loaded, instruments, niter=1,
                                               softmask=False, alpha=1.0, residual_model=False)
            arrays["separated"] = np.stack([estimates[s] for s in instruments]).astype(np.float32)  # (S, L', C)
        np.savez_compressed(args.out / f"{name}_io.npz", **arrays)
        print(name, {k: v.shape for k, v in arrays.items()}, f"{path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
