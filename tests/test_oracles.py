"""mssbook.oracles: IBM, IRM, MWF and MIX oracles, their evaluation, and `mssbook oracle`.

Offline and seeded: a one-song toy dataset written by the test, plus the real MUSDB18 excerpts
(stempeg's example stem, shared/data/musdb18-sample) when they and ffmpeg are present.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mssbook import metrics
from mssbook.data.toy import generate_toy_dataset
from mssbook.errors import MSSBookError
from mssbook.oracles import (
    DEFAULT_HOP_LENGTH,
    DEFAULT_N_FFT,
    METHODS,
    binary_masks,
    ideal_binary_mask,
    ideal_ratio_mask,
    mixture_as_estimate,
    multichannel_wiener,
    oracle,
    oracle_options,
    ratio_masks,
)
from helpers import musdb_sample_root  # tests/helpers.py

SOURCES = ("vocals", "drums", "bass", "other")
HAVE_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
HAVE_MUSDB = all(importlib.util.find_spec(m) is not None for m in ("musdb", "museval"))
needs_musdb = pytest.mark.skipif(not (HAVE_FFMPEG and HAVE_MUSDB),
                                 reason="needs musdb, museval, and ffmpeg/ffprobe on PATH")


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    """One 3 s toy song in the MUSDB18 WAV layout (test subset); its stems sum to the mixture."""
    root = tmp_path_factory.mktemp("oracles") / "toy"
    generate_toy_dataset(root, n_train=0, n_valid=0, n_test=1, duration=3.0, seed=0, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def song(toy_root):
    """``(mixture, {source: audio})`` of the toy song, (channels, samples) float32."""
    (folder,) = (toy_root / "test").iterdir()

    def read(name):
        audio, _ = sf.read(folder / f"{name}.wav", dtype="float32", always_2d=True)
        return audio.T  # (channels, samples)

    return read("mixture"), {name: read(name) for name in SOURCES}


def _snr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """10·log10(‖s‖² / ‖ŝ − s‖²), dB."""
    return float(10 * np.log10(np.sum(reference**2) / np.sum((estimate - reference) ** 2)))


def _vocals_sdr(estimates: dict, references: dict) -> float:
    """BSSEval's SDR of the vocals estimate: median over 1 s frames (mssbook.metrics.csdr)."""
    return metrics.csdr({"vocals": references["vocals"]}, {"vocals": estimates["vocals"]})["vocals"]


# --------------------------------------------------------------------------------------------
# Shapes, and what each oracle guarantees
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_returns_float32_estimates_of_the_mixture_length(method, song):
    mixture, sources = song
    length = mixture.shape[1] - 123  # not a multiple of the hop
    cut = {name: audio[:, :length] for name, audio in sources.items()}
    estimates = oracle(method, mixture[:, :length], cut)
    assert list(estimates) == list(SOURCES)
    for audio in estimates.values():
        assert isinstance(audio, np.ndarray) and audio.dtype == np.float32
        assert audio.shape == (2, length) and np.all(np.isfinite(audio))


def test_ratio_masks_and_mwf_add_up_to_the_mixture(song):
    mixture, sources = song
    for estimates in (ideal_ratio_mask(mixture, sources, alpha=1.0), ideal_ratio_mask(mixture, sources),
                      multichannel_wiener(mixture, sources)):
        assert _snr(mixture, np.sum(list(estimates.values()), axis=0)) > 80  # STFT round trip only
    masks = ratio_masks(torch.rand(3, 2, 5, 7, dtype=torch.complex64), alpha=1.0)
    assert masks.shape == (3, 2, 5, 7) and float(masks.min()) >= 0
    torch.testing.assert_close(masks.sum(0), torch.ones(2, 5, 7))


def test_binary_masks_are_binary_and_select_whole_bins(song):
    mixture, sources = song
    x = torch.stft(torch.from_numpy(mixture), DEFAULT_N_FFT, DEFAULT_HOP_LENGTH,
                   window=torch.hann_window(DEFAULT_N_FFT), return_complex=True)  # (C, F, T)
    y = torch.stack([torch.stft(torch.from_numpy(sources[n]), DEFAULT_N_FFT, DEFAULT_HOP_LENGTH,
                                window=torch.hann_window(DEFAULT_N_FFT), return_complex=True) for n in SOURCES])
    for alpha in (1.0, 2.0):
        masks = binary_masks(x, y, alpha=alpha)  # (S, C, F, T)
        assert masks.shape == y.shape and set(masks.unique().tolist()) == {0.0, 1.0}
        # a bin goes to source j exactly when |Y_j|^alpha > 0.5 |X|^alpha (sigsep's IBM)
        expected = y.abs() ** alpha > 0.5 * x.abs() ** alpha
        assert (masks.bool() != expected).float().mean() < 1e-4  # up to ties at the threshold
    # the sigsep IBM is not a partition; in this song most of the energy still goes to exactly one source
    energy = x.abs() ** 2
    once = (binary_masks(x, y).sum(0) == 1).float()
    assert float((once * energy).sum() / energy.sum()) > 0.8
    # theta=None: each bin to the loudest source, a partition of the mixture
    loudest = binary_masks(x, y, theta=None)
    assert torch.equal(loudest.sum(0), torch.ones_like(loudest[0]))
    partition = ideal_binary_mask(mixture, sources, theta=None)
    assert _snr(mixture, np.sum(list(partition.values()), axis=0)) > 80


