"""mssbook.evaluate: museval JSON per track, resumable runs, the median/median table, oracles."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

museval = pytest.importorskip("museval")
pytest.importorskip("musdb")
if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
    pytest.skip("musdb needs ffmpeg and ffprobe on PATH", allow_module_level=True)

from mssbook import models  # noqa: E402
from mssbook.checkpoints import save_checkpoint  # noqa: E402
from mssbook.data.musdb import open_musdb  # noqa: E402
from mssbook.errors import MSSBookError  # noqa: E402
from mssbook.evaluation import (  # noqa: E402
    aggregate,
    configure_parser,
    evaluate_tracks,
    format_table,
    score_track,
    scores_path,
)

SR = 44100
SOURCES = ("vocals", "drums", "bass", "other")
TRACKS = ("Alpha - One", "Beta - Two")


def write_tree(root: Path, seconds: float = 2.0, names=TRACKS) -> Path:
    """A MUSDB18 WAV tree with a test subset: stems of tones and noise that sum to the mixture.

    The second track's vocals are exactly silent during the first second, so that frame is NaN
    for every target (museval's rule) and the aggregation must ignore it.
    """
    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    for k, name in enumerate(names):
        folder = root / "test" / name
        folder.mkdir(parents=True)
        total = np.zeros((n, 2), np.float32)
        for j, source in enumerate(SOURCES):
            f0 = 110.0 * (j + 1) * (1 + 0.13 * k)
            wave = 0.1 * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 6))
            audio = (wave[:, None] * [1.0, 0.7] + 0.01 * rng.standard_normal((n, 2))).astype(np.float32)
            if k == 1 and source == "vocals":
                audio[:SR] = 0.0
            sf.write(folder / f"{source}.wav", audio, SR, subtype="FLOAT")
            total += audio
        sf.write(folder / "mixture.wav", total, SR, subtype="FLOAT")
    return root


def tiny_umx(targets="vocals"):
    torch.manual_seed(0)
    model = models.create("umx", preset="tutorial", target=targets, hidden_size=8, nb_layers=1).eval()
    return model


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_tree(tmp_path_factory.mktemp("musdb"))


@pytest.fixture(scope="module")
def first_run(tree, tmp_path_factory):
    """One evaluation of a vocals model (shared; tests that change files copy the folder)."""
    out = tmp_path_factory.mktemp("eval") / "umx"
    model = tiny_umx("vocals")
    result = evaluate_tracks(model, tree, output_dir=out, progress=False, niter=0)
    return model, out, result


def test_writes_museval_json_for_vocals_and_accompaniment(first_run):
    _, out, result = first_run
    assert result["evaluated"] == list(TRACKS) and result["skipped"] == []
    for name in TRACKS:
        path = scores_path(out, "test", name)
        assert path.is_file()
        data = json.loads(path.read_text())
        assert [t["name"] for t in data["targets"]] == ["vocals", "accompaniment"]
        assert len(data["targets"][0]["frames"]) == 2  # 1 s frames of a 2 s track
        assert data["mssbook"]["options"] == {"niter": 0} and data["mssbook"]["model"]["name"] == "umx"
    # museval reads them back
    store = museval.EvalStore()
    store.add_eval_dir(out)
    assert sorted(store.df["track"].unique()) == sorted(TRACKS)
    assert set(store.df["target"]) == {"vocals", "accompaniment"}
    # the silent first second of the second track's vocals: NaN for every target there
    second = json.loads(scores_path(out, "test", TRACKS[1]).read_text())
    assert all(np.isnan(t["frames"][0]["metrics"]["SDR"]) for t in second["targets"])


def test_aggregate_matches_museval_evalstore(first_run):
    _, out, result = first_run
    table = aggregate(out, "test")
    store = museval.EvalStore(frames_agg="median", tracks_agg="median")
    store.add_eval_dir(out)
    reference = store.agg_frames_tracks_scores()
    for target in ("vocals", "accompaniment"):
        for metric in ("SDR", "SIR", "ISR", "SAR"):
            assert table[target][metric] == pytest.approx(reference[(target, metric)], abs=1e-9)
    per_track = store.agg_frames_scores()
    for name in TRACKS:
        assert table.per_track[name]["vocals"]["SDR"] == pytest.approx(per_track[(name, "vocals", "SDR")], abs=1e-9)
    assert result["table"].scores == table.scores
    text = format_table(table)
    assert "vocals" in text and "accompaniment" in text and "median" in text
    assert f"{table['vocals']['SDR']:.2f}" in text


def test_resume_skips_finished_tracks_and_refuses_other_settings(tree, first_run, tmp_path):
    model, out, _ = first_run
    out2 = tmp_path / "copy"
    shutil.copytree(out, out2)
    mtimes = {n: scores_path(out2, "test", n).stat().st_mtime_ns for n in TRACKS}
    again = evaluate_tracks(model, tree, output_dir=out2, progress=False, niter=0)
    assert again["evaluated"] == [] and again["skipped"] == list(TRACKS)
    assert {n: scores_path(out2, "test", n).stat().st_mtime_ns for n in TRACKS} == mtimes
    assert again["table"].scores == aggregate(out, "test").scores

    # a truncated file is evaluated again; the others are kept
    scores_path(out2, "test", TRACKS[0]).write_text('{"targets": [')
    with pytest.warns(UserWarning, match="unreadable"):
        partial = evaluate_tracks(model, tree, output_dir=out2, progress=False, niter=0)
    assert partial["evaluated"] == [TRACKS[0]] and partial["skipped"] == [TRACKS[1]]
    assert scores_path(out2, "test", TRACKS[1]).stat().st_mtime_ns == mtimes[TRACKS[1]]
    assert partial["table"].scores == aggregate(out, "test").scores  # same model, same scores

    # other settings would mix scores: refused, unless overwrite=True
    with pytest.raises(MSSBookError, match="other settings.*segment"):
        evaluate_tracks(model, tree, output_dir=out2, progress=False, niter=0, segment=2.0)
    forced = evaluate_tracks(model, tree, output_dir=out2, progress=False, niter=0, segment=2.0,
                             overwrite=True, tracks=1)
    assert forced["evaluated"] == [TRACKS[0]] and forced["tracks"] == [TRACKS[0]]


def test_oracle_estimates_score_high_and_mixture_low(tree, tmp_path):
    track = open_musdb(tree, subsets="test").tracks[0]
    rng = np.random.default_rng(1)
    # the true vocals and accompaniment, slightly perturbed (perfect frames would be stored as
    # NaN), as (channels, samples) arrays like separate() returns them. (Four targets work the
    # same way but cost museval about 4x more: a 4096-square system instead of 2048.)
    n = track.audio.shape[0]
    noisy = {s: track.targets[s].audio.T + 1e-4 * rng.standard_normal((2, n)) for s in ("vocals", "accompaniment")}
    score_track(track, noisy, output_dir=tmp_path)
    assert scores_path(tmp_path, "test", track.name).is_file()
    oracle = aggregate(tmp_path, "test")
    assert oracle.targets() == ["vocals", "accompaniment"] and oracle.tracks == [track.name]
    for s in noisy:
        assert oracle[s]["SDR"] > 40 and oracle[s]["SIR"] > 40, (s, oracle[s])
    # the mixture as the vocals estimate (the MIX oracle) scores low
    low = score_track(track, {"vocals": track.audio / 2})
    sdr = {t["name"]: np.nanmedian([f["metrics"]["SDR"] for f in t["frames"]]) for t in low.scores["targets"]}
    assert set(sdr) == {"vocals", "accompaniment"} and all(v < 5 for v in sdr.values()), sdr


def test_single_estimates_are_completed(tree):
    track = open_musdb(tree, subsets="test").tracks[0]
    rng = np.random.default_rng(2)
    vocals = track.targets["vocals"].audio + 0.05 * rng.standard_normal(track.audio.shape)
    # vocals alone = museval's vocals/accompaniment pair with accompaniment = mixture - vocals;
    # the JSON is museval's, byte for byte
    ours = score_track(track, {"vocals": vocals.T})
    theirs = museval.eval_mus_track(track, {"vocals": vocals, "accompaniment": track.audio - vocals})
    assert ours.json == theirs.json
    # drums alone is scored against "everything else"; SDR and ISR do not depend on the other
    # sources of the group (metrics spec 1.1), so they match a drums + bass evaluation
    drums = track.targets["drums"].audio + 0.05 * rng.standard_normal(track.audio.shape)
    bass = track.targets["bass"].audio + 0.05 * rng.standard_normal(track.audio.shape)
    alone = score_track(track, {"drums": drums})
    assert [t["name"] for t in alone.scores["targets"]] == ["drums"]
    group = museval.eval_mus_track(track, {"drums": drums, "bass": bass})
    a = alone.scores["targets"][0]["frames"]
    g = next(t for t in group.scores["targets"] if t["name"] == "drums")["frames"]
    assert len(a) == len(g) == 2
    for fa, fg in zip(a, g):
        for metric in ("SDR", "ISR"):
            assert float(fa["metrics"][metric]) == pytest.approx(float(fg["metrics"][metric]), abs=2e-5)
        assert float(fa["metrics"]["SIR"]) != float(fg["metrics"]["SIR"])  # SIR depends on the group


def test_errors(tree, tmp_path):
    model = tiny_umx("vocals")
    with pytest.raises(MSSBookError, match="backend 'exact'.*fast, museval"):
        evaluate_tracks(model, tree, output_dir=tmp_path, backend="exact", progress=False)
    with pytest.raises(MSSBookError, match="no track named 'Nobody - Nothing'"):
        evaluate_tracks(model, tree, output_dir=tmp_path, tracks=["Nobody - Nothing"], progress=False)
    with pytest.raises(MSSBookError, match="positive number"):
        evaluate_tracks(model, tree, output_dir=tmp_path, tracks=0, progress=False)
    with pytest.raises(MSSBookError, match="no museval score files"):
        aggregate(tmp_path / "empty", "test")
    track = open_musdb(tree, subsets="test").tracks[0]
    with pytest.raises(MSSBookError, match="nothing can be scored"):
        score_track(track, {"piano": track.audio})
    with pytest.raises(MSSBookError, match="EM.*two sources"):  # the model's ValueError, made clear
        evaluate_tracks(model, tree, output_dir=tmp_path / "em", tracks=1, progress=False, niter=1)


def test_cli(tree, tmp_path, capsys):
    model = tiny_umx("vocals")
    model.name = "umx"
    ckpt = save_checkpoint(tmp_path / "run" / "best.pt", model)
    parser = argparse.ArgumentParser(prog="mssbook evaluate")
    configure_parser(parser)
    argv = ["--root", str(tree), "--model", str(tmp_path / "run"), "-o", str(tmp_path / "eval"),
            "--tracks", "1", "--niter", "0", "--device", "cpu", "--segment", "2", "--is-wav"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "vocals" in printed and "SDR" in printed and "accompaniment" in printed
    assert scores_path(tmp_path / "eval", "test", TRACKS[0]).is_file()
    assert not scores_path(tmp_path / "eval", "test", TRACKS[1]).exists()
    assert ckpt.is_file()


def test_track_level_metrics_usdr_and_csdr(tree, tmp_path, capsys):
    """--metrics usdr csdr: per-track values equal mssbook.metrics on the same estimates, the table
    takes the mean (uSDR) and the median (cSDR) over tracks, and a resume must ask for the same."""
    from mssbook import metrics
    from mssbook.evaluation import TRACK_METRICS_KEY

    model = tiny_umx("vocals")
    model.name = "umx"
    save_checkpoint(tmp_path / "run" / "best.pt", model)
    parser = argparse.ArgumentParser(prog="mssbook evaluate")
    configure_parser(parser)
    argv = ["--root", str(tree), "--model", str(tmp_path / "run"), "-o", str(tmp_path / "eval"), "--niter", "0",
            "--device", "cpu", "--is-wav", "--metrics", "usdr", "csdr"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "uSDR" in printed and "cSDR" in printed
    table = aggregate(tmp_path / "eval", "test")
    per_track = {}
    for name in TRACKS:
        data = json.loads(scores_path(tmp_path / "eval", "test", name).read_text())
        track = next(t for t in open_musdb(tree, subsets="test").tracks if t.name == name)
        from mssbook.separation import separate

        est = separate(track.audio.T.astype(np.float32), track.rate, tmp_path / "run", niter=0, device="cpu")
        ref = {"vocals": track.targets["vocals"].audio.T}
        expected_u = metrics.usdr(ref, est)["vocals"]
        expected_c = metrics.csdr(ref, est, track.rate)["vocals"]
        stored = data[TRACK_METRICS_KEY]["vocals"]
        assert set(data[TRACK_METRICS_KEY]) == {"vocals"}  # the completed accompaniment is not the model's
        assert stored["uSDR"] == pytest.approx(expected_u, abs=1e-4)
        assert stored["cSDR"] == pytest.approx(expected_c, abs=1e-4)
        assert table.per_track[name]["vocals"]["uSDR"] == pytest.approx(stored["uSDR"])
        per_track[name] = stored
    assert table.track_scores["vocals"]["uSDR"] == pytest.approx(np.mean([v["uSDR"] for v in per_track.values()]))
    assert table.track_scores["vocals"]["cSDR"] == pytest.approx(np.median([v["cSDR"] for v in per_track.values()]))
    # the same folder without --metrics is another setting: refused, not mixed
    args = parser.parse_args(argv[:-3])
    with pytest.raises(MSSBookError, match="other settings"):
        args.func(args)
    with pytest.raises(MSSBookError, match="unknown metric"):
        evaluate_tracks(model, tree, output_dir=tmp_path / "x", metrics=("sdr",), progress=False)
