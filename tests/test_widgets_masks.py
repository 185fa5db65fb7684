"""The mask explorer: its state function against mssbook.oracles and mssbook.metrics, and the
widget driven through its controls exactly as a user's clicks would."""

import numpy as np
import pytest

from mssbook import metrics, oracles
from mssbook.errors import MSSBookError
from mssbook.widgets import EncodedAudio
from mssbook.widgets.masks import MaskExplorer, OracleSpectra, mask_explorer_state

SR = 8000
N_FFT, HOP = 512, 128  # small STFT: the whole file runs in a few seconds


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _song(seed=0, seconds=2.0):
    """Three stereo sources at 8 kHz: a vibrato tone panned left, noise bursts, a centred bass."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    f0 = 330 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    tone = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in (1, 2, 3)) * (0.6 + 0.4 * np.sin(2 * np.pi * t))
    bursts = rng.standard_normal((2, t.size)) * np.exp(-30 * (t % 0.25))
    bass = np.sin(2 * np.pi * 82 * t) + 0.3 * np.sin(2 * np.pi * 164 * t)
    sources = {
        "vocals": 0.3 * np.stack([tone, 0.5 * tone]),
        "drums": 0.2 * bursts,
        "bass": 0.3 * np.stack([bass, bass]),
    }
    sources = {k: v.astype(np.float32) for k, v in sources.items()}
    return sum(sources.values()).astype(np.float32), sources


@pytest.fixture(scope="module")
def song():
    return _song()


@pytest.fixture(scope="module")
def spectra(song):
    mixture, sources = song
    return OracleSpectra(mixture, sources, SR, N_FFT, HOP)


def _explorer(song, **kwargs):
    mixture, sources = song
    return MaskExplorer(mixture, sources, SR, n_fft=N_FFT, hop_length=HOP, max_freq=None, **kwargs)


# --- the state function --------------------------------------------------------------------------


@pytest.mark.parametrize("method, alpha", [("ibm", 1.0), ("ibm", 2.0), ("irm", 1.0), ("irm", 2.0)])
def test_masks_reproduce_the_oracles(song, spectra, method, alpha):
    mixture, sources = song
    oracle = oracles.ideal_binary_mask if method == "ibm" else oracles.ideal_ratio_mask
    expected = oracle(mixture, sources, alpha=alpha, n_fft=N_FFT, hop_length=HOP)
    for target in sources:
        state = mask_explorer_state(spectra, method, target, alpha=alpha, floor=0.0)
        assert state.estimate.shape == mixture.shape and state.estimate.dtype == np.float32
        assert state.mask.shape == spectra.mix_stft.shape
        np.testing.assert_allclose(state.estimate, expected[target], rtol=0, atol=1e-6)


def test_ibm_is_binary_and_follows_theta(spectra):
    low, high = (mask_explorer_state(spectra, "ibm", "vocals", alpha=1.0, theta=t).mask for t in (0.3, 0.7))
    for mask in (low, high):
        assert set(np.unique(mask)) == {0.0, 1.0}
    assert np.all(low >= high) and low.sum() > high.sum()  # a lower threshold keeps more bins
    loudest = mask_explorer_state(spectra, "ibm", "vocals", theta=None).mask  # each bin to one source
    total = sum(mask_explorer_state(spectra, "ibm", t, theta=None).mask for t in spectra.names)
    assert set(np.unique(loudest)) == {0.0, 1.0} and np.all(total == 1)


def test_irm_alpha_changes_the_mask(spectra):
    one, two = (mask_explorer_state(spectra, "irm", "vocals", alpha=a).mask for a in (1.0, 2.0))
    assert 0 <= one.min() and two.max() <= 1 + 1e-6
    assert np.abs(one - two).max() > 0.1
    # a larger exponent pushes the mask towards 0 and 1 (more binary)
    assert np.mean(np.minimum(two, 1 - two)) < np.mean(np.minimum(one, 1 - one))
    total = sum(mask_explorer_state(spectra, "irm", t, alpha=2.0).mask for t in spectra.names)
    np.testing.assert_allclose(total[spectra.mix_magnitude > 1e-3], 1.0, atol=1e-5)


@pytest.mark.parametrize("method", ["ibm", "irm", "wiener"])
def test_floor_raises_the_mask(spectra, method):
    bare = mask_explorer_state(spectra, method, "vocals", floor=0.0)
    floored = mask_explorer_state(spectra, method, "vocals", floor=0.2)
    assert bare.mask.min() < 0.2 and floored.mask.min() >= 0.2 - 1e-7
    assert not np.allclose(bare.estimate, floored.estimate)
    if method == "ibm":
        assert set(np.unique(floored.mask)) == {np.float32(0.2), 1.0}
    # the floor lets more of the other sources through: more energy in the estimate
    assert np.square(floored.estimate).sum() > np.square(bare.estimate).sum()


def test_wiener(song, spectra):
    mixture, _ = song
    soft = mask_explorer_state(spectra, "wiener", "vocals", alpha=2.0, niter=0)
    irm = mask_explorer_state(spectra, "irm", "vocals", alpha=2.0)
    np.testing.assert_allclose(soft.estimate, irm.estimate, atol=1e-5)  # niter=0 is the soft mask
    em = mask_explorer_state(spectra, "wiener", "vocals", alpha=2.0, niter=2)
    assert np.abs(em.estimate - soft.estimate).max() > 1e-3 and np.abs(em.mask - soft.mask).max() > 1e-2
    # the multichannel filter's estimates add up to the mixture (up to its regularisation)
    total = sum(mask_explorer_state(spectra, "wiener", t, niter=1).estimate for t in spectra.names)
    assert metrics.usdr({"m": mixture}, {"m": total})["m"] > 50
    # one source alone: EM shares the mixture with the residual instead of failing
    single = OracleSpectra(mixture, {"vocals": song[1]["vocals"]}, SR, N_FFT, HOP)
    assert np.isfinite(mask_explorer_state(single, "wiener", niter=1).estimate).all()


def test_metrics_are_mssbooks(song, spectra):
    _, sources = song
    state = mask_explorer_state(spectra, "irm", "drums", alpha=1.0)
    ref, est = {"drums": sources["drums"]}, {"drums": state.estimate}
    assert state.metrics == {
        "cSDR": pytest.approx(metrics.csdr(ref, est, SR)["drums"], abs=1e-9),
        "uSDR": pytest.approx(metrics.usdr(ref, est)["drums"], abs=1e-9),
        "SI-SDR": pytest.approx(metrics.si_sdr(ref, est)["drums"], abs=1e-9),
    }
    assert 3 < state.metrics["uSDR"] < 60  # a real separation, not the mixture nor a copy


def test_bad_settings_are_refused(spectra):
    with pytest.raises(MSSBookError, match="method"):
        mask_explorer_state(spectra, "nmf")
    with pytest.raises(MSSBookError, match="target"):
        mask_explorer_state(spectra, "irm", "guitar")
    with pytest.raises(MSSBookError, match="floor"):
        mask_explorer_state(spectra, "irm", floor=1.5)


# --- the widget ----------------------------------------------------------------------------------


def test_widget_follows_its_controls(song, spectra):
    pytest.importorskip("ipywidgets")
    mixture, sources = song
    ex = _explorer(song, static=False, codec="wav")
    assert ex.widget is not None and ex.state.method == "irm" and ex.state.target == "vocals"
    assert "mssbook-mask-explorer" in ex.widget._dom_classes and "mssbook-mask-alpha" in ex.alpha._dom_classes
    assert ex.theta.disabled and ex.niter.disabled and not ex.alpha.disabled  # IRM: no θ, no EM
    before_audio, before_png = bytes(ex.audio.value), bytes(ex.image.value)
    assert before_png.startswith(b"\x89PNG") and ex.audio.format == "wav"

    ex.method.value = "ibm"  # a click on "IBM"
    assert ex.state.method == "ibm" and set(np.unique(ex.mask)) == {0.0, 1.0}
    assert not ex.theta.disabled and ex.niter.disabled
    assert bytes(ex.audio.value) != before_audio and bytes(ex.image.value) != before_png
    expected = oracles.ideal_binary_mask(mixture, sources, alpha=ex.alpha.value, n_fft=N_FFT, hop_length=HOP)
    np.testing.assert_allclose(ex.estimate, expected["vocals"], atol=1e-6)
    ones = ex.mask.sum()
    ex.theta.value = 0.25
    assert ex.mask.sum() > ones and ex.params["theta"] == 0.25

    ex.method.value = "wiener"
    assert ex.theta.disabled and not ex.niter.disabled
    soft = ex.estimate
    ex.niter.value = 2
    assert ex.state.niter == 2 and np.abs(ex.estimate - soft).max() > 1e-3
    ex.floor.value = 0.3
    assert ex.mask.min() >= 0.3 - 1e-7
    ex.target.value = "drums"
    assert ex.state.target == "drums" and ex.update_seconds > 0
    # what is shown is what the state function computes, and what the player plays
    state = mask_explorer_state(spectra, "wiener", "drums", alpha=ex.alpha.value, floor=0.3, niter=2)
    np.testing.assert_allclose(ex.estimate, state.estimate, atol=1e-6)
    assert f"{state.metrics['uSDR']:.2f}" in ex.table.value and "drums" in ex.table.value
    played = EncodedAudio(bytes(ex.audio.value), ex.audio.format, SR).decode()
    np.testing.assert_allclose(played, state.estimate * ex.scale, atol=2e-4)


def test_update_sets_the_controls_and_recomputes_once(song):
    pytest.importorskip("ipywidgets")
    ex = _explorer(song, static=False)
    calls = []
    compute = ex._recompute
    ex._recompute = lambda params: (calls.append(params), compute(params))
    ex.update(method="ibm", alpha=2.0, theta=0.4)
    assert len(calls) == 1 and ex.method.value == "ibm" and ex.alpha.value == 2.0 and ex.theta.value == 0.4
    assert ex.state.alpha == 2.0 and ex.state.theta == 0.4
    with pytest.raises(TypeError, match="unknown setting"):
        ex.update(gain=2)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_static_mode(song, monkeypatch, how):
    if how == "environment":
        monkeypatch.setenv("MSSBOOK_WIDGETS", "static")
    ex = _explorer(song, static=True if how == "argument" else None)
    assert ex.widget is None and ex.method is None and ex.audio is None
    assert ex.state.method == "irm" and ex.estimate.shape == song[0].shape  # computed all the same
    html = ex.static_html()
    assert "<img" in html and html.count("<audio") == 1 and "cSDR" in html and "mixture (MIX)" in html
    assert f"{ex.metrics['cSDR']:.2f}" in html
    ex.update(method="ibm", floor=0.1)
    assert ex.state.method == "ibm" and ex.mask.min() == pytest.approx(0.1) and "IBM" in ex.static_html()
    assert ex._repr_mimebundle_()["text/html"].count("<img") == 1


def test_model_estimates_are_scored_next_to_the_oracle(song):
    mixture, sources = song
    rng = np.random.default_rng(1)
    noisy = sources["vocals"] + 0.05 * rng.standard_normal(mixture.shape).astype(np.float32)
    ex = _explorer(song, static=True, model_estimate={"umx": noisy, "silly": mixture})
    ref, est = {"v": sources["vocals"]}, {"v": noisy}
    assert ex.model_metrics["umx"]["uSDR"] == pytest.approx(metrics.usdr(ref, est)["v"])
    html = ex.static_html()
    assert "model: umx" in html and "model: silly" in html and html.count("<audio") == 3
    assert f"{ex.model_metrics['umx']['SI-SDR']:.2f}" in html
    ex.update(target="drums")  # the models estimated the vocals: not shown for the drums
    assert "model: umx" not in ex.static_html()
    single = _explorer(song, static=True, model_estimate=noisy[:, :-10])  # one array, a bit short
    assert "model: model" in single.static_html()


def test_players_share_one_fixed_scale(song):
    mixture, sources = song
    loud = {k: 4 * v for k, v in sources.items()}
    ex = _explorer((4 * mixture, loud), static=True, codec="wav", method="ibm")
    assert ex.scale == pytest.approx(1 / np.abs(4 * mixture).max())  # the mixture's peak, not the clip's
    np.testing.assert_allclose(ex.encoded.decode(), ex.estimate * ex.scale, atol=2e-4)
    ex.update(floor=0.5)
    assert ex.scale == pytest.approx(1 / np.abs(4 * mixture).max())
    np.testing.assert_allclose(ex.encoded.decode(), ex.estimate * ex.scale, atol=2e-4)