def test_ibm_partitions_sources_that_do_not_overlap():
    """Two tones an octave and more apart: every bin that matters belongs to one source, and the
    IBM estimates (default threshold) split the mixture between them almost perfectly."""
    sr, n = 44100, 44100
    t = np.arange(n) / sr
    low = np.stack([0.5 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 220 * t)]).astype(np.float32)
    high = np.stack([0.1 * np.sin(2 * np.pi * 3520 * t), 0.3 * np.sin(2 * np.pi * 3520 * t)]).astype(np.float32)
    for alpha in (1, 2):
        estimates = oracle(f"ibm{alpha}", low + high, {"low": low, "high": high})
        assert _snr(low + high, estimates["low"] + estimates["high"]) > 40
        assert _snr(low, estimates["low"]) > 30 and _snr(high, estimates["high"]) > 30


def test_mix_is_the_mixture(song):
    mixture, sources = song
    estimates = mixture_as_estimate(mixture, sources)
    assert list(estimates) == list(SOURCES)
    for audio in estimates.values():
        np.testing.assert_array_equal(audio, mixture)
    quarter = oracle("mix", mixture, sources, gain=0.25)  # sigsep's MIX.py scaling, on request
    np.testing.assert_allclose(quarter["vocals"], mixture / 4, rtol=1e-6)
    estimates["vocals"][:] = 0  # copies, not views of the input
    assert np.abs(mixture).max() > 0


def test_mono_and_multichannel_inputs(song):
    mixture, sources = song
    mono = oracle("mwf", mixture[0], {n: s[0] for n, s in sources.items()})
    assert mono["vocals"].shape == (1, mixture.shape[1])
    assert _snr(mixture[:1], np.sum(list(mono.values()), axis=0)) > 80
    three = oracle("mwf", np.concatenate([mixture, mixture[:1]]),
                   {n: np.concatenate([s, s[:1]]) for n, s in sources.items()})
    assert three["vocals"].shape == (3, mixture.shape[1])
    np.testing.assert_allclose(three["vocals"][2], three["vocals"][0], atol=1e-4)


def test_oracles_beat_the_mixture_and_soft_masks_beat_binary_ones(song):
    mixture, sources = song
    sdr = {method: _vocals_sdr(oracle(method, mixture, sources), sources)
           for method in ("ibm1", "ibm2", "irm1", "irm2", "mwf", "mix")}
    for method in ("ibm1", "ibm2", "irm1", "irm2", "mwf"):
        assert sdr[method] > sdr["mix"] + 10, sdr
    assert min(sdr["irm1"], sdr["irm2"], sdr["mwf"]) > max(sdr["ibm1"], sdr["ibm2"]), sdr


def test_options_and_errors(song):
    mixture, sources = song
    assert oracle_options("irm") == {"alpha": 2.0, "n_fft": 2048, "hop_length": 1024}
    assert oracle_options("ibm")["alpha"] == 1.0 and oracle_options("ibm2")["alpha"] == 2.0
    assert oracle_options("IRM1", alpha=1) == oracle_options("irm", alpha=1.0)  # case-insensitive
    with pytest.raises(MSSBookError, match="unknown oracle method 'ideal'; available: "
                       "ibm, ibm1, ibm2, irm, irm1, irm2, mwf, mix"):
        oracle("ideal", mixture, sources)
    with pytest.raises(MSSBookError, match="'irm1' means alpha=1; got alpha=2.*'irm'"):
        oracle("irm1", mixture, sources, alpha=2)
    with pytest.raises(MSSBookError, match="'mix' has no option n_fft; its options: gain"):
        oracle("mix", mixture, sources, n_fft=1024)
    with pytest.raises(MSSBookError, match="track.audio.T"):
        oracle("irm", mixture.T, sources)
    with pytest.raises(MSSBookError, match="source 'vocals' has 1 channel"):
        oracle("irm", mixture, {**sources, "vocals": sources["vocals"][:1]})
    with pytest.raises(MSSBookError, match="non-empty dict"):
        oracle("mwf", mixture, {})
    with pytest.raises(MSSBookError, match="too short for n_fft=2048"):
        oracle("ibm", mixture[:, :1000], {n: s[:, :1000] for n, s in sources.items()})
    with pytest.raises(MSSBookError, match="hop_length < n_fft"):
        oracle("irm", mixture, sources, hop_length=4096)
    with pytest.raises(MSSBookError, match="alpha must be positive"):
        oracle("irm", mixture, sources, alpha=0)


