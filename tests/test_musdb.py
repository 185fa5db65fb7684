"""open_musdb: layout checks up front, format detection, MUSDB_PATH, splits, offline download."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mssbook.errors import DatasetError

pytest.importorskip("musdb")
if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
    pytest.skip("musdb needs ffmpeg and ffprobe on PATH", allow_module_level=True)

from mssbook.data.musdb import convert_to_wav, describe_musdb, open_musdb  # noqa: E402
from helpers import musdb_sample_root  # noqa: E402  (tests/helpers.py)

SR = 8000
SOURCES = ("vocals", "drums", "bass", "other")


def write_track(folder: Path, seconds: float = 0.5, sources=SOURCES) -> None:
    """A WAV track folder: mixture.wav plus one file per source (float WAV, stereo)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = int(seconds * SR)
    total = np.zeros((n, 2), dtype=np.float32)
    for k, name in enumerate(sources):
        audio = np.full((n, 2), 0.01 * (k + 1), dtype=np.float32)
        sf.write(folder / f"{name}.wav", audio, SR, subtype="FLOAT")
        total += audio
    sf.write(folder / "mixture.wav", total, SR, subtype="FLOAT")


def write_setup(root: Path, validation: list[str]) -> None:
    """root/mus.yaml: musdb's own setup file with other validation songs (as toy datasets write it)."""
    import musdb
    import yaml

    setup = yaml.safe_load((Path(musdb.__path__[0]) / "configs" / "mus.yaml").read_text())
    setup["validation_tracks"] = validation
    (root / "mus.yaml").write_text(yaml.safe_dump(setup))


@pytest.fixture(scope="module")
def wav_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("musdb_wav")
    for name in ("A - One", "B - Two", "C - Three"):
        write_track(root / "train" / name)
    write_track(root / "test" / "D - Four")
    # junk that musdb alone would turn into tracks without audio
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "train" / "@eaDir").mkdir()
    (root / "train" / "A - One" / "@eaDir").mkdir()
    return root


def test_no_root_and_no_musdb_path(monkeypatch):
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    with pytest.raises(DatasetError, match="MUSDB_PATH") as err:
        open_musdb()
    assert "download=True" in str(err.value) and "toy" in str(err.value)


def test_missing_root_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match="does not exist") as err:
        open_musdb(missing)
    assert str(missing) in str(err.value)
    assert "<Artist - Title>.stem.mp4" in str(err.value)


def test_missing_subset_and_case_hint(tmp_path):
    write_track(tmp_path / "Train" / "A - One")
    with pytest.raises(DatasetError, match="case-sensitive") as err:
        open_musdb(tmp_path)
    assert str(tmp_path / "train") in str(err.value)
    write_track(tmp_path / "train" / "A - One")
    with pytest.raises(DatasetError, match="does not exist") as err:
        open_musdb(tmp_path, subsets=["train", "test"])  # test/ is missing
    assert str(tmp_path / "test") in str(err.value)


def test_root_one_level_too_high_is_hinted(wav_root):
    with pytest.raises(DatasetError, match="did you mean root="):
        open_musdb(wav_root.parent)


def test_zero_tracks_names_the_path(tmp_path):
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "train" / "Just A Folder").mkdir()
    with pytest.raises(DatasetError, match="0 tracks found") as err:
        open_musdb(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "train") in msg
    assert "Just A Folder" in msg and ".ipynb_checkpoints" in msg
    assert "mixture.wav" in msg and "is_wav" in msg


def test_wrong_is_wav_is_an_error_not_an_empty_dataset(wav_root, tmp_path):
    with pytest.raises(DatasetError, match="is_wav=False") as err:
        open_musdb(wav_root, is_wav=False)
    assert str(wav_root / "train") in str(err.value) and "pass is_wav=True" in str(err.value)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "A - One.stem.mp4").write_bytes(b"")  # never decoded: checked first
    with pytest.raises(DatasetError, match="is_wav=True") as err:
        open_musdb(tmp_path, is_wav=True)
    assert "STEMS tree" in str(err.value) and str(tmp_path / "train") in str(err.value)


def test_incomplete_wav_track(tmp_path):
    write_track(tmp_path / "train" / "A - One", sources=("vocals", "drums", "bass"))
    with pytest.raises(DatasetError, match="lacks other.wav") as err:
        open_musdb(tmp_path)
    assert str(tmp_path / "train" / "A - One") in str(err.value)


@pytest.mark.parametrize("content, reason", [(b"", "cannot be read as audio"),
                                             (b"this is text, not a WAV file", "cannot be read as audio")])
def test_a_damaged_stem_is_named_before_training(tmp_path, content, reason):
    write_track(tmp_path / "train" / "A - One")
    write_track(tmp_path / "train" / "B - Two")
    (tmp_path / "train" / "B - Two" / "bass.wav").write_bytes(content)
    with pytest.raises(DatasetError, match=reason) as err:
        open_musdb(tmp_path)
    assert str(tmp_path / "train" / "B - Two" / "bass.wav") in str(err.value)


def test_a_wav_with_no_samples_is_named(tmp_path):
    import soundfile as sf

    write_track(tmp_path / "test" / "A - One")
    sf.write(tmp_path / "test" / "A - One" / "mixture.wav", np.zeros((0, 2), dtype="float32"), 44100)
    with pytest.raises(DatasetError, match="mixture.wav holds no audio"):
        open_musdb(tmp_path, subsets="test")


def test_a_damaged_stem_file_is_named(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "A - Broken.stem.mp4").write_bytes(b"not an mp4 at all" * 100)
    with pytest.raises(DatasetError, match=r"A - Broken.stem.mp4 cannot be read"):
        open_musdb(tmp_path, subsets="test", is_wav=False)


