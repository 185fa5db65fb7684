"""mssbook.metrics: the fast BSSEval v4 must give museval's numbers (framewise within 1e-3 dB,
museval's own regression tolerance, and identical NaN frames), and the cheap SDRs their
definitions. museval itself is the reference: randomized cases are scored by both here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mssbook import metrics
from mssbook.errors import MSSBookError
from helpers import musdb_sample_root  # tests/helpers.py

museval = pytest.importorskip("museval")

SR = 44100
TOLERANCE_DB = 1e-3  # museval's tests/test_regression.py atol
NAMES = ("SDR", "ISR", "SIR", "SAR")


def _museval(refs, ests, win=SR, hop=SR):
    """museval.evaluate on (J, C, N) arrays, ±inf stored as NaN as its TrackStore does."""
    out = museval.evaluate(np.transpose(refs, (0, 2, 1)), np.transpose(ests, (0, 2, 1)), win=win, hop=hop)
    out = np.array(out, dtype=np.float64)  # (4, J, T) in SDR, ISR, SIR, SAR order
    out[~np.isfinite(out)] = np.nan
    return out


def _ours(refs, ests, win=1.0, hop=1.0, **kwargs):
    scores = metrics.bss_eval(refs, ests, SR, win, hop, device="cpu", **kwargs)
    return np.array([[scores[j][m] for j in range(len(scores))] for m in NAMES])


def _assert_agree(ours, ref):
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert np.nanmax(np.abs(ours - ref)) < TOLERANCE_DB


def _random_case(seed, n_src, n_chan, seconds):
    """References with some structure (coloured noise, shared components) and estimates that mix
    the own source (filtered), leakage from others and noise: every metric is finite and varied."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    white = rng.standard_normal((n_src, n_chan, n + 64))
    kernel = rng.standard_normal((n_src, 1, 65)) * np.exp(-np.arange(65) / rng.uniform(2, 20, (n_src, 1, 1)))
    refs = np.stack([[np.convolve(white[j, c], kernel[j, 0], "valid")[:n] for c in range(n_chan)] for j in range(n_src)])
    refs *= rng.uniform(0.2, 1.0, (n_src, 1, 1))
    ests = np.empty_like(refs)
    for j in range(n_src):
        own = np.roll(refs[j], rng.integers(0, 30), axis=-1) * rng.uniform(0.5, 1.5)
        leak = sum(rng.uniform(0, 0.4) * refs[k] for k in range(n_src) if k != j)
        ests[j] = own + leak + rng.uniform(0.01, 0.3) * rng.standard_normal((n_chan, n))
    return refs, ests


@pytest.mark.parametrize("seed, n_src, n_chan, seconds", [
    (0, 2, 2, 3.4),   # the voc/acc shape; trailing partial frame dropped
    (1, 4, 2, 2.5),   # the four-target group
    (2, 3, 1, 2.0),   # mono, frame count exact
])
def test_agrees_with_museval_on_random_cases(seed, n_src, n_chan, seconds):
    refs, ests = _random_case(seed, n_src, n_chan, seconds)
    ours, ref = _ours(refs, ests), _museval(refs, ests)
    assert ours.shape[-1] == int(seconds)  # floor: partial frame dropped
    assert not np.isnan(ref).any()
    _assert_agree(ours, ref)


def test_silence_rule_and_quirks_match_museval():
    refs, ests = _random_case(3, 3, 2, 5.2)
    refs[1, :, 1 * SR:2 * SR] = 0  # a silent reference: frame 1 NaN for every source
    ests[2, :, 3 * SR:4 * SR] = 0  # a silent estimate: frame 3 NaN for all
    refs[0, 1, 2 * SR:3 * SR] = -refs[0, 0, 2 * SR:3 * SR]  # L = -R counts as silent: frame 2
    refs[2, :, int(4.5 * SR):] = 0  # silent only in part of frame 4: scored
    ests[0, :, 4 * SR:5 * SR] = refs[0, :, 4 * SR:5 * SR]  # a perfect frame: SDR = inf -> NaN
    ours, ref = _ours(refs, ests), _museval(refs, ests)
    # The one documented difference: museval sums its three error terms, whose rounding leaves
    # ~1e-17 of the signal, so a perfect frame scores ~300 dB instead of inf; mssbook computes
    # ŝ - s directly and gets exactly 0, i.e. inf, stored as NaN as museval intends.
    assert np.isnan(ours[0, 0, 4]) and ref[0, 0, 4] > 250
    ref[0, 0, 4] = np.nan
    _assert_agree(ours, ref)
    assert np.isnan(ours[:, :, [1, 2, 3]]).all()
    assert not np.isnan(ours[:, :, 0]).any()
    assert not np.isnan(ours[1:, 0, 4]).any() and not np.isnan(ours[:, 1:, 4]).any()


