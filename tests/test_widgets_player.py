"""The separation player: models and songs found on disk, separated, opened in the stem mixer."""

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")

from mssbook import models  # noqa: E402
from mssbook.checkpoints import save_checkpoint  # noqa: E402
from mssbook.data.audio import save_audio  # noqa: E402
from mssbook.widgets import SeparationPlayer  # noqa: E402
from mssbook.widgets.player import Song, find_checkpoints, find_songs, load_song, separate_song  # noqa: E402

SR = 44100
SOURCES = ("vocals", "drums", "bass", "other")


@pytest.fixture
def toy_song(tmp_path):
    """One song in the MUSDB18 WAV layout (test split), 1 s of seeded noise per stem."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "toy" / "test" / "Band - Song"
    stems = {s: (0.05 * rng.standard_normal((2, SR))).astype(np.float32) for s in SOURCES}
    for name, audio in stems.items():
        save_audio(folder / f"{name}.wav", audio, SR, subtype="FLOAT")
    save_audio(folder / "mixture.wav", sum(stems.values()), SR, subtype="FLOAT")
    return tmp_path / "toy", stems


@pytest.fixture
def run_dir(tmp_path, one_thread):
    torch.manual_seed(0)
    model = models.create("umx", preset="tutorial", targets=["vocals"])
    runs = tmp_path / "runs"
    save_checkpoint(runs / "umx-vocals" / "best.pt", model)
    save_checkpoint(runs / "umx-vocals" / "last.pt", model)
    save_checkpoint(runs / "half-done" / "last.pt", model)
    save_checkpoint(runs / ".tmp-copy" / "best.pt", model)  # keep_run's folder while it copies: not a run
    return runs, model


def test_finds_runs_and_songs(run_dir, toy_song, monkeypatch):
    runs, _ = run_dir
    found = find_checkpoints(runs)
    assert sorted(p.relative_to(runs).as_posix() for p in found) == ["half-done/last.pt", "umx-vocals/best.pt"]
    assert find_checkpoints(runs / "nothing-here") == []
    monkeypatch.setenv("MSSBOOK_SHARED_DATA", str(runs / "no-shared-data"))
    songs = find_songs(toy_song[0])
    toy = [s for s in songs if s.name.startswith("toy: ")]
    assert [s.name for s in toy] == ["toy: Band - Song"] and sorted(toy[0].references) == sorted(SOURCES)
    mixture, sr, refs = load_song(toy[0])
    assert sr == SR and mixture.shape == (2, SR)
    np.testing.assert_allclose(mixture, sum(toy_song[1].values()), atol=1e-6)


def test_separate_song_gives_estimates_and_matching_references(run_dir, toy_song, monkeypatch):
    runs, model = run_dir
    monkeypatch.setenv("MSSBOOK_SHARED_DATA", str(runs / "no-shared-data"))
    song = find_songs(toy_song[0])[0]
    calls = []
    result = separate_song(runs / "umx-vocals", song, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert list(result.estimates) == ["vocals", "residual"]
    np.testing.assert_allclose(sum(result.estimates.values()), result.mixture, atol=1e-5)
    assert list(result.references) == ["vocals", "residual"]
    np.testing.assert_allclose(result.references["vocals"], toy_song[1]["vocals"], atol=1e-6)
    np.testing.assert_allclose(sum(result.references.values()), result.mixture, atol=1e-5)
    # a song without stems: estimates only
    only_mix = separate_song(model, Song("mix", song.path))
    assert only_mix.references is None


def test_player_click_separates_and_opens_the_mixer(run_dir, toy_song, tmp_path):
    runs, _ = run_dir
    player = SeparationPlayer(models=find_checkpoints(runs), songs=find_songs(toy_song[0])[:1])
    assert player.output.children == ()
    player.model_choice.value = player.model_choice.options[-1]
    player.go.click()  # what the "separate" button does
    assert player.stage.value.startswith("done"), player.stage.value
    assert player.bar.value == 1.0
    assert player.output.children == (player.mixer.widget,)
    np.testing.assert_allclose(player.mixer.mix(), player.result.mixture, atol=1e-5)
    player.mixer.ab.value = "B"
    np.testing.assert_allclose(player.mixer.mix(), player.result.mixture, atol=1e-5)
    player.mixer.mutes["vocals"].value = True  # karaoke from the true stems
    np.testing.assert_allclose(player.mixer.mix(), player.result.references["residual"], atol=1e-6)

    # an upload becomes a song; a bad file is reported in the widget, not raised from the click
    wav = (toy_song[0] / "test" / "Band - Song" / "mixture.wav").read_bytes()
    label = player.add_song("my song.wav", wav)
    assert player.song_choice.value == label
    player.go.click()
    assert player.stage.value.startswith("done") and player.result.references is None
    player.add_song("broken.wav", b"not audio at all")
    player.go.click()
    assert player.stage.value.startswith("error:") and "broken.wav" in player.stage.value
    with pytest.raises(ValueError, match="not an audio file"):
        player.add_song("notes.txt", b"hello")


def test_player_without_models_says_what_to_do(toy_song):
    player = SeparationPlayer(models=[], songs=find_songs(toy_song[0]), static=True)
    with pytest.raises(ValueError, match="train one"):
        player.run()
    assert "<table" in player.static_html()
