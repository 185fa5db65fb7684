"""Make the fixtures of ``tests/test_weights_lightning.py`` with ws-choi's official U-Net code.

Official code: https://github.com/ws-choi/ISMIR2020_U_Nets_SVS, commit
aafcb69c43675713b86cd4f96eb659cf7eb55d16 (2022-07-01), package ``source_separation/`` (the current,
PyTorch Lightning generation; not ``.deprecated/``). Nothing of it is stored in mssbook: pass a
checkout with ``--repo``.

How the fixtures were made (run from the mssbook repository root, with mssbook's own venv; torch
2.11, CPU; about 2 s)::

    git clone https://github.com/ws-choi/ISMIR2020_U_Nets_SVS /tmp/ws-choi
    git -C /tmp/ws-choi checkout aafcb69c43675713b86cd4f96eb659cf7eb55d16
    .venv/bin/python tools/official_lightning_tfc_tdf.py --repo /tmp/ws-choi \\
        --out tests/fixtures/official/tfc_tdf_net

For each of the five U-Nets (``tfc_tdf_net``, ``tfc_net``, ``tdf_net``, ``tdc_net``,
``tdc_rnn_net``) the script builds the official ``*_NET_Framework`` LightningModule of a reduced
configuration (the hyper-parameters of ``CONFIGS`` below, in the form ``main.py``'s argparse hands
them over), gives every parameter and BatchNorm statistic seeded random values, and writes

* ``<net>_vocals.ckpt``: a checkpoint in the layout Lightning 0.9/1.0 (what the official README
  installed in October 2020) gives ``vocals_epoch=2007.ckpt``: ``epoch``, ``global_step``,
  ``pytorch-lightning_version``, ``state_dict`` with the module's own keys (``spec2spec.…`` and
  ``stft.stft.window``), ``hyper_parameters`` as ``save_hyperparameters`` collects them, empty
  optimizer states. (The released files could not be downloaded here to compare byte layouts; the
  weight names and shapes are those of the official module, by construction.) The TFC-TDF net has
  its TDF bias on (as "large"), the TDF net and TDC-RNN's MLP theirs off (BatchNorms without affine
  parameters, as the README's 7-block model), so both layouts are covered;
* ``<net>_io.npz``: ``spec_in`` (a seeded random (1, 4, T, F) complex-as-channels input) and
  ``spec_out``, the official ``spec2spec`` (their U-Net) output in eval mode;

and for ``tfc_tdf_net`` also ``tfc_tdf_net_separate.npz``: ``audio_in`` (seeded random stereo,
(L, 2) as their code takes it) and ``audio_out``, the official track inference:
``SingleTrackSet`` (chunks of ``window − 2·trim`` samples, each padded with ``trim`` zeros per side,
the last one with extra zeros) → ``Dense_UNET_Framework.separate`` per chunk → trim → concatenate →
cut to L. (``separate_track`` also round-trips the result through a 16-bit WAV file; that
quantisation is skipped here, as the MUSDB test path ``test_step`` also skips it.)

Two shims let the 2020 code run with current torch, without changing any of its semantics:

* ``pytorch_lightning`` 0.9/1.0 (``EvalResult``, ``TrainResult``; not installable beside torch 2)
  is replaced by a minimal stand-in: ``LightningModule`` is an ``nn.Module`` with ``freeze`` and
  ``save_hyperparameters(*names)`` (which, as Lightning's, picks the named arguments of the calling
  ``__init__``, ``**kwargs`` included); ``wandb`` and ``pydub`` (imported, unused here) are empty
  modules;
* ``torch.stft`` called without ``return_complex`` returns the real (…, N, T, 2) tensor of torch
  1.6 (``view_as_real`` of the complex result), and ``torch.istft`` accepts that layout again
  (``view_as_complex``); centring, reflect padding and the window are torch's defaults, as in 1.6.
"""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

COMMIT = "aafcb69c43675713b86cd4f96eb659cf7eb55d16"
SEED = 2020

