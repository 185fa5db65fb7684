"""ws-choi's Lightning checkpoints → mssbook's U-Nets, checked against the official code's outputs.

The fixtures (``tests/fixtures/official/tfc_tdf_net/``) were made by
``tools/official_lightning_tfc_tdf.py`` with the official code (ws-choi/ISMIR2020_U_Nets_SVS at
aafcb69): for each of the five U-Nets a checkpoint of a reduced configuration with seeded random
weights and BatchNorm statistics, in the released checkpoints' layout, a random complex-as-channels
input and the official U-Net's output; for the TFC-TDF net also a stereo signal and the official
chunked track inference's output. Bound: relative error (max |Δ| / max |official|) ≤ 1e-5.
"""

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import mssbook.models
from mssbook.weights import lightning
from mssbook.weights.common import ConversionError

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

FIXTURES = Path(__file__).parent / "fixtures" / "official" / "tfc_tdf_net"
TOLERANCE = 1e-5


def relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    assert estimate.shape == reference.shape
    return float(np.abs(estimate - reference).max() / np.abs(reference).max())


def network_error(net, family: str) -> float:
    data = np.load(FIXTURES / f"{family}_io.npz")
    with torch.no_grad():
        out = net.target_models["vocals"](torch.from_numpy(data["spec_in"]))
    return relative_error(out.numpy(), data["spec_out"])


def checkpoint_copy(tmp_path, family: str, edit) -> Path:
    """The fixture checkpoint of ``family`` with ``edit(state_dict)`` applied, saved as vocals.ckpt."""
    checkpoint = torch.load(FIXTURES / f"{family}_vocals.ckpt", map_location="cpu", weights_only=True)
    checkpoint["state_dict"] = dict(checkpoint["state_dict"])
    edit(checkpoint["state_dict"])
    path = tmp_path / "vocals_epoch=1.ckpt"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("family", lightning.FAMILIES)
def test_network_equals_official(family):
    net = lightning.convert(FIXTURES / f"{family}_vocals.ckpt")
    assert net.name == family and net.targets == ("vocals",) and not net.training
    assert network_error(net, family) <= TOLERANCE


def test_configuration_read_from_shapes_and_hyper_parameters():
    net = lightning.convert(FIXTURES / "tfc_tdf_net_vocals.ckpt", model="tfc_tdf_net")
    expected = dict(n_fft=512, hop_length=256, num_frame=48, n_blocks=5, internal_channels=6, n_internal_layers=2,
                    kernel_size_t=3, kernel_size_f=3, tfc_tdf_bias=True, bn_factor=16, min_bn_units=16,
                    t_down_layers=None, spec_type="complex", spec_est_mode="mapping", last_activation="identity")
    assert {k: net.config[k] for k in expected} == expected
    large = mssbook.models.create("tfc_tdf_net", preset="large", target="vocals").config
    reduced = ("n_fft", "hop_length", "num_frame", "n_blocks", "internal_channels", "n_internal_layers", "context")
    assert net.config["context"] == "zeros"  # the official inference's zero-padded chunks
    assert {k: v for k, v in net.config.items() if k not in reduced} == {
        k: large[k] for k in net.config if k not in reduced}  # otherwise the "large" preset
    tfc = lightning.convert(FIXTURES / "tfc_net_vocals.ckpt")
    assert tfc.config["t_down_layers"] == [1]  # (2, 2) sampling at level 1 only; upsampling mirrors it
    rnn = lightning.convert(FIXTURES / "tdc_rnn_net_vocals.ckpt")
    assert (rnn.config["bias_rnn"], rnn.config["bn_factor_tdf"], rnn.config["min_bn_units"]) == (True, 2, 16)


def test_track_inference_equals_official():
    """Chunks padded with zeros (trim per side), 4,284 samples = two full chunks and a short one."""
    net = lightning.convert(FIXTURES / "tfc_tdf_net_vocals.ckpt")
    assert net.separation_options() == {"context": "zeros", "batch_size": None}
    data = np.load(FIXTURES / "tfc_tdf_net_separate.npz")
    mixture = torch.from_numpy(data["audio_in"].T.copy())[None]  # (1, 2, L); theirs is (L, 2)
    with torch.no_grad():
        out = net.separate(mixture)  # (1, 1, 2, L)
        audio_context = net.separate(mixture, context="audio")
    # float32 STFTs of a batch vs one channel at a time: measured 4.8e-7
    assert relative_error(out[0, 0].numpy().T, data["audio_out"]) <= TOLERANCE
    # mssbook's own default differs from the official inference (and the fixture tells them apart)
    assert relative_error(audio_context[0, 0].numpy().T, data["audio_out"]) > 1e-2


def test_a_wrong_mapping_fails_the_comparison(tmp_path):
    """Same shapes, wrong place: the TDF's two BatchNorms swapped load fine but separate differently."""
    def swap(state):
        for suffix in ("weight", "bias", "running_mean", "running_var"):
            a, b = f"spec2spec.encoders.0.tif.tif.1.{suffix}", f"spec2spec.encoders.0.tif.tif.4.{suffix}"
            state[a], state[b] = state[b], state[a]

    net = lightning.convert(checkpoint_copy(tmp_path, "tfc_tdf_net", swap))
    assert network_error(net, "tfc_tdf_net") > 1e-2


