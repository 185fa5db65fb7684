"""MUSDBTrainSet / MUSDBValidSet: UMX's sampling, reproducible under a seed and with workers.

The tiny WAV tree encodes where every sample came from: channel 0 of source ``s`` of track ``t``
is the constant ``code(t, s)``, channel 1 is the position ramp ``n / 100000``. So an excerpt says
which track it came from (channel 0), at which offset (channel 1), with which gain (the ratio) and
whether its channels were swapped.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from mssbook.errors import DatasetError
from mssbook.paths import shared_data_dir

pytest.importorskip("musdb")
if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
    pytest.skip("musdb needs ffmpeg and ffprobe on PATH", allow_module_level=True)

from mssbook.data.musdb import open_musdb  # noqa: E402
from mssbook.data.sampler import (  # noqa: E402
    SEED_PRESETS,
    ChannelSwap,
    Gain,
    MUSDBTrainSet,
    MUSDBValidSet,
)

SR = 8000
SOURCES = ("vocals", "drums", "bass", "other")
TRACKS = {"A - One": 1.0, "B - Two": 1.5, "C - Three": 2.0, "D - Short": 0.3}  # seconds
RAMP = 1e-5
SEQ = 0.5  # seconds: 4000 samples


def code(t: int, s: int) -> float:
    return 0.1 + 0.04 * t + 0.01 * s


def write_tree(root: Path) -> None:
    for t, (name, seconds) in enumerate(TRACKS.items()):
        folder = root / "train" / name
        folder.mkdir(parents=True)
        n = int(seconds * SR)
        ramp = (np.arange(n) * RAMP).astype(np.float32)
        total = np.zeros((n, 2), np.float32)
        for s, source in enumerate(SOURCES):
            audio = np.stack([np.full(n, code(t, s), np.float32), ramp], axis=1)
            sf.write(folder / f"{source}.wav", audio, SR, subtype="FLOAT")
            total += audio
        # the real mixture differs from the sum of the sources (as MUSDB's does, through AAC)
        sf.write(folder / "mixture.wav", 0.5 * total, SR, subtype="FLOAT")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sampler_wav")
    write_tree(path)
    return path


@pytest.fixture(scope="module")
def db(root):
    return open_musdb(root, split=None)


def file_excerpt(root: Path, name: str, source: str, offset: int, length: int) -> np.ndarray:
    audio, _ = sf.read(root / "train" / name / f"{source}.wav", dtype="float32", always_2d=True)
    out = np.zeros((2, length), np.float32)
    piece = audio[offset : offset + length].T
    out[:, : piece.shape[1]] = piece
    return out


def test_shapes_and_len(db):
    L = int(SEQ * SR)
    one = MUSDBTrainSet(db, "vocals", seq_dur=SEQ, samples_per_track=3)
    assert len(one) == 4 * 3 and one.direct and one.sample_rate == SR
    x, y = one[0]
    assert x.shape == (2, L) and y.shape == (2, L)
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    two = MUSDBTrainSet(db, ("drums", "vocals"), seq_dur=SEQ, samples_per_track=2)
    assert two[5][1].shape == (2, 2, L) and len(two) == 8
    four = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=1)
    assert four[3][1].shape == (4, 2, L)


def test_mixture_is_the_sum_of_the_returned_sources(db):
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=4, seed=3)
    for i in range(0, len(ds), 3):
        x, y = ds[i]
        torch.testing.assert_close(x, y.sum(0), rtol=0, atol=1e-6)


def test_excerpts_follow_the_plan_exactly(root, db):
    """Track, offset, gain and channel swap of every source match describe_item()."""
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=4, seed=7)
    L = ds.seq_len
    for i in (0, 5, 9, 15):
        _, y = ds[i]
        plan = ds.describe_item(i)
        assert plan[0]["track"] == i // 4  # the first target's source keeps the indexed track
        for k, p in enumerate(plan):
            expected = file_excerpt(root, p["name"], p["source"], p["offset"], L)
            aug = dict(p["augment"])
            expected = expected * np.float32(aug["gain"])
            if aug["channelswap"]:
                expected = expected[::-1]
            np.testing.assert_allclose(y[k].numpy(), expected, rtol=0, atol=1e-6)


def test_determinism_seed_and_epoch(db):
    kwargs = dict(targets=SOURCES, seq_dur=SEQ, samples_per_track=2)
    a, b = MUSDBTrainSet(db, seed=1, **kwargs), MUSDBTrainSet(db, seed=1, **kwargs)
    c = MUSDBTrainSet(db, seed=2, **kwargs)
    for i in (0, 3, 7):
        assert torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1])
        assert not torch.equal(a[i][1], c[i][1])
    first = a[4][1]
    a.set_epoch(1)
    assert not torch.equal(a[4][1], first)
    a.set_epoch(0)
    assert torch.equal(a[4][1], first)


def test_random_track_mix_really_mixes_tracks(db):
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=8, source_augmentations=(), seed=0)
    foreign = 0
    for i in range(len(ds)):
        _, y = ds[i]
        plan = ds.describe_item(i)
        for s, p in enumerate(plan):
            t = p["track"]
            if TRACKS[p["name"]] * SR >= ds.seq_len:  # (short tracks are zero-padded at the end)
                assert np.allclose(y[s, 0].numpy(), code(t, s))  # the audio really is from track t
            foreign += t != i // 8
    assert foreign > len(ds)  # most non-anchor sources come from other tracks


def test_without_track_mix_all_sources_share_track_and_offset(db):
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=3, random_track_mix=False,
                       source_augmentations=(), seed=0)
    for i in range(len(ds)):
        _, y = ds[i]
        t = i // 3
        for s in range(4):
            assert np.allclose(y[s, 0].numpy()[:10], code(t, s))
        torch.testing.assert_close(y[:, 1], y[0:1, 1].expand(4, -1))  # same ramp: same offset
        assert len({p["offset"] for p in ds.describe_item(i)}) == 1


def test_gain_range_and_presets(db):
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=10, random_track_mix=False,
                       source_augmentations=("gain",), gain_range=(0.75, 1.25), seed=0)
    gains = []
    for i in range(0, 30):
        _, y = ds[i]
        for s in range(4):
            gains.append(float(y[s, 0, 0]) / code(i // 10, s))
    gains = np.array(gains)
    assert gains.min() >= 0.75 - 1e-6 and gains.max() <= 1.25 + 1e-6
    assert gains.max() - gains.min() > 0.3  # really random
    d3 = MUSDBTrainSet(db, "vocals", **SEED_PRESETS["d3net"])
    gain = d3.augmentations[0]
    assert isinstance(gain, Gain) and (gain.low, gain.high) == (0.75, 1.25)
    umx = MUSDBTrainSet(db, "vocals", **SEED_PRESETS["umx"])
    assert (umx.augmentations[0].low, umx.augmentations[0].high) == (0.25, 1.25)
    assert isinstance(umx.augmentations[1], ChannelSwap) and umx.seq_len == 6 * SR


def test_channelswap_about_half_the_time(db):
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=100, source_augmentations=("channelswap",))
    swaps = [dict(p["augment"])["channelswap"] for i in range(len(ds)) for p in ds.describe_item(i)]
    assert 0.45 < np.mean(swaps) < 0.55  # 1600 draws
    for i in range(8):  # and the audio agrees: a swapped source has the ramp in channel 0
        _, y = ds[i]
        for s, p in enumerate(ds.describe_item(i)):
            swapped = dict(p["augment"])["channelswap"]
            constant = np.ptp(y[s, 0, :100].numpy()) == 0
            assert constant != swapped


def test_short_tracks_are_zero_padded(db):
    ds = MUSDBTrainSet(db, "vocals", seq_dur=SEQ, samples_per_track=2, random_track_mix=False,
                       source_augmentations=())
    short = list(TRACKS).index("D - Short")
    _, y = ds[short * 2]
    n = int(TRACKS["D - Short"] * SR)
    assert y.shape == (2, ds.seq_len)
    assert torch.all(y[:, n:] == 0) and torch.all(y[0, :n] > 0)


def test_accompaniment_target(db):
    ds = MUSDBTrainSet(db, ("vocals", "accompaniment"), seq_dur=SEQ, samples_per_track=1, seed=5)
    x, y = ds[2]
    torch.testing.assert_close(y.sum(0), x, rtol=0, atol=1e-6)


def test_bad_arguments(db):
    with pytest.raises(ValueError, match="unknown target"):
        MUSDBTrainSet(db, "piano")
    with pytest.raises(ValueError, match="unknown augmentation"):
        MUSDBTrainSet(db, source_augmentations=("reverb",))
    with pytest.raises(ValueError, match="seq_dur"):
        MUSDBTrainSet(db, seq_dur=None)
    with pytest.raises(ValueError, match="must be among the mixing sources"):
        MUSDBTrainSet(db, "bass", sources=("vocals", "drums"))
    two = MUSDBTrainSet(db, "vocals", sources=("vocals", "drums"), seq_dur=SEQ, samples_per_track=1)
    x, y = two[0]
    assert x.shape == y.shape


def test_root_path_opens_the_train_split(root):
    ds = MUSDBTrainSet(str(root), "vocals", seq_dur=SEQ, samples_per_track=1)
    assert len(ds) == 4  # no validation songs of musdb's list here: all four are training tracks
    with pytest.raises(DatasetError, match="validation list"):
        MUSDBValidSet(root)  # split="valid" finds none of musdb's 14 validation songs


def test_pickles(db):
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=2, seed=9)
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[3][1], ds[3][1])


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_workers_give_the_same_batches(db, context):
    import multiprocessing as mp

    if context not in mp.get_all_start_methods():
        pytest.skip(f"no {context} start method here")
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=3, seed=11)
    ds.set_epoch(2)
    gen = torch.Generator().manual_seed(0)
    ref = list(DataLoader(ds, batch_size=4, shuffle=True, generator=gen, num_workers=0))
    gen = torch.Generator().manual_seed(0)
    par = list(DataLoader(ds, batch_size=4, shuffle=True, generator=gen, num_workers=2,
                          multiprocessing_context=context))
    assert len(ref) == len(par) == 3
    for (x0, y0), (x1, y1) in zip(ref, par):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)


def test_validation_set_full_length_real_mixture(root, db):
    ds = MUSDBValidSet(db, SOURCES)
    assert len(ds) == 4
    for i, (name, seconds) in enumerate(TRACKS.items()):
        x, y = ds[i]
        n = int(seconds * SR)
        assert x.shape == (2, n) and y.shape == (4, 2, n)
        torch.testing.assert_close(x, 0.5 * y.sum(0))  # the real mixture, not the sum
        np.testing.assert_array_equal(y[2].numpy(), file_excerpt(root, name, "bass", 0, n))
    batch = next(iter(DataLoader(MUSDBValidSet(db, "vocals"), batch_size=1)))
    assert batch[0].shape == (1, 2, int(1.0 * SR)) and batch[1].shape == (1, 2, int(1.0 * SR))
    short = MUSDBValidSet(db, "accompaniment", max_duration=0.25)
    x, y = short[2]
    assert x.shape == y.shape == (2, int(0.25 * SR))


def test_resampling_through_musdb(root):
    db = open_musdb(root, split=None, sample_rate=4000)
    ds = MUSDBTrainSet(db, "vocals", seq_dur=SEQ, samples_per_track=1, random_track_mix=False,
                       source_augmentations=())
    assert not ds.direct and ds.sample_rate == 4000
    x, y = ds[2]
    assert x.shape == y.shape == (2, int(SEQ * 4000))
    assert np.allclose(y[0, 100:-100].numpy(), code(2, 0), atol=1e-3)


def test_real_stems_excerpts():
    shared = shared_data_dir()
    root = shared / "musdb18-sample" if shared else None
    if root is None or not (root / "train").is_dir():
        pytest.skip("shared/data/musdb18-sample is not available next to this checkout")
    db = open_musdb(root)
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=2.0, samples_per_track=2, seed=0)
    assert not ds.direct and ds.sample_rate == 44100
    x, y = ds[1]
    assert x.shape == (2, 88200) and y.shape == (4, 2, 88200)
    assert torch.isfinite(x).all() and float(y.abs().amax(dim=(1, 2)).min()) > 1e-3
    torch.testing.assert_close(x, y.sum(0), rtol=0, atol=1e-5)
    # an excerpt decoded with a seek equals the same stretch of the fully decoded stem
    plain = MUSDBTrainSet(db, "vocals", seq_dur=2.0, samples_per_track=1, random_track_mix=False,
                          source_augmentations=())
    _, vocals = plain[0]
    offset = plain.describe_item(0)[0]["offset"]
    full = MUSDBValidSet(db, "vocals")
    mixture, whole = full[0]
    assert mixture.shape == whole.shape and whole.shape[1] > 6 * 44100
    torch.testing.assert_close(vocals, whole[:, offset : offset + 88200], rtol=0, atol=1e-6)
    # ... and musdb's own chunk reading (16-bit output: equal within 2**-15)
    track = db.tracks[0]
    track.chunk_start, track.chunk_duration = offset / 44100, 2.0
    try:
        reference = track.sources["vocals"].audio.T
    finally:
        track.chunk_start, track.chunk_duration = 0, None
    n = min(reference.shape[1], 88200)
    np.testing.assert_allclose(vocals[:, :n].numpy(), reference[:, :n], rtol=0, atol=2**-15 + 1e-6)
