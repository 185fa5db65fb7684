"""mssbook.separate: any rate/channels in and out, segments that sum to one, files, the CLI."""

from __future__ import annotations

import argparse
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mssbook import models
from mssbook.checkpoints import save_checkpoint
from mssbook.errors import MSSBookError, OutputExistsError
from mssbook.models.base import SeparationModel
from mssbook.paths import shared_data_dir
import mssbook.separation as separation
from mssbook.separation import (
    DEFAULT_OVERLAP,
    DEFAULT_SEGMENT,
    configure_parser,
    output_names,
    plan_segments,
    resolve_model,
    run_cli,
    separate,
    separate_file,
)

SR = 44100


# --------------------------------------------------------------------------------------------
# Test models: cheap, exactly known, and honest about what they test
# --------------------------------------------------------------------------------------------


class GainModel(SeparationModel):
    """Two outputs: ``a = g * mixture`` with a gain ``g`` that depends on the segment's content,
    and ``b = mixture - a``. Per segment a + b is the mixture, so after overlap-add a + b is the
    mixture exactly when the cross-fade weights sum to one; a alone differs between segmentations.
    Records the shape of every batch it sees."""

    def __init__(self, nb_channels=2, sample_rate=SR, scale=1.0):
        super().__init__(("a", "b"), sample_rate=sample_rate, nb_channels=nb_channels)
        self.calls: list[tuple[int, ...]] = []
        self.scale = scale

    def separation_options(self):
        return {"bias": 0.0}

    def separate(self, mixture, bias=0.0):
        self.calls.append(tuple(mixture.shape))
        g = torch.sigmoid(mixture.mean(dim=(-1, -2), keepdim=True) * 50 + bias)[..., None]  # (B,1,1,1)
        a = g * mixture[:, None] * self.scale
        b = mixture[:, None] * self.scale - a
        return torch.cat([a, b], dim=1)


class IdentityModel(SeparationModel):
    """One output, the mixture itself: segmented output must reproduce the input exactly."""

    def __init__(self, nb_channels=2, sample_rate=SR):
        super().__init__(("mix",), sample_rate=sample_rate, nb_channels=nb_channels)

    def separate(self, mixture):
        return mixture[:, None].clone()


def tiny_umx(targets="vocals", **kw):
    torch.manual_seed(0)
    return models.create("umx", preset="tutorial", target=targets, hidden_size=8, nb_layers=1, **kw).eval()


