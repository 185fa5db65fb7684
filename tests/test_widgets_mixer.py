"""The stem mixer, driven as a user's clicks would: set a fader's value, toggle mute or solo."""

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from mssbook.widgets import StemMixer, encode_audio, mix_stems  # noqa: E402
from mssbook.widgets.mixer import audible_stems  # noqa: E402

SR = 16000
NAMES = ("vocals", "drums", "bass", "other")


def _stems(seed=0, seconds=0.5, scale=1.0):
    rng = np.random.default_rng(seed)
    n = int(SR * seconds)
    return {name: (scale * 0.1 * rng.standard_normal((2, n))).astype(np.float32) for name in NAMES}


def _heard(mixer) -> np.ndarray:
    """What the audio element holds, decoded (WAV: exact up to 16-bit quantisation)."""
    return encode_audio(mixer.mix() * mixer.scale, SR, "wav").decode()


def test_mix_stems_rules():
    stems = _stems()
    total = sum(stems.values())
    np.testing.assert_allclose(mix_stems(stems), total, atol=1e-6)  # all at 0 dB: the mixture
    np.testing.assert_allclose(mix_stems(stems, muted=["vocals"]), total - stems["vocals"], atol=1e-6)
    np.testing.assert_allclose(mix_stems(stems, solo=["bass"]), stems["bass"], atol=1e-7)
    np.testing.assert_allclose(mix_stems(stems, solo=["bass", "drums"], muted=["drums"]), stems["bass"], atol=1e-7)
    six_db = mix_stems(stems, {"vocals": -6.0}, solo=["vocals"])
    np.testing.assert_allclose(six_db, stems["vocals"] * 10 ** (-6 / 20), rtol=1e-5)  # dB, not a linear factor
    assert not mix_stems(stems, muted=NAMES).any()
    assert audible_stems(NAMES, muted=["drums"], solo=["drums", "bass"]) == ["bass"]
    with pytest.raises(KeyError, match="unknown stem"):
        mix_stems(stems, muted=["voice"])
    with pytest.raises(ValueError, match="same number of samples"):
        mix_stems({"a": np.zeros((2, 10)), "b": np.zeros((2, 11))})


def test_mono_stem_is_spread_over_the_channels():
    stereo, mono = np.ones((2, 8), np.float32), np.full(8, 0.5, np.float32)
    np.testing.assert_allclose(mix_stems({"a": stereo, "b": mono}), np.full((2, 8), 1.5))


def test_clicks_change_the_mix_and_the_audio():
    stems = _stems()
    mixer = StemMixer(stems, SR, mixture=sum(stems.values()))
    first_bytes, first_status = mixer.audio.value, mixer.status.value
    assert "equals the mixture" in first_status and "vocals" in first_status

    mixer.mutes["vocals"].value = True  # a click on "mute"
    np.testing.assert_allclose(mixer.mix(), sum(stems[n] for n in NAMES if n != "vocals"), atol=1e-6)
    assert mixer.audio.value != first_bytes
    assert "vocals" not in mixer.status.value.split("audible:")[1].split("·")[0]
    assert "equals the mixture" not in mixer.status.value

    mixer.solos["bass"].value = True
    np.testing.assert_allclose(mixer.mix(), stems["bass"], atol=1e-7)
    np.testing.assert_allclose(_heard(mixer), stems["bass"] * mixer.scale, atol=2e-4)

    mixer.solos["bass"].value = False
    mixer.mutes["vocals"].value = False
    mixer.gains["drums"].value = -12.0
    expected = sum(stems.values()) - stems["drums"] * (1 - 10 ** (-12 / 20))
    np.testing.assert_allclose(mixer.mix(), expected, atol=1e-6)
    assert mixer.state()["gains_db"]["drums"] == -12.0

    mixer.reset.click()
    np.testing.assert_allclose(mixer.mix(), sum(stems.values()), atol=1e-6)
    assert "equals the mixture" in mixer.status.value


def test_loudness_uses_one_fixed_scale():
    stems = _stems(scale=8.0)  # the full mix peaks well above 1
    mixer = StemMixer(stems, SR)
    full_peak = np.abs(sum(stems.values())).max()
    assert mixer.scale == pytest.approx(1 / max(full_peak, max(np.abs(s).max() for s in stems.values())))
    mixer.set(solo=["bass"])  # alone, the bass is not brought back up to full scale
    heard = _heard(mixer)
    np.testing.assert_allclose(heard, np.clip(stems["bass"] * mixer.scale, -1, 1), atol=2e-4)
    assert np.abs(heard).max() < 0.9
    mixer.set(gains_db={n: 12.0 for n in NAMES}, solo=())
    assert "clipping" in mixer.status_text()


