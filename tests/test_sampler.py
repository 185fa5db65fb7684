"""MUSDBTrainSet / MUSDBValidSet: UMX's sampling, reproducible under a seed and with workers,
and the extensions of later seeds (SAD fragments, silenced target, gain in dB, resampling).

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

pytest.importorskip("musdb")
if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
    pytest.skip("musdb needs ffmpeg and ffprobe on PATH", allow_module_level=True)

from mssbook.data.musdb import open_musdb  # noqa: E402
from mssbook.data.sad import write_fragments  # noqa: E402
from mssbook.data.sampler import (  # noqa: E402
    SEED_PRESETS,
    ChannelSwap,
    Gain,
    GainDB,
    MUSDBTrainSet,
    MUSDBValidSet,
)
from mssbook.signal.resample import resample  # noqa: E402
from helpers import musdb_sample_root  # noqa: E402  (tests/helpers.py)

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


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


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
    root = musdb_sample_root()
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


# --- extensions: SAD fragments, silenced target, gain in dB, resampling -----------------------------

#: fragments in samples at 8 kHz; C's fragment (2000 samples) is shorter than an excerpt (4000)
FRAGMENTS = {"A - One": [(1000, 6000)], "B - Two": [(0, 4500), (7000, 12000)], "C - Three": [(2000, 4000)],
             "Z - Not In The DB": [(0, 100)]}


def ramp_offset(y: torch.Tensor) -> int:
    """The offset an excerpt was read at, from its position ramp (channel 1)."""
    return int(round(float(y[1, 0]) / RAMP))


def test_default_draws_are_umx_draws(db):
    """With the extensions off, describe_item draws exactly UMX's sequence from default_rng([seed, epoch, i])."""
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=3, seed=4)
    ds.set_epoch(2)
    L = ds.seq_len
    for i in range(len(ds)):
        rng = np.random.default_rng([4, 2, i])
        for s, p in enumerate(ds.describe_item(i)):
            t = i // 3 if s == 0 else int(rng.integers(4))
            offset = int(rng.integers(0, max(int(ds.lengths[t]) - L, 0) + 1))
            gain, swap = float(rng.uniform(0.25, 1.25)), bool(rng.random() < 0.5)
            assert (p["track"], p["offset"], p["augment"]) == (t, offset, [("gain", gain), ("channelswap", swap)])
            assert p["fragment"] is None and p["silenced"] is False
    assert ds.sample_rate == ds.read_rate == SR and ds.read_len == ds.seq_len


def test_fragment_items_stay_inside_fragments(db):
    ds = MUSDBTrainSet(db, "vocals", seq_dur=SEQ, samples_per_track=40, fragments=FRAGMENTS,
                       source_augmentations=(), seed=1)
    L = ds.seq_len
    names = list(TRACKS)
    assert ds.fragment_tracks.tolist() == [0, 1, 2]  # D - Short has none; Z is not in the DB
    used, offsets = set(), {0: [], 1: []}
    for i in range(len(ds)):
        _, y = ds[i]
        p = ds.describe_item(i)[0]
        t, (start, end), offset = p["track"], p["fragment"], p["offset"]
        if i // 40 != 3:
            assert t == i // 40  # the indexed track when it has fragments ...
        assert t != 3  # ... and D - Short (no fragments) is skipped for fragment items
        assert (start, end) in FRAGMENTS[names[t]]
        if end - start >= L:
            assert start <= offset and offset + L <= end  # fully inside
        else:
            assert offset <= start and end <= offset + L and offset + L <= TRACKS[names[t]] * SR  # covers it
        assert np.allclose(y[0].numpy(), code(t, 0)) and ramp_offset(y) == offset  # the audio agrees
        used.add((t, start))
        if t in offsets:
            offsets[t].append((offset - start) / max(end - start - L, 1))
    assert used == {(0, 1000), (1, 0), (1, 7000), (2, 2000)}  # every fragment is drawn
    assert min(offsets[0]) < 0.2 and max(offsets[0]) > 0.8  # uniform over the positions


