"""Players keep relative loudness; plots draw what mssbook's STFT computes."""

import numpy as np
import pytest

from mssbook import widgets

SR = 8000


def _tone(amplitude, seconds=0.25, freq=440.0):
    t = np.arange(int(SR * seconds)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None].repeat(2, axis=0)


def _peak_of_player(player) -> float:
    return float(np.abs(player.encoded.decode()).max())


@pytest.fixture(autouse=True)
def exact_audio(monkeypatch):
    """Players in WAV here, so peaks are exact; the compact codecs have their own tests."""
    monkeypatch.setenv("MSSBOOK_AUDIO", "wav")


def test_play_does_not_normalise():
    quiet = widgets.play(_tone(0.1), SR)
    assert _peak_of_player(quiet) == pytest.approx(0.1, abs=1e-3)  # IPython's default would give 1.0
    assert quiet.mimetype == "audio/wav" and 'src="data:audio/wav;base64,' in quiet._repr_html_()


def test_players_embed_compact_audio(monkeypatch):
    monkeypatch.delenv("MSSBOOK_AUDIO")
    rng = np.random.default_rng(0)
    music = (0.2 * rng.standard_normal((2, 4 * 44100))).astype(np.float32)  # noise: the hardest case
    wav, mp3 = widgets.encode_audio(music, 44100, "wav"), widgets.encode_audio(music, 44100)
    assert mp3.codec == "mp3" and mp3.mimetype == "audio/mpeg"
    assert len(wav.data) > 5 * len(mp3.data)
    decoded = mp3.decode()
    assert decoded.shape[0] == 2 and abs(decoded.shape[1] - music.shape[1]) < 4096
    assert np.std(decoded) == pytest.approx(np.std(music), rel=0.1)  # loudness survives the codec
    assert widgets.encode_audio(music[:, :44000], 44000).codec == "ogg"  # no MP3 at 44 kHz
    assert widgets.encode_audio(np.zeros((6, 800)), 8000).codec == "wav"  # 5.1: lossless
    assert 'src="data:audio/mpeg;base64,' in widgets.players({"a": music}, 44100).data
    monkeypatch.setenv("MSSBOOK_AUDIO", "flac")
    with pytest.raises(ValueError, match="MSSBOOK_AUDIO='flac'"):
        widgets.play(music, 44100)


def test_players_share_one_scale():
    clips = {"loud": _tone(2.0), "quiet": _tone(0.5)}  # the loud one would clip
    assert widgets.common_scale(clips) == pytest.approx(0.5)
    html = widgets.players(clips, SR).data
    assert html.count("<audio") == 2 and "<b>loud</b>" in html and "<b>quiet</b>" in html
    # the ratio of the two peaks survives: 2.0 → 1.0 and 0.5 → 0.25
    loud, quiet = (widgets.play(c, SR, scale=0.5) for c in clips.values())
    assert _peak_of_player(loud) == pytest.approx(1.0, abs=1e-3)
    assert _peak_of_player(quiet) == pytest.approx(0.25, abs=1e-3)


def test_play_accepts_torch_and_mono():
    torch = pytest.importorskip("torch")
    player = widgets.play(torch.from_numpy(_tone(0.3)[0]), SR)
    assert _peak_of_player(player) == pytest.approx(0.3, abs=1e-3)
    with pytest.raises(ValueError, match="channels, samples"):
        widgets.play(np.zeros((1, 2, 3)), SR)


def test_spectrogram_peaks_at_the_tone():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from mssbook import plots

    db = plots.spectrogram_db(_tone(1.0, seconds=1.0, freq=1000.0), n_fft=1024, hop_length=256)
    peak_bin = int(np.median(db[:, 2:-2].argmax(axis=0)))
    assert abs(peak_bin * SR / 1024 - 1000.0) <= SR / 1024
    assert db.max() == pytest.approx(0.0, abs=1.5)  # a full-scale sine is near 0 dBFS
    fig = plots.stems_figure({"mixture": _tone(0.5), "vocals": _tone(0.2)}, SR)
    assert len(fig.axes) == 4  # two spectrograms and their colour bars
    fig = plots.stems_figure({"mixture": _tone(0.5)}, SR, kind="waveform")
    assert len(fig.axes) == 1
    with pytest.raises(ValueError):
        plots.stems_figure({"x": _tone(0.5)}, SR, kind="bars")
