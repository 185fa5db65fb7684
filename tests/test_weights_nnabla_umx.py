"""Sony's nnabla Open-Unmix / X-UMX weights → mssbook, checked against the official code's outputs.

The fixtures (``tests/fixtures/official/{umx,xumx}-nnabla/``) were made by
``tools/official_nnabla_umx.py``: the official ``sony/ai-research-code/x-umx`` graphs of a reduced
configuration (n_fft 256, hidden size 8, three bidirectional LSTM layers, 93 input bins) with seeded
random parameters saved by ``nn.save_parameters`` as the releases are, their forward pass in
inference mode, and the official ``test.separate`` (nnabla STFT, norbert Wiener filter, scipy
inverse STFT) on a stereo noise excerpt.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

h5py = pytest.importorskip("h5py")

from mssbook.models.umx import UMX  # noqa: E402
from mssbook.models.xumx import XUMX  # noqa: E402
from mssbook.signal.transforms import magnitude  # noqa: E402
from mssbook.signal.wiener import wiener  # noqa: E402
from mssbook.weights import ConversionError, nnabla, nnabla_umx  # noqa: E402
from mssbook.weights.common import read_h5  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "official"
UMX_DIR = FIXTURES / "umx-nnabla"
XUMX_FILE = FIXTURES / "xumx-nnabla" / "x-umx.h5"
NETWORK_RTOL = 1e-5


def official(family: str) -> dict:
    data = np.load(FIXTURES / f"{family}-nnabla" / "official.npz")
    return {key: data[key] for key in data.files}


def rel_error(actual: torch.Tensor, expected: np.ndarray) -> float:
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    return float((actual - expected).abs().max() / expected.abs().max())


def mix_spec(ref: dict) -> torch.Tensor:
    """The official magnitude spectrogram (T, C, F) as mssbook's network input (1, C, F, T)."""
    return torch.from_numpy(ref["mix_spec"]).permute(1, 2, 0)[None]


def network_estimates(model, spec: torch.Tensor, targets) -> torch.Tensor:
    """(S, C, F, T) magnitudes in the order ``targets``."""
    with torch.no_grad():
        if isinstance(model, XUMX):
            out = model(spec)[0]
            return torch.stack([out[model.targets.index(t)] for t in targets])
        return torch.stack([model.target_models[t](spec)[0] for t in targets])


@pytest.fixture(scope="module")
def umx():
    return nnabla.convert(UMX_DIR)


@pytest.fixture(scope="module")
def xumx():
    return nnabla.convert(XUMX_FILE)


def test_family_of():
    assert nnabla_umx.family_of(read_h5(UMX_DIR / "vocals.h5")) == "umx"
    assert nnabla_umx.family_of(read_h5(XUMX_FILE)) == "xumx"
    assert nnabla.family_of(read_h5(XUMX_FILE)) == "xumx"
    scoped = {f"vocals/{k}": v for k, v in read_h5(UMX_DIR / "vocals.h5").items()}  # saved under a scope
    assert nnabla_umx.family_of(scoped) == "umx"
    with pytest.raises(ConversionError, match="not an nnabla Open-Unmix or X-UMX"):
        nnabla_umx.family_of({"conv/W": np.zeros((1, 1))})


def test_sizes_read_from_the_shapes(umx, xumx):
    for model, cls in ((umx, UMX), (xumx, XUMX)):
        assert isinstance(model, cls) and not model.training
        assert (model.n_fft, model.n_hop, model.max_bin, model.nb_channels) == (256, 64, 93, 2)
        net = model.target_models["vocals"]
        assert (net.hidden_size, net.lstm.num_layers, net.lstm.bidirectional) == (8, 3, True)
    assert umx.targets == ("vocals", "drums", "bass", "other") == xumx.targets


@pytest.mark.parametrize("family", ["umx", "xumx"])
def test_network_equals_official(family, umx, xumx):
    model, ref = (umx if family == "umx" else xumx), official(family)
    targets = [str(t) for t in ref["targets"]]
    estimates = network_estimates(model, mix_spec(ref), targets)
    expected = ref["estimates"].transpose(0, 2, 3, 1)  # (S, T, C, F) → (S, C, F, T)
    assert rel_error(estimates, expected) <= NETWORK_RTOL


def test_stft_equals_official(umx):
    ref = official("umx")
    spec = magnitude(umx.stft(torch.from_numpy(ref["audio"])[None]))
    assert rel_error(spec, mix_spec(ref).numpy()) <= NETWORK_RTOL