def test_fragment_p_mixes_both_kinds(db):
    ds = MUSDBTrainSet(db, "vocals", seq_dur=SEQ, samples_per_track=100, fragments=FRAGMENTS, fragment_p=0.5,
                       source_augmentations=())
    kinds = [ds.describe_item(i)[0]["fragment"] is not None for i in range(len(ds))]
    assert 0.43 < np.mean(kinds) < 0.57
    plain = [ds.describe_item(i)[0] for i in range(len(ds)) if not kinds[i]]
    assert {p["track"] for p in plain} == {0, 1, 2, 3}  # ordinary items use every track, D - Short too
    outside = [p for p in plain if p["track"] == 1 and 4500 - 4000 < p["offset"] < 7000]
    assert outside  # ... at any offset, fragments or not
    none = MUSDBTrainSet(db, "vocals", seq_dur=SEQ, samples_per_track=5, fragments=FRAGMENTS, fragment_p=0.0)
    assert all(none.describe_item(i)[0]["fragment"] is None for i in range(len(none)))


def test_fragments_from_a_sad_file_and_without_track_mix(db, tmp_path):
    path = write_fragments(FRAGMENTS, tmp_path / "vocals_train.txt")
    from_file = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=4, fragments=path, seed=3)
    from_dict = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=4, fragments=FRAGMENTS, seed=3)
    for i in range(len(from_file)):
        assert from_file.describe_item(i) == from_dict.describe_item(i)
    assert "vocals_train.txt" in repr(from_file)
    fixed = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=4, fragments=path, random_track_mix=False,
                          source_augmentations=())
    for i in range(len(fixed)):
        _, y = fixed[i]
        plan = fixed.describe_item(i)
        start, end = plan[0]["fragment"]
        inside = start <= plan[0]["offset"] and plan[0]["offset"] + fixed.seq_len <= end
        assert inside or end - start < fixed.seq_len
        assert len({(p["track"], p["offset"]) for p in plan}) == 1  # all sources share the fragment's offset
        assert all(ramp_offset(y[s]) == plan[0]["offset"] for s in range(4))
    clone = pickle.loads(pickle.dumps(from_file))
    assert torch.equal(clone[5][1], from_file[5][1])


def test_bad_fragments(db, tmp_path):
    with pytest.raises(DatasetError, match="no fragment for any of the 4 tracks"):
        MUSDBTrainSet(db, fragments={"Z - Elsewhere": [(0, 10)]})
    with pytest.raises(DatasetError, match="past the end of the track"):
        MUSDBTrainSet(db, fragments={"A - One": [(44100, 88200)]})  # made for 44.1 kHz files
    with pytest.raises(DatasetError, match="not 0 <= start < end"):
        MUSDBTrainSet(db, fragments={"A - One": [(10, 5)]})
    with pytest.raises(DatasetError, match="does not exist"):
        MUSDBTrainSet(db, fragments=tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="fragment_p"):
        MUSDBTrainSet(db, fragments=FRAGMENTS, fragment_p=1.5)
    with pytest.raises(ValueError, match="fragments must be"):
        MUSDBTrainSet(db, fragments=[("A - One", 0, 10)])


def test_silenced_target(db):
    kw = dict(seq_dur=SEQ, samples_per_track=2, silence_target_p=1.0, seed=8)
    every = MUSDBTrainSet(db, SOURCES, **kw)
    voc = MUSDBTrainSet(db, "vocals", **kw)
    for i in range(len(every)):
        x, y = every[i]
        assert torch.all(y[0] == 0) and torch.all(y[1:].abs().amax(dim=(1, 2)) > 0)  # vocals silent, the rest not
        torch.testing.assert_close(x, y[1:].sum(0), rtol=0, atol=1e-6)  # mixture = sum of the others
        xv, yv = voc[i]
        assert torch.all(yv == 0) and torch.equal(xv, x)
        assert [p["silenced"] for p in every.describe_item(i)] == [True, False, False, False]
    acc = MUSDBTrainSet(db, ("accompaniment", "vocals"), **kw)
    x, y = acc[3]
    assert torch.all(y[0] == 0) and torch.equal(x, y[1])  # accompaniment silenced: mixture = vocals
    some = MUSDBTrainSet(db, "vocals", seq_dur=SEQ, samples_per_track=100, silence_target_p=0.3)
    assert 0.24 < np.mean([some.describe_item(i)[0]["silenced"] for i in range(len(some))]) < 0.36
    with pytest.raises(ValueError, match="silence_target_p"):
        MUSDBTrainSet(db, silence_target_p=-0.1)