# what main.py's argparse gives the framework (defaults of the add_model_specific_args, plus
# trainer.py's input_channels = 4 for complex spectrograms), for reduced configurations
COMMON = dict(target_name="vocals", spec_type="complex", spec_est_mode="mapping", optimizer="adam", lr=0.001,
              dev_mode=False, train_loss="spec_mse", val_loss="raw_l1", layer_level_init_weight=False,
              unfreeze_stft_from=-1, input_channels=4, first_conv_activation="relu", last_activation="identity",
              t_down_layers=None, f_down_layers=None, loss_raw_scale=None, loss_spec_scale=None,
              loss_raw_mode=None, loss_spec_mode=None, model=None)
CONFIGS = {
    # 5 blocks (2 levels), n_fft 512, hop 256, 48 frames: 12,032-sample windows, 5,120 trimmed per side
    "tfc_tdf_net": dict(COMMON, model="tfc_tdf_net", n_fft=512, hop_length=256, num_frame=48, n_blocks=5,
                        internal_channels=6, n_internal_layers=2, kernel_size_t=3, kernel_size_f=3, bn_factor=16,
                        min_bn_units=16, tfc_tdf_bias=True, tfc_tdf_activation="relu", tif_init_mode=None),
    "tfc_net": dict(COMMON, model="tfc_net", n_fft=128, hop_length=64, num_frame=160, n_blocks=5,
                    internal_channels=4, n_internal_layers=2, kernel_size_t=3, kernel_size_f=3,
                    tfc_activation="relu", t_down_layers="[1]"),
    # the TDF and TDC nets' sampling hard-codes BatchNorm2d(24): internal_channels must be 24
    "tdf_net": dict(COMMON, model="tdf_net", n_fft=128, hop_length=64, num_frame=160, n_blocks=3,
                    internal_channels=24, bn_factor=4, min_bn_units=4, bias=False, tdf_activation="relu"),
    "tdc_net": dict(COMMON, model="tdc_net", n_fft=128, hop_length=64, num_frame=160, n_blocks=3,
                    internal_channels=24, n_internal_layers=2, kernel_size_f=3, tdc_activation="relu"),
    "tdc_rnn_net": dict(COMMON, model="tdc_rnn_net", n_fft=128, hop_length=64, num_frame=160, n_blocks=3,
                        internal_channels=4, n_internal_layers=2, kernel_size_f=3, bn_factor_rnn=8, num_layers_rnn=1,
                        min_bn_units_rnn=4, bias_rnn=True, bn_factor_tdf=2, bias_tdf=False, tdc_rnn_activation="relu"),
}
FRAMES = {"tfc_tdf_net": 8, "tfc_net": 8, "tdf_net": 4, "tdc_net": 4, "tdc_rnn_net": 6}


