"""The toy-song generator: determinism, exact stems, the MUSDB18 layout and split, and music.

One small dataset is generated once for the module (7 songs of 6 s); the musical checks measure
the audio read back from disk (pitch, vibrato, silent gaps, bass band, drum transients, tempo).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mssbook.data import toy
from mssbook.data.stems import SOURCES
from mssbook.errors import DatasetError, OutputExistsError

SR = 44100
SMALL = dict(n_train=3, n_valid=2, n_test=2, duration=6.0, seed=7)
STEMS = ("mixture", *SOURCES)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("toyset") / "toy"
    summary = toy.generate_toy_dataset(root, **SMALL, workers=2, progress=False)
    return root, summary


def _songs(root: Path) -> list[dict]:
    return json.loads((root / "toy.json").read_text())["songs"]


def _read(root: Path, song: dict, stem: str, dtype: str = "float64") -> np.ndarray:
    """(samples, 2) as soundfile reads it."""
    data, sr = sf.read(root / song["subset"] / song["name"] / f"{stem}.wav", dtype=dtype)
    assert sr == SR
    return data


def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    n = 1 + (len(x) - size) // hop
    return x[np.arange(size)[None] + hop * np.arange(n)[:, None]]


def _f0_track(x: np.ndarray, size: int = 2048, hop: int = 256, fmin: float = 60, fmax: float = 1100):
    """f0 (Hz) and periodicity (0..1) per frame, by normalized autocorrelation."""
    frames = _frames(x, size, hop) * np.hanning(size)
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * size)) ** 2)[:, :size]
    ac /= ac[:, :1] + 1e-12
    lo, hi = int(SR / fmax), int(SR / fmin)
    f0 = np.zeros(len(ac))
    conf = np.zeros(len(ac))
    for i, a in enumerate(ac):
        seg = a[lo:hi]
        best = seg.max()
        # the first peak nearly as high as the best one: avoids picking twice the period
        peaks = np.flatnonzero((seg[1:-1] >= 0.9 * best) & (seg[1:-1] >= seg[:-2]) & (seg[1:-1] >= seg[2:])) + 1
        lag = lo + (peaks[0] if len(peaks) else int(np.argmax(seg)))
        y0, y1, y2 = a[lag - 1], a[lag], a[lag + 1]
        shift = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2 + 1e-12)
        f0[i], conf[i] = SR / (lag + shift), y1
    return f0, conf


# --- layout, exactness, musdb ------------------------------------------------------------------

def test_layout_and_summary(dataset):
    root, summary = dataset
    assert (root / "mus.yaml").is_file() and (root / "toy.json").is_file()
    assert summary["reused"] is False
    counts = {split: info["count"] for split, info in summary["splits"].items()}
    assert counts == {"train": 3, "valid": 2, "test": 2}
    assert summary["total_seconds"] == pytest.approx(7 * 6.0)
    assert summary["bytes"] == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert summary["bytes"] > 7 * 5 * 6 * SR * 2 * 2  # five 16-bit stereo WAVs per song
    songs = _songs(root)
    assert [s["split"] for s in songs] == ["train"] * 3 + ["valid"] * 2 + ["test"] * 2
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(
        s["name"] for s in songs if s["subset"] == "train")
    for song in songs:
        folder = root / song["subset"] / song["name"]
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.wav" for s in STEMS)
        for stem in STEMS:
            info = sf.info(folder / f"{stem}.wav")
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 2, 6 * SR, "PCM_16")
    text = toy.format_summary(summary)
    assert "train" in text and "valid" in text and "test" in text and "MB" in text
    assert toy.summarize_dataset(root)["splits"] == summary["splits"]


def test_names_look_like_musdb_and_are_unique(dataset):
    root, summary = dataset
    names = [s["name"] for s in _songs(root)]
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"Toy Band \d\d - [A-Z][a-z]+ [A-Z][a-z]+ in [A-G][b#]? (major|minor)", name), name


def test_stems_sum_exactly_to_mixture(dataset):
    root, _ = dataset
    for song in _songs(root):
        mixture = _read(root, song, "mixture")
        stems = [_read(root, song, s) for s in SOURCES]
        assert all(s.shape == mixture.shape == (6 * SR, 2) for s in stems)
        np.testing.assert_array_equal(sum(stems), mixture)  # exact, not approximately
        m32 = _read(root, song, "mixture", "float32")
        np.testing.assert_array_equal(sum(_read(root, song, s, "float32") for s in SOURCES), m32)
        assert 0.85 <= np.abs(mixture).max() <= 0.91  # peak ~0.9: loud, never clipped
        for s in stems:
            assert np.abs(s).max() > 0.01  # every source plays


def test_rendering_the_manifest_plan_reproduces_the_files(dataset):
    root, _ = dataset
    song = _songs(root)[-1]
    plan = toy.SongPlan.from_dict(song)
    assert plan.to_dict() == {k: v for k, v in song.items() if k not in ("subset", "split")}
    stems = toy.render_song(plan)
    for name in SOURCES:
        assert stems[name].dtype == np.float32 and stems[name].shape == (2, 6 * SR)
        np.testing.assert_array_equal(stems[name].T, _read(root, song, name, "float32"))
    np.testing.assert_array_equal(toy.mix_stems(stems).T, _read(root, song, "mixture", "float32"))


def test_musdb_reads_tracks_and_split(dataset):
    musdb = pytest.importorskip("musdb")
    root, summary = dataset
    names = {split: info["names"] for split, info in summary["splits"].items()}
    db = musdb.DB(str(root), is_wav=True, setup_file="mus.yaml")
    assert len(db) == 7
    valid = musdb.DB(str(root), is_wav=True, setup_file="mus.yaml", subsets="train", split="valid")
    assert sorted(t.name for t in valid) == sorted(names["valid"])
    train = musdb.DB(str(root), is_wav=True, setup_file="mus.yaml", subsets="train", split="train")
    assert sorted(t.name for t in train) == sorted(names["train"])
    test = musdb.DB(str(root), is_wav=True, setup_file="mus.yaml", subsets="test")
    assert sorted(t.name for t in test) == sorted(names["test"])
    track = valid[0]
    assert track.rate == SR and track.audio.shape == (6 * SR, 2)
    assert set(track.sources) == set(SOURCES)
    np.testing.assert_array_equal(sum(track.sources[s].audio for s in SOURCES), track.audio)


# --- determinism and seeding -------------------------------------------------------------------

def test_same_seed_same_song_other_seed_other_song():
    a, b = toy.plan_song(123, 2.0), toy.plan_song(123, 2.0)
    assert a == b
    sa, sb = toy.render_song(a), toy.render_song(b)
    for name in SOURCES:
        np.testing.assert_array_equal(sa[name], sb[name])
    c = toy.plan_song(124, 2.0)
    assert c != a
    assert any(not np.array_equal(sa[n], toy.render_song(c)[n]) for n in SOURCES)
    plans = [toy.plan_song(s, 10.0) for s in range(12)]
    assert len({p.tempo for p in plans}) > 5
    assert len({(p.key, p.mode) for p in plans}) > 5
    assert len({p.drum_style for p in plans}) > 2 and len({p.other_timbres for p in plans}) > 2
    assert all(80 <= p.tempo <= 140 for p in plans)
    with pytest.raises(ValueError):
        toy.plan_song(-1, 2.0)


def test_splits_are_disjoint_and_seeded_apart(dataset):
    root, _ = dataset
    songs = _songs(root)
    seeds = {split: [s["seed"] for s in songs if s["split"] == split] for split in toy.SPLITS}
    for split in toy.SPLITS:
        assert seeds[split] == toy.song_seeds(SMALL["seed"], split, len(seeds[split]))
    assert len({s for v in seeds.values() for s in v}) == len(songs)
    # The first songs of a split do not depend on how many songs are asked for, nor do the
    # test songs depend on the train set's size.
    assert toy.song_seeds(7, "test", 5)[:2] == toy.song_seeds(7, "test", 2)
    assert toy.song_seeds(7, "train", 2) != toy.song_seeds(7, "test", 2)
    assert toy.song_seeds(8, "train", 2) != toy.song_seeds(7, "train", 2)


def test_dataset_does_not_depend_on_workers(tmp_path):
    params = dict(n_train=2, n_valid=0, n_test=1, duration=1.5, seed=3, progress=False)
    one = toy.generate_toy_dataset(tmp_path / "one", workers=1, **params)
    two = toy.generate_toy_dataset(tmp_path / "two", workers=2, **params)
    assert one["splits"] == two["splits"]
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.wav"))
    assert len(files) == 3 * 5
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    manifest = [json.loads((tmp_path / d / "toy.json").read_text()) for d in ("one", "two")]
    assert manifest[0]["songs"] == manifest[1]["songs"]


# --- musical properties, measured on the audio ------------------------------------------------

def test_songs_differ_in_tempo_and_key(dataset):
    songs = _songs(dataset[0])
    assert len({s["tempo"] for s in songs}) >= 4
    assert len({(s["key"], s["mode"]) for s in songs}) >= 4
    mixtures = [_read(dataset[0], s, "mixture")[:, 0] for s in songs[:3]]
    assert not np.allclose(mixtures[0], mixtures[1]) and not np.allclose(mixtures[1], mixtures[2])


def test_bass_lives_below_300_hz(dataset):
    root, _ = dataset
    for song in _songs(root):
        bass = _read(root, song, "bass").mean(1)
        power = np.abs(np.fft.rfft(bass)) ** 2
        freqs = np.fft.rfftfreq(len(bass), 1 / SR)
        assert power[freqs < 300].sum() / power.sum() > 0.75, song["name"]
        other = _read(root, song, "other").mean(1)
        power_o = np.abs(np.fft.rfft(other)) ** 2
        assert power_o[freqs < 300].sum() / power_o.sum() < 0.75  # the accompaniment sits higher


def test_vocals_sing_the_melody_with_vibrato(dataset):
    root, _ = dataset
    errors, wobble, rates, all_f0 = [], [], [], []
    for song in _songs(root):
        voice = _read(root, song, "vocals").mean(1)
        f0, conf = _f0_track(voice)
        rms = np.sqrt(np.mean(_frames(voice, 2048, 256) ** 2, axis=1))
        all_f0.append(f0[(conf > 0.8) & (rms > 0.1 * rms.max())])
        times = (np.arange(len(f0)) * 256 + 1024) / SR
        for note in toy.compose(toy.SongPlan.from_dict(song)).melody:
            if note.duration < 0.6 or note.end > 6.0:
                continue
            held = (times > note.start + 0.4) & (times < note.end - 0.05)  # after vibrato onset
            if held.sum() < 30:
                continue
            cents = 1200 * np.log2(f0[held] / toy.midi_to_hz(note.pitch))
            errors.append(np.median(cents))
            deviation = cents - np.median(cents)
            deviation[np.abs(deviation) > 300] = 0.0  # octave errors of this simple f0 estimator
            wobble.append(np.median(np.abs(deviation)))  # ~0.7 x the vibrato's depth
            spectrum = np.abs(np.fft.rfft(deviation * np.hanning(len(deviation)), 2048))
            rates.append(np.fft.rfftfreq(2048, 256 / SR)[np.argmax(spectrum)])
    f0 = np.concatenate(all_f0)
    assert len(f0) > 500
    assert 80 < np.percentile(f0, 5) and np.percentile(f0, 95) < 1000  # singing range
    assert len(errors) >= 4
    errors, wobble, rates = map(np.asarray, (errors, wobble, rates))
    assert np.mean(np.abs(errors) < 50) >= 0.8  # sung in tune with the score
    assert np.mean((wobble > 6) & (wobble < 80)) >= 0.8  # vibrato: pitch moves by tens of cents
    assert np.mean((rates > 3.5) & (rates < 8.0)) >= 0.6  # ... periodically at ~5-6 Hz


def test_vocals_have_silent_gaps(dataset):
    root, _ = dataset
    fractions = []
    for song in _songs(root):
        voice = _read(root, song, "vocals").mean(1)
        rms = np.sqrt(np.mean(_frames(voice, 4410, 4410) ** 2, axis=1))  # 100 ms frames
        quiet = rms < rms.max() * 10 ** (-40 / 20)
        assert 0 < quiet.mean() < 0.8, song["name"]
        fractions.append(quiet.mean())
    assert 0.05 < np.mean(fractions) < 0.5
    # the gaps are silent in the file itself: digital zero somewhere in most songs
    zeros = [np.any(np.all(_frames(_read(root, s, "vocals").mean(1), 4410, 4410) == 0, axis=1))
             for s in _songs(root)]
    assert np.mean(zeros) >= 0.5


def test_drums_have_transients_on_the_beat(dataset):
    root, _ = dataset
    for song in _songs(root):
        drums = _read(root, song, "drums").mean(1)
        assert np.abs(drums).max() / np.sqrt(np.mean(drums**2)) > 3.5  # crest factor: sharp hits
        # Onset strength (spectral flux) repeats every beat.
        hop = 512
        spec = np.abs(np.fft.rfft(_frames(drums, 1024, hop) * np.hanning(1024), axis=1))
        flux = np.maximum(0, np.diff(np.log1p(100 * spec), axis=0)).sum(1)
        flux -= flux.mean()
        ac = np.correlate(flux, flux, "full")[len(flux) - 1:]
        ac /= ac[0]
        beat = int(round(60 / song["tempo"] * SR / hop))
        assert ac[beat - 1:beat + 2].max() > 0.25, song["name"]
        assert ac[beat - 1:beat + 2].max() > np.median(ac[int(0.2 * SR / hop):int(2 * SR / hop)]) + 0.2


# --- idempotence and safety of the writer ------------------------------------------------------

def test_second_call_reuses_without_rewriting(dataset):
    root, _ = dataset
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    siblings = sorted(root.parent.iterdir())
    summary = toy.generate_toy_dataset(root, **SMALL, workers=2, progress=False)
    assert summary["reused"] is True
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    assert sorted(root.parent.iterdir()) == siblings
    assert "not regenerated" in toy.format_summary(summary)


def test_refuses_a_foreign_folder_even_with_overwrite(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "thesis.txt").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match="overwrite|not a toy dataset"):
            toy.generate_toy_dataset(root, n_train=1, n_valid=0, n_test=0, duration=0.5,
                                     overwrite=overwrite, progress=False, workers=1)
    assert (root / "thesis.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # nothing left behind
    with pytest.raises(DatasetError):
        toy.summarize_dataset(root)


def test_other_parameters_need_overwrite(tmp_path):
    root = tmp_path / "toy"
    small = dict(n_train=1, n_valid=0, n_test=1, duration=0.5, progress=False, workers=1)
    toy.generate_toy_dataset(root, seed=1, **small)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        toy.generate_toy_dataset(root, seed=2, **small)
    assert json.loads((root / "toy.json").read_text())["params"]["seed"] == 1
    summary = toy.generate_toy_dataset(root, seed=2, overwrite=True, **small)
    assert summary["seed"] == 2 and summary["reused"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]
    # an empty folder is fine to fill
    (tmp_path / "empty").mkdir()
    toy.generate_toy_dataset(tmp_path / "empty", seed=1, **small)
    assert (tmp_path / "empty" / "toy.json").is_file()


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def failing(plan, folder, sample_rate):
        calls.append(plan.name)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(plan, folder, sample_rate)

    real = toy._write_song
    monkeypatch.setattr(toy, "_write_song", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        toy.generate_toy_dataset(tmp_path / "toy", n_train=2, n_valid=0, n_test=1, duration=0.5,
                                 workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_sizes_and_roots_follow_the_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("MSSBOOK_DATA", str(tmp_path))
    monkeypatch.setenv("MSSBOOK_PROFILE", "default")
    default = toy.toy_sizes()
    assert default == {"n_train": 16, "n_valid": 4, "n_test": 6, "duration": 10.0}
    assert toy.default_toy_root() == tmp_path / "toy"
    monkeypatch.setenv("MSSBOOK_PROFILE", "ci")
    ci = toy.toy_sizes()
    assert ci["duration"] >= 6.0 and ci["n_train"] < default["n_train"]
    assert toy.default_toy_root() == tmp_path / "toy-ci"
    root = toy.ensure_toy_dataset(n_train=1, n_valid=1, n_test=1, duration=0.5, progress=False, workers=1)
    assert root == tmp_path / "toy-ci"
    summary = toy.summarize_dataset(root)
    assert {k: v["count"] for k, v in summary["splits"].items()} == {"train": 1, "valid": 1, "test": 1}
    mtime = (root / "toy.json").stat().st_mtime_ns
    assert toy.ensure_toy_dataset(n_train=1, n_valid=1, n_test=1, duration=0.5, progress=False) == root
    assert (root / "toy.json").stat().st_mtime_ns == mtime
