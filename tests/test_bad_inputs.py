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