def test_autodetect_wav_and_ignore_junk(wav_root):
    db = open_musdb(wav_root)  # is_wav=None
    assert db.is_wav and db.mssbook_format == "wav"
    assert [t.name for t in db.tracks] == ["A - One", "B - Two", "C - Three"]
    assert all(t.rate == SR for t in db.tracks)
    both = open_musdb(wav_root, subsets=None)
    assert [t.subset for t in both.tracks] == ["train"] * 3 + ["test"]
    assert len(open_musdb(wav_root, subsets="test")) == 1


def test_musdb_path_environment_variable(wav_root, monkeypatch):
    monkeypatch.setenv("MUSDB_PATH", str(wav_root))
    assert len(open_musdb(subsets=["train", "test"])) == 4
    monkeypatch.setenv("MUSDB_PATH", str(wav_root / "missing"))
    with pytest.raises(DatasetError, match=r"\$MUSDB_PATH"):
        open_musdb()


def test_split_uses_the_roots_mus_yaml(tmp_path):
    for name in ("A - One", "B - Two", "C - Three"):
        write_track(tmp_path / "train" / name)
    # musdb's own 14-song list matches none of these songs: a clear error, not an empty loader
    with pytest.raises(DatasetError, match="validation list"):
        open_musdb(tmp_path, split="valid")
    assert len(open_musdb(tmp_path, split="train")) == 3
    write_setup(tmp_path, ["B - Two"])
    assert [t.name for t in open_musdb(tmp_path, split="valid").tracks] == ["B - Two"]
    assert [t.name for t in open_musdb(tmp_path, split="train").tracks] == ["A - One", "C - Three"]
    assert len(open_musdb(tmp_path, split=None)) == 3
    with pytest.raises(DatasetError, match="subsets='train'"):
        open_musdb(tmp_path, subsets=["train", "test"], split="valid")
    with pytest.raises(DatasetError, match="unknown split"):
        open_musdb(tmp_path, split="validation")
    (tmp_path / "mus.yaml").write_text("validation_tracks: ['B - Two']\n")
    with pytest.raises(DatasetError, match="lacks the key"):
        open_musdb(tmp_path, split="valid")


def test_unknown_subset_name():
    with pytest.raises(DatasetError, match="case-sensitive"):
        open_musdb("/", subsets="Train")


def test_download_offline_fails_fast_and_clearly(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable (simulated)")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    start = time.perf_counter()
    with pytest.raises(DatasetError) as err:
        open_musdb(tmp_path / "preview", download=True)
    assert time.perf_counter() - start < 5
    msg = str(err.value)
    assert "offline" in msg and "MUSDB_PATH" in msg and "toy" in msg
    assert err.value.__cause__ is None  # one clear message, no chained traceback
    assert not (tmp_path / "preview" / "train").exists()


def test_download_when_the_name_resolves_but_the_server_does_not_answer(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise ConnectionRefusedError("connection refused (simulated)")

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [])
    monkeypatch.setattr(socket, "create_connection", refused)
    with pytest.raises(DatasetError, match="not reachable"):
        open_musdb(tmp_path / "preview", download=True)


def test_describe_musdb(wav_root):
    db = open_musdb(wav_root, subsets=None)
    info = describe_musdb(db)
    assert info["format"] == "wav" and info["n_tracks"] == 4 and info["sample_rate"] == SR
    assert info["subsets"]["train"]["n_tracks"] == 3 and info["subsets"]["test"]["n_tracks"] == 1
    assert info["subsets"]["train"]["n_train"] == 3 and info["subsets"]["train"]["n_valid"] == 0
    assert info["total_seconds"] == pytest.approx(2.0)


def test_stems_tree_of_the_shared_sample():
    root = musdb_sample_root()
    db = open_musdb(root)
    assert db.mssbook_format == "stems" and not db.is_wav
    assert [t.name for t in db.tracks] == ["Music Delta - 80s Rock"]
    info = describe_musdb(db)
    assert info["format"] == "stems" and info["sample_rate"] == 44100
    assert info["total_seconds"] == pytest.approx(6.8, abs=0.1)
    with pytest.raises(DatasetError, match="is_wav=True"):
        open_musdb(root, is_wav=True)


def test_convert_stems_to_wav(tmp_path, wav_root):
    root = musdb_sample_root()
    from mssbook.data.sampler import MUSDBValidSet

    out = convert_to_wav(root, tmp_path / "wav", subsets="train", progress=False)
    track = out / "train" / "Music Delta - 80s Rock"
    assert sorted(p.name for p in track.iterdir()) == [
        "bass.wav", "drums.wav", "mixture.wav", "other.wav", "vocals.wav"
    ]
    assert not [p for p in (out / "train").iterdir() if p.name.startswith(".")]  # no partial left
    wav = open_musdb(out)
    assert wav.mssbook_format == "wav"
    a = MUSDBValidSet(open_musdb(root), ("vocals", "drums"))[0]
    b = MUSDBValidSet(wav, ("vocals", "drums"))[0]
    for x, y in zip(a, b):  # the same audio, up to 16-bit rounding
        assert x.shape == y.shape
        assert float((x - y).abs().max()) <= 2**-15 + 1e-6
    stamp = (track / "vocals.wav").stat().st_mtime_ns
    convert_to_wav(root, out, subsets="train", progress=False)  # done tracks are skipped
    assert (track / "vocals.wav").stat().st_mtime_ns == stamp
    with pytest.raises(DatasetError, match="already a WAV tree"):
        convert_to_wav(wav_root, tmp_path / "again", progress=False)