def test_missing_key_is_named(tmp_path):
    path = checkpoint_copy(tmp_path, "tfc_tdf_net", lambda s: s.pop("spec2spec.encoders.1.tif.tif.3.weight"))
    wanted = r"missing weights for target_models\.vocals\.encoders\.1\.tdf\.mlp\.3\.weight"
    with pytest.raises(ConversionError, match=wanted):
        lightning.convert(path)


def test_misshapen_key_is_named(tmp_path):
    key = "spec2spec.decoders.0.tfc.H.1.0.weight"
    path = checkpoint_copy(tmp_path, "tfc_tdf_net", lambda s: s.__setitem__(key, s[key][:, :-1]))
    with pytest.raises(ConversionError, match=r"decoders\.0\.tfc\.layers\.1\.0\.weight \(spec2spec\.decoders\.0\.tfc\.H"
                                              r"\.1\.0\.weight in the checkpoint\) has shape \(6, 17, 3, 3\)"):
        lightning.convert(path)


def test_unknown_key_and_trained_window_are_refused(tmp_path):
    path = checkpoint_copy(tmp_path, "tdc_net", lambda s: s.__setitem__("spec2spec.extra.weight", torch.ones(2)))
    with pytest.raises(ConversionError, match=r"no place in the mssbook model for .*spec2spec\.extra\.weight"):
        lightning.convert(path)
    path = checkpoint_copy(tmp_path, "tdc_net", lambda s: s.__setitem__("stft.stft.window", torch.ones(128)))
    with pytest.raises(ConversionError, match="stft.stft.window is not the periodic Hann window"):
        lightning.convert(path)


def test_wrong_family_and_configuration_errors(tmp_path):
    with pytest.raises(ConversionError, match="holds a tdf_net, not a tfc_tdf_net"):
        lightning.convert(FIXTURES / "tdf_net_vocals.ckpt", model="tfc_tdf_net")
    checkpoint = torch.load(FIXTURES / "tfc_net_vocals.ckpt", map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["tfc_activation"] = "leaky_relu"
    torch.save(checkpoint, tmp_path / "vocals.ckpt")
    with pytest.raises(ConversionError, match="tfc_activation is 'leaky_relu'"):
        lightning.convert(tmp_path / "vocals.ckpt")
    checkpoint["hyper_parameters"] = {}
    torch.save(checkpoint, tmp_path / "vocals.ckpt")
    with pytest.raises(ConversionError, match="hyper_parameters lack n_fft, hop_length"):
        lightning.convert(tmp_path / "vocals.ckpt")


def test_folder_of_targets_and_foreign_pickled_classes(tmp_path, monkeypatch):
    """A folder of per-target files makes one model; classes of other packages in the pickle (as
    Lightning's ``AttributeDict``) load as dicts, with ``weights_only=True``, that package absent."""
    checkpoint = torch.load(FIXTURES / "tdc_net_vocals.ckpt", map_location="cpu", weights_only=True)
    fake = types.ModuleType("fake_lightning_parsing")

    class AttributeDict(dict):
        pass

    AttributeDict.__module__, AttributeDict.__qualname__ = fake.__name__, "AttributeDict"
    fake.AttributeDict = AttributeDict
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, fake.__name__, fake)
        for target in ("vocals", "bass"):
            hparams = AttributeDict(checkpoint["hyper_parameters"], target_name=target)
            torch.save(dict(checkpoint, hyper_parameters=hparams), tmp_path / f"{target}_epoch=3.ckpt")
    assert fake.__name__ not in sys.modules
    net = lightning.convert(tmp_path)
    assert set(net.targets) == {"vocals", "bass"}
    assert network_error(net, "tdc_net") <= TOLERANCE
    with torch.no_grad():
        for name, value in net.target_models["bass"].state_dict().items():
            assert torch.equal(value, net.target_models["vocals"].state_dict()[name])
    assert lightning.convert(tmp_path, targets=["bass"]).targets == ("bass",)


def test_releases():
    (large, seed) = lightning.RELEASES
    assert large.name == "tfc_tdf_net-large" and large.model == "tfc_tdf_net" and large.format == "lightning"
    assert large.urls[0].endswith("/debug_large/vocals_epoch=2007.ckpt") and large.files == ("vocals_epoch=2007.ckpt",)
    assert large.options == {"context": "zeros"} and large.sdr == {"vocals": 8.029}
    assert seed.urls[0].endswith("/debug/vocals_epoch=891.ckpt")


def test_old_hparams_namespace_and_unnamed_file(tmp_path):
    """Older Lightning pickles ``hparams`` as an argparse Namespace; a file not named after its
    target takes it from ``target_name``; a file that is no checkpoint is refused."""
    checkpoint = torch.load(FIXTURES / "tfc_net_vocals.ckpt", map_location="cpu", weights_only=True)
    hparams = argparse.Namespace(**checkpoint.pop("hyper_parameters"))
    torch.save(dict(checkpoint, hparams=hparams), tmp_path / "epoch=12.ckpt")
    net = lightning.convert(tmp_path / "epoch=12.ckpt")
    assert net.targets == ("vocals",) and network_error(net, "tfc_net") <= TOLERANCE
    (tmp_path / "bass.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConversionError, match="bass.ckpt is not a readable PyTorch checkpoint"):
        lightning.convert(tmp_path / "bass.ckpt")