def test_ab_x_switches_sets_and_reveals():
    est, ref = _stems(0), _stems(1)
    mixer = StemMixer(est, SR, reference=ref, seed=3)
    mixer.ab.value = "B"
    np.testing.assert_allclose(mixer.mix(), sum(ref.values()), atol=1e-6)
    mixer.mutes["other"].value = True  # faders apply to whichever set plays
    np.testing.assert_allclose(mixer.mix(), sum(ref[n] for n in NAMES if n != "other"), atol=1e-6)
    mixer.ab.value = "X"
    hidden = mixer.x_is
    expected = est if hidden == "A" else ref
    np.testing.assert_allclose(mixer.mix(), sum(expected[n] for n in NAMES if n != "other"), atol=1e-6)
    assert "hidden" in mixer.status.value and "X was" not in mixer.status.value
    mixer.reveal.click()
    assert f"X was <b>{hidden}</b>" in mixer.status.value
    draws = {mixer.new_x() for _ in range(20)}
    assert draws == {"A", "B"}  # both sets come up
    with pytest.raises(ValueError, match="same names"):
        StemMixer(est, SR, reference={"vocals": ref["vocals"]})


def test_static_mode_and_display_bundle(monkeypatch):
    stems = _stems()
    static = StemMixer(stems, SR, static=True)
    assert static.widget is None
    html = static.static_html()
    assert html.count("<audio") == len(NAMES) + 1 and "vocals" in html
    static.set(muted=["drums"])
    np.testing.assert_allclose(static.mix(), sum(stems[n] for n in NAMES if n != "drums"), atol=1e-6)

    monkeypatch.setenv("MSSBOOK_WIDGETS", "static")
    assert StemMixer(stems, SR).widget is None
    monkeypatch.delenv("MSSBOOK_WIDGETS")
    live = StemMixer(stems, SR, reference=stems)
    bundle = live._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # the live widget
    assert bundle["text/html"].count("<audio") == 2 * len(NAMES) + 1  # and its fallback
    assert "mssbook-stem-mixer" in live.widget._dom_classes


def test_for_estimates_adds_the_residuals():
    stems = _stems()
    mixture = sum(stems.values())
    estimate = {"vocals": stems["vocals"] * 0.5}
    mixer = StemMixer.for_estimates(mixture, estimate, SR, references=stems)
    assert mixer.names == ["vocals", "residual"]
    np.testing.assert_allclose(mixer.mix(), mixture, atol=1e-6)  # estimate + residual = mixture
    mixer.ab.value = "B"
    np.testing.assert_allclose(mixer.mix(), mixture, atol=1e-6)
    mixer.solos["residual"].value = True
    np.testing.assert_allclose(mixer.mix(), mixture - stems["vocals"], atol=1e-6)  # the true accompaniment
    with pytest.raises(ValueError, match="no reference"):
        StemMixer.for_estimates(mixture, estimate, SR, references={"drums": stems["drums"]})


def test_ab_player_switches_clips_with_one_scale():
    from mssbook.widgets import ABPlayer

    clips = {"loud": np.full((2, 800), 2.0, np.float32), "quiet": np.full((2, 800), 0.5, np.float32)}
    ab = ABPlayer(clips, SR, blind=True, seed=1)
    assert ab.scale == pytest.approx(0.5)
    first = ab.player.value
    ab.choice.value = "quiet"  # the click
    assert ab.playing == "quiet" and ab.player.value != first
    np.testing.assert_allclose(ab.audio(), 0.25)  # not brought up to full scale
    ab.choice.value = "X"
    assert ab.playing == ab.hidden and "hidden" in ab.status.value
    ab.reveal.click()
    assert f"X is <b>{ab.hidden}</b>" in ab.status.value
    static = ABPlayer(clips, SR, static=True)
    np.testing.assert_allclose(static.select("loud"), 1.0)
    assert static.widget is None and static.static_html().count("<audio") == 2
    with pytest.raises(ValueError, match="at least two"):
        ABPlayer({"one": clips["loud"]}, SR)


def test_status_says_when_a_and_b_sound_the_same():
    stems = _stems()
    mixture = sum(stems.values())
    mixer = StemMixer.for_estimates(mixture, {"vocals": stems["vocals"] * 0.5}, SR, references=stems)
    assert "same mix" in mixer.status_text()  # estimate + residual and truth + true residual: both the mixture
    mixer.solos["vocals"].value = True
    assert "same mix" not in mixer.status_text()
    assert mixer.static_html() is mixer.static_html()  # encoded once
