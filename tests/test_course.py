"""mssbook.course: the prepared models of the model chapters (issue 18)."""

import json

import pytest
import torch

from mssbook import course, models
from mssbook.cli import main
from mssbook.comparison import FAMILIES, recipe_configs
from mssbook.course import (PREPARATIONS, Preparation, how_to_prepare, load_prepared, prepare, prepared_dir,
                            prepared_scores, preparation)
from mssbook.data.toy import generate_toy_dataset
from mssbook.errors import MSSBookError
from mssbook.training import train_model


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    generate_toy_dataset(root, n_train=2, n_valid=0, n_test=1, duration=3.0, seed=0, workers=1, progress=False)
    return root


TINY = Preparation("UMX", epochs=2, recipe=dict(seq_dur=1.0, samples_per_track=1, batch_size=2,
                                                max_batches_per_epoch=1), model_options=dict(hidden_size=16))


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(course, "PREPARATIONS", (TINY,))
    monkeypatch.delenv("MSSBOOK_PROFILE", raising=False)  # the default profile: TINY's own epochs
    return TINY


def test_every_model_chapter_has_a_valid_preparation(tmp_path):
    assert [p.chapter for p in PREPARATIONS] == [f.chapter for f in FAMILIES] == ["02", "03", "04", "05", "06", "07"]
    for prep in PREPARATIONS:
        data, config = recipe_configs(prep.item, tmp_path, epochs=prep.epochs, time_budget=None, **prep.recipe)
        assert config.epochs == prep.epochs and config.time_budget is None  # fixed epochs, not a time budget
        with torch.device("meta"):
            models.create(prep.item.model, preset="tutorial", target=prep.item.target, **prep.model_options)
        assert preparation(prep.chapter) is prep and preparation(prep.family) is prep
    assert preparation("6").family == "BSRNN"
    with pytest.raises(MSSBookError, match="no prepared model for 'Demucs'.*06 \\(BSRNN\\)"):
        preparation("Demucs")
    text = how_to_prepare("04")
    assert "mssbook course prepare --chapter 04" in text and "D3Net" in text


def test_prepare_trains_scores_once_and_never_retrains_unasked(toy_root, tmp_path, tiny):
    assert load_prepared("UMX", toy_root, base=tmp_path) is None
    lines = []
    [folder] = prepare("02", toy_root, base=tmp_path, progress=False, log=lines.append)
    assert folder == prepared_dir("UMX", toy_root, base=tmp_path) and folder.parent == tmp_path
    assert sorted(p.name for p in folder.iterdir()) == ["history.json", "model.pt", "prepared.json", "scores"]
    info = json.loads((folder / "prepared.json").read_text())
    assert info["epochs"] == 2 and info["steps"] == 2 and info["family"] == "UMX" and info["recipe"]["batch_size"] == 2
    prepared = load_prepared("02", toy_root, base=tmp_path)
    assert prepared.epochs == 2 and prepared.model.config["hidden_size"] == 16 and not prepared.model.training
    assert "2 epochs" in prepared.describe()
    checkpoint = torch.load(folder / "model.pt", weights_only=False)
    assert "optimizer" not in checkpoint  # the weights only

    scores = prepared_scores(prepared, toy_root)  # scored by prepare: read, not separated again
    assert scores["evaluated"] == [] and len(scores["tracks"]) == 1 and "vocals" in scores["table"]
    stamp = (folder / "model.pt").stat().st_mtime_ns
    prepare("UMX", toy_root, base=tmp_path, progress=False, log=lines.append)
    assert (folder / "model.pt").stat().st_mtime_ns == stamp and "already prepared" in lines[-1]

    prepare("UMX", toy_root, base=tmp_path, progress=False, force=True, evaluate=False, log=lines.append)
    assert (folder / "model.pt").stat().st_mtime_ns != stamp and not (folder / "scores").exists()  # old scores gone
    other = tmp_path / "toy2"
    generate_toy_dataset(other, n_train=2, n_valid=0, n_test=1, duration=2.0, seed=1, workers=1, progress=False)
    assert prepared_dir("UMX", other, base=tmp_path) != folder  # other songs: another model
    assert load_prepared("UMX", other, base=tmp_path) is None


def test_the_ci_profile_prepares_a_token_model_apart(toy_root, tmp_path, tiny, monkeypatch):
    default = prepared_dir("UMX", toy_root, base=tmp_path)
    monkeypatch.setenv("MSSBOOK_PROFILE", "ci")
    folder = prepared_dir("UMX", toy_root, base=tmp_path)
    assert folder != default and folder.name.startswith("ch02-umx-vocals-ci-")
    prepare("UMX", toy_root, base=tmp_path, progress=False, evaluate=False, log=lambda line: None)
    info = json.loads((folder / "prepared.json").read_text())
    assert info["epochs"] == 1 and info["steps"] == 1 and info["profile"] == "ci"  # CI_RECIPE: 1 epoch
    assert not default.exists()


def test_an_interrupted_preparation_resumes(toy_root, tmp_path, tiny):
    folder = prepared_dir("UMX", toy_root, base=tmp_path)
    data, config = recipe_configs(TINY.item, toy_root, epochs=1, patience=2, time_budget=None, progress=False,
                                  **TINY.recipe)
    torch.manual_seed(config.seed)
    model = models.create("umx", preset="tutorial", target="vocals", hidden_size=16)
    first = train_model(model, data, config, output=folder / ".training").history  # stopped after epoch 1 of 2
    prepare("UMX", toy_root, base=tmp_path, progress=False, evaluate=False, log=lambda line: None)
    history = json.loads((folder / "history.json").read_text())["epochs"]
    assert len(history) == 2 and history[0]["train_loss"] == first[0]["train_loss"]  # epoch 1 was not trained again
    assert not (folder / ".training").exists()


def test_a_broken_prepared_model_is_reported_not_raised(toy_root, tmp_path, tiny):
    folder = prepared_dir("UMX", toy_root, base=tmp_path)
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"not a checkpoint")
    (folder / "prepared.json").write_text("{}")
    with pytest.warns(UserWarning, match="mssbook course prepare --chapter 02 --force"):
        assert load_prepared("UMX", toy_root, base=tmp_path) is None
    with pytest.raises(MSSBookError, match="takes what load_prepared returns"):
        prepared_scores(None, toy_root)


def test_course_command_prepares_and_lists(toy_root, tmp_path, tiny, monkeypatch, capsys):
    monkeypatch.setenv("MSSBOOK_DATA", str(tmp_path))
    assert main(["course", "status", "--root", str(toy_root)]) == 0
    out = capsys.readouterr().out
    assert "not prepared (mssbook course prepare --chapter 02)" in out
    assert main(["course", "prepare", "--chapter", "02", "--root", str(toy_root), "--quiet"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("02 "))
    assert "UMX" in row and str(tmp_path / "prepared") in row and "not prepared" not in row
    assert main(["course", "prepare", "--chapter", "09", "--root", str(toy_root)]) == 2
    assert "no prepared model for '09'" in capsys.readouterr().err
