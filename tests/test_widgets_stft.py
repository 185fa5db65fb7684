"""The STFT explorer: numbers that follow n_fft/hop/sr exactly, NOLA/COLA, and a widget that reacts."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from mssbook.signal.transforms import STFT, _window

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

from mssbook.widgets import stft as stft_module  # noqa: E402
from mssbook.widgets.stft import STFTExplorer, stft_view  # noqa: E402

SR = 16000


def _noise(seconds=1.5, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((channels, int(SR * seconds)))).astype(np.float32)


def _explorer(audio=None, **kwargs):
    pytest.importorskip("ipywidgets")
    return STFTExplorer(_noise() if audio is None else audio, SR, static=False, **kwargs)


def test_windows_in_the_signal_layer():
    assert torch.equal(_window("blackman", 512), torch.blackman_window(512))
    assert torch.equal(_window("rectangular", 64), torch.ones(64))
    assert torch.equal(_window("boxcar", 64), torch.ones(64))
    assert torch.equal(_window("hann", 256), torch.hann_window(256))  # unchanged
    with pytest.raises(ValueError, match="unknown window"):
        _window("kaiser", 64)


def test_view_numbers_follow_n_fft_hop_and_sr():
    audio = _noise()
    v = stft_view(audio, SR, 1024, 256)
    assert v.freq_resolution_hz == SR / 1024
    assert v.window_seconds == 1024 / SR and v.hop_seconds == 256 / SR
    assert v.overlap == 0.75
    assert v.n_bins == 513 and v.n_frames == 1 + audio.shape[-1] // 256
    assert v.db.shape == (513, v.n_frames)
    assert v.frame == v.n_frames // 2
    assert v.frame_span == (v.frame * 256 - 512, v.frame * 256 + 512)
    # it is the library's STFT of the channel average, in dB re full scale
    mono = torch.from_numpy(audio.mean(axis=0))
    ref = STFT(1024, 256)(mono).abs().numpy() / 256  # sum of a periodic Hann of 1024 is 512
    np.testing.assert_allclose(v.db, np.maximum(20 * np.log10(ref + 1e-10), -80), atol=1e-3)
    per_channel = stft_view(audio, SR, 1024, 256, per_channel=True)
    assert per_channel.db.shape == (2, 513, v.n_frames)


@pytest.mark.parametrize("window", ["hann", "hamming", "blackman", "rectangular"])
def test_a_pure_tone_peaks_at_its_bin_near_0_db(window):
    n_fft, k = 1024, 64  # bin 64 of 1024 at 16 kHz is 1000 Hz
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * k * SR / n_fft * t).astype(np.float32)
    v = stft_view(tone, SR, n_fft, 256, window)
    inner = v.db[:, 4:-4]  # away from the reflected edges
    assert np.all(inner.argmax(axis=0) == k)
    assert inner.max(axis=0) == pytest.approx(np.zeros(inner.shape[1]), abs=0.05)  # full scale: 0 dB


def test_reconstruction_is_exact_where_nola_holds_and_cola_ripple_is_computed():
    audio = _noise(channels=1)
    quarter = stft_view(audio, SR, 1024, 256, "hann")
    assert quarter.nola and quarter.reconstruction_db < -100
    assert quarter.cola_ripple < 1e-6 and quarter.wola_ripple < 1e-6  # Hann at 75 % overlap is flat

    half = stft_view(audio, SR, 1024, 512, "hann")
    assert half.cola_ripple < 1e-6  # Σw flat at hop n_fft/2 ...
    assert half.wola_ripple == pytest.approx(2 / 3, rel=1e-4)  # ... but Σw² = 0.75 ± 0.25
    assert half.reconstruction_db < -100  # still exact: the ISTFT divides by Σw²

    third = stft_view(audio, SR, 1024, 341, "hann")  # 1024 / 3 is not a whole number of samples
    assert 1e-4 < third.cola_ripple < 1e-2 and third.reconstruction_db < -100
    exact_third = stft_view(audio, SR, 768, 256, "hann")  # 768 / 3 is
    assert exact_third.cola_ripple < 1e-6 and exact_third.wola_ripple < 1e-6

    blackman = stft_view(audio, SR, 1024, 768, "blackman")  # overlapping, uneven, invertible
    assert blackman.nola and blackman.wola_ripple > 1 and blackman.reconstruction_db < -100


def test_no_overlap_breaks_nola_for_hann_but_not_hamming():
    audio = _noise(channels=1)
    hann = stft_view(audio, SR, 512, 512, "hann")  # Hann is 0 where the windows touch
    assert not hann.nola and math.isnan(hann.reconstruction_db) and hann.nola_margin == 0
    assert "NOLA fails" in dict(hann.summary_rows())["STFT → ISTFT error"]
    hamming = stft_view(audio, SR, 512, 512, "hamming")  # never 0: invertible without overlap
    assert hamming.nola and hamming.reconstruction_db < -100 and hamming.cola_ripple > 1


def test_bad_settings_are_refused_clearly():
    audio = _noise(seconds=0.1)
    with pytest.raises(ValueError, match="hop_length"):
        stft_view(audio, SR, 256, 512)
    with pytest.raises(ValueError, match="too short"):
        stft_view(audio, SR, 8192, 1024)
    with pytest.raises(ValueError, match="out of range"):
        stft_view(audio, SR, 256, 64, frame=10_000)
    with pytest.raises(ValueError, match="unknown window"):
        stft_view(audio, SR, 256, 64, window="kaiser")


def test_sliders_drive_the_view():
    explorer = _explorer()
    n = explorer.audio.shape[-1]
    assert explorer.view.n_fft == 2048 and explorer.view.hop_length == 512
    first_png = explorer.png
    assert explorer.image.value == first_png and first_png.startswith(b"\x89PNG")

    explorer.n_fft.value = 1024  # the hop stays a quarter of the window
    v = explorer.view
    assert (v.n_fft, v.hop_length) == (1024, 256)
    assert v.db.shape == (513, 1 + n // 256)
    assert v.freq_resolution_hz == SR / 1024 and v.window_seconds == 1024 / SR
    assert explorer.frame.max == v.n_frames - 1
    assert explorer.png != first_png and explorer.image.value == explorer.png
    assert f"{SR / 1024:.2f} Hz per bin" in explorer.text.value
    assert f"{v.n_frames} × 513" in explorer.text.value

    explorer.hop.value = Fraction(1, 2)
    assert explorer.view.hop_length == 512 and explorer.view.db.shape == (513, 1 + n // 512)
    assert explorer.view.wola_ripple == pytest.approx(2 / 3, rel=1e-4)
    explorer.hop.value = 1 / 3  # floats are accepted
    assert explorer.view.hop_length == round(1024 / 3) and explorer.view.cola_ripple > 1e-4

    explorer.window.value = "hamming"
    assert explorer.view.window == "hamming" and "hamming" in explorer.text.value

    explorer.hop.value = 1
    assert explorer.view.nola and explorer.view.reconstruction_db < -100  # Hamming: still invertible
    explorer.window.value = "hann"
    assert not explorer.view.nola and "NOLA fails" in explorer.text.value  # said, not crashed


def test_frame_slider_moves_the_highlight():
    explorer = _explorer(n_fft=1024, hop_length=256)
    n = explorer.audio.shape[-1]
    explorer.frame.value = 10
    assert explorer.view.frame == 10 and explorer.view.frame_span == (10 * 256 - 512, 10 * 256 + 512)
    before = explorer.png
    explorer.frame.value = 40
    assert explorer.view.frame_span == (40 * 256 - 512, 40 * 256 + 512)
    assert explorer.png != before and "40: samples 9728…10751" in explorer.text.value
    explorer.n_fft.value = 2048  # the chosen frame stays at the same time (hop 256 → 512)
    assert explorer.view.frame == 20 and explorer.frame.value == 20 and explorer.frame.max == n // 512
    explorer.n_fft.value = 1024  # and back: the slider's range grows again
    assert explorer.view.frame == 40 and explorer.frame.value == 40 and explorer.frame.max == n // 256
    assert explorer.update_seconds > 0


def test_static_mode_builds_no_widget(monkeypatch):
    def no_ipywidgets():
        raise AssertionError("static mode must not touch ipywidgets")

    monkeypatch.setattr(stft_module, "ipywidgets", no_ipywidgets)
    monkeypatch.setenv("MSSBOOK_WIDGETS", "static")
    explorer = STFTExplorer(_noise(), SR, n_fft=512, hop_length=128, window="blackman", frame=5, max_freq=4000)
    assert explorer.widget is None and explorer.n_fft is None and explorer.image is None
    assert explorer.view.frame == 5 and explorer.view.window == "blackman"
    html = explorer.static_html()
    assert "<img" in html and "data:image/png;base64," in html and "31.25 Hz per bin" in html
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/html"] == html and "application/vnd.jupyter.widget-view+json" not in bundle


def test_interactive_bundle_offers_widget_and_fallback():
    explorer = _explorer(n_fft=512, hop_length=128)
    assert "mssbook-stft-explorer" in explorer.widget._dom_classes
    assert not any(type(w).__name__ == "Output" for w in explorer.widget.children)
    bundle = explorer._repr_mimebundle_()
    assert "<img" in bundle["text/html"] and "application/vnd.jupyter.widget-view+json" in bundle