# --------------------------------------------------------------------------------------------
# Real MUSDB18 excerpts
# --------------------------------------------------------------------------------------------


@needs_musdb
def test_oracles_on_the_real_excerpts():
    import stempeg

    from mssbook.data.audio import load_audio
    from mssbook.data.musdb import open_musdb
    from mssbook.oracles import oracle_track

    # stempeg's own excerpt (a MUSDB18 test track): streams read one by one
    path = stempeg.example_stem_path()
    mixture, _ = load_audio(path, stream="mixture")
    sources = {name: load_audio(path, stream=name)[0] for name in SOURCES}
    estimates = oracle("irm2", mixture, sources)
    assert _vocals_sdr(estimates, sources) > _vocals_sdr({"vocals": mixture}, sources) + 10
    assert _snr(mixture, np.sum(list(estimates.values()), axis=0)) > 60

    root = musdb_sample_root()
    track = open_musdb(root, subsets="train").tracks[0]
    references = {name: track.targets[name].audio.T for name in (*SOURCES, "accompaniment")}
    mwf = oracle_track("mwf", track)
    assert sorted(mwf) == sorted(references) and mwf["vocals"].shape == track.audio.T.shape
    np.testing.assert_allclose(mwf["accompaniment"], mwf["drums"] + mwf["bass"] + mwf["other"], atol=1e-6)
    mix = oracle_track("mix", track)
    np.testing.assert_array_equal(mix["accompaniment"], track.audio.T.astype(np.float32))
    for name in ("vocals", "accompaniment"):
        gain = metrics.csdr({name: references[name]}, {name: mwf[name]})[name]
        floor = metrics.csdr({name: references[name]}, {name: mix[name]})[name]
        assert gain > floor + 10, (name, gain, floor)


# --------------------------------------------------------------------------------------------
# Evaluation and the command line
# --------------------------------------------------------------------------------------------


@needs_musdb
def test_evaluate_oracle_and_the_cli(toy_root, tmp_path, capsys):
    import museval

    from mssbook.cli import main
    from mssbook.evaluation import aggregate, scores_path
    from mssbook.oracles import evaluate_oracle

    out = tmp_path / "irm"
    argv = ["oracle", "--method", "IRM", "--root", str(toy_root), "--is-wav", "--tracks", "1",
            "-o", str(out), "--backend", "museval"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "oracle irm" in printed and "SDR" in printed
    assert all(name in printed for name in (*SOURCES, "accompaniment"))

    (song_dir,) = (toy_root / "test").iterdir()
    path = scores_path(out, "test", song_dir.name)
    data = json.loads(path.read_text())
    assert [t["name"] for t in data["targets"]] == ["drums", "bass", "other", "vocals", "accompaniment"]
    assert data["mssbook"] == {"oracle": "irm", "options": {"alpha": 2.0, "hop_length": 1024, "n_fft": 2048},
                               "backend": "museval", "win": 1.0, "hop": 1.0}
    store = museval.EvalStore()
    store.add_eval_dir(out)
    assert set(store.df["target"]) == {*SOURCES, "accompaniment"}
    table = aggregate(out, "test")
    assert table["vocals"]["SDR"] > 5 and table["accompaniment"]["SDR"] > table["vocals"]["SDR"]

    # the same oracle from Python resumes: nothing to score again, the same table
    again = evaluate_oracle("irm", toy_root, output_dir=out, backend="museval", progress=False)
    assert again["evaluated"] == [] and again["skipped"] == [song_dir.name]
    assert again["table"].scores == table.scores
    # other options would mix scores in one folder: refused before any work
    with pytest.raises(MSSBookError, match="other settings"):
        evaluate_oracle("irm", toy_root, output_dir=out, backend="museval", progress=False, alpha=1)

    # bad input: a clear message and status 2, no traceback
    with pytest.raises(SystemExit) as exit_info:
        main(["oracle", "--method", "ideal", "--root", str(toy_root), "-o", str(out)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'ideal'" in capsys.readouterr().err
    root = ["--root", str(toy_root)]
    assert main(["oracle", "--method", "irm1", "--alpha", "2", *root, "-o", str(tmp_path / "x")]) == 2
    assert "'irm1' means alpha=1" in capsys.readouterr().err
    assert main(["oracle", "--method", "mix", "--theta", "0.3", *root, "-o", str(tmp_path / "y")]) == 2
    assert "has no option theta" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
