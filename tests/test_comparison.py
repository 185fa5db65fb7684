"""mssbook.comparison (chapter 08): families, kept runs or training, the gain baseline, costs; the ch08 exercises."""

import json

import numpy as np
import pytest
import torch

from mssbook import models
from mssbook.checkpoints import save_checkpoint
from mssbook.comparison import (FAMILIES, dataset_scores_dir, evaluate_gain, family, fit_gains, gain_baseline,
                                load_or_train, over_gain, recipe_configs, separation_seconds, training_step_seconds)
from mssbook.data.musdb import open_musdb
from mssbook.data.toy import generate_toy_dataset
from mssbook.errors import MSSBookError
from mssbook.exercises import chapter_exercises, check
from mssbook.metrics import csdr
from mssbook.notebook import RUN_INFO, kept_run_dir


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    generate_toy_dataset(root, n_train=2, n_valid=0, n_test=2, duration=3.0, seed=0, workers=1, progress=False)
    return root


@pytest.fixture
def default_profile(monkeypatch):
    monkeypatch.delenv("MSSBOOK_PROFILE", raising=False)


def test_families_build_and_their_recipes_are_valid(tmp_path):
    assert [f.chapter for f in FAMILIES] == ["02", "03", "04", "05", "06", "07"]
    assert len({f.run for f in FAMILIES}) == len(FAMILIES)
    for item in FAMILIES:
        data, config = recipe_configs(item, tmp_path, time_budget=5.0)
        assert data.root == str(tmp_path) and data.is_wav is True and config.time_budget == 5.0
        for key, value in item.cpu.items():  # the chapter's CPU changes win over the recipe
            assert getattr(data, key, getattr(config, key, None)) == value, (item.label, key)
        model = models.create(item.model, preset="tutorial", target=item.target)
        assert model.num_parameters() < models.create(item.model, preset="paper", target=item.target).num_parameters()
    assert family("BSRNN").run == "ch06-bsrnn-vocals"
    with pytest.raises(MSSBookError, match="no family 'Demucs'"):
        family("Demucs")
    with pytest.raises(MSSBookError, match="neither DataConfig nor TrainConfig"):
        recipe_configs(FAMILIES[0], tmp_path, not_a_field=1)


def test_fit_gains_is_the_least_squares_gain(toy_root):
    gains = fit_gains(toy_root, ["vocals", "bass"], is_wav=True)
    tracks = open_musdb(toy_root, subsets="train", is_wav=True).tracks
    x = np.concatenate([t.audio for t in tracks]).astype(np.float64)
    for target in ("vocals", "bass"):
        s = np.concatenate([t.targets[target].audio for t in tracks]).astype(np.float64)
        assert gains[target] == pytest.approx(np.sum(x * s) / np.sum(x * x), rel=1e-9)
        errors = [np.sum((g * x - s) ** 2) for g in (0.9 * gains[target], gains[target], 1.1 * gains[target])]
        assert errors[1] < errors[0] and errors[1] < errors[2]  # a minimum
        assert 0 < gains[target] < 1
    with pytest.raises(MSSBookError, match="no target 'piano'"):
        fit_gains(toy_root, ["piano"], is_wav=True)


def test_evaluate_gain_scores_the_scaled_mixture(toy_root, tmp_path):
    gains = {"vocals": 0.3}  # one target: scored with its complement, as a vocals model is
    track = open_musdb(toy_root, subsets="test", is_wav=True).tracks[0]
    result = evaluate_gain(gains, toy_root, output_dir=tmp_path / "gain", tracks=[track.name], is_wav=True)
    table = result["table"]
    assert result["tracks"] == [track.name]
    expected = csdr({"vocals": track.targets["vocals"].audio.T}, {"vocals": 0.3 * track.audio.T}, track.rate)["vocals"]
    assert table.per_track[track.name]["vocals"]["SDR"] == pytest.approx(expected, abs=1e-3)  # SDR = cSDR
    again = evaluate_gain(gains, toy_root, output_dir=tmp_path / "gain", tracks=[track.name], is_wav=True)
    assert again["evaluated"] == [] and again["table"]["vocals"]["SDR"] == table["vocals"]["SDR"]  # resumed
    with pytest.raises(MSSBookError, match="gains is empty"):
        evaluate_gain({}, toy_root, output_dir=tmp_path / "none")


