"""mssbook.notebook.keep_run / chapter_runs: chapters leave their runs where chapter 01 finds them."""

import json

import pytest
import torch

from mssbook import models
from mssbook.checkpoints import load_model, save_checkpoint
from mssbook.errors import MSSBookError
from mssbook.notebook import RUN_INFO, chapter_runs, keep_run, kept_run_dir
from mssbook.widgets.player import find_checkpoints


def fake_run(folder, seed=0, best=True, last=True):
    """A training-run folder as the Trainer leaves it: best.pt, last.pt, history.json."""
    torch.manual_seed(seed)
    model = models.create("umx", preset="tutorial", target="vocals", n_fft=512, n_hop=128, hidden_size=8,
                          nb_layers=1, bandwidth=4000)
    folder.mkdir(parents=True, exist_ok=True)
    if best:
        save_checkpoint(folder / "best.pt", model, epoch=1)
    if last:
        save_checkpoint(folder / "last.pt", model, epoch=2)
    (folder / "history.json").write_text(json.dumps({"epochs": [{"epoch": 1, "seed": seed}]}))
    return model


@pytest.fixture
def default_profile(monkeypatch):
    monkeypatch.delenv("MSSBOOK_PROFILE", raising=False)


def test_keep_run_copies_checkpoint_history_and_info(tmp_path, default_profile):
    model = fake_run(tmp_path / "tmp-train")
    runs = tmp_path / "runs"
    kept = keep_run(tmp_path / "tmp-train", "ch02-umx-vocals", root=runs)
    assert kept == runs / "ch02-umx-vocals-default"
    assert sorted(p.name for p in kept.iterdir()) == ["best.pt", "history.json", RUN_INFO]
    assert (kept / "best.pt").read_bytes() == (tmp_path / "tmp-train" / "best.pt").read_bytes()
    info = json.loads((kept / RUN_INFO).read_text())
    assert info["name"] == "ch02-umx-vocals" and info["profile"] == "default" and info["checkpoint"] == "best.pt"
    assert info["source"] == str((tmp_path / "tmp-train").resolve())
    loaded = load_model(kept / "best.pt")
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    # what chapter 01 globs, and what the separation player lists
    assert list(runs.glob("*/best.pt")) == [kept / "best.pt"]
    assert find_checkpoints(runs) == [kept / "best.pt"]
    # no temporary folder is left behind
    assert [p.name for p in runs.iterdir()] == ["ch02-umx-vocals-default"]


def test_keep_run_replaces_the_older_copy_and_leaves_other_profiles(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("MSSBOOK_PROFILE", "ci")
    fake_run(tmp_path / "a", seed=1)
    ci = keep_run(tmp_path / "a", "ch03-xumx", root=runs)
    monkeypatch.delenv("MSSBOOK_PROFILE")
    fake_run(tmp_path / "b", seed=2)
    first = keep_run(tmp_path / "b", "ch03-xumx", root=runs)
    fake_run(tmp_path / "c", seed=3)
    second = keep_run(tmp_path / "c", "ch03-xumx", root=runs)
    assert first == second == runs / "ch03-xumx-default" and ci == runs / "ch03-xumx-ci"
    assert (second / "best.pt").read_bytes() == (tmp_path / "c" / "best.pt").read_bytes()
    assert json.loads((second / "history.json").read_text())["epochs"][0]["seed"] == 3
    assert sorted(p.name for p in runs.iterdir()) == ["ch03-xumx-ci", "ch03-xumx-default"]
    assert (ci / "best.pt").read_bytes() == (tmp_path / "a" / "best.pt").read_bytes()


def test_keep_run_last_checkpoint(tmp_path, default_profile):
    fake_run(tmp_path / "train", best=False)
    with pytest.raises(MSSBookError, match="no best.pt in .*found: last.pt"):
        keep_run(tmp_path / "train", "ch07-wavenet", root=tmp_path / "runs")
    kept = keep_run(tmp_path / "train", "ch07-wavenet", checkpoint="last.pt", root=tmp_path / "runs")
    assert (kept / "best.pt").read_bytes() == (tmp_path / "train" / "last.pt").read_bytes()
    assert json.loads((kept / RUN_INFO).read_text())["checkpoint"] == "last.pt"


@pytest.mark.parametrize("name", ["", "../up", ".hidden", "a/b", "-x", "with space", 3])
def test_keep_run_rejects_bad_names(tmp_path, name):
    fake_run(tmp_path / "train")
    with pytest.raises(MSSBookError, match="plain folder name"):
        keep_run(tmp_path / "train", name, root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_keep_run_errors(tmp_path):
    with pytest.raises(MSSBookError, match="no best.pt in .*found: nothing"):
        keep_run(tmp_path / "missing", "ch02-umx-vocals", root=tmp_path / "runs")
    fake_run(tmp_path / "train")
    with pytest.raises(MSSBookError, match="'best.pt' or 'last.pt'"):
        keep_run(tmp_path / "train", "ch02", checkpoint="model.pt", root=tmp_path / "runs")
    with pytest.raises(MSSBookError, match="profile 'gpu'"):
        kept_run_dir("ch02", "gpu")


def test_chapter_runs_filters_by_profile_and_prefix(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    assert chapter_runs(root=runs) == []
    fake_run(tmp_path / "train")
    monkeypatch.setenv("MSSBOOK_PROFILE", "ci")
    keep_run(tmp_path / "train", "ch04-umx-vocals", root=runs)
    monkeypatch.delenv("MSSBOOK_PROFILE")
    for name in ("ch04-d3net-vocals", "ch04-umx-vocals", "ch02-umx-vocals"):
        keep_run(tmp_path / "train", name, root=runs)
    fake_run(runs / "demo-umx-vocals-default", last=False)  # a run keep_run did not write: not a chapter run
    names = lambda paths: [p.parent.name for p in paths]  # noqa: E731
    assert names(chapter_runs(root=runs)) == ["ch02-umx-vocals-default", "ch04-d3net-vocals-default",
                                              "ch04-umx-vocals-default"]
    assert names(chapter_runs(prefix="ch04-", root=runs)) == ["ch04-d3net-vocals-default", "ch04-umx-vocals-default"]
    assert names(chapter_runs("ci", root=runs)) == ["ch04-umx-vocals-ci"]
    assert len(chapter_runs("all", root=runs)) == 4
    monkeypatch.setenv("MSSBOOK_PROFILE", "ci")
    assert names(chapter_runs(root=runs)) == ["ch04-umx-vocals-ci"]
    with pytest.raises(MSSBookError, match="profile_name 'cpu'"):
        chapter_runs("cpu", root=runs)
