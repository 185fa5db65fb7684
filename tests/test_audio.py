"""Audio I/O (mssbook.data.audio) and resampling (mssbook.signal.resample).

Offline and deterministic: files are written by the tests (soundfile, or the ffmpeg CLI for
m4a/mp3), plus the real excerpts in shared/data when they are present.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from mssbook import deps
from mssbook.data import audio as audio_mod
from mssbook.data.audio import AudioInfo, audio_info, load_audio, save_audio
from mssbook.errors import AudioFileError, MissingDependencyError, OutputExistsError
from mssbook.paths import shared_data_dir
from mssbook.signal.resample import resample, resampled_length

SR = 44100
HAVE_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
needs_ffmpeg = pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg/ffprobe not on PATH")
TORCHAUDIO_OK, TORCHAUDIO_DETAIL = deps.torchaudio_status()
needs_torchaudio = pytest.mark.skipif(
    not TORCHAUDIO_OK, reason=f"torchaudio cannot load: {TORCHAUDIO_DETAIL}"
)


def _shared(relative: str):
    root = shared_data_dir()
    path = None if root is None else root / relative
    if path is None or not path.is_file():
        pytest.skip(f"real test file shared/data/{relative} is not present")
    return path


@pytest.fixture(scope="module")
def real_mp3():
    return _shared("mixtures/Steven M Bryant - Slow Motion Dream.mp3")


@pytest.fixture(scope="module")
def real_stem():
    if not HAVE_FFMPEG:
        pytest.skip("ffmpeg/ffprobe not on PATH: .stem.mp4 files need them")
    return _shared("musdb18-sample/train/Music Delta - 80s Rock.stem.mp4")


def sine(freq, seconds=1.0, sr=SR, channels=1, amp=0.5, dtype=np.float32):
    t = np.arange(int(round(seconds * sr))) / sr
    x = amp * np.sin(2 * np.pi * freq * t)
    return np.repeat(x[None], channels, axis=0).astype(dtype)


def peak_freq(x, sr):
    """Frequency of the strongest FFT bin of a 1-D signal (Hann-windowed)."""
    x = np.asarray(x, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * sr / len(x)


def db(x):
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


def ffmpeg_make(path, codec_args, seconds=1.0, freq=440):
    """A stereo sine file written by the ffmpeg CLI (the format follows the extension)."""
    cmd = [
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
        "-i", f"sine=frequency={freq}:duration={seconds}:sample_rate={SR}",
        "-ac", "2", *codec_args, str(path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:  # e.g. an ffmpeg built without libmp3lame
        pytest.skip(f"this ffmpeg cannot write {path.suffix}: {proc.stderr.strip()[-200:]}")
    return path


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------

BACKENDS = ["scipy", pytest.param("torchaudio", marks=needs_torchaudio)]


def test_resample_same_rate_returns_input():
    x = sine(440)
    assert resample(x, SR, SR) is x
    t = torch.from_numpy(x)
    assert resample(t, SR, SR, backend="torchaudio") is t  # no torchaudio needed for a no-op


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "n,orig,new",
    [(1001, 22050, 44100), (1000, 44100, 16000), (4410, 44100, 48000), (7, 48000, 44100), (44100, 44100, 22050)],
)
def test_resample_length_rule(backend, n, orig, new):
    x = np.random.default_rng(0).standard_normal((2, n)).astype(np.float32)
    y = resample(x, orig, new, backend=backend)
    expected = -(-n * new // orig)  # ceil(n * new / orig)
    assert y.shape == (2, expected) == (2, resampled_length(n, orig, new))


@pytest.mark.parametrize("backend", BACKENDS)
def test_resample_keeps_dtype_and_type(backend):
    x32 = sine(440, 0.1, channels=2)
    y = resample(x32, SR, 22050, backend=backend)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    y64 = resample(x32.astype(np.float64), SR, 22050, backend=backend)
    assert isinstance(y64, np.ndarray) and y64.dtype == np.float64
    t = torch.from_numpy(x32)[None]  # (batch, channels, samples)
    yt = resample(t, SR, 48000, backend=backend)
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float32 and yt.device == t.device
    assert yt.shape == (1, 2, resampled_length(x32.shape[-1], SR, 48000))
    yi = resample((x32 * 1000).astype(np.int16), SR, 22050, backend=backend)
    assert yi.dtype == np.float32


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("orig,new", [(22050, 44100), (44100, 16000), (44100, 48000)])
def test_resample_preserves_sine_frequency(backend, orig, new):
    y = resample(sine(1000, 1.0, sr=orig)[0], orig, new, backend=backend)
    assert abs(peak_freq(y, new) - 1000) <= 2
    # the amplitude survives too (0.5 peak, so RMS about -9 dB)
    assert abs(db(y[200:-200]) - db(sine(1000, 1.0, sr=new)[0])) < 0.2


@pytest.mark.parametrize("backend", BACKENDS)
def test_resample_suppresses_aliasing(backend):
    # 12 kHz is above 16 kHz's Nyquist (8 kHz); without a low-pass it would fold back to 4 kHz.
    y = resample(sine(12000, 1.0, amp=1.0)[0], SR, 16000, backend=backend)
    x_db = db(sine(12000, 1.0, amp=1.0)[0])
    assert db(y[200:-200]) - x_db < -40


@needs_torchaudio
def test_resample_backends_agree_on_a_sine():
    x = sine(1000, 0.5, channels=2)
    for new in (48000, 22050):
        a = resample(x, SR, new)
        b = resample(x, SR, new, backend="torchaudio")
        assert a.shape == b.shape
        assert np.max(np.abs(a - b)[:, 100:-100]) < 1e-2


def test_resample_torchaudio_backend_reports_a_broken_install(monkeypatch):
    monkeypatch.setattr(deps, "torchaudio_status", lambda: (False, "OSError: undefined symbol"))
    with pytest.raises(MissingDependencyError, match="torchaudio"):
        resample(sine(440), SR, 22050, backend="torchaudio")


@pytest.mark.parametrize(
    "orig,new", [(0, 44100), (44100, -1), (44100.5, 48000), ("44100", 48000), (float("nan"), 48000)]
)
def test_resample_rejects_bad_rates(orig, new):
    with pytest.raises(ValueError, match="sr"):
        resample(sine(440), orig, new)


def test_resample_rejects_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        resample(sine(440), SR, 22050, backend="sox")


# --------------------------------------------------------------------------------------------
# Loading files written by the tests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subtype,step", [("PCM_U8", 2.0 / 256), ("PCM_16", 2.0 / 65536), ("PCM_24", 2.0 / 2**24), ("FLOAT", 0.0)]
)
def test_wav_subtypes_round_trip_within_quantization(tmp_path, subtype, step):
    x = sine(440, 0.2, channels=2, amp=0.8)
    path = tmp_path / f"tone_{subtype}.wav"
    sf.write(path, x.T, SR, subtype=subtype)
    y, sr = load_audio(path)
    assert sr == SR and y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) <= step + 1e-7


def test_audio_info_for_a_wav(tmp_path):
    path = tmp_path / "info.wav"
    sf.write(path, sine(440, 0.5, channels=2).T, SR, subtype="PCM_24")
    info = audio_info(path)
    assert isinstance(info, AudioInfo)
    assert (info.sample_rate, info.channels, info.frames, info.n_streams) == (SR, 2, SR // 2, 1)
    assert info.duration == pytest.approx(0.5)
    assert info.format == "WAV" and info.codec == "PCM_24"
    assert info.backend == "soundfile" and info.frames_exact


def test_short_and_silent_files(tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, sine(440, 0.1).T, SR)
    y, _ = load_audio(short)
    assert y.shape == (1, 4410)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((SR, 2), np.float32), SR)
    z, _ = load_audio(silent)
    assert z.shape == (2, SR) and not np.any(z)


def test_start_and_duration_select_the_span(tmp_path):
    path = tmp_path / "noise.wav"
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (2, 2 * SR)).astype(np.float32)
    sf.write(path, x.T, SR, subtype="FLOAT")
    y, _ = load_audio(path, start=0.5, duration=0.25)
    np.testing.assert_array_equal(y, x[:, SR // 2 : SR // 2 + SR // 4])
    tail, _ = load_audio(path, start=1.5, duration=10.0)  # runs past the end: cut short
    np.testing.assert_array_equal(tail, x[:, 3 * SR // 2 :])


def test_resampling_on_load_keeps_pitch_and_length(tmp_path):
    path = tmp_path / "low_rate.wav"
    x = sine(1000, 1.0, sr=22050, channels=2)
    sf.write(path, x.T, 22050, subtype="PCM_24")
    y, sr = load_audio(path, sr=SR)
    assert sr == SR and y.dtype == np.float32
    assert y.shape == (2, resampled_length(22050, 22050, SR)) == (2, SR)
    assert abs(peak_freq(y[0], SR) - 1000) <= 2
    same, sr_same = load_audio(path, sr=22050)
    assert sr_same == 22050 and same.shape == (2, 22050)


def test_channel_conversions(tmp_path):
    mono = tmp_path / "mono.wav"
    sf.write(mono, sine(440, 0.1).T, SR, subtype="FLOAT")
    m, _ = load_audio(mono)
    assert m.shape == (1, 4410)
    st, _ = load_audio(mono, channels=2)
    assert st.shape == (2, 4410) and np.array_equal(st[0], st[1]) and np.array_equal(st[0], m[0])

    stereo = tmp_path / "stereo.wav"
    left, right = sine(440, 0.1)[0], sine(880, 0.1, amp=0.25)[0]
    sf.write(stereo, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    down, _ = load_audio(stereo, channels=1)
    assert down.shape == (1, 4410)
    np.testing.assert_allclose(down[0], (left + right) / 2, atol=1e-7)

    three = tmp_path / "three.wav"
    sf.write(three, np.zeros((100, 3), np.float32), SR)
    assert load_audio(three, channels=1)[0].shape == (1, 100)
    with pytest.raises(AudioFileError, match="three.wav"):
        load_audio(three, channels=2)


@needs_ffmpeg
@pytest.mark.parametrize(
    "ext,codec_args",
    [(".m4a", ["-c:a", "aac", "-b:a", "128k"]), (".mp3", ["-c:a", "libmp3lame", "-b:a", "128k"])],
)
def test_files_made_by_ffmpeg(tmp_path, ext, codec_args):
    path = ffmpeg_make(tmp_path / f"tone{ext}", codec_args, seconds=1.0, freq=440)
    y, sr = load_audio(path)
    assert sr == SR and y.dtype == np.float32 and y.shape[0] == 2
    assert abs(y.shape[1] - SR) < 3000  # codec priming/padding may add or trim a little
    assert abs(peak_freq(y[0], SR) - 440) <= 2
    assert db(y) > -30  # lavfi's sine has amplitude 1/8 (about -21 dB RMS)
    info = audio_info(path)
    assert info.channels == 2 and info.sample_rate == SR and info.duration == pytest.approx(1.0, abs=0.1)
    if ext == ".m4a":  # AAC always goes through ffmpeg (mp3 through libsndfile when it can)
        assert info.backend == "ffmpeg"
    part, _ = load_audio(path, start=0.25, duration=0.5)
    np.testing.assert_allclose(part, y[:, SR // 4 : SR // 4 + SR // 2], atol=1e-6)
    y22, sr22 = load_audio(path, sr=22050, channels=1, start=0.25, duration=0.5)
    assert sr22 == 22050 and y22.shape == (1, 11025)


# --------------------------------------------------------------------------------------------
# The real excerpts in shared/data
# --------------------------------------------------------------------------------------------


def test_real_mp3(real_mp3):
    y, sr = load_audio(real_mp3)
    assert sr == SR and y.dtype == np.float32 and y.shape[0] == 2
    assert 10.5 * SR < y.shape[1] < 11.0 * SR
    assert db(y) > -40  # not silent (decoded mp3 may peak slightly above 1.0: no clip check)
    part, _ = load_audio(real_mp3, start=2.0, duration=1.5)
    assert part.shape == (2, int(1.5 * SR))
    np.testing.assert_allclose(part, y[:, 2 * SR : 2 * SR + part.shape[1]], atol=1e-6)
    info = audio_info(real_mp3)
    assert info.n_streams == 1 and info.channels == 2 and info.frames == y.shape[1]


@needs_ffmpeg
def test_real_mp3_decoders_agree(real_mp3):
    """The mp3 decision: libsndfile (mpg123) and ffmpeg give the same samples, so either may run."""
    info = audio_info(real_mp3)
    if info.backend != "soundfile":
        pytest.skip("this libsndfile cannot read mp3; ffmpeg decodes it")
    by_soundfile, _ = load_audio(real_mp3)
    by_ffmpeg = audio_mod._read_ffmpeg(real_mp3, 0, 2, 0, None)
    assert by_ffmpeg.shape == by_soundfile.shape
    assert np.max(np.abs(by_ffmpeg - by_soundfile)) < 1e-4


def test_real_stem_streams(real_stem):
    info = audio_info(real_stem)
    assert info.n_streams == 5 and info.backend == "ffmpeg" and info.codec == "aac"
    mixture, sr = load_audio(real_stem)
    assert sr == SR and mixture.shape[0] == 2 and abs(mixture.shape[1] - 6.8 * SR) < 0.1 * SR
    assert db(mixture) > -40
    vocals, _ = load_audio(real_stem, stream=4)
    assert vocals.shape == mixture.shape and not np.allclose(vocals, mixture, atol=1e-3)
    by_name, _ = load_audio(real_stem, stream="vocals")
    np.testing.assert_array_equal(by_name, vocals)
    mixture_by_name, _ = load_audio(real_stem, stream="mixture")
    np.testing.assert_array_equal(mixture_by_name, mixture)


def test_real_stem_span_is_sample_exact(real_stem):
    bass, _ = load_audio(real_stem, stream="bass")
    part, _ = load_audio(real_stem, stream="bass", start=3.0, duration=1.0)
    np.testing.assert_array_equal(part, bass[:, 3 * SR : 4 * SR])


@needs_ffmpeg
def test_stempeg_example_stem():
    stempeg = pytest.importorskip("stempeg")
    path = stempeg.example_stem_path()
    info = audio_info(path)
    assert info.n_streams == 5
    drums, sr = load_audio(path, stream="drums", duration=0.5)
    assert sr == info.sample_rate and drums.shape == (info.channels, round(0.5 * sr))


# --------------------------------------------------------------------------------------------
# Bad input: one clear AudioFileError that names the file
# --------------------------------------------------------------------------------------------


def _garbage(path):
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _write(path, data=b""):
    path.write_bytes(data)
    return path


def _no_frames(path):
    sf.write(path, np.zeros((0, 2), np.float32), SR)  # a valid header, no samples
    return path


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d: d / "missing.wav", id="missing"),
        pytest.param(lambda d: d, id="directory"),
        pytest.param(lambda d: _write(d / "empty.wav"), id="empty-wav"),
        pytest.param(lambda d: _write(d / "empty.mp3"), id="empty-mp3"),
        pytest.param(lambda d: _garbage(d / "corrupt.wav"), id="corrupt-wav"),
        pytest.param(lambda d: _garbage(d / "corrupt.mp3"), id="corrupt-mp3", marks=needs_ffmpeg),
        pytest.param(lambda d: _write(d / "notes.txt", b"not audio\n"), id="text", marks=needs_ffmpeg),
        pytest.param(lambda d: _garbage(d / "blob.xyz"), id="unknown-format", marks=needs_ffmpeg),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path, make):
    path = make(tmp_path)
    for call in (load_audio, audio_info):
        with pytest.raises(AudioFileError) as info:
            call(path)
        assert path.name in str(info.value)


def test_file_without_frames(tmp_path):
    path = _no_frames(tmp_path / "noframes.wav")
    assert audio_info(path).frames == 0  # describing it is fine ...
    with pytest.raises(AudioFileError, match="noframes.wav.*no audio frames"):
        load_audio(path)  # ... loading it is an error


def test_start_beyond_the_end(tmp_path):
    path = tmp_path / "one_second.wav"
    sf.write(path, sine(440).T, SR)
    with pytest.raises(AudioFileError, match="one_second.wav.*smaller start"):
        load_audio(path, start=1.5)
    with pytest.raises(ValueError):
        load_audio(path, start=-1)
    with pytest.raises(ValueError):
        load_audio(path, duration=0)


def test_stream_beyond_the_streams(tmp_path):
    path = tmp_path / "plain.wav"
    sf.write(path, sine(440).T, SR)
    with pytest.raises(AudioFileError, match="plain.wav"):
        load_audio(path, stream=1)
    with pytest.raises(AudioFileError, match="plain.wav"):
        load_audio(path, stream="vocals")
    with pytest.raises(ValueError, match="stem name"):
        load_audio(path, stream="guitar")


def test_real_stem_bad_stream_and_start(real_stem):
    with pytest.raises(AudioFileError, match=r"80s Rock\.stem\.mp4.*5 audio stream"):
        load_audio(real_stem, stream=5)
    for start in (7.2, 60.0):  # just past the real end, and far past the estimate
        with pytest.raises(AudioFileError, match=r"80s Rock\.stem\.mp4"):
            load_audio(real_stem, start=start)


def test_missing_ffmpeg(tmp_path, monkeypatch):
    m4a = _garbage(tmp_path / "song.m4a")
    corrupt_wav = _garbage(tmp_path / "broken.wav")
    monkeypatch.setattr(deps.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="ffmpeg"):
        load_audio(m4a)
    # a damaged WAV is a damaged file, whether or not ffmpeg is installed
    with pytest.raises(AudioFileError, match="broken.wav"):
        load_audio(corrupt_wav)


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def test_save_flac_and_wav_round_trip(tmp_path):
    x = sine(440, 0.2, channels=2, amp=0.7)
    cases = [("a.flac", None, 1 / 32768), ("b.flac", "PCM_24", 2**-23), ("c.wav", "FLOAT", 0.0)]
    for name, subtype, tol in cases:
        out = save_audio(tmp_path / name, x, SR, subtype=subtype)
        assert out == tmp_path / name
        y, sr = load_audio(out)
        assert sr == SR and y.shape == x.shape
        assert np.max(np.abs(y - x)) <= tol + 1e-7
    assert sf.info(tmp_path / "a.flac").subtype == "PCM_16"  # the documented default


def test_save_accepts_mono_and_tensors(tmp_path):
    save_audio(tmp_path / "mono.wav", sine(440, 0.1)[0], SR)
    assert load_audio(tmp_path / "mono.wav")[0].shape == (1, 4410)
    save_audio(tmp_path / "tensor.wav", torch.from_numpy(sine(440, 0.1, channels=2)), 22050)
    y, sr = load_audio(tmp_path / "tensor.wav")
    assert sr == 22050 and y.shape == (2, 4410)


def test_save_refuses_to_overwrite(tmp_path):
    path = tmp_path / "out.wav"
    save_audio(path, sine(440, 0.1), SR)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="out.wav"):
        save_audio(path, sine(880, 0.1), SR)
    assert path.read_bytes() == before
    save_audio(path, sine(880, 0.1), SR, overwrite=True)
    assert path.read_bytes() != before
    assert abs(peak_freq(load_audio(path)[0][0], SR) - 880) < 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]  # no temporary files left


def test_save_leaves_nothing_behind_on_error(tmp_path, monkeypatch):
    path = tmp_path / "keep.wav"
    save_audio(path, sine(440, 0.1), SR)
    before = path.read_bytes()

    def failing_write(file, *args, **kwargs):
        with open(file, "wb") as f:
            f.write(b"RIFF half")  # a half-written file ...
        raise OSError("disk full")  # ... then the failure

    monkeypatch.setattr(audio_mod.sf, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        save_audio(path, sine(880, 0.1), SR, overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        save_audio(tmp_path / "new.flac", sine(880, 0.1), SR)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


def test_save_clips_with_a_warning(tmp_path):
    x = sine(440, 0.1, amp=1.5)
    with pytest.warns(UserWarning, match=r"loud\.wav.*subtype='FLOAT'"):
        save_audio(tmp_path / "loud.wav", x, SR)
    y, _ = load_audio(tmp_path / "loud.wav")
    assert np.max(np.abs(y)) <= 1.0 and np.max(np.abs(y)) > 0.99
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_audio(tmp_path / "loud_float.wav", x, SR, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "loud_float.wav")[0], x)


def test_save_rejects_bad_formats(tmp_path):
    with pytest.raises(AudioFileError, match=r"\.wav, \.flac"):
        save_audio(tmp_path / "out.mp3", sine(440, 0.1), SR)
    with pytest.raises(ValueError, match="FLOAT"):
        save_audio(tmp_path / "out.flac", sine(440, 0.1), SR, subtype="FLOAT")  # FLAC is integer-only
    with pytest.raises(ValueError, match="shape"):
        save_audio(tmp_path / "out.wav", np.zeros((1, 2, 100)), SR)
    with pytest.raises(ValueError, match="NaN"):
        save_audio(tmp_path / "nan.wav", np.full((1, 100), np.nan), SR)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Decoding in blocks
# --------------------------------------------------------------------------------------------


def _joined(blocks, block):
    parts = list(blocks)
    assert all(0 < p.shape[-1] <= block and p.dtype == np.float32 for p in parts)
    return np.concatenate(parts, axis=-1)


@pytest.mark.parametrize("span", [{}, {"start": 0.25, "duration": 0.5}, {"start": 0.7}, {"duration": 5.0}])
@pytest.mark.parametrize("block", [1, 1000, 1 << 16])
def test_read_blocks_equals_load_audio_for_soundfile_files(tmp_path, span, block):
    x = np.random.default_rng(3).standard_normal((44111, 2)).astype(np.float32) * 0.1
    path = tmp_path / "noise.flac"
    sf.write(path, x, SR, subtype="PCM_24")
    whole, _ = load_audio(path, **span)
    with audio_mod.read_blocks(path, block=block, **span) as blocks:
        assert (blocks.sample_rate, blocks.channels, blocks.frames) == (SR, 2, whole.shape[1])
        np.testing.assert_array_equal(_joined(blocks, block), whole)


@needs_ffmpeg
@pytest.mark.parametrize("span", [{}, {"start": 0.25, "duration": 0.5}, {"start": 0.6}])
def test_read_blocks_equals_load_audio_through_ffmpeg(tmp_path, span):
    path = ffmpeg_make(tmp_path / "tone.m4a", ["-c:a", "aac", "-b:a", "128k"], seconds=1.0, freq=440)
    whole, _ = load_audio(path, **span)
    for block in (777, 1 << 16):
        blocks = audio_mod.read_blocks(path, block=block, **span)
        assert blocks.info.backend == "ffmpeg"
        np.testing.assert_array_equal(_joined(blocks, block), whole)


@needs_ffmpeg
def test_read_blocks_stops_ffmpeg_when_closed_early(tmp_path):
    path = ffmpeg_make(tmp_path / "tone.m4a", ["-c:a", "aac", "-b:a", "128k"], seconds=2.0, freq=440)
    with audio_mod.read_blocks(path, block=1000) as blocks:
        first = next(iter(blocks))
    assert first.shape == (2, 1000)
    with pytest.raises(RuntimeError, match="read once"):
        iter(blocks)


def test_read_blocks_errors(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, np.zeros((100, 1), np.float32), SR)
    with pytest.raises(AudioFileError, match="beyond the end"):
        audio_mod.read_blocks(path, start=1.0)
    with pytest.raises(AudioFileError, match="not found"):
        audio_mod.read_blocks(tmp_path / "nope.wav")
    with pytest.raises(ValueError, match="block"):
        audio_mod.read_blocks(path, block=0)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF" + b"\0" * 60)
    with pytest.raises(AudioFileError):
        list(audio_mod.read_blocks(broken))