def test_gain_baseline_is_cached_per_dataset_and_over_gain_compares_per_target(toy_root, tmp_path):
    result = gain_baseline(toy_root, is_wav=True, base=tmp_path)
    table = result["table"]
    assert set(table.targets()) == {"vocals", "drums", "bass", "other"} and len(result["tracks"]) == 2
    assert result["gains"] == pytest.approx(fit_gains(toy_root, ["vocals", "drums", "bass", "other"], is_wav=True))
    track = open_musdb(toy_root, subsets="test", is_wav=True).tracks[0]
    g = result["gains"]["drums"]
    expected = csdr({"drums": track.targets["drums"].audio.T}, {"drums": g * track.audio.T}, track.rate)["drums"]
    assert table.per_track[track.name]["drums"]["SDR"] == pytest.approx(expected, abs=1e-3)
    folder = dataset_scores_dir(toy_root, "gain", base=tmp_path)
    assert sorted(p.stem for p in (folder / "test").glob("*.json")) == sorted(result["tracks"])
    again = gain_baseline(toy_root, is_wav=True, base=tmp_path)  # the next chapter reads the same scores
    assert again["evaluated"] == [] and again["table"]["vocals"]["SDR"] == table["vocals"]["SDR"]

    one = over_gain({"vocals": table["vocals"]["SDR"] + 2.5}, table)
    assert one == pytest.approx({"gain_baseline_db": table["vocals"]["SDR"], "over_gain_db": 2.5})
    four = {t: table[t]["SDR"] + shift for t, shift in zip(("vocals", "drums", "bass", "other"), (4, 0, -2, 2))}
    average = over_gain(four, table)
    assert average["over_gain_db"] == pytest.approx(1.0)  # each target against its own gain, then averaged
    assert average["gain_baseline_db"] == pytest.approx(np.mean([table[t]["SDR"] for t in four]))
    assert over_gain(four, table, targets=["vocals"])["over_gain_db"] == pytest.approx(4.0)
    with pytest.raises(MSSBookError, match="piano"):
        over_gain({"piano": 3.0}, table)


def test_dataset_scores_dir_follows_the_files(toy_root, tmp_path):
    first = dataset_scores_dir(toy_root, "oracle-irm2", base=tmp_path)
    assert first.parent == tmp_path and first.name.startswith("oracle-irm2-")
    assert dataset_scores_dir(toy_root, "oracle-irm2", base=tmp_path) == first  # deterministic
    other = tmp_path / "other"
    generate_toy_dataset(other, n_train=1, n_valid=0, n_test=1, duration=2.0, seed=1, workers=1, progress=False)
    assert dataset_scores_dir(other, "oracle-irm2", base=tmp_path) != first
    with pytest.raises(MSSBookError, match="not a folder"):
        dataset_scores_dir(tmp_path / "missing", "x")


def test_load_or_train_prefers_the_kept_run(toy_root, tmp_path, default_profile, one_thread):
    item = family("D3Net")
    runs = tmp_path / "runs"
    kept = kept_run_dir(item.run, root=runs)
    kept.mkdir(parents=True)
    torch.manual_seed(0)
    model = models.create(item.model, preset="tutorial", target=item.target)
    save_checkpoint(kept / "best.pt", model, epoch=3)
    (kept / "history.json").write_text(json.dumps({"epochs": [{"epoch": e, "seconds": 2.5} for e in (1, 2, 3)]}))
    (kept / RUN_INFO).write_text("{}")
    loaded = load_or_train(item, toy_root, time_budget=1.0, output=tmp_path / "train", runs_root=runs)
    assert loaded.source == "loaded" and loaded.path == kept / "best.pt"
    assert loaded.train_seconds == pytest.approx(7.5) and loaded.epochs == 3
    for a, b in zip(loaded.model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    assert not (tmp_path / "train").exists()  # nothing trained

    trained = load_or_train(item, toy_root, time_budget=0.01, output=tmp_path / "train", runs_root=runs,
                            use_runs=False, max_batches_per_epoch=1, samples_per_track=2, batch_size=2)
    assert trained.source == "trained here" and trained.epochs == 1  # the budget stops after the first epoch
    assert trained.path.parent.parent == tmp_path / "train" and trained.path.name == "last.pt"
    assert trained.path.parent.name.startswith(item.run) and trained.path.is_file()
    assert trained.model.num_parameters() == model.num_parameters()

    (kept / "best.pt").write_bytes(b"not a checkpoint")  # unreadable: trained instead, with a warning
    with pytest.warns(UserWarning, match="could not be loaded"):
        again = load_or_train(item, toy_root, time_budget=0.01, output=tmp_path / "train", runs_root=runs,
                              max_batches_per_epoch=1, samples_per_track=2, batch_size=2)
    assert again.source == "trained here" and again.path != trained.path

    step = training_step_seconds(trained, repeats=1)
    assert 0 < step < 60
    audio = open_musdb(toy_root, subsets="test", is_wav=True).tracks[0].audio.T[:, :44100].astype(np.float32)
    assert 0 < separation_seconds(trained.model, audio, 44100, residual=True) < 60
    with pytest.raises(MSSBookError, match="time_budget"):
        load_or_train(item, toy_root, time_budget=0, output=tmp_path / "x", runs_root=runs)
    with pytest.raises(MSSBookError, match="empty"):
        separation_seconds(trained.model, audio[:, :0], 44100)


def test_chapter_08_exercises_check_their_solutions_and_refuse_wrong_answers():
    items = chapter_exercises("08")
    assert [e.id for e in items] == ["08.1", "08.2", "08.3"]
    for item in items:
        verdict = check(item.id, item.solve())
        assert verdict.ok, verdict
        assert item.wrong_answers, item.id
        for wrong in item.wrong_answers:
            verdict = check(item.id, wrong())
            assert not verdict.ok, (item.id, verdict)
    assert not check("08.1", 0.3).ok  # a number, not a function
    assert not check("08.3", lambda a, b: 3).ok  # not a pair
