"""Source activity detection (BSRNN seed's SAD): the rule, toy vocals, the file and the CLI.

The rule is checked three ways: exactly on synthetic signals whose silent stretches are known to
the sample, against the seed's own torch formulation (unfold, chunk, quantile), and on toy songs,
whose score says where the voice rests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mssbook.data import toy
from mssbook.data.sad import (
    SADParams,
    chunk_rms,
    configure_parser,
    detect_fragments,
    find_salient_fragments,
    merge_fragments,
    read_fragments,
    sad_filename,
    salient_windows,
    target_audio,
    window_starts,
    write_fragments,
)
from mssbook.errors import DatasetError, MSSBookError, OutputExistsError
from helpers import musdb_sample_root  # tests/helpers.py

TOY_SR = 16000


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def noise(rng: np.random.Generator, channels: int, n: int, rms: float) -> np.ndarray:
    return (rms * rng.standard_normal((channels, n))).astype(np.float32)


# --- the rule on synthetic signals ----------------------------------------------------------------


def test_known_silences_give_exactly_the_expected_windows():
    """sr 1000, 0.1 s windows (100 samples), hop 50, chunks of 10: noise in [0, 300) and [600, 800)."""
    rng = np.random.default_rng(0)
    y = np.zeros((2, 800), np.float32)
    y[:, :300] = noise(rng, 2, 300, 0.1)
    y[:, 600:] = noise(rng, 2, 200, 0.1)
    fragments = find_salient_fragments(y, 1000, window_s=0.1)
    # window 250 has 5 active chunks of 10 (not > 50 %), 550 too; 300..500 are silent
    assert [s for s, _ in fragments] == [0, 50, 100, 150, 200, 600, 650, 700]
    assert all(e - s == 100 for s, e in fragments)
    assert merge_fragments(fragments) == [(0, 300), (600, 800)]  # exactly the sounding stretches
    # one silent channel is enough to reject a window (salient "in every channel")
    y2 = y.copy()
    y2[1, 600:] = 0
    assert [s for s, _ in find_salient_fragments(y2, 1000, window_s=0.1)] == [0, 50, 100, 150, 200]
    # mono (L,), torch tensors and float64 work alike
    assert find_salient_fragments(y[0], 1000, window_s=0.1) == fragments
    assert find_salient_fragments(torch.from_numpy(y), 1000, window_s=0.1) == fragments
    assert find_salient_fragments(y.astype(np.float64), 1000, window_s=0.1) == fragments


def test_the_level_that_counts_is_gamma():
    """The threshold is the window's own 15 % quantile, floored at gamma = -60 dBFS."""
    rng = np.random.default_rng(1)
    quiet, soft = noise(rng, 2, 4000, 3e-4), noise(rng, 2, 4000, 3e-3)
    assert find_salient_fragments(quiet, 1000, window_s=0.5) == []
    assert len(find_salient_fragments(soft, 1000, window_s=0.5)) == 15  # every window
    assert len(find_salient_fragments(quiet, 1000, window_s=0.5, gamma=1e-4)) == 15
    # 6 loud chunks + 4 chunks just above gamma: the quantile rejects only the 2 quietest -> kept
    y = noise(rng, 1, 100, 1e-1)
    y[:, 60:] = noise(rng, 1, 40, 2e-3)
    rms = chunk_rms(y, 100, 50, 10)
    assert rms.shape == (1, 1, 10)
    assert salient_windows(rms)[0]
    assert not salient_windows(rms, SADParams(min_active=0.8))[0]  # 8 of 10 active: not > 0.8
    # eps only matters without the gamma floor: digital silence then ranks above faint noise
    faint = np.array([[[0.0] * 4 + [1e-6] * 6]])  # (C, S, K) chunk RMS
    assert not salient_windows(faint, SADParams(gamma=0.0))[0]  # the 4 silent chunks "beat" 1e-6
    assert salient_windows(faint, SADParams(gamma=0.0, eps=0.0))[0]


