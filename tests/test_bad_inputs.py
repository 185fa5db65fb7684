"""The robustness battery: bad inputs of every kind, as a new user and a tester would try them.

Each case runs the command (or the public function) a user would, and checks the exit code, that no
traceback is printed, that the message names the file (or value) and the fix, and that nothing the
user already had changed. The "what works" cases check odd but valid inputs are accepted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mssbook import models
from mssbook.checkpoints import read_checkpoint, save_checkpoint
from mssbook.cli import main

SR = 44100
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def ci_profile_and_data(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("MSSBOOK_PROFILE", "ci")
    monkeypatch.setenv("MSSBOOK_DATA", str(tmp_path_factory.getbasetemp() / "mssbook-data"))


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out, err
    return code, out, err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def tiny_umx_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    model = models.create("umx", preset="tutorial", target="vocals", hidden_size=8, nb_layers=1)
    return save_checkpoint(path, model)


def write_wav_track(folder: Path, seconds: float = 1.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(folder.name))
    total = 0
    for source in ("vocals", "drums", "bass", "other"):
        audio = (0.1 * rng.standard_normal((int(seconds * SR), 2))).astype(np.float32)
        sf.write(folder / f"{source}.wav", audio, SR)
        total = total + audio
    sf.write(folder / "mixture.wav", total, SR)


# ------------------------------------------------------------------------------------------------
# datasets
# ------------------------------------------------------------------------------------------------
TRAIN = ["train", "--model", "umx", "--preset", "tutorial", "--hidden-size", "8", "--nb-layers", "1", "--epochs", "1",
         "--batch-size", "1", "--samples-per-track", "1", "--seq-dur", "0.5", "--quiet"]


@pytest.mark.parametrize("where, name, content", [
    ("train/B - Two", "bass.wav", b""),  # an empty stem
    ("train/B - Two", "drums.wav", b"RIFF but really just text"),  # text posing as a WAV
    ("train/Valid - Song", "mixture.wav", b"not audio"),  # a validation track's mixture
])
def test_a_damaged_file_in_the_dataset_is_named_before_training(tmp_path, capsys, where, name, content):
    root = tmp_path / "musdb"
    for track in ("A - One", "B - Two", "Valid - Song"):
        write_wav_track(root / "train" / track)
    (root / "mus.yaml").write_text(
        "validation_tracks:\n  - Valid - Song\nsources:\n  vocals: vocals.wav\n  drums: drums.wav\n"
        "  bass: bass.wav\n  other: other.wav\nmixture: mixture.wav\nstem_ids:\n  mixture: 0\n  drums: 1\n"
        "  bass: 2\n  other: 3\n  vocals: 4\ntargets:\n  vocals:\n    vocals: 1\n")
    (root / where / name).write_bytes(content)
    before = snapshot(root)
    code, _, err = run_cli(capsys, *TRAIN, "--root", root, "--is-wav", "--output", tmp_path / "run")
    assert code == 2
    assert str(root / where / name) in err and ("Replace it" in err or "replace" in err.lower())
    assert not (tmp_path / "run").exists()  # refused before training started
    assert snapshot(root) == before


# ------------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------------
def test_a_checkpoint_with_4kb_overwritten_is_refused_by_name(tmp_path, capsys):
    path = tiny_umx_checkpoint(tmp_path / "best.pt")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    song = tmp_path / "song.wav"
    sf.write(song, np.zeros((SR, 2), np.float32) + 0.01, SR)
    code, _, err = run_cli(capsys, "separate", song, "--model", path, "-o", tmp_path / "out")
    assert code == 2 and str(path) in err and ("damaged" in err or "not a readable checkpoint" in err)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.wav"))


def test_truncated_and_foreign_checkpoints_are_refused(tmp_path, capsys):
    song = tmp_path / "song.wav"
    sf.write(song, np.zeros((SR, 2), np.float32) + 0.01, SR)
    path = tiny_umx_checkpoint(tmp_path / "last.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)  # a .pt that is no mssbook checkpoint
    for bad, words in ((truncated, "not a readable checkpoint"), (foreign, "not an mssbook checkpoint")):
        code, _, err = run_cli(capsys, "separate", song, "--model", bad, "-o", tmp_path / "out")
        assert code == 2 and str(bad) in err and words in err, err
    # a checkpoint of another family where a run of this one is resumed
    run = tmp_path / "run"
    torch.manual_seed(0)
    save_checkpoint(run / "last.pt", models.create("d3net", preset="tutorial", target="vocals"))
    before = snapshot(run)
    code, _, err = run_cli(capsys, *TRAIN, "--toy", "--output", run)
    assert code == 2 and "holds a run of d3net" in err and "another output folder" in err
    assert snapshot(run) == before


# ------------------------------------------------------------------------------------------------
# crashes: kill -9 mid-run, then the same command resumes exactly
# ------------------------------------------------------------------------------------------------
def test_kill_9_then_rerun_resumes_from_last_pt(tmp_path):
    from mssbook.data.toy import ensure_toy_dataset

    ensure_toy_dataset(progress=False)  # generated once here, not inside the run that is killed
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "mssbook", *TRAIN[:-1], "--epochs", "1000", "--toy", "--output", str(run)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if (run / "last.pt").is_file():
                try:
                    if read_checkpoint(run / "last.pt")["epoch"] >= 2:
                        break
                except Exception:
                    pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"no epoch 2 in 120 s: {proc.stderr.read().decode()[-2000:] if proc.poll() is not None else ''}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed = read_checkpoint(run / "last.pt")  # whatever the kill interrupted, last.pt is whole
    epoch = killed["epoch"]
    assert main([*TRAIN[:-1], "--epochs", str(epoch + 1), "--toy", "--output", str(run), "--quiet"]) == 0
    resumed = read_checkpoint(run / "last.pt")
    assert resumed["epoch"] == epoch + 1
    assert resumed["history"][:epoch] == killed["history"]
    steps = lambda state: max(int(s["step"]) for s in state["optimizer"]["state"].values())  # noqa: E731
    assert steps(resumed) > steps(killed)  # Adam's moments continued from the killed run's
    assert json.loads((run / "history.json").read_text())["epochs"][:epoch] == killed["history"]


FAMILY_LABELS = ("UMX", "X-UMX", "D3Net", "TFC-TDF U-Net", "BSRNN", "Wavenet")


@pytest.mark.parametrize("label", FAMILY_LABELS)
def test_every_family_resumes_exactly(label, tmp_path):
    """A run stopped after epoch 1 (as kill -9 after last.pt was written leaves it) and resumed
    to epoch 2 equals a run of 2 epochs: weights, history and optimiser state."""
    from mssbook.comparison import family, recipe_configs
    from mssbook.data.toy import ensure_toy_dataset
    from mssbook.training import train_model

    item = family(label)
    root = ensure_toy_dataset(progress=False)
    overrides = dict(batch_size=1, samples_per_track=1, max_batches_per_epoch=1, validation=False)

    def train(output, epochs):
        data, config = recipe_configs(item, root, seed=3, epochs=epochs, **overrides)
        torch.manual_seed(0)
        model = models.create(item.model, preset="tutorial", target=item.target)
        return train_model(model, data, config, output=output)

    torch.set_num_threads(1)
    straight = train(tmp_path / "straight", 2)
    train(tmp_path / "crashed", 1)
    resumed = train(tmp_path / "crashed", 2)
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in straight.history],
                                                                       rel=1e-5)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name
    a, b = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert a.keys() == b.keys() and all(int(a[k]["step"]) == int(b[k]["step"]) for k in a)


# ------------------------------------------------------------------------------------------------
# separating files: what fails cleanly, and what works
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return tiny_umx_checkpoint(tmp_path_factory.mktemp("model") / "umx.pt")


def tone(seconds: float, sr: int = SR, channels: int = 2) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)], axis=1).astype(np.float32)


def mp3(path: Path, audio: np.ndarray, sr: int = SR) -> Path:
    sf.write(path, audio, sr, format="MP3")
    return path


def separate(capsys, model_file, out, *inputs, extra=()):
    return run_cli(capsys, "separate", *inputs, "--model", model_file, "-o", out, *extra)


@pytest.mark.parametrize("name, write", [
    ("pcm8.wav", lambda p: sf.write(p, tone(1.0), SR, subtype="PCM_U8")),
    ("pcm24.wav", lambda p: sf.write(p, tone(1.0), SR, subtype="PCM_24")),
    ("float.wav", lambda p: sf.write(p, tone(1.0), SR, subtype="FLOAT")),
    ("8k.wav", lambda p: sf.write(p, tone(1.0, 8000), 8000)),
    ("96k.flac", lambda p: sf.write(p, tone(0.5, 96000), 96000)),
    ("mono.wav", lambda p: sf.write(p, tone(1.0, channels=1), SR)),
    ("ünïcødé sóng.wav", lambda p: sf.write(p, tone(1.0), SR)),
    ("silence.wav", lambda p: sf.write(p, np.zeros((SR, 2), np.float32), SR)),
    ("ten-ms.wav", lambda p: sf.write(p, tone(0.01), SR)),  # shorter than one STFT frame
    ("tiny.mp3", lambda p: mp3(p, tone(0.03))),  # decodes to about 1200 samples
])
def test_odd_but_valid_inputs_are_separated(tmp_path, capsys, model_file, name, write):
    path = tmp_path / name
    write(path)
    info = sf.info(path) if path.suffix != ".mp3" else None
    code, _, err = separate(capsys, model_file, tmp_path / "out", path)
    assert code == 0, err
    vocals, sr = sf.read(tmp_path / "out" / path.stem / "vocals.wav", always_2d=True)
    if info is not None:
        assert sr == info.samplerate and vocals.shape == (info.frames, info.channels)  # the input's rate and length
    assert np.isfinite(vocals).all()


@pytest.mark.parametrize("name, content, words", [
    ("missing.wav", None, "no such file"),
    ("empty.wav", b"", "empty.wav"),
    ("text.wav", b"these are words, not samples\n" * 10, "text.wav"),
])
def test_unreadable_inputs_are_named(tmp_path, capsys, model_file, name, content, words):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, _, err = separate(capsys, model_file, tmp_path / "out", path)
    assert code != 0 and str(path) in err and words in err
    assert not any((tmp_path / "out").rglob("*.wav")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize("case", ["zero samples", "nan", "six channels"])
def test_unusable_audio_is_named_with_the_fix(tmp_path, capsys, model_file, case):
    path = tmp_path / f"{case.replace(' ', '-')}.wav"
    if case == "zero samples":
        sf.write(path, np.zeros((0, 2), np.float32), SR)
    elif case == "nan":
        audio = tone(0.5)
        audio[100] = np.nan
        sf.write(path, audio, SR, subtype="FLOAT")
    else:
        sf.write(path, np.tile(tone(0.5)[:, :1], (1, 6)), SR)
    code, _, err = separate(capsys, model_file, tmp_path / "out", path)
    assert code != 0 and str(path) in err, err
    assert {"zero samples": "no audio", "nan": "contains NaN or infinite samples (first near 0.002 s)",
            "six channels": "downmix the file first"}[case] in err


def test_a_folder_separates_the_audio_inside_it(tmp_path, capsys, model_file):
    folder = tmp_path / "album.wav"  # a folder named like a file
    folder.mkdir()
    for name in ("one.wav", "two.flac"):
        sf.write(folder / name, tone(0.5), SR)
    (folder / "notes.txt").write_text("not audio")
    code, _, err = separate(capsys, model_file, tmp_path / "out", folder)
    assert code == 0, err
    assert (tmp_path / "out" / "one" / "vocals.wav").is_file() and (tmp_path / "out" / "two" / "vocals.wav").is_file()
    (tmp_path / "empty").mkdir()
    code, _, err = separate(capsys, model_file, tmp_path / "out2", tmp_path / "empty")
    assert code == 2 and f"{tmp_path / 'empty'} is a folder without audio files" in err


def test_one_bad_file_does_not_stop_the_others(tmp_path, capsys, model_file):
    first, bad, last = tmp_path / "a.wav", tmp_path / "tiny.wav", tmp_path / "b.wav"
    sf.write(first, tone(0.5), SR)
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    sf.write(last, tone(0.5), SR)
    code, _, err = separate(capsys, model_file, tmp_path / "out", first, bad, last)
    assert code == 1 and str(bad) in err and "1 of 3" in err
    assert (tmp_path / "out" / "a" / "vocals.wav").is_file() and (tmp_path / "out" / "b" / "vocals.wav").is_file()


@pytest.mark.parametrize("where", ["a file", "/proc", "read-only"])
def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, capsys, model_file, where):
    song = tmp_path / "song.wav"
    sf.write(song, tone(0.5), SR)
    if where == "a file":
        out = tmp_path / "taken"
        out.write_text("mine")
    elif where == "/proc":
        out = Path("/proc/mssbook-out")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        out = tmp_path / "locked"
        out.mkdir()
        out.chmod(0o555)
    start = time.perf_counter()
    code, _, err = separate(capsys, model_file, out, song)
    assert code == 2 and str(out) in err and ("-o" in err or "--output" in err)
    assert time.perf_counter() - start < 5  # refused before separating
    if where == "a file":
        assert out.read_text() == "mine"


@pytest.mark.parametrize("flag, value, words", [("--start", "-1", "--start"), ("--duration", "0", "--duration"),
                                                ("--duration", "nan", "--duration")])
def test_bad_start_and_duration(tmp_path, capsys, model_file, flag, value, words):
    song = tmp_path / "song.wav"
    sf.write(song, tone(0.5), SR)
    code, _, err = separate(capsys, model_file, tmp_path / "out", song, extra=(flag, value))
    assert code == 2 and words in err and "seconds" in err


def test_existing_outputs_are_kept_without_force(tmp_path, capsys, model_file):
    song = tmp_path / "song.wav"
    sf.write(song, tone(0.5), SR)
    out = tmp_path / "out"
    (out / "song").mkdir(parents=True)
    (out / "song" / "vocals.wav").write_bytes(b"my own file")
    code, _, err = separate(capsys, model_file, out, song)
    assert code == 2 and "--force" in err and (out / "song" / "vocals.wav").read_bytes() == b"my own file"
    code, _, _ = separate(capsys, model_file, out, song, extra=("--force",))
    assert code == 0 and sf.info(out / "song" / "vocals.wav").frames == int(0.5 * SR)


def test_a_wav_whose_header_lies_about_its_length(tmp_path, capsys, model_file):
    path = tmp_path / "liar.wav"
    sf.write(path, tone(1.0), SR, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still announces a second of audio
    code, _, err = separate(capsys, model_file, tmp_path / "out", path)
    if code == 0:  # what is there is separated
        assert sf.info(tmp_path / "out" / "liar" / "vocals.wav").frames > 0
    else:
        assert code == 2 and str(path) in err


def test_a_stream_that_changes_sample_rate_midway(tmp_path, capsys, model_file):
    first, second = mp3(tmp_path / "a.mp3", tone(0.5)), mp3(tmp_path / "b.mp3", tone(0.5, 22050), 22050)
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(first.read_bytes() + second.read_bytes())  # concatenated MPEG frames
    code, _, err = separate(capsys, model_file, tmp_path / "out", joined)
    assert code in (0, 2)
    if code == 0:
        assert sf.info(tmp_path / "out" / "joined" / "vocals.wav").frames > 0
    else:
        assert str(joined) in err
