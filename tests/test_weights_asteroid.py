"""asteroid's X-UMX checkpoints → mssbook's X-UMX, proven against asteroid's own code.

The fixtures in ``tests/fixtures/official/xumx-asteroid/`` were made by
``tools/official_asteroid_xumx.py`` (asteroid commit 92c8d83, its ``XUMX`` of two reduced
configurations with seeded random weights, saved with ``serialize()`` as the released
``pretrained_xumx.pth``; the outputs of its forward pass and of the recipe's ``eval.separate``).
Only torch and numpy are needed here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mssbook.signal.transforms import magnitude
from mssbook.signal.wiener import wiener
from mssbook.weights import ConversionError
from mssbook.weights import asteroid as conv

FIXTURES = Path(__file__).parent / "fixtures" / "official" / "xumx-asteroid"
NETWORK_RTOL = 1e-5  # the bound for networks: max |mssbook − official| / max |official|


def rel_err(ours: torch.Tensor, official: torch.Tensor) -> float:
    return float((ours - official).abs().max() / official.abs().max())


def fixture(name: str):
    return np.load(FIXTURES / f"{name}_io.npz")


def load_checkpoint(name: str) -> dict:
    return torch.load(FIXTURES / f"{name}.pth", map_location="cpu", weights_only=False)  # our own fixture


@pytest.mark.parametrize("name", ["stereo", "mono"])
def test_network_equals_asteroid(name):
    """The masked magnitudes of asteroid's ``XUMX.forward`` (S, T, B, C, F), from the waveform."""
    model = conv.convert(FIXTURES / f"{name}.pth")
    io = fixture(name)
    audio = torch.from_numpy(io["audio"])
    official = torch.from_numpy(io["masked"]).permute(2, 0, 3, 4, 1)  # → (B, S, C, F, T)
    with torch.no_grad():
        ours = model(model.magnitudes(audio, center=True))
    assert ours.shape == official.shape
    assert rel_err(ours, official) <= NETWORK_RTOL


def test_sizes_and_order_come_from_the_file():
    stereo = conv.convert(FIXTURES / "stereo.pth")
    assert stereo.targets == ("bass", "drums", "vocals", "other")  # the file's order
    branch = stereo.target_models["bass"]
    assert (stereo.n_fft, stereo.n_hop, stereo.nb_channels, branch.hidden_size, branch.max_bin) == (256, 64, 2, 16, 60)
    assert stereo.target_models["bass"].lstm.num_layers == 2 and stereo.target_models["bass"].lstm.bidirectional
    mono = conv.convert(FIXTURES / "mono.pth")
    assert mono.targets == ("vocals", "drums", "other")
    assert (mono.sample_rate, mono.n_fft, mono.n_hop, mono.nb_channels, mono.max_bin) == (22050, 128, 32, 1, 40)
    assert mono.target_models["vocals"].lstm.num_layers == 1 and not mono.target_models["vocals"].lstm.bidirectional
    assert not stereo.training and all(p.device.type == "cpu" for p in stereo.parameters())


def test_time_signals_equal_asteroid():
    """asteroid's second output (ISTFT of the masked magnitudes with the mixture phase) is what
    mssbook's X-UMX trains on: ``training_estimates``."""
    model = conv.convert(FIXTURES / "stereo.pth")
    io = fixture("stereo")
    official = torch.from_numpy(io["time"]).transpose(0, 1)  # (S, B, C, L) → (B, S, C, L)
    with torch.no_grad():
        _, ours = model.training_estimates(torch.from_numpy(io["audio"]))
    assert ours.shape == official.shape
    assert rel_err(ours, official) <= NETWORK_RTOL


def test_official_inference_is_reproduced_with_norberts_eps():
    """The recipe's eval.separate (norbert Wiener filter, 1 iteration, whole track, scipy ISTFT)
    equals mssbook's STFT → network → :func:`wiener` → ISTFT when the regularisation is norbert's
    (machine epsilon of float64). Measured 1.1e-6 of the peak in float32; bound 1e-5.

    With mssbook's default ``eps = 1e-10`` (Open-Unmix's) the same pipeline differs by about 5 % of
    the peak on this fixture: the random network leaves many bins where all but one source are
    masked to zero, and there the √eps·I regularisation of the 2×2 mixture covariance decides.
    """
    model = conv.convert(FIXTURES / "stereo.pth")
    io = fixture("stereo")
    audio = torch.from_numpy(io["audio"][:1])
    official = torch.from_numpy(io["separated"]).permute(0, 2, 1)[None]  # (S, L, C) → (1, S, C, L)
    opts = model.separation_options()
    eps = float(np.finfo(np.float64).eps)
    with torch.no_grad():
        mix_stft = model.stft(audio)
        estimates = model(magnitude(mix_stft))
        sources = wiener(estimates, mix_stft, niter=opts["niter"], softmask=opts["softmask"],
                         residual=opts["residual"], wiener_win_len=opts["wiener_win_len"] or None, eps=eps)
        ours = model.istft(sources, length=audio.shape[-1])
        assert ours.shape == official.shape
        assert rel_err(ours, official) <= 1e-5
        # the eps is what matters: Open-Unmix's 1e-10 is measurably different here
        loose = wiener(estimates, mix_stft, niter=1, wiener_win_len=None, eps=1e-10)
        assert rel_err(model.istft(loose, length=audio.shape[-1]), official) > 1e-3
        # and the converted model's own separate() uses norbert's eps
        assert rel_err(model.separate(audio), official) <= 1e-5