def test_a_stationary_signal_ties_with_its_quantile():
    """The seed's strict '>' : chunks exactly as loud as the threshold are not active."""
    assert find_salient_fragments(np.full((2, 2000), 0.5, np.float32), 1000, window_s=0.5) == []


def seed_rule(y: torch.Tensor, window: int, hop: int, k: int) -> list[int]:
    """The BSRNN seed's formulation (unfold -> chunk -> stack -> RMS -> quantile), for comparison."""
    frames = y.unfold(-1, window, hop)  # (C, S, W)
    chunks = torch.stack(frames.chunk(k, dim=-1), dim=-2)  # (C, S, K, W/K)
    rms = torch.sqrt(torch.mean(chunks**2, dim=-1, keepdim=True))  # (C, S, K, 1)
    rms[rms == 0.0] = 1e-5
    threshold = torch.quantile(rms, 0.15, dim=-2, keepdim=True)
    threshold[threshold < 1e-3] = 1e-3
    active = torch.mean((rms > threshold).float(), dim=-2, keepdim=True)
    mask = torch.all(active > 0.5, dim=0).reshape(-1)
    return (torch.arange(mask.shape[-1])[mask] * hop).tolist()


def test_matches_the_seed_formulation():
    rng = np.random.default_rng(2)
    for trial in range(6):
        # 40 stretches of 0.25 s at levels around gamma (-80 ... -20 dBFS), some digitally silent
        levels = 10 ** rng.uniform(-4, -1, 40) * (rng.random(40) > 0.2)
        y = np.concatenate([noise(rng, 2, 250, lv) for lv in levels], axis=1)
        window, hop = (1000, 500) if trial % 2 else (600, 200)
        params = SADParams(window_s=window / 1000, overlap=1 - hop / window)
        mine = [s for s, _ in find_salient_fragments(y, 1000, params)]
        assert mine == seed_rule(torch.from_numpy(y), window, hop, 10)
        assert 0 < len(mine) < len(window_starts(y.shape[1], window, hop))  # a real mix of both


