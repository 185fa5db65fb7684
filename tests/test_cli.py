"""The `mssbook` command end to end at the ci profile: toy, train, demo (as README shows them)."""

import json

import pytest
import torch

from mssbook.checkpoints import read_checkpoint
from mssbook.cli import main


@pytest.fixture(autouse=True)
def ci_profile_and_data(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("MSSBOOK_PROFILE", "ci")
    # a private data dir so the test never touches the user's data/ (toy set generated once per session)
    monkeypatch.setenv("MSSBOOK_DATA", str(tmp_path_factory.getbasetemp() / "mssbook-data"))


def test_toy_command_writes_and_reuses(capsys):
    assert main(["toy", "--train", "2", "--valid", "1", "--test", "1", "--duration", "3",
                 "--root", str(_data() / "toy-small")]) == 0
    first = capsys.readouterr().out
    assert "train" in first and "valid" in first and "test" in first and "MB on disk" in first
    assert main(["toy", "--train", "2", "--valid", "1", "--test", "1", "--duration", "3",
                 "--root", str(_data() / "toy-small")]) == 0  # same settings: reused, not rewritten
    assert main(["toy", "--train", "3", "--root", str(_data() / "toy-small")]) == 2  # other settings: refused
    assert "overwrite=True" in capsys.readouterr().err


def _data():
    import os
    from pathlib import Path

    return Path(os.environ["MSSBOOK_DATA"])


def test_train_command_on_the_toy_set(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "umx", "--preset", "tutorial", "--toy", "--epochs", "1", "--batch-size", "2",
            "--samples-per-track", "1", "--seq-dur", "1.0", "--hidden-size", "16", "--nb-layers", "1",
            "--valid-max-duration", "2", "--output", str(out), "--quiet"]
    assert main(args) == 0
    state = read_checkpoint(out / "last.pt")
    assert state["model_config"]["targets"] == ["vocals"]  # the seed's default target
    assert state["model_config"]["hidden_size"] == 16 and state["epoch"] == 1
    assert main(args[:-5] + ["--epochs", "2", "--output", str(out), "--quiet"]) == 0  # resumes to epoch 2
    assert read_checkpoint(out / "last.pt")["epoch"] == 2
    assert main(["train", "--model", "nosuch", "--toy"]) == 2
    assert "unknown model 'nosuch'" in capsys.readouterr().err


def test_demo_writes_a_report(tmp_path, capsys):
    report = tmp_path / "report"
    assert main(["demo", "--output", str(report), "--quiet"]) == 0
    summary = json.loads((report / "summary.json").read_text())
    assert summary["profile"] == "ci" and summary["training"]["epochs"] >= 1
    assert (report / "spectrograms.png").stat().st_size > 10_000
    table = (report / "scores.md").read_text()
    assert "mixture as estimate" in table and "UMX" in table
    stems = list((report / "stems").rglob("*.wav"))
    assert any(p.name == "vocals_estimate.wav" for p in stems)
    assert len(list((report / "scores" / "model" / "test").glob("*.json"))) == summary["scores"]["tracks"]
    assert main(["demo", "--output", str(report), "--quiet"]) == 2  # never writes into an existing report
    assert "already exists" in capsys.readouterr().err


def test_the_unet_seed_arguments_train_with_real_booleans(tmp_path, capsys):
    """`mssbook train --model tfc_tdf_net` takes the seed's own flags; "False" means False (the seed's
    argparse type=bool turned every non-empty string into True), and --max_epochs/--precision map
    onto the trainer's epochs/amp."""
    out = tmp_path / "unet"
    args = ["train", "--model", "tfc_tdf_net", "--toy", "--n_fft", "512", "--hop_length", "256", "--num_frame", "48",
            "--n_blocks", "3", "--internal_channels", "8", "--n_internal_layers", "2", "--tfc_tdf_bias", "False",
            "--spec_type", "magnitude", "--spec_est_mode", "masking", "--last_activation", "sigmoid",
            "--optimizer", "rmsprop", "--lr", "0.002", "--batch_size", "2", "--max_epochs", "1", "--min_epochs", "1",
            "--precision", "32", "--samples-per-track", "1", "--valid-max-duration", "2", "--output", str(out), "--quiet"]
    assert main(args) == 0
    state = read_checkpoint(out / "last.pt")
    config = state["model_config"]
    assert config["tfc_tdf_bias"] is False and config["n_blocks"] == 3 and config["spec_type"] == "magnitude"
    assert config["n_fft"] == 512 and config["num_frame"] == 48 and config["targets"] == ["vocals"]
    train = state["train_config"]
    assert (train["optimizer"], train["lr"], train["batch_size"], train["epochs"], train["amp"]) == \
        ("rmsprop", 0.002, 2, 1, False)
    from mssbook.checkpoints import load_model

    model = load_model(out / "last.pt")
    tdf_norms = [m for name, m in model.named_modules() if "tdf" in name and isinstance(m, torch.nn.BatchNorm2d)]
    assert tdf_norms and not any(m.affine for m in tdf_norms)  # bias off: no BN affine in the TDFs
    with pytest.raises(SystemExit):  # argparse refuses what is not a boolean
        main(["train", "--model", "tfc_tdf_net", "--tfc_tdf_bias", "maybe"])
    assert "expected a boolean" in capsys.readouterr().err
    assert main(["train", "--model", "umx", "--toy", "--n_fft", "1024"]) == 2  # another family's flag
    assert "--n_fft is an option of" in capsys.readouterr().err
    assert main(["train", "--model", "tfc_tdf_net", "--toy", "--n_fft", "512", "--hop_length", "256",
                 "--num_frame", "32"]) == 2  # a window shorter than its trimmed edges: one clear line
    assert "raise num_frame (at least 42)" in capsys.readouterr().err


def test_the_same_seed_gives_the_same_run(tmp_path):
    """--seed seeds everything before the model is built: equal weights and losses, run after run."""
    def run(name, seed):
        out = tmp_path / name
        assert main(["train", "--model", "umx", "--preset", "tutorial", "--toy", "--epochs", "1", "--batch-size", "2",
                     "--samples-per-track", "1", "--seq-dur", "1.0", "--hidden-size", "8", "--nb-layers", "1",
                     "--valid-max-duration", "1", "--seed", str(seed), "--output", str(out), "--quiet"]) == 0
        state = read_checkpoint(out / "last.pt")
        history = json.loads((out / "history.json").read_text())["epochs"]
        losses = [(h["train_loss"], h.get("valid_loss")) for h in history]
        return state["model_state"], losses

    first, second, other = run("a", 7), run("b", 7), run("c", 8)
    assert first[1] == second[1]
    assert all(torch.equal(first[0][k], second[0][k]) for k in first[0])
    assert not all(torch.equal(first[0][k], other[0][k]) for k in first[0])


def test_written_files_respect_the_umask(tmp_path):
    import os

    from mssbook.utils import atomic_path

    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "x.txt") as tmp:
            tmp.write_text("hello")
    finally:
        os.umask(old)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o640


def test_import_mssbook_reaches_the_submodules_the_readme_uses():
    import subprocess
    import sys

    code = ("import mssbook; m = mssbook.models.create('umx', preset='tutorial', target='vocals'); "
            "print(type(m).__name__, callable(mssbook.checkpoints.load_model), callable(mssbook.metrics.bss_eval), "
            "'models' in dir(mssbook))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["UMX", "True", "True", "True"]


def test_a_checkpoint_with_non_finite_weights_is_refused_by_name(tmp_path):
    from mssbook import models
    from mssbook.checkpoints import load_model, save_checkpoint
    from mssbook.errors import MSSBookError

    model = models.create("umx", preset="tutorial", target="vocals", hidden_size=8, nb_layers=1)
    with torch.no_grad():
        model.target_models["vocals"].fc1.weight[0, 0] = float("nan")
    path = save_checkpoint(tmp_path / "best.pt", model)
    with pytest.raises(MSSBookError, match=r"best.pt is damaged: 1 weight tensor\(s\) hold NaN.*fc1.weight"):
        load_model(path)
