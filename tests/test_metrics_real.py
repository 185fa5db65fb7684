"""mssbook.metrics.bss_eval against museval on REAL music: two MUSDB18 excerpts (the shared
"Music Delta - 80s Rock" preview and stempeg's "The Easton Ellises - Falcon 69"), scored with
ideal-ratio-mask (IRM2) estimates, first 3 s (3 frames, 4 stereo targets).

What holds, and why (measured; see the closing note of issue 16):

* SDR: within 1e-9 dB (it needs no projection), NaN frames identical.
* ISR/SIR/SAR of the raw decoded stems differ from museval by up to ~0.2 dB, and museval differs
  from *itself* by as much when its inputs change only by rounding (references and estimates
  scaled by 3, which leaves every metric unchanged in exact arithmetic). The lossy-coded stems
  have (almost) no energy above ~16 kHz and near-mono parts, so the 4096² Gram matrix of the
  delayed references is nearly singular: the fitted filters are fixed only up to rounding along
  those directions, and applying the track's filters to one frame does not cancel them. The
  bound that holds is therefore relative to museval's own rounding spread.
* The same excerpts with a −58 dB white dither added to the references (a well-conditioned
  problem) agree within 1e-6 dB (measured ~1e-9), so the algorithm is museval's.

Skips cleanly when ffmpeg, stempeg or the shared data are absent.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mssbook import metrics, oracles

museval = pytest.importorskip("museval")
stempeg = pytest.importorskip("stempeg")

SR = 44100
SECONDS = 3
TARGETS = ("drums", "bass", "other", "vocals")  # the order of the streams after the mixture


def _excerpt(path):
    """References and IRM2 estimates (J, C, N) float64 of the first SECONDS of a STEMS file."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed to decode the STEMS excerpts")
    stems, rate = stempeg.read_stems(str(path), dtype=np.float64, duration=SECONDS + 1)
    assert rate == SR
    stems = stems[:, : SECONDS * SR]  # (5, N, C): mixture, drums, bass, other, vocals
    sources = {name: stems[i + 1].T for i, name in enumerate(TARGETS)}
    estimates = oracles.oracle("irm2", stems[0].T.astype(np.float32),
                               {k: v.astype(np.float32) for k, v in sources.items()})
    refs = np.stack([sources[k] for k in TARGETS])
    ests = np.stack([np.asarray(estimates[k], dtype=np.float64) for k in TARGETS])
    return refs, ests


def _falcon():
    return _excerpt(stempeg.example_stem_path())


def _rock():
    from helpers import musdb_sample_root  # tests/helpers.py

    return _excerpt(musdb_sample_root() / "train" / "Music Delta - 80s Rock.stem.mp4")


def _museval(refs, ests):
    out = np.array(museval.evaluate(np.transpose(refs, (0, 2, 1)), np.transpose(ests, (0, 2, 1)),
                                    win=SR, hop=SR), dtype=np.float64)  # (4, J, T)
    out[~np.isfinite(out)] = np.nan
    return out


def _ours(refs, ests):
    scores = metrics.bss_eval(refs, ests, SR, device="cpu")
    return np.array([[scores[j][m] for j in range(len(scores))] for m in metrics.BSS_METRICS])


@pytest.mark.parametrize("load", [_falcon, _rock], ids=["falcon69", "80s-rock"])
def test_real_music_agrees_with_museval_within_its_own_rounding_spread(load):
    refs, ests = load()
    ours, ref = _ours(refs, ests), _museval(refs, ests)
    rescaled = _museval(3 * refs, 3 * ests)  # the same metrics in exact arithmetic
    assert ours.shape == ref.shape == (4, 4, SECONDS)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert np.nanmax(np.abs(ours[0] - ref[0])) < 1e-9  # SDR: no projection, no conditioning
    for i in (1, 2, 3):  # ISR, SIR, SAR
        ours_gap = np.nanmax(np.abs(ours[i] - ref[i]))
        museval_spread = np.nanmax(np.abs(rescaled[i] - ref[i]))
        # measured up to 10.6x museval's own spread (Falcon 69's SAR on a clean-clone run; the
        # rounding depends on thread counts and summation order): 30x leaves room for that
        assert ours_gap <= 30 * museval_spread + 1e-6, (metrics.BSS_METRICS[i], ours_gap, museval_spread)
        assert ours_gap < 1.0  # and never a different metric: a broken projection is off by dB


@pytest.mark.parametrize("load", [_falcon, _rock], ids=["falcon69", "80s-rock"])
def test_real_music_with_dither_agrees_with_museval_tightly(load):
    """A −58 dB white dither on the references fills the empty bands: the Gram matrix is well
    conditioned and every framewise value agrees far inside the 1e-4 dB goal."""
    refs, ests = load()
    refs = refs + 1e-4 * np.random.default_rng(0).standard_normal(refs.shape)
    ours, ref = _ours(refs, ests), _museval(refs, ests)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert np.nanmax(np.abs(ours - ref)) < 1e-6