@pytest.mark.parametrize("family", ["umx", "xumx"])
def test_separation_equals_official(family, umx, xumx):
    """Official ``test.separate``: STFT → networks → norbert Wiener (1 iteration, all frames) → ISTFT.

    norbert regularises with float64's machine epsilon where Open-Unmix uses 1e-10; the converted
    model takes norbert's (``wiener_eps``), and ``separate()`` with its defaults reproduces the
    official output to float32 precision. With Open-Unmix's 1e-10 it would be off by up to 1 % of
    the peak here (the random networks' ReLU masks zero many bins, where the epsilon decides), and a
    wrong default (niter 0 or 2, soft mask, 300-frame-like blocks) by 13 % or more.
    """
    model, ref = (umx if family == "umx" else xumx), official(family)
    targets = [str(t) for t in ref["targets"]]
    audio = torch.from_numpy(ref["audio"])[None]
    expected = ref["separated"]  # (S, C, L'): scipy's istft returns (frames - 1) * hop samples
    length = expected.shape[-1]
    with torch.no_grad():
        mix_stft = model.stft(audio)[0]
        estimates = network_estimates(model, magnitude(mix_stft)[None], targets)
        sources = wiener(estimates, mix_stft, niter=1, wiener_win_len=None, eps=float(np.finfo(np.float64).eps))
        exact = model.istft(sources, length=audio.shape[-1])[..., :length]
        assert rel_error(exact, expected) <= NETWORK_RTOL

        assert {k: model.config[k] for k in nnabla_umx.OPTIONS} == nnabla_umx.OPTIONS
        separated = model.separate(audio)[0]
        assert model.output_names() == list(model.targets)
        separated = torch.stack([separated[model.targets.index(t)] for t in targets])[..., :length]
        assert rel_error(separated, expected) <= NETWORK_RTOL


def test_single_umx_target_gets_the_residual():
    model = nnabla_umx.convert_umx(UMX_DIR / "vocals.h5")
    assert model.targets == ("vocals",) and model.residual


def _edited_copy(src: Path, dst: Path, key: str, value=None) -> Path:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        del f[key]
        if value is not None:
            f[key] = value
    return dst


def test_missing_or_misshapen_key_names_it(tmp_path):
    folder = tmp_path / "umx"
    folder.mkdir()
    _edited_copy(UMX_DIR / "vocals.h5", folder / "vocals.h5", "fc2/affine/W")
    with pytest.raises(ConversionError, match="fc2/affine/W"):
        nnabla.convert(folder)
    wrong = np.zeros((2, 2, 4, 4, 11), np.float32)
    _edited_copy(UMX_DIR / "vocals.h5", folder / "vocals.h5", "lstm/lstm/weight", wrong)
    with pytest.raises(ConversionError, match="lstm/lstm/weight has shape"):
        nnabla.convert(folder)
    bad = _edited_copy(XUMX_FILE, tmp_path / "x-umx.h5", "fc3_drums/bn/var", np.ones((1, 1, 257), np.float32))
    with pytest.raises(ConversionError, match="fc3_drums/bn/var"):
        nnabla.convert(bad)


def test_wrong_family_and_partial_xumx(tmp_path):
    misnamed = shutil.copy(XUMX_FILE, tmp_path / "vocals.h5")  # an X-UMX file named like a UMX one
    with pytest.raises(ConversionError, match="X-UMX parameters"):
        nnabla_umx.convert_umx(misnamed)
    with pytest.raises(ConversionError, match="four branches"):
        nnabla_umx.convert_xumx(XUMX_FILE, targets=["vocals"])
    reordered = nnabla_umx.convert_xumx(XUMX_FILE, targets=list(nnabla_umx.XUMX_BRANCHES))
    assert reordered.targets == nnabla_umx.XUMX_BRANCHES


def test_releases():
    names = {r.name: r for r in nnabla_umx.RELEASES}
    assert set(names) == {"umxhq-nnabla", "umx-nnabla", "xumx-nnabla"}
    assert all(r.format == "nnabla" and r.urls[0].startswith("https://nnabla.org/") for r in names.values())
    assert names["xumx-nnabla"].model == "xumx" and names["umxhq-nnabla"].model == "umx"
    assert names["umxhq-nnabla"].options == nnabla_umx.OPTIONS
