"""`mssbook convert`: official weights → an mssbook checkpoint that every other command uses."""

import hashlib

import numpy as np
import pytest
import soundfile as sf
import torch

from mssbook.checkpoints import load_model, read_checkpoint
from mssbook.cli import main

openunmix_model = pytest.importorskip("openunmix.model")


@pytest.fixture(autouse=True)
def ci_profile_and_data(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("MSSBOOK_PROFILE", "ci")
    monkeypatch.setenv("MSSBOOK_DATA", str(tmp_path_factory.getbasetemp() / "mssbook-data"))


def official_folder(folder, targets=("vocals",), hidden_size=16, max_bin=1487):
    folder.mkdir()
    nets = {}
    for i, target in enumerate(targets):
        torch.manual_seed(i)
        net = openunmix_model.OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=hidden_size, max_bin=max_bin)
        tmp = folder / "tmp.pth"
        torch.save(net.state_dict(), tmp)
        tmp.rename(folder / f"{target}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth")
        nets[target] = net.eval()
    return nets


def test_convert_writes_a_checkpoint_that_separates_and_fine_tunes(tmp_path, capsys):
    nets = official_folder(tmp_path / "official", ("vocals", "drums"))
    out = tmp_path / "umx.pt"
    assert main(["convert", str(tmp_path / "official"), "-o", str(out), "--targets", "vocals"]) == 0
    assert "umx for vocals" in capsys.readouterr().out
    state = read_checkpoint(out)
    assert state["model_name"] == "umx" and state["model_config"]["hidden_size"] == 16
    assert state["converted_from"] == str((tmp_path / "official").resolve())
    model = load_model(out)
    assert model.targets == ("vocals",)
    mag = torch.rand(1, 2, 2049, 8)
    assert torch.allclose(model.target_models["vocals"](mag), nets["vocals"](mag), atol=1e-5)
    # never overwrites without --force
    before = out.read_bytes()
    assert main(["convert", str(tmp_path / "official"), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["convert", str(tmp_path / "official"), "-o", str(out), "--force"]) == 0
    assert read_checkpoint(out)["model_config"]["targets"] == ["vocals", "drums"]

    # separate with it
    song = tmp_path / "song.wav"
    sf.write(song, np.random.default_rng(0).uniform(-0.3, 0.3, (22050, 2)).astype("float32"), 44100)
    assert main(["separate", str(song), "--model", str(out), "--output", str(tmp_path / "sep")]) == 0
    assert (tmp_path / "sep" / "song" / "vocals.wav").is_file()

    # fine-tune it: the model and its configuration come from the file; clashing flags are refused
    run = tmp_path / "run"
    args = ["train", "--resume", str(out), "--toy", "--epochs", "1", "--batch-size", "2", "--samples-per-track", "1",
            "--seq-dur", "1.0", "--valid-max-duration", "2", "--output", str(run), "--quiet"]
    assert main(args + ["--hidden-size", "32"]) == 2
    assert "drop --hidden-size" in capsys.readouterr().err
    assert main(args) == 0
    tuned = read_checkpoint(run / "last.pt")
    assert tuned["epoch"] == 1 and tuned["model_config"] == read_checkpoint(out)["model_config"]
    changed = tuned["model_state"]["target_models.vocals.fc1.weight"] - model.state_dict()["target_models.vocals.fc1.weight"]
    assert changed.abs().max() > 0  # it trained from the converted weights ...
    assert changed.abs().max() < 0.1  # ... rather than from a fresh initialisation


def test_convert_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "missing"), "-o", str(tmp_path / "x.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["convert", str(tmp_path / "empty"), "-o", str(tmp_path / "x.pt")]) == 2
    assert "holds no weight file" in capsys.readouterr().err
    assert main(["convert", "bsrnn", "-o", str(tmp_path / "x.pt")]) == 2
    assert "no official weights of BSRNN" in capsys.readouterr().err
    assert main(["convert", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "umxhq" in listing and "bsrnn" in listing
    assert not (tmp_path / "x.pt").exists()


def test_convert_an_official_zip_of_another_format(tmp_path, capsys):
    """The D3Net fixture: Sony's nnabla .h5 files in a zip, as the release ships them."""
    from pathlib import Path

    source = Path(__file__).parent / "fixtures" / "official" / "d3net" / "d3net-mss-reduced.zip"
    out = tmp_path / "d3net.pt"
    assert main(["convert", str(source), "-o", str(out), "--model", "d3net", "--targets", "vocals"]) == 0
    state = read_checkpoint(out)
    assert state["model_name"] == "d3net" and state["model_config"]["targets"] == ["vocals"]
    assert main(["convert", str(source), "-o", str(tmp_path / "x.pt"), "--model", "umx"]) == 2
    assert "holds nnabla d3net weights, not umx" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