def test_gain_db(db):
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=10, random_track_mix=False,
                       source_augmentations=("gain_db",), gain_db_range=(-6.0, 6.0), seed=0)
    assert isinstance(ds.augmentations[0], GainDB)
    one = GainDB(-6.0, -6.0)(np.ones((2, 3), np.float32), np.random.default_rng(0))
    np.testing.assert_allclose(one, 10 ** (-6 / 20), rtol=1e-6)
    db_values = []
    for i in range(0, 40, 2):
        _, y = ds[i]
        for s, p in enumerate(ds.describe_item(i)):
            (name, value), = p["augment"]
            ratio = float(y[s, 0, 0]) / code(i // 10, s)
            assert name == "gain_db" and abs(20 * np.log10(ratio) - value) < 1e-3
            db_values.append(value)
    assert min(db_values) >= -6 and max(db_values) <= 6 and np.ptp(db_values) > 8
    wide = MUSDBTrainSet(db, "vocals", seq_dur=SEQ, source_augmentations=("gain-db", "channel_swap"))
    assert (wide.augmentations[0].low_db, wide.augmentations[0].high_db) == (-10.0, 10.0)  # the default
    with pytest.raises(ValueError, match="gain_db range"):
        MUSDBTrainSet(db, source_augmentations=("gain_db",), gain_db_range=(3.0, -3.0))
    bsrnn = MUSDBTrainSet(db, "vocals", fragments=FRAGMENTS, **SEED_PRESETS["bsrnn"])
    assert bsrnn.seq_len == 3 * SR and bsrnn.silence_target_p == 0.1 and isinstance(bsrnn.augmentations[0], GainDB)


def test_sample_rate_resamples_every_excerpt(root, db):
    ds = MUSDBTrainSet(db, SOURCES, seq_dur=SEQ, samples_per_track=2, sample_rate=6000, source_augmentations=(),
                       seed=2)
    assert ds.direct and ds.read_rate == SR and ds.sample_rate == 6000
    assert ds.seq_len == 3000 and ds.read_len == 4000
    for i in (0, 5):
        x, y = ds[i]
        assert x.shape == (2, 3000) and y.shape == (4, 2, 3000)
        for s, p in enumerate(ds.describe_item(i)):
            excerpt = file_excerpt(root, p["name"], p["source"], p["offset"], ds.read_len)
            np.testing.assert_array_equal(y[s].numpy(), resample(excerpt, SR, 6000)[:, :3000])
        torch.testing.assert_close(x, y.sum(0), rtol=0, atol=1e-6)
    odd = MUSDBTrainSet(db, "vocals", seq_dur=0.3333, sample_rate=4000, samples_per_track=1, fragments=FRAGMENTS)
    assert odd[1][0].shape == (2, round(0.3333 * 4000)) and odd.read_len == 2666
    valid = MUSDBValidSet(db, ("vocals", "bass"), sample_rate=4000)
    x, y = valid[1]
    n = int(TRACKS["B - Two"] * SR)
    assert x.shape == (2, n // 2) and y.shape == (2, 2, n // 2)
    np.testing.assert_array_equal(y[1].numpy(), resample(file_excerpt(root, "B - Two", "bass", 0, n), SR, 4000))
    short = MUSDBValidSet(db, "vocals", max_duration=0.25, sample_rate=6000)
    assert short[2][0].shape == (2, 1500)
    twice = MUSDBTrainSet(open_musdb(root, split=None, sample_rate=4000), "vocals", seq_dur=SEQ, sample_rate=2000,
                          samples_per_track=1, fragments=FRAGMENTS)  # read at 4 kHz through ffmpeg, then resampled
    assert not twice.direct and twice.read_rate == 4000 and twice[0][0].shape == (2, 1000)
    # the fragments count samples at the files' 8 kHz; offsets at the 4 kHz read rate
    assert [f.tolist() for f in twice.fragments[:3]] == [[[500, 3000]], [[0, 2250], [3500, 6000]], [[1000, 2000]]]
    assert twice.describe_item(1)[0]["fragment"] in ((0, 2250), (3500, 6000))
    with pytest.raises(ValueError, match="sample_rate"):
        MUSDBTrainSet(db, sample_rate=-16000)


def test_a_file_damaged_mid_training_is_skipped_with_its_name(tmp_path):
    write_tree(tmp_path)
    data = MUSDBTrainSet(open_musdb(tmp_path, split=None), "vocals", seq_dur=SEQ, samples_per_track=1,
                         random_track_mix=False)
    first = data.describe_item(0)[0]
    broken = tmp_path / "train" / data.track_names[first["track"]] / "drums.wav"
    broken.write_bytes(b"damaged after the dataset was opened")
    with pytest.warns(UserWarning, match=r"skipping training excerpt 0: .*drums.wav"):
        x, y = data[0]
    assert x.shape == y.shape == (2, int(SEQ * SR)) and torch.isfinite(x).all()
    assert data.describe_item(1)[0]["track"] != first["track"]  # the next excerpt came from another track