def tone(seconds, sr, channels=2, seed=0):
    """Band-limited test audio (a few partials below 4 kHz), (channels, samples) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros((channels, t.size))
    for f in (220.0, 330.0, 1250.0, 3100.0):
        out += 0.1 * np.sin(2 * np.pi * f * t[None] + rng.uniform(0, 6, (channels, 1)))
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------


def test_plan_segments_covers_without_padding():
    assert plan_segments(10, 4, 0.25) == [0, 3, 6]
    assert plan_segments(10, 4, 0.5) == [0, 2, 4, 6]
    assert plan_segments(4, 4, 0.25) == [0]
    assert plan_segments(3, 10, 0.25) == [0]
    for length, seg, ov in ((1000, 300, 0.25), (1001, 300, 0.0), (999, 128, 0.9)):
        starts = plan_segments(length, seg, ov)
        assert starts[0] == 0 and starts[-1] + seg == length
        assert all(b - a <= seg for a, b in zip(starts, starts[1:]))  # no gaps


@pytest.mark.parametrize("seconds,segment,overlap", [(2.3, 0.5, 0.25), (2.0, 0.5, 0.0), (1.7, 0.3, 0.6), (2.1, 1.0, 0.9)])
def test_identity_model_segmented_reproduces_input(seconds, segment, overlap):
    x = np.random.default_rng(1).standard_normal((2, int(seconds * SR))).astype(np.float32)
    out = separate(x, SR, IdentityModel(), segment=segment, overlap=overlap, device="cpu")
    np.testing.assert_allclose(out["mix"], x, rtol=0, atol=2e-6)


def test_overlap_add_weights_sum_to_one_with_content_dependent_outputs():
    x = np.random.default_rng(2).standard_normal((2, int(3.1 * SR))).astype(np.float32) * 0.1
    x[:, : SR] += 0.5  # segments differ: the gain depends on each segment's mean
    model = GainModel()
    one = separate(x, SR, model, device="cpu", segment=10)
    seg = separate(x, SR, model, device="cpu", segment=0.8, overlap=0.3)
    assert len(model.calls) == 1 + len(plan_segments(x.shape[1], int(0.8 * SR), 0.3))
    assert not np.allclose(one["a"], seg["a"], atol=1e-3)  # segmentation really changes the estimate ...
    np.testing.assert_allclose(seg["a"] + seg["b"], x, atol=2e-6)  # ... but the pieces still add up


def test_segment_longer_than_input_equals_one_pass_and_model_call():
    model = tiny_umx(["vocals", "drums"])
    x = tone(2.0, SR)
    with torch.inference_mode():
        direct = model.separate(torch.from_numpy(x)[None], niter=1)[0].numpy()
    auto = separate(x, SR, model, device="cpu", niter=1)  # 2 s < DEFAULT_SEGMENT: one pass
    long = separate(x, SR, model, device="cpu", segment=5.0, niter=1)
    for k, name in enumerate(("vocals", "drums")):
        assert np.array_equal(auto[name], direct[k])
        assert np.array_equal(long[name], direct[k])


def test_umx_residual_with_segments_sums_to_mixture():
    # niter=0: magnitudes with the mixture phase, so UMX's own residual completes the mixture
    # exactly in every segment (with EM iterations the regularised Wiener gains of near-silent
    # bins do not quite sum to one), and overlap-add must keep that
    model = tiny_umx(["vocals", "drums"])
    x = tone(2.5, SR)
    out = separate(x, SR, model, device="cpu", segment=0.7, overlap=0.25, residual=True, niter=0)
    assert list(out) == ["vocals", "drums", "residual"]
    np.testing.assert_allclose(sum(out.values()), x, atol=1e-5)
    # a subset with a residual: vocals + everything else, the same vocals as with all targets
    two = separate(x, SR, model, device="cpu", segment=0.7, targets="vocals", residual=True, niter=1)
    assert list(two) == ["vocals", "residual"]
    np.testing.assert_allclose(two["vocals"] + two["residual"], x, atol=1e-6)
    four = separate(x, SR, model, device="cpu", segment=0.7, residual=True, niter=1)
    assert np.array_equal(two["vocals"], four["vocals"])


def test_long_input_runs_in_bounded_segments():
    minutes = 3
    x = np.zeros((2, minutes * 60 * SR), dtype=np.float32)
    x[:, ::997] = 0.5
    model = GainModel()
    out = separate(x, SR, model, device="cpu", progress=True)  # segment=None: 10 s segments
    seg = int(DEFAULT_SEGMENT * SR)
    assert len(model.calls) == len(plan_segments(x.shape[1], seg, DEFAULT_OVERLAP)) == 20
    assert all(shape == (1, 2, seg) for shape in model.calls)
    assert out["a"].shape == x.shape
    np.testing.assert_allclose(out["a"] + out["b"], x, atol=2e-6)


def test_long_umx_input_in_segments():
    model = tiny_umx("vocals")
    x = tone(12.0, SR, seed=3)
    out = separate(x, SR, model, device="cpu", segment=4.0, niter=0)
    assert out["vocals"].shape == x.shape and np.isfinite(out["vocals"]).all()


# --------------------------------------------------------------------------------------------
# Rates and channels
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sr,channels", [(22050, 1), (48000, 2), (16000, 2)])
def test_umx_any_rate_and_channel_count(sr, channels):
    model = tiny_umx("vocals")
    x = tone(1.3, sr, channels=channels)
    audio = x[0] if channels == 1 else x
    out = separate(audio, sr, model, device="cpu", residual=True, niter=0)
    for name in ("vocals", "residual"):
        assert out[name].shape == audio.shape and out[name].dtype == np.float32
    # the residual is computed by UMX at 44.1 kHz; after resampling back the sum is the input
    # up to the resampler's round trip (small for band-limited audio, away from the edges)
    err = np.abs(out["vocals"] + out["residual"] - audio)[..., 2000:-2000]
    assert err.max() < 5e-3


def test_identity_round_trip_through_rates():
    for sr in (22050, 48000):
        x = tone(1.0, sr)
        out = separate(torch.from_numpy(x), sr, IdentityModel(), device="cpu")["mix"]
        assert out.shape == x.shape
        assert np.abs(out - x)[:, 500:-500].max() < 5e-3


def test_mono_model_separates_each_channel_and_stereo_model_takes_mono():
    x = tone(0.5, SR, channels=2)
    x[1] *= -0.5  # channels differ
    mono = GainModel(nb_channels=1)
    out = separate(x, SR, mono, device="cpu")
    assert mono.calls == [(2, 1, x.shape[1])]  # both channels as a batch of mono signals
    # each channel separated on its own: same as separating it alone
    left = separate(x[0], SR, GainModel(nb_channels=1), device="cpu")
    np.testing.assert_allclose(out["a"][0], left["a"], atol=1e-7)

    stereo = GainModel(nb_channels=2)
    out = separate(x[0], SR, stereo, device="cpu")
    assert stereo.calls == [(1, 2, x.shape[1])]
    assert out["a"].shape == x[0].shape
    np.testing.assert_allclose(out["a"] + out["b"], x[0], atol=1e-6)

    with pytest.raises(MSSBookError, match="3 channels.*ffmpeg"):
        separate(tone(0.2, SR, channels=3), SR, stereo, device="cpu")


# --------------------------------------------------------------------------------------------
# Targets, options, model resolution
# --------------------------------------------------------------------------------------------


def test_targets_subset_and_own_residual():
    x = tone(0.5, SR)
    model = GainModel()
    both = separate(x, SR, model, device="cpu")
    only_b = separate(x, SR, model, targets="b", device="cpu")
    assert list(only_b) == ["b"] and np.array_equal(only_b["b"], both["b"])
    # GainModel has no residual option: the residual is the mixture minus the returned targets
    out = separate(x, SR, model, residual=True, device="cpu")
    assert list(out) == ["a", "b", "residual"] and np.abs(out["residual"]).max() < 1e-6
    out = separate(x, SR, model, targets=["residual", "a"], residual=True, device="cpu")
    assert list(out) == ["residual", "a"]
    np.testing.assert_allclose(out["residual"], both["b"], atol=1e-6)
    assert output_names(model, residual=True) == ["a", "b", "residual"]
    assert output_names(model, residual=True, targets="b") == ["b", "residual"]
    assert output_names(tiny_umx("vocals"), residual=True) == ["vocals", "residual"]


def test_errors_name_the_fix():
    x = tone(0.3, SR)
    model = GainModel()
    with pytest.raises(MSSBookError, match=r"unknown target.*'vocals'.*separates a, b"):
        separate(x, SR, model, targets=["vocals"], device="cpu")
    with pytest.raises(MSSBookError, match="residual=True"):
        separate(x, SR, model, targets=["residual"], device="cpu")
    with pytest.raises(MSSBookError, match=r"no separation option 'niter'.*bias"):
        separate(x, SR, model, niter=1, device="cpu")
    with pytest.raises(MSSBookError, match=r"no separation option 'nitter'.*niter"):
        separate(x, SR, tiny_umx(), nitter=1, device="cpu")
    with pytest.raises(MSSBookError, match="overlap"):
        separate(x, SR, model, overlap=1.0, device="cpu")
    with pytest.raises(MSSBookError, match="segment"):
        separate(x, SR, model, segment=-1, device="cpu")
    with pytest.raises(MSSBookError, match=r"\(samples, channels\)"):
        separate(x.T.copy(), SR, model, device="cpu")
    with pytest.raises(MSSBookError, match="NaN"):
        separate(np.full((2, 100), np.nan, np.float32), SR, model, device="cpu")
    with pytest.raises(MSSBookError, match="sr must"):
        separate(x, 0, model, device="cpu")
    with pytest.raises(MSSBookError, match="unknown device"):
        separate(x, SR, model, device="gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(MSSBookError, match="no CUDA GPU"):
            separate(x, SR, model, device="cuda")


def test_resolve_model(tmp_path):
    model = tiny_umx("vocals")
    model.name = "umx"
    ckpt = save_checkpoint(tmp_path / "run" / "best.pt", model)
    for source in (ckpt, tmp_path / "run", str(ckpt)):
        loaded = resolve_model(source, device="cpu")
        assert loaded.targets == ("vocals",) and not loaded.training
    assert resolve_model(model, device="cpu") is model
    with pytest.raises(MSSBookError, match="no checkpoint at"):
        resolve_model(tmp_path / "missing.pt", device="cpu")
    with pytest.raises(MSSBookError, match=r"unknown model 'umx-large'.*umxhq"):
        resolve_model("umx-large", device="cpu")
    with pytest.raises(MSSBookError, match="not an mssbook SeparationModel"):
        resolve_model(torch.nn.Linear(2, 2), device="cpu")

def test_pretrained_names_resolve_through_the_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("MSSBOOK_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("MSSBOOK_WEIGHTS_URL", "http://127.0.0.1:9/")  # nothing listens: offline
    with pytest.raises(MSSBookError, match="could not download"):
        resolve_model("umxhq", device="cpu")


def test_top_level_separate_is_the_function():
    import mssbook

    x = tone(0.2, SR)
    out = mssbook.separate(x, SR, model=GainModel(), device="cpu")
    assert list(out) == ["a", "b"] and mssbook.separate is separate


def test_model_mode_is_restored():
    model = GainModel().train()
    separate(tone(0.2, SR), SR, model, device="cpu")
    assert model.training


# --------------------------------------------------------------------------------------------
# Files and CLI
# --------------------------------------------------------------------------------------------


def write_wav(path: Path, audio: np.ndarray, sr: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.T, sr, subtype="PCM_16")
    return path


def test_separate_file_writes_refuses_and_replaces(tmp_path):
    x = tone(1.0, 22050)
    song = write_wav(tmp_path / "in" / "my song.wav", x, 22050)
    model = GainModel(sample_rate=22050)
    paths = separate_file(song, tmp_path / "out", model, device="cpu")
    assert sorted(p.name for p in paths.values()) == ["a.wav", "b.wav"]
    assert all(p.parent == tmp_path / "out" / "my song" for p in paths.values())
    info = sf.info(paths["a"])
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, 2, x.shape[1], "FLOAT")
    a, _ = sf.read(paths["a"], dtype="float32")
    b, _ = sf.read(paths["b"], dtype="float32")
    ref, _ = sf.read(song, dtype="float32")
    np.testing.assert_allclose(a + b, ref, atol=2e-6)

    calls = len(model.calls)
    mtime = paths["a"].stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="nothing was separated.*--force"):
        separate_file(song, tmp_path / "out", model, device="cpu")
    assert len(model.calls) == calls  # checked before any work
    assert paths["a"].stat().st_mtime_ns == mtime

    separate_file(song, tmp_path / "out", GainModel(sample_rate=22050, scale=0.5), device="cpu", overwrite=True)
    a2, _ = sf.read(paths["a"], dtype="float32")
    np.testing.assert_allclose(a2, a * 0.5, atol=1e-6)


def test_separate_file_integer_output_is_clip_safe(tmp_path):
    x = tone(0.5, SR) * 8  # the stems peak above 1
    song = tmp_path / "loud.wav"
    sf.write(song, x.T, SR, subtype="FLOAT")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = separate_file(song, tmp_path / "out", GainModel(), device="cpu", subtype="PCM_16")
    assert any("scaled by" in str(w.message) for w in caught)
    a, _ = sf.read(paths["a"])
    b, _ = sf.read(paths["b"])
    assert max(np.abs(a).max(), np.abs(b).max()) <= 1.0
    gain = float(np.sum((a + b).T * x) / np.sum(x * x))  # one common gain: balance and sum kept
    assert 0.2 < gain < 1.0
    np.testing.assert_allclose((a + b).T, gain * x, atol=2e-4)
    assert abs(max(np.abs(a).max(), np.abs(b).max()) - 0.999) < 1e-3


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mssbook separate")
    configure_parser(parser)
    args = parser.parse_args(argv)
    assert args.func is run_cli
    return run_cli(args)


def test_cli_end_to_end(tmp_path, capsys):
    model = tiny_umx(["vocals", "drums"])
    model.name = "umx"
    ckpt = save_checkpoint(tmp_path / "model.pt", model)
    songs = [write_wav(tmp_path / f"song{k}.wav", tone(1.0, 32000, channels=1 + k, seed=k), 32000) for k in range(2)]
    out = tmp_path / "out"
    argv = [*map(str, songs), "-o", str(out), "--model", str(ckpt), "--targets", "vocals",
            "--residual", "--niter", "0", "--device", "cpu", "--segment", "0.5", "--overlap", "0.25"]
    assert cli(argv) == 0
    for k, song in enumerate(songs):
        for name in ("vocals", "residual"):
            info = sf.info(out / song.stem / f"{name}.wav")
            assert (info.samplerate, info.channels, info.frames) == (32000, 1 + k, 32000)
        assert not (out / song.stem / "drums.wav").exists()
    before = (out / "song0" / "vocals.wav").stat().st_mtime_ns
    with pytest.raises(OutputExistsError):
        cli(argv)
    assert (out / "song0" / "vocals.wav").stat().st_mtime_ns == before
    assert cli(argv + ["--force", "--int16"]) == 0
    assert sf.info(out / "song0" / "vocals.wav").subtype == "PCM_16"
    with pytest.raises(MSSBookError, match="no separation option 'foo'"):
        cli(argv + ["--force", "--option", "foo=1"])
    with pytest.raises(MSSBookError, match="no such file"):
        cli([str(tmp_path / "nope.wav"), "--model", str(ckpt)])


def test_cli_on_real_mp3(tmp_path):
    shared = shared_data_dir()
    mp3s = sorted((shared / "mixtures").glob("*.mp3")) if shared else []
    if not mp3s:
        pytest.skip("../shared/data/mixtures/*.mp3 not present")
    if shutil.which("ffmpeg") is None:
        pytest.skip("reading MP3 needs ffmpeg")
    model = tiny_umx("vocals")
    model.name = "umx"
    save_checkpoint(tmp_path / "run" / "best.pt", model)
    out = tmp_path / "out"
    assert cli([str(mp3s[0]), "-o", str(out), "--model", str(tmp_path / "run"), "--device", "cpu",
                "--duration", "4", "--niter", "0"]) == 0
    written = out / mp3s[0].stem / "vocals.wav"
    info = sf.info(written)
    assert info.samplerate == 44100 and info.channels == 2 and abs(info.frames - 4 * 44100) <= 1
    audio, _ = sf.read(written)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0


# --------------------------------------------------------------------------------------------
# Streaming: separate_file decodes, resamples, separates and writes block by block
# --------------------------------------------------------------------------------------------


class StartsModel(SeparationModel):
    """Reads the sample index a segment starts at from a ramp input (x[n] = n / 1000)."""

    def __init__(self, sample_rate=1000):
        super().__init__(("mix",), sample_rate=sample_rate, nb_channels=1)
        self.starts: list[int] = []
        self.lengths: list[int] = []

    def separate(self, mixture):
        self.starts.append(int(round(float(mixture[0, 0, 0]) * 1000)))
        self.lengths.append(mixture.shape[-1])
        return mixture[:, None].clone()


@pytest.mark.parametrize("length,segment,overlap", [
    (1000, 0.3, 0.25), (1001, 0.3, 0.0), (999, 0.128, 0.9), (300, 0.3, 0.25), (299, 0.3, 0.1),
    (301, 0.3, 0.5), (5000, 0.7, 0.1), (10, 2.0, 0.1)])
@pytest.mark.parametrize("block", [1, 7, 64, 100_000])
def test_streamed_segments_are_plan_segments_without_knowing_the_length(length, segment, overlap, block):
    """_segmented finds the input's length only when the source ends, yet runs exactly the
    segments plan_segments plans for that length, and its output covers the input once."""
    x = (np.arange(length, dtype=np.float64) / 1000).astype(np.float32)[None]
    model = StartsModel()
    job = separation._prepare(model, torch.device("cpu"), 1, None, False, segment, overlap, {})
    blocks = (x[:, i:i + block] for i in range(0, length, block))
    out = np.concatenate(list(separation._segmented(job, blocks)), axis=-1)
    seg = min(length, int(round(segment * 1000)))
    assert model.starts == plan_segments(length, seg, overlap)
    assert set(model.lengths) == {seg}
    np.testing.assert_allclose(out[0], x, rtol=0, atol=1e-6)


@pytest.mark.parametrize("orig,new", [(44100, 48000), (48000, 44100), (22050, 44100), (8000, 44100), (44100, 16000)])
def test_block_resampler_equals_resampling_the_whole_signal(orig, new):
    from mssbook.signal.resample import resample

    x = np.random.default_rng(4).standard_normal((2, 20011)).astype(np.float32)
    whole = resample(x, orig, new)
    for block in (333, 4096, 20011):
        rs = separation._BlockResampler(orig, new)
        parts = [rs.push(x[:, i:i + block]) for i in range(0, x.shape[1], block)] + [rs.finish()]
        got = np.concatenate(parts, axis=-1)
        assert got.shape == whole.shape
        np.testing.assert_allclose(got, whole, rtol=0, atol=1e-6)


def read_stems(paths) -> dict:
    return {name: sf.read(path, dtype="float32", always_2d=True)[0].T for name, path in paths.items()}


@pytest.mark.parametrize("sr,channels,segment", [
    (SR, 2, 0.3), (SR, 1, 0.37), (SR, 2, 0.55), (SR, 2, None), (32000, 2, 0.25), (48000, 1, 0.4)])
def test_streamed_file_equals_separate_in_memory(tmp_path, monkeypatch, sr, channels, segment):
    """separate_file (blocks of 4099 frames, so every segment spans several blocks and block
    edges fall anywhere) writes what separate returns for the loaded file: several segment
    lengths, a length that is not a multiple of the segment, mono and stereo, resampled rates,
    a content-dependent model, UMX (BiLSTM + Wiener EM) and a residual computed here."""
    monkeypatch.setattr(separation, "READ_BLOCK", 4099)
    x = tone(1.3, sr, channels=channels, seed=5)
    x[:, : sr // 3] += 0.3  # segments differ (GainModel's gain follows each segment's mean)
    song = tmp_path / "song.wav"
    sf.write(song, x.T, sr, subtype="FLOAT")
    for model, opts in ((GainModel(), {}), (tiny_umx(["vocals", "drums"]), {"niter": 1})):
        ref = separate(x, sr, model, device="cpu", segment=segment, targets=model.targets[0], residual=True, **opts)
        paths = separate_file(song, tmp_path / "out", model, device="cpu", segment=segment,
                              targets=model.targets[0], residual=True, overwrite=True, **opts)
        got = read_stems(paths)
        assert list(got) == list(ref)
        for name in ref:
            assert got[name].shape == ref[name].shape == x.shape
            np.testing.assert_allclose(got[name], ref[name], rtol=0, atol=1e-6)


def test_separate_file_streams_the_input(tmp_path, monkeypatch):
    """The first segment is separated when only about one segment and one stride of the file has
    been decoded (not the whole file), and the outputs grow on disk segment by segment."""
    from mssbook.data import audio as audio_mod

    monkeypatch.setattr(separation, "READ_BLOCK", 1000)
    x = np.random.default_rng(6).standard_normal((2, 20 * 8000)).astype(np.float32) * 0.1
    song = tmp_path / "long.wav"
    sf.write(song, x.T, 8000, subtype="FLOAT")
    decoded = []
    real_read_blocks = audio_mod.read_blocks

    class Counting(audio_mod.AudioBlocks):
        """The real block reader, counting the frames it has handed out."""

        def __iter__(self):
            for block in super().__iter__():
                decoded.append(block.shape[-1])
                yield block

    def counting_read_blocks(path, block, start=0.0, duration=None, stream=None):
        return Counting(audio_mod._open_span(path, start, duration, stream), block)

    class Probe(GainModel):
        def separate(self, mixture, bias=0.0):
            self.decoded_at.append(sum(decoded))
            return super().separate(mixture, bias)

    monkeypatch.setattr(audio_mod, "read_blocks", counting_read_blocks)
    model = Probe(sample_rate=8000)
    model.decoded_at = []
    paths = separate_file(song, tmp_path / "out", model, device="cpu", segment=2.0, overlap=0.25)
    assert len(model.decoded_at) == len(plan_segments(x.shape[1], 16000, 0.25)) == 13
    assert 16000 <= model.decoded_at[0] <= 16000 + 12000 + 1000  # one segment + one stride + one block
    assert all(b - a <= 12000 + 1000 for a, b in zip(model.decoded_at, model.decoded_at[1:]))
    got = read_stems(paths)
    np.testing.assert_allclose(got["a"] + got["b"], x, atol=2e-6)


def test_separate_file_failure_leaves_no_file_behind(tmp_path):
    x = tone(2.0, SR)
    song = write_wav(tmp_path / "song.wav", x, SR)

    class Failing(GainModel):
        def separate(self, mixture, bias=0.0):
            if len(self.calls) == 3:
                raise RuntimeError("boom")
            return super().separate(mixture, bias)

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        separate_file(song, out, Failing(), device="cpu", segment=0.5)
    assert not any(p.is_file() for p in out.rglob("*"))  # no output, no temporary file
    paths = separate_file(song, out, GainModel(), device="cpu", segment=0.5)
    before = {name: p.read_bytes() for name, p in paths.items()}
    for subtype in ("FLOAT", "PCM_16"):
        with pytest.raises(RuntimeError, match="boom"):
            separate_file(song, out, Failing(), device="cpu", segment=0.5, overwrite=True, subtype=subtype)
        assert {name: p.read_bytes() for name, p in paths.items()} == before  # untouched
        assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.wav", "b.wav"]


def test_separate_file_refuses_a_subtype_before_any_work(tmp_path):
    song = write_wav(tmp_path / "song.wav", tone(0.5, SR), SR)
    model = GainModel()
    with pytest.raises(ValueError, match="not valid for FLAC"):
        separate_file(song, tmp_path / "out", model, device="cpu", ext=".flac", subtype="FLOAT")
    assert model.calls == [] and not (tmp_path / "out").exists()


def test_default_is_one_pass_up_to_30_s_then_10_s_segments(tmp_path):
    from mssbook.separation import ONE_PASS_UP_TO

    assert (ONE_PASS_UP_TO, DEFAULT_SEGMENT, DEFAULT_OVERLAP) == (30.0, 10.0, 0.1)
    for seconds, calls in ((30.0, [(1, 2, 30_000)]), (31.0, [(1, 2, 10_000)] * 4)):
        x = np.random.default_rng(7).standard_normal((2, int(seconds * 1000))).astype(np.float32)
        model = GainModel(sample_rate=1000)
        out = separate(x, 1000, model, device="cpu")
        assert model.calls == calls
        song = tmp_path / f"{seconds:g}.wav"
        sf.write(song, x.T, 1000, subtype="FLOAT")
        paths = separate_file(song, tmp_path / "out", model, device="cpu")
        assert model.calls == calls * 2
        np.testing.assert_array_equal(read_stems(paths)["a"], out["a"])