def test_overlapping_frames_and_whole_signal_window_match_museval():
    refs, ests = _random_case(4, 2, 2, 2.7)
    _assert_agree(_ours(refs, ests, win=1.0, hop=0.5), _museval(refs, ests, win=SR, hop=SR // 2))
    # a window longer than the signal: one frame over everything (museval's rule, W >= N)
    whole = _ours(refs, ests, win=5.0, hop=5.0)
    assert whole.shape[-1] == 1
    _assert_agree(whole, _museval(refs, ests, win=5 * SR, hop=5 * SR))
    assert np.array_equal(_ours(refs, ests, win=None, hop=None), whole)


def test_estimates_are_padded_or_cut_like_museval():
    refs, ests = _random_case(5, 2, 2, 2.2)
    short, long = ests[..., : -SR // 3], np.concatenate([ests, ests[..., :1000]], axis=-1)
    padded = np.concatenate([short, np.zeros_like(ests[..., -SR // 3:])], axis=-1)
    np.testing.assert_array_equal(_ours(refs, short), _ours(refs, padded))
    np.testing.assert_array_equal(_ours(refs, long), _ours(refs, ests))


def test_dict_input_and_sdr_only_mode():
    refs, ests = _random_case(6, 3, 2, 2.0)
    names = ("vocals", "drums", "bass")
    full = metrics.bss_eval(dict(zip(names, refs)), dict(zip(names, ests)), SR, device="cpu")
    assert list(full) == list(names) and set(full["vocals"]) == set(NAMES)
    # musdb's (samples, channels) arrays are accepted too
    transposed = metrics.bss_eval({n: r.T for n, r in zip(names, refs)}, {n: e.T for n, e in zip(names, ests)}, SR)
    np.testing.assert_array_equal(transposed["bass"]["SAR"], full["bass"]["SAR"])
    cheap = metrics.bss_eval(dict(zip(names, refs)), dict(zip(names, ests)), SR, sdr_only=True)
    for n in names:
        np.testing.assert_allclose(cheap[n]["SDR"], full[n]["SDR"], rtol=0, atol=1e-9)
        assert np.isnan(cheap[n]["SIR"]).all()
    framewise = metrics.framewise_sdr(dict(zip(names, refs)), dict(zip(names, ests)), SR)
    np.testing.assert_allclose(framewise["drums"], full["drums"]["SDR"], atol=1e-9)


def test_clear_errors():
    refs, ests = _random_case(7, 2, 2, 1.5)
    silent = refs.copy()
    silent[1] = 0
    with pytest.raises(MSSBookError, match="reference 1 is silent over the whole signal"):
        metrics.bss_eval(silent, ests, SR)
    with pytest.raises(MSSBookError, match="estimates have 1 source"):
        metrics.bss_eval(refs, ests[:1], SR)
    with pytest.raises(MSSBookError, match="no estimate for 'drums'"):
        metrics.bss_eval({"vocals": refs[0], "drums": refs[1]}, {"vocals": ests[0]}, SR)


# --------------------------------------------------------------------------------------------
# museval's grouping rule and JSON
# --------------------------------------------------------------------------------------------


def _fake_track(seed, seconds=2.3):
    """An object with what museval.eval_mus_track reads: targets (ordered, with .audio (N, C)),
    rate, name, subset."""
    refs, _ = _random_case(seed, 4, 2, seconds)
    audio = {n: refs[i].T.copy() for i, n in enumerate(("vocals", "drums", "bass", "other"))}
    audio["accompaniment"] = audio["drums"] + audio["bass"] + audio["other"]
    targets = {n: SimpleNamespace(audio=a) for n, a in audio.items()}
    mixture = audio["vocals"] + audio["accompaniment"]
    return SimpleNamespace(targets=targets, rate=SR, name=f"fake {seed}", subset="test", audio=mixture)


@pytest.mark.parametrize("keys", [
    ("vocals", "drums", "bass", "other", "accompaniment"),  # main group + voc/acc pair
    ("vocals", "accompaniment"),  # the pair only
    ("drums", "bass", "other"),  # a group without vocals
])
def test_grouping_rule_matches_eval_mus_track(keys):
    track = _fake_track(8)
    rng = np.random.default_rng(9)
    estimates = {k: track.targets[k].audio + 0.3 * rng.standard_normal(track.targets[k].audio.shape) for k in keys}
    ref = museval.eval_mus_track(track, estimates)
    ours = metrics.eval_mus_track(track, estimates, device="cpu")
    assert list(ours) == [t["name"] for t in ref.scores["targets"]]
    for target in ref.scores["targets"]:
        for metric in NAMES:
            expected = np.array([float(f["metrics"][metric]) for f in target["frames"]])
            got = ours[target["name"]][metric]
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
            assert np.nanmax(np.abs(got - expected)) < TOLERANCE_DB  # expected is 5-decimal rounded


def test_vocals_sir_depends_on_the_group():
    """SIR/SAR of vocals differ between the four-source group and the voc/acc pair; SDR does not:
    why museval keeps the pair's vocals scores, and why groups must not be mixed."""
    track = _fake_track(10)
    rng = np.random.default_rng(11)
    est = {k: t.audio + 0.5 * rng.standard_normal(t.audio.shape) for k, t in track.targets.items()}
    group = metrics.eval_mus_track(track, {k: est[k] for k in ("vocals", "drums", "bass", "other")})
    pair = metrics.eval_mus_track(track, {k: est[k] for k in ("vocals", "accompaniment")})
    np.testing.assert_allclose(group["vocals"]["SDR"], pair["vocals"]["SDR"], atol=1e-9)
    assert np.abs(group["vocals"]["SIR"] - pair["vocals"]["SIR"]).max() > 0.01


def test_fast_json_is_museval_json(tmp_path):
    from mssbook.evaluation import score_track

    track = _fake_track(12)
    rng = np.random.default_rng(13)
    estimates = {k: (track.targets[k].audio + 0.2 * rng.standard_normal(track.targets[k].audio.shape)).T
                 for k in ("vocals", "drums", "bass", "other")}
    fast = json.loads(score_track(track, estimates, backend="fast").json)
    slow = json.loads(score_track(track, estimates, backend="museval").json)
    assert fast.keys() == slow.keys() and fast["museval_version"] == slow["museval_version"]
    for a, b in zip(fast["targets"], slow["targets"], strict=True):
        assert a["name"] == b["name"] and len(a["frames"]) == len(b["frames"])
        for fa, fb in zip(a["frames"], b["frames"]):
            assert (fa["time"], fa["duration"]) == (fb["time"], fb["duration"])
            for m in NAMES:
                assert abs(fa["metrics"][m] - fb["metrics"][m]) <= 1e-5 + 1e-12  # 5 decimals
    # museval's own reader takes it
    store = museval.TrackStore(win=1, hop=1, track_name=track.name)
    store.scores = fast
    assert len(store.df) == 4 * len(fast["targets"][0]["frames"]) * 4


def _reference_track():
    root = musdb_sample_root()
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed to decode the STEMS excerpt")
    reference = root.parent / "museval-reference" / "Music Delta - 80s Rock.json"
    if not reference.is_file():
        pytest.skip("shared/data/museval-reference is not available next to this checkout")
    from mssbook.data.musdb import open_musdb

    return open_musdb(root, subsets="train").tracks[0], json.loads(Path(reference).read_text())


def test_museval_regression_reference():
    """museval's own regression test: random voc/acc estimates on the real 80s Rock excerpt."""
    track, reference = _reference_track()
    np.random.seed(0)
    estimates = {"vocals": np.random.random(track.audio.shape),
                 "accompaniment": np.random.random(track.audio.shape)}
    ours = metrics.eval_mus_track(track, estimates, device="cpu")
    assert list(ours) == [t["name"] for t in reference["targets"]]
    worst = 0.0
    for target in reference["targets"]:
        for metric in NAMES:
            expected = np.array([float(f["metrics"][metric]) for f in target["frames"]])
            got = ours[target["name"]][metric]
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
            worst = max(worst, float(np.nanmax(np.abs(got - expected))))
    assert worst < TOLERANCE_DB


# --------------------------------------------------------------------------------------------
# Cheap SDRs
# --------------------------------------------------------------------------------------------


def test_usdr_is_the_mdx_global_sdr():
    refs, ests = _random_case(14, 2, 2, 1.0)
    got = metrics.usdr(refs, ests)
    for j in range(2):
        num = np.sum(refs[j] ** 2) + 1e-7
        den = np.sum((refs[j] - ests[j]) ** 2) + 1e-7
        assert got[j] == pytest.approx(10 * np.log10(num / den), abs=1e-10)
    assert metrics.usdr(refs, refs)[0] == pytest.approx(10 * np.log10((np.sum(refs[0] ** 2) + 1e-7) / 1e-7))


def test_csdr_is_the_median_of_framewise_sdr():
    refs, ests = _random_case(15, 2, 2, 4.0)
    refs[0, :, :SR] = 0  # a silent frame is left out of the median
    framewise = metrics.framewise_sdr(refs, ests, SR)
    assert np.isnan(framewise[1][0])
    assert metrics.csdr(refs, ests, SR)[1] == pytest.approx(float(np.median(framewise[1][1:])))


def test_si_sdr_is_scale_invariant_and_states_its_choices():
    refs, ests = _random_case(16, 2, 2, 0.5)
    base = metrics.si_sdr(refs, ests)
    scaled = metrics.si_sdr(refs, 3.7 * ests)
    assert scaled[0] == pytest.approx(base[0], abs=1e-9)
    # per channel, then the mean of the dB values
    s, e = refs[1, 0] - refs[1, 0].mean(), ests[1, 0] - ests[1, 0].mean()
    a = np.dot(e, s) / np.dot(s, s)
    left = 10 * np.log10(np.sum((a * s) ** 2) / np.sum((a * s - e) ** 2))
    s, e = refs[1, 1] - refs[1, 1].mean(), ests[1, 1] - ests[1, 1].mean()
    a = np.dot(e, s) / np.dot(s, s)
    right = 10 * np.log10(np.sum((a * s) ** 2) / np.sum((a * s - e) ** 2))
    assert base[1] == pytest.approx((left + right) / 2, abs=1e-9)
    # an offset does not change the zero-mean SI-SDR, but does change the raw one
    assert metrics.si_sdr(refs, ests + 0.5)[0] == pytest.approx(base[0], abs=1e-9)
    assert metrics.si_sdr(refs, ests + 0.5, zero_mean=False)[0] < base[0] - 1


def test_singular_group_falls_back_like_museval():
    """Two identical references make the Gram matrix singular: Cholesky fails, the LU/least-squares
    fallback runs (museval falls back too); SDR and ISR (own-source terms) still agree."""
    refs, ests = _random_case(17, 3, 2, 2.0)
    refs[2] = refs[1]
    ours, ref = _ours(refs, ests), _museval(refs, ests)
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours[:2], ref[:2], atol=TOLERANCE_DB)


def test_frame_chunks_and_bin_blocks_do_not_change_the_result(monkeypatch):
    """The frame stage works on chunks of frames and blocks of frequency bins (cache-sized):
    uneven chunk and block sizes give the same numbers as one chunk and one block per frame."""
    refs, ests = _random_case(18, 3, 2, 7.3)
    reference = _ours(refs, ests, win=0.9, hop=0.7)
    monkeypatch.setattr(metrics, "_FRAMES_PER_CHUNK", 3)
    monkeypatch.setattr(metrics, "_BINS_PER_BLOCK", 1000)
    np.testing.assert_allclose(_ours(refs, ests, win=0.9, hop=0.7), reference, rtol=0, atol=1e-9)
    monkeypatch.setattr(metrics, "_FRAMES_PER_CHUNK", 1)
    monkeypatch.setattr(metrics, "_BINS_PER_BLOCK", 1 << 20)  # one block: every bin at once
    np.testing.assert_allclose(_ours(refs, ests, win=0.9, hop=0.7), reference, rtol=0, atol=1e-9)
    assert not np.isnan(reference).any() and reference.shape == (4, 3, 10)