def install_shims() -> None:
    """Stand-ins for Lightning 0.9/1.0, wandb and pydub; torch 1.6's real-valued stft/istft."""
    class LightningModule(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            self.hparams = {}

        def freeze(self):
            for p in self.parameters():
                p.requires_grad = False
            self.eval()

        def unfreeze(self):
            for p in self.parameters():
                p.requires_grad = True
            self.train()

        def save_hyperparameters(self, *names):
            frame = inspect.currentframe().f_back
            local = dict(frame.f_locals)
            local.update(local.pop("kwargs", {}) or {})
            self.hparams = {name: local[name] for name in names}

    pl = types.ModuleType("pytorch_lightning")
    pl.LightningModule = LightningModule
    pl.EvalResult = pl.TrainResult = pl.Trainer = object
    pl.seed_everything = lambda seed: None
    loggers = types.ModuleType("pytorch_lightning.loggers")
    loggers.WandbLogger = type("WandbLogger", (), {})
    callbacks = types.ModuleType("pytorch_lightning.callbacks")
    callbacks.ModelCheckpoint = callbacks.EarlyStopping = object
    pl.loggers, pl.callbacks = loggers, callbacks
    sys.modules.update({"pytorch_lightning": pl, "pytorch_lightning.loggers": loggers,
                        "pytorch_lightning.callbacks": callbacks})
    for name in ("wandb", "pydub"):
        sys.modules.setdefault(name, types.ModuleType(name))

    stft, istft = torch.stft, torch.istft

    def stft_16(input, *args, **kwargs):
        if "return_complex" in kwargs:
            return stft(input, *args, **kwargs)
        return torch.view_as_real(stft(input, *args, return_complex=True, **kwargs))

    def istft_16(input, *args, **kwargs):
        if not input.is_complex():
            input = torch.view_as_complex(input.contiguous())
        return istft(input, *args, **kwargs)

    torch.stft, torch.istft = stft_16, istft_16


def randomize(module: nn.Module, generator: torch.Generator) -> None:
    """Seeded random values for every parameter and BatchNorm statistic (none trivial)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("stft.window"):
                continue
            if p.dim() > 1:
                fan_in = p[0].numel() if "ConvTranspose" not in name else p.shape[0] * p[0, 0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) * (1.5 / max(fan_in, 1)) ** 0.5)
            elif name.endswith("weight"):  # BN scale
                p.copy_(0.5 + torch.rand(p.shape, generator=generator))
            else:  # biases, BN shift
                p.copy_(0.2 * torch.randn(p.shape, generator=generator))
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=generator))
                m.num_batches_tracked.fill_(1234)


def framework_class(net: str):
    from source_separation.models.model_definition import get_class_by_name

    return get_class_by_name(net)


def lightning_checkpoint(module: nn.Module, epoch: int) -> dict:
    """The dict Lightning 1.0's ``ModelCheckpoint`` saves (``dump_checkpoint``)."""
    return {
        "epoch": epoch,
        "global_step": epoch * 100,
        "pytorch-lightning_version": "1.0.2",
        "checkpoint_callback_best_model_score": torch.tensor(0.05),
        "checkpoint_callback_best_model_path": f"etc/checkpoints/x/vocals_epoch={epoch}.ckpt",
        "optimizer_states": [],
        "lr_schedulers": [],
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
    }


def separate_track(module, audio: np.ndarray) -> np.ndarray:
    """The official chunked inference (``separate_track`` without its 16-bit WAV round trip)."""
    from source_separation.data.musdb_wrapper.datasets import SingleTrackSet

    dataset = SingleTrackSet(audio, module.hop_length, module.num_frame, module.target_name)
    pieces = []
    with torch.no_grad():
        for i in range(len(dataset)):
            out = module.separate(dataset[i].unsqueeze(0))[0]
            pieces.append(out[module.trim_length:-module.trim_length].numpy())
    return np.concatenate(pieces, axis=0)[: audio.shape[0]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True, help="checkout of ws-choi/ISMIR2020_U_Nets_SVS")
    parser.add_argument("--out", default="tests/fixtures/official/tfc_tdf_net")
    args = parser.parse_args()
    repo = Path(args.repo).resolve()
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    if commit != COMMIT:
        print(f"warning: {repo} is at {commit}, the fixtures were made at {COMMIT}", file=sys.stderr)
    install_shims()
    sys.path.insert(0, str(repo))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)

    for index, (net, config) in enumerate(CONFIGS.items()):
        torch.manual_seed(SEED + index)
        generator = torch.Generator().manual_seed(SEED + index)
        module = framework_class(net)(**config)
        randomize(module, generator)
        module.eval()
        torch.save(lightning_checkpoint(module, 2007), out / f"{net}_vocals.ckpt")

        frames, bins = FRAMES[net], config["n_fft"] // 2 + 1
        spec_in = torch.randn((1, 4, frames, bins), generator=generator)
        with torch.no_grad():
            spec_out = module.spec2spec(spec_in)
        np.savez_compressed(out / f"{net}_io.npz", spec_in=spec_in.numpy(), spec_out=spec_out.numpy())
        line = f"{net}: {sum(p.numel() for p in module.spec2spec.parameters())} parameters, out {tuple(spec_out.shape)}"

        if net == "tfc_tdf_net":
            true = module.hop_length * (module.num_frame - 1) - 2 * module.trim_length  # samples kept per chunk
            length = 2 * true + 700  # three chunks, the last one mostly zeros
            audio = (0.3 * torch.randn((length, 2), generator=generator)).numpy()
            audio_out = separate_track(module, audio)
            np.savez_compressed(out / f"{net}_separate.npz", audio_in=audio, audio_out=audio_out)
            line += f"; separate: {length} samples in chunks of {true}"
        print(line)
    print(f"official commit {commit}; fixtures in {out}")


if __name__ == "__main__":
    main()