def test_windows_edges_and_uneven_chunks():
    assert window_starts(99, 100, 50).tolist() == []  # shorter than a window: none
    assert window_starts(250, 100, 50).tolist() == [0, 50, 100, 150]  # the partial last window is dropped
    assert find_salient_fragments(np.ones((1, 50)), 1000, window_s=0.1) == []
    rng = np.random.default_rng(3)
    y = noise(rng, 2, 1000, 0.1)
    rms = chunk_rms(y, 103, 51, 10)  # 103 samples in 10 chunks: 10 or 11 each
    assert rms.shape == (2, len(window_starts(1000, 103, 51)), 10)
    first = y[:, :103].astype(np.float64)
    edges = np.round(np.linspace(0, 103, 11)).astype(int)
    expected = [np.sqrt(np.mean(first[:, a:b] ** 2, axis=1)) for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_allclose(rms[:, 0], np.stack(expected, axis=1), rtol=1e-12)
    assert SADParams().window(44100) == 264600 and SADParams().hop(44100) == 132300  # the seed's sizes


@pytest.mark.parametrize("bad", [dict(window_s=0), dict(overlap=1.0), dict(n_chunks=0), dict(quantile=1.5),
                                 dict(min_active=1.0), dict(gamma=-1.0)])
def test_bad_parameters(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        SADParams(**bad)
    with pytest.raises(ValueError, match="cannot hold"):
        chunk_rms(np.zeros((1, 100)), 5, 5, 10)
    with pytest.raises(ValueError, match="channels, samples"):
        find_salient_fragments(np.zeros((1, 2, 100)), 1000)


# --- toy songs ------------------------------------------------------------------------------------

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="musdb needs ffmpeg and ffprobe on PATH")


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sad") / "toy"
    toy.generate_toy_dataset(root, n_train=3, n_valid=0, n_test=0, duration=6.0, seed=0,
                             sample_rate=TOY_SR, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def toy_db(toy_root):
    pytest.importorskip("musdb")
    from mssbook.data.musdb import open_musdb

    return open_musdb(toy_root, split=None)


def phrases(root: Path, name: str) -> list[tuple[float, float]]:
    """(start, end) seconds of every sung phrase of a toy song, from its score."""
    songs = json.loads((root / toy.MANIFEST).read_text())["songs"]
    plan = toy.SongPlan.from_dict(next(s for s in songs if s["name"] == name))
    spans: dict[int, list[float]] = {}
    for note in toy.compose(plan).melody:
        spans.setdefault(note.phrase, [note.start, note.end])[1] = note.end
    return [(a, min(b, plan.duration)) for a, b in spans.values()]


def overlap(a: float, b: float, spans) -> float:
    return sum(max(0.0, min(b, e) - max(a, s)) for s, e in spans)


@needs_ffmpeg
def test_toy_vocals_fragments_avoid_the_rests_and_cover_the_phrases(toy_root, toy_db):
    """0.5 s windows of ten 50 ms chunks. The voice sounds from shortly before a phrase (breath,
    consonant) to shortly after it (release, reverb tail): 0.3 s before and 0.5 s after are allowed."""
    params = SADParams(window_s=0.5)
    rejected_in_rests = 0
    for track in toy_db.tracks:
        start = time.perf_counter()
        fragments = detect_fragments([track], "vocals", params)[track.name]
        assert time.perf_counter() - start < 1.0
        sung = phrases(toy_root, track.name)
        sounding = [(s - 0.3, e + 0.5) for s, e in sung]
        kept = {s for s, _ in fragments}
        for s in window_starts(int(6.0 * TOY_SR), 8000, 4000):
            a, b = s / TOY_SR, s / TOY_SR + 0.5
            if s in kept:  # a salient window lies mostly where the voice sounds ...
                assert overlap(a, b, sounding) >= 0.25, (track.name, a)
            else:  # ... and every window inside a phrase is salient
                assert overlap(a, b, sung) < 0.5 - 1e-9, (track.name, a)
                rejected_in_rests += 1
        covered = sum(overlap(a / TOY_SR, b / TOY_SR, sung) for a, b in merge_fragments(fragments))
        assert covered >= 0.95 * sum(e - s for s, e in sung)
    assert rejected_in_rests >= 3  # the rests really are found


@needs_ffmpeg
def test_detect_fragments_reads_targets_of_the_db(toy_root, toy_db):
    track = toy_db.tracks[0]
    vocals, rate = target_audio(track, "vocals")
    assert rate == TOY_SR and vocals.shape == (2, 6 * TOY_SR)
    accompaniment, _ = target_audio(track, "accompaniment")
    parts = [target_audio(track, s)[0] for s in ("drums", "bass", "other")]
    np.testing.assert_allclose(accompaniment, np.sum(parts, axis=0), atol=1e-6)
    found = detect_fragments(toy_db, "vocals", window_s=0.5)
    assert list(found) == [t.name for t in toy_db.tracks]
    assert found[track.name] == find_salient_fragments(vocals, TOY_SR, window_s=0.5)
    assert detect_fragments(toy_db, "vocals") == {t.name: [(0, 6 * TOY_SR)] for t in toy_db.tracks}  # seed: 6 s
    with pytest.raises(DatasetError, match="no target 'piano'"):
        detect_fragments(toy_db, "piano")


@needs_ffmpeg
def test_stems_are_decoded_at_the_track_rate():
    from mssbook.data.musdb import open_musdb
    from mssbook.data.sampler import MUSDBValidSet

    root = musdb_sample_root()
    db = open_musdb(root)
    vocals, rate = target_audio(db.tracks[0], "vocals")
    assert rate == 44100
    np.testing.assert_array_equal(vocals, MUSDBValidSet(db, "vocals")[0][1].numpy())
    assert detect_fragments(db, "vocals")[db.tracks[0].name] == [(0, 264600)]  # the seed's file line


# --- the file -------------------------------------------------------------------------------------


def test_file_round_trip_and_format(tmp_path):
    fragments = {"A - One": [(0, 264600), (132300, 396900)], "B - Silent": [], "C - Two": [(5, 7)]}
    path = write_fragments(fragments, tmp_path / "vocals_train.txt")
    assert path.read_text() == ("A - One\t0\t264600\nA - One\t132300\t396900\nC - Two\t5\t7\n")
    assert read_fragments(path) == {"A - One": [(0, 264600), (132300, 396900)], "C - Two": [(5, 7)]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocals_train.txt"]  # no temporary left
    with pytest.raises(OutputExistsError, match="vocals_train.txt"):
        write_fragments({"X": [(0, 1)]}, path)
    assert read_fragments(path)["C - Two"] == [(5, 7)]  # untouched
    write_fragments({"X": [(0, 1)]}, path, overwrite=True)
    assert read_fragments(path) == {"X": [(0, 1)]}
    for bad in ({"tab\there": [(0, 1)]}, {"A": [(5, 5)]}, {"A": [(-1, 5)]}):
        with pytest.raises(ValueError):
            write_fragments(bad, tmp_path / "bad.txt")
    assert not (tmp_path / "bad.txt").exists()


@pytest.mark.parametrize("line, message", [
    ("A - One\t0\n", "3 tab-separated fields"),
    ("A - One 0 100\n", "3 tab-separated fields"),
    ("A - One\tzero\t100\n", "invalid literal"),
    ("A - One\t100\t100\n", "0 <= start < end"),
    ("A - One\t-5\t100\n", "0 <= start < end"),
    ("\t0\t100\n", "3 tab-separated fields"),
])
def test_malformed_files_name_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "vocals_train.txt"
    path.write_text("A - One\t0\t100\n\n" + line)
    with pytest.raises(DatasetError, match=message) as info:
        read_fragments(path)
    assert str(path) in str(info.value) and "line 3" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="prepare-sad"):
        read_fragments(tmp_path / "nope.txt")


def test_file_names_follow_the_seed():
    assert sad_filename("vocals", "train", "train") == "vocals_train.txt"
    assert sad_filename("vocals", "train", "valid") == "vocals_valid.txt"
    assert sad_filename("drums", "test", None) == "drums_test.txt"
    assert sad_filename("bass", "train", None) == "bass_train.txt"


# --- mssbook prepare-sad --------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mssbook prepare-sad")
    configure_parser(parser)
    args = parser.parse_args(argv)
    return args.func(args)


@needs_ffmpeg
def test_cli_writes_the_file_and_refuses_to_overwrite(toy_root, toy_db, tmp_path, capsys):
    out = tmp_path / "sad"
    argv = ["--root", str(toy_root), "--target", "vocals", "--subset", "train", "--split", "all",
            "-o", str(out), "--is-wav", "--window", "0.5"]
    assert cli(argv) == 0
    path = out / "vocals_train.txt"
    expected = {k: v for k, v in detect_fragments(toy_db, "vocals", window_s=0.5).items() if v}
    assert read_fragments(path) == expected
    summary = capsys.readouterr().out
    assert "vocals_train.txt: 3 tracks (3 with fragments)" in summary and "kept" in summary
    n = sum(len(v) for v in expected.values())
    assert f"{n} fragments" in summary
    before = path.read_text()
    with pytest.raises(MSSBookError, match="--force"):
        cli(argv[:-2] + ["--window", "1.0"])
    assert path.read_text() == before  # refused before any work
    assert cli(argv[:-2] + ["--window", "1.0", "--force"]) == 0
    assert path.read_text() != before
    with pytest.raises(MSSBookError, match="overlap"):
        cli(argv + ["--overlap", "1.5", "--force"])