def test_separation_defaults_are_the_recipes():
    model = conv.convert(FIXTURES / "stereo.pth")
    opts = model.separation_options()
    assert (opts["niter"], opts["softmask"], opts["residual"], opts["wiener_win_len"]) == (1, False, False, 0)
    for key, value in conv.SEPARATION.items():
        assert model.config[key] == value  # kept when the hub rebuilds the model with options
    with torch.no_grad():
        out = model.separate(torch.from_numpy(fixture("stereo")["audio"][:1]))
    assert out.shape == (1, 4, 2, 1024) and torch.isfinite(out).all()


def test_release():
    (release,) = conv.RELEASES
    assert (release.name, release.model, release.format) == ("xumx", "xumx", "asteroid")
    assert release.urls == ("https://zenodo.org/record/4704231/files/pretrained_xumx.pth?download=1",)
    assert release.files == ("pretrained_xumx.pth",)
    assert set(release.targets) == {"vocals", "drums", "bass", "other"}
    assert release.options == conv.SEPARATION
    assert ".pth" in conv.SUFFIXES


def test_bare_state_dict_and_folder(tmp_path):
    checkpoint = load_checkpoint("stereo")
    bare = tmp_path / "bare" / "pretrained_xumx.pth"
    bare.parent.mkdir()
    torch.save(checkpoint["state_dict"], bare)
    io = fixture("stereo")
    official = torch.from_numpy(io["masked"]).permute(2, 0, 3, 4, 1)
    model = conv.convert(bare.parent)  # a folder holding the file; no model_args: hop n_fft/4, 44.1 kHz
    assert model.n_hop == 64 and model.targets == ("bass", "drums", "vocals", "other")
    with torch.no_grad():
        ours = model(model.magnitudes(torch.from_numpy(io["audio"]), center=True))
    assert rel_err(ours, official) <= NETWORK_RTOL


def test_targets_reorder_but_not_subset():
    model = conv.convert(FIXTURES / "stereo.pth", targets=["vocals", "drums", "bass", "other"])
    assert model.targets == ("vocals", "drums", "bass", "other")
    io = fixture("stereo")
    official = torch.from_numpy(io["masked"]).permute(2, 0, 3, 4, 1)[:, [2, 1, 0, 3]]
    with torch.no_grad():
        ours = model(model.magnitudes(torch.from_numpy(io["audio"]), center=True))
    assert rel_err(ours, official) <= NETWORK_RTOL
    with pytest.raises(ConversionError, match="bridged"):
        conv.convert(FIXTURES / "stereo.pth", targets=["vocals"])
    with pytest.raises(ConversionError, match="xumx"):
        conv.convert(FIXTURES / "stereo.pth", model="umx")


def _save(tmp_path, checkpoint) -> Path:
    path = tmp_path / "broken_xumx.pth"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("key", ["layer_lstm.drums.weight_hh_l1_reverse", "layer_dec.vocals.dec.4.running_var",
                                 "mean_scale.output_scale_other", "layer_enc.bass.enc.0.weight"])
def test_missing_key_is_named(tmp_path, key):
    checkpoint = load_checkpoint("stereo")
    del checkpoint["state_dict"][key]
    with pytest.raises(ConversionError, match=f"missing key {key.replace('.', '[.]')}"):
        conv.convert(_save(tmp_path, checkpoint))


@pytest.mark.parametrize("key", ["layer_dec.drums.dec.3.weight", "layer_lstm.other.bias_ih_l0",
                                 "mean_scale.input_scale_vocals", "layer_enc.bass.enc.0.weight"])
def test_misshapen_key_is_named(tmp_path, key):
    checkpoint = load_checkpoint("stereo")
    checkpoint["state_dict"][key] = checkpoint["state_dict"][key][..., :-1]
    with pytest.raises(ConversionError, match=key.replace(".", "[.]")):
        conv.convert(_save(tmp_path, checkpoint))


def test_unknown_key_and_wrong_format(tmp_path):
    checkpoint = load_checkpoint("stereo")
    checkpoint["state_dict"]["layer_dec.bass.dec.5.weight"] = torch.zeros(3)
    with pytest.raises(ConversionError, match="no place .*layer_dec[.]bass[.]dec[.]5[.]weight"):
        conv.convert(_save(tmp_path, checkpoint))
    checkpoint = load_checkpoint("stereo")
    checkpoint["model_args"]["spec_power"] = 2
    with pytest.raises(ConversionError, match="spec_power"):
        conv.convert(_save(tmp_path, checkpoint))
    torch.save({"fc1.weight": torch.zeros(2, 2)}, tmp_path / "umx.pth")
    with pytest.raises(ConversionError, match="not an asteroid X-UMX"):
        conv.convert(tmp_path / "umx.pth")


@pytest.mark.skipif(not hasattr(torch.serialization, "safe_globals"), reason="torch < 2.5")
def test_loads_without_unpickling_warnings():
    """The checkpoint (with asteroid's ``infos``) loads through the weights-only unpickler."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conv.convert(FIXTURES / "stereo.pth")
