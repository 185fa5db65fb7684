"""Official NNabla D3Net weights → mssbook's D3Net, checked against Sony's own code.

Fixtures (``tests/fixtures/official/d3net/``, made by ``tools/official_nnabla_d3net.py`` with
sony/ai-research-code at cfe96dfe): a reduced vocals + bass configuration with seeded random
parameters saved by ``nn.save_parameters`` (zipped like ``d3net-mss.zip``), the official network
output for a fixed input, and the official separation (``separate.py``'s steps) of a deterministic
signal. No NNabla needed here.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

h5py = pytest.importorskip("h5py")

from mssbook.weights import nnabla  # noqa: E402
from mssbook.weights.common import ConversionError  # noqa: E402
from mssbook.weights.nnabla_d3net import RELEASES, convert_d3net  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "official" / "d3net"
META = json.loads((FIXTURES / "official_d3net.json").read_text())


def test_signal(n_samples: int) -> np.ndarray:
    """(n_samples, 2) float32: the signal of ``tools/official_nnabla_d3net.py`` (same arithmetic)."""
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


test_signal.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("d3net-mss")
    with zipfile.ZipFile(FIXTURES / "d3net-mss-reduced.zip") as zf:
        zf.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def official() -> dict:
    with np.load(FIXTURES / "official_d3net.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def model(release_dir):
    return nnabla.convert(release_dir)


def _relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(estimate - reference).max() / np.abs(reference).max())


def test_configuration_read_from_shapes(model):
    assert model.targets == ("vocals", "bass")
    assert (model.n_fft, model.n_hop, model.sample_rate) == (4096, 1024, 44100)
    reduced = META["reduced"]
    for target in model.targets:
        net = model.target_models[target]
        assert net.valid_bins == reduced["valid_signal_idx"]
        assert net.edges == [0, *META["band_split_idxs"][target], reduced["valid_signal_idx"]]
        assert [init.out_channels for init in net.band_init] == reduced["num_init_features"]
        assert [len(unet.down) for unet in net.band_nets] == [(len(k) - 1) // 2 for k in reduced["dens_k"]]
        assert net.full_net.out_channels == reduced["f_dens_k"][-1]
        assert isinstance(net.band_match[1], torch.nn.Sequential)  # band 1 ends with 2 < 3 channels
        # the official test patches (configs/<target>.yaml: test_patch_len, out_shift)
        assert model.patches[target] == tuple(META["patches"][target])
    assert model.patches == {"vocals": (256, 128), "bass": (384, 192)}
    assert not model.training


@pytest.mark.parametrize("target", ["vocals", "bass"])
def test_network_output_equals_official(model, official, target):
    x = official["net_input"].astype(np.float32)  # (1, T, C, F), official layout
    with torch.no_grad():
        y = model.target_models[target](torch.from_numpy(x).permute(0, 2, 3, 1))  # (1, C, F, T)
    y = y.permute(0, 3, 1, 2).numpy()
    reference = official[f"net_output_{target}"]  # the processed bins; above them the input is copied
    valid = reference.shape[-1]
    assert _relative_error(y[..., :valid], reference) <= 1e-5
    np.testing.assert_array_equal(y[..., valid:], x[..., valid:])


@pytest.fixture(scope="module")
def signal() -> torch.Tensor:
    """The deterministic stereo test signal, (1, 2, L)."""
    return torch.from_numpy(test_signal((META["signal_frames"] - 1) * 1024).T.copy())[None]


def test_patches_and_channel_swap_match_official(model, official, signal):
    """Each target's magnitude estimate (patches, overlap-add, channel-swap average) against
    ``util.model_separate``: bound 5e-5 of the peak, since mssbook's torch STFT and the official
    librosa STFT differ by ~1e-7 of the peak, which the networks carry through (measured 3.4e-6 and
    3.3e-6). Without the channel swap: 0.98; bass patches 256/128: 0.23; vocals hop 64: 0.18.
    """
    with torch.no_grad():
        magnitude = model.stft(signal).abs()  # (1, C, F, T)
        for target in model.targets:
            estimate = model.estimate(magnitude, target)[0].permute(2, 0, 1).numpy()  # (T, C, F)
            reference = official[f"estimate_{target}"]  # (T, C, processed bins / bin_stride)
            valid = model.target_models[target].valid_bins
            assert _relative_error(estimate[..., :valid:META["bin_stride"]], reference) <= 5e-5, target


def test_separation_matches_official_inference(model, official, signal):
    """librosa STFT → patches + channel swap → one-shot MWF → ISTFT, against ``separate.py``'s steps.

    Bound: 2e-2 of the peak. The magnitude estimates agree to ~5e-6 (test above); the rest is the
    Wiener filter's regularisation: mssbook's (Open-Unmix's) adds √eps·I to the mixture covariance
    after scaling each block's peak to 10, ``filter.apply_mwf`` floors each PSD at 1e-10 of its
    maximum. Both agree to ~1e-6 where every source's estimate is well above zero, but where one
    estimate is exactly zero (the ReLU; 8 % of the fixture's bass bins) next to an ill-conditioned
    spatial covariance of the other, the regularisations split the mixture differently. Measured:
    3.2e-3 (vocals) and 8.9e-3 (bass) of the peak. Wrong separation settings give more than 4e-2:
    no channel swap 0.17 / 0.48, Wiener blocks of 64 frames 0.043 / 0.12, bass patches 256/128
    0.13, no Wiener iteration 1.4 / 4.3. (With ``wiener_eps`` at float64's epsilon the errors drop
    to ~3e-5, but identical channels then give NaN: see the next test.)
    """
    with torch.no_grad():
        separated = model.separate(signal)[0].numpy()  # (S, C, L)
    stride = META["sample_stride"]
    for index, target in enumerate(model.targets):
        reference = official[f"separated_{target}"]  # (L / stride, C)
        estimate = separated[index].T[::stride]
        assert estimate.shape == reference.shape
        assert _relative_error(estimate, reference) <= 2e-2, target


def test_identical_channels_stay_finite(model, signal):
    """A mono file duplicated to stereo (as ``util.generate_data`` does) must not break the Wiener
    filter: its spatial covariances are rank one, which a tiny ``wiener_eps`` turns into NaN."""
    mono = signal[:, :1].repeat(1, 2, 1)
    with torch.no_grad():
        separated = model.separate(mono)
    assert torch.isfinite(separated).all()


def test_single_file_and_subset(release_dir, official):
    single = convert_d3net(release_dir / "bass.h5")
    assert single.targets == ("bass",)
    subset = nnabla.convert(release_dir, targets=["vocals"])
    assert subset.targets == ("vocals",)
    x = torch.from_numpy(official["net_input"].astype(np.float32)).permute(0, 2, 3, 1)
    with torch.no_grad():
        y = subset.target_models["vocals"](x).permute(0, 3, 1, 2).numpy()
    valid = official["net_output_vocals"].shape[-1]
    assert _relative_error(y[..., :valid], official["net_output_vocals"]) <= 1e-5


def test_release_zip_through_the_hub():
    from mssbook.hub import convert_source

    converted = convert_source(FIXTURES / "d3net-mss-reduced.zip")
    assert converted.targets == ("vocals", "bass") and converted.patches["bass"] == (384, 192)


def test_yaml_beside_the_file_sets_the_patches(release_dir, tmp_path):
    (tmp_path / "vocals.h5").write_bytes((release_dir / "vocals.h5").read_bytes())
    (tmp_path / "vocals.yaml").write_text("band_split_idxs: [256]\ntest_patch_len: 128\nout_shift: 64\n")
    assert convert_d3net(tmp_path).patches["vocals"] == (128, 64)


def _copy_h5(src: Path, dst: Path, drop: str | None = None, reshape: str | None = None) -> None:
    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name != drop:
                data = obj[()]
                if name == reshape:
                    data = data[:-1]
                fout.create_dataset(name, data=data)
        fin.visititems(visit)


def test_missing_key_is_named(release_dir, tmp_path):
    key = "vocals/dense_full/us_layers/upsample1/upsample/transconv/deconv/b"
    _copy_h5(release_dir / "vocals.h5", tmp_path / "vocals.h5", drop=key)
    with pytest.raises(ConversionError, match="full_net.upsample.1.conv.bias"):
        nnabla.convert(tmp_path / "vocals.h5")


def test_misshapen_key_is_named(release_dir, tmp_path):
    key = "vocals/out_gate/conv_filt/conv/conv/W"
    _copy_h5(release_dir / "vocals.h5", tmp_path / "vocals.h5", reshape=key)
    with pytest.raises(ConversionError, match="filter_conv.weight"):
        nnabla.convert(tmp_path / "vocals.h5")


def test_missing_structural_key_is_named(release_dir, tmp_path):
    key = "vocals/features_init_full/conv/W"
    _copy_h5(release_dir / "vocals.h5", tmp_path / "vocals.h5", drop=key)
    with pytest.raises(ConversionError, match="features_init_full/conv/W"):
        nnabla.convert(tmp_path / "vocals.h5")


def test_release_entry():
    (release,) = RELEASES
    assert release.name == "d3net" and release.model == "d3net" and release.format == "nnabla"
    assert release.urls == ("https://nnabla.org/pretrained-models/ai-research-code/d3net/mss/d3net-mss.zip",)
    assert release.files == ("vocals.h5", "drums.h5", "bass.h5", "other.h5")
    assert set(release.targets) == {"vocals", "drums", "bass", "other"}
