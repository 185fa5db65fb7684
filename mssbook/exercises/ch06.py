"""Exercises of chapter 06 (BSRNN): band schemes, phase, source activity, excerpts, uSDR vs cSDR, gains."""

from __future__ import annotations

import functools

import numpy as np
import torch

from . import Wrong, exercise, expect_callable, expect_close, expect_int

__all__ = ["leakage_example"]


# ----------------------------------------------------------------------------------------------
# 06.1 Coarser bands
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _bsrnn_size(scheme: str | None) -> tuple[int, int]:
    from .. import models
    from ..models.bsrnn import band_widths, target_band_scheme

    with torch.device("meta"):
        model = models.create("bsrnn", preset="tutorial", targets=("vocals",), band_scheme=scheme)
    name = scheme or target_band_scheme("vocals")
    return len(band_widths(name, model.sample_rate, model.n_fft)), model.num_parameters()


@exercise(
    "06.1",
    "Coarser bands",
    """
    The v3 scheme cuts the spectrum into bands of 1-2 kHz, with no fine resolution at the bottom.
    For the tutorial BSRNN for vocals built with `band_scheme="v3"` (at its own sample rate and
    `n_fft`), how many bands are there, and how many parameters does the model have? Then train it
    for the same time as the chapter's model and compare its vocals SDR and its seconds per step.
    """,
    hint="""
    `models.create("bsrnn", preset=preset, targets=(target,), band_scheme="v3")`;
    `mssbook.models.bsrnn.band_widths(scheme, sample_rate, n_fft)` lists the bands' widths in bins.
    """,
    answer="a pair of ints `(bands, parameters)`",
    notes="""
    ```python
    coarse = models.create("bsrnn", preset=preset, targets=(target,), band_scheme="v3")
    data, config = recipe_configs("bsrnn", seq_dur=seq_dur, samples_per_track=samples_per_track,
                                  batch_size=batch_size, validation=False, lr=lr, patience=epochs,
                                  epochs=epochs, time_budget=time_budget)
    train_model(coarse, data, config, output=run_dir / "bsrnn_v3")
    ```
    Fewer bands mean a shorter sequence for the band-path BLSTM and fewer band MLPs, so each step
    is cheaper; but the wide bands at the bottom must each describe a whole octave or more of
    voice and bass harmonics with one feature vector. v7's 41 bands give the low frequencies, where
    the vocals' fundamentals and first harmonics lie, their own features.
    """,
    wrong_answers=(
        lambda: _bsrnn_size(None),  # the default scheme (v7)
        lambda: (_bsrnn_size("v3")[0] - 1, _bsrnn_size("v3")[1]),  # the last band (the rest) forgotten
        lambda: (_bsrnn_size("v3")[0], _bsrnn_size(None)[1]),  # parameters of the v7 model
    ),
)
def _check_06_1(answer):
    bands, parameters = _bsrnn_size("v3")
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong("hand in a pair (bands, parameters)")
    expect_int(answer[0], bands, "bands of v3")
    expect_int(answer[1], parameters, "parameters of the tutorial v3 model")
    v7 = _bsrnn_size(None)
    return f"{bands} bands against v7's {v7[0]}; {parameters:,d} parameters against {v7[1]:,d}"


@_check_06_1.solution
def _solve_06_1():
    from mssbook import models
    from mssbook.models.bsrnn import band_widths

    coarse = models.create("bsrnn", preset="tutorial", targets=("vocals",), band_scheme="v3")
    return len(band_widths("v3", coarse.sample_rate, coarse.n_fft)), coarse.num_parameters()


# ----------------------------------------------------------------------------------------------
# 06.2 Throw away the phase
# ----------------------------------------------------------------------------------------------


def _phaseless(model, mixture):
    with torch.no_grad():
        masks = model.masks(model.spectrogram(mixture))
        return model.apply_masks(mixture, masks.abs().to(masks.dtype))


@functools.lru_cache(maxsize=1)
def _phase_cases():
    """An untrained tutorial BSRNN (seeded, the global RNG left as it was), mixtures, and the expected outputs."""
    from .. import models

    with torch.random.fork_rng():
        torch.manual_seed(62)
        model = models.create("bsrnn", preset="tutorial", targets=("vocals",)).eval()
    g = torch.Generator().manual_seed(6)
    mixtures = [torch.randn(1, 2, 2560, generator=g) * 0.1, torch.randn(2, 2, 2100, generator=g) * 0.1]
    return model, [(mixture, _phaseless(model, mixture)) for mixture in mixtures]


@exercise(
    "06.2",
    "Throw away the phase",
    """
    BSRNN's masks are complex: they scale and rotate each bin. Write `phaseless(model, mixture)`:
    for a BSRNN and mixtures (B, C, L) it returns the waveforms (B, S, C, L) obtained with the
    **magnitudes** of the model's masks only (no rotation). Then compare, on a test song, the cSDR
    of the trained model's estimate with its complex masks and with their magnitudes.
    """,
    hint="""
    `model.masks(model.spectrogram(mixture))` gives complex masks (B, S, C, F, T);
    `model.apply_masks(mixture, masks.abs().to(masks.dtype))` synthesises. Use `torch.no_grad()`.
    """,
    answer="a function `phaseless(model, mixture)` returning a tensor (B, S, C, L)",
    notes="""
    ```python
    mixture = torch.from_numpy(test_mix)[None]                      # (1, 2, L)
    with torch.no_grad():
        complex_masks = model.masks(model.spectrogram(mixture))     # (1, 1, 2, 1025, T) complex
        phaseless = model.apply_masks(mixture, complex_masks.abs().to(complex_masks.dtype))[0, 0]
        full = model.apply_masks(mixture, complex_masks)[0, 0]
    ref = {target: true_target}
    print(csdr(ref, {target: full.numpy()}, sr), csdr(ref, {target: phaseless.numpy()}, sr))
    ```
    The difference between the two numbers is what the model's phase corrections are worth. A
    small model trained for minutes rotates the phase, but not necessarily usefully yet; the ideal
    complex mask (section 3) shows what the phase can be worth at the end.
    """,
    wrong_answers=(
        lambda: (lambda model, mixture: model.separate(mixture)),  # the complex masks
        lambda: _real_part,  # the real part, not the magnitude
    ),
)
def _check_06_2(answer):
    function = expect_callable(answer, "phaseless")
    model, cases = _phase_cases()
    for mixture, want in cases:
        with torch.no_grad():
            got = function(model, mixture.clone())
        what = f"an untrained tutorial BSRNN on a {tuple(mixture.shape)} mixture"
        if not torch.is_tensor(got):
            raise Wrong(f"{what}: expected a tensor, got {type(got).__name__}")
        if got.is_complex():
            raise Wrong(f"{what}: expected waveforms (real), got a complex tensor")
        expect_close(got, want, what, rtol=1e-3, atol=1e-5)
    return "the masks' magnitudes only: the mixture's phase in every bin"


def _real_part(model, mixture):
    with torch.no_grad():
        masks = model.masks(model.spectrogram(mixture))
        return model.apply_masks(mixture, masks.real.to(masks.dtype))


@_check_06_2.solution
def _solve_06_2():
    import torch

    def phaseless(model, mixture):
        with torch.no_grad():
            masks = model.masks(model.spectrogram(mixture))  # complex (B, S, C, F, T)
            return model.apply_masks(mixture, masks.abs().to(masks.dtype))  # |mask|: no rotation

    return phaseless


# ----------------------------------------------------------------------------------------------
# 06.3 SAD on or off
# ----------------------------------------------------------------------------------------------


def _covered_share(y, sr, window_s):
    from ..data import sad

    y = np.asarray(y)
    fragments = sad.merge_fragments(sad.find_salient_fragments(y, sr, window_s=window_s))
    return sum(end - start for start, end in fragments) / y.shape[-1]


def _activity_cases():
    rng = np.random.default_rng(63)
    sr = 4000
    cases = []
    pauses = (((2.0, 3.5), (7.0, 7.6)), ((0.0, 1.2), (4.0, 9.0)), ((3.1, 3.4), (5.0, 5.5), (8.0, 8.3)))
    for k, gaps in enumerate(pauses):
        t = np.arange(10 * sr) / sr
        voice = np.sin(2 * np.pi * 200 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        voice += 0.01 * rng.standard_normal(t.size)
        for start, end in gaps:
            voice[(t >= start) & (t < end)] = 0.0
        y = np.stack([voice, 0.9 * voice]).astype(np.float32)
        cases.append((f"signal {k + 1} (10 s at {sr} Hz, silent in {list(gaps)} s)", y, sr))
    return cases


@exercise(
    "06.3",
    "SAD on or off",
    """
    The source activity detector keeps the salient windows of each target stem; training then
    draws its excerpts there. Write `covered_share(y, sr, window_s)`: the share (0 to 1) of the
    samples of a stem `y` (channels, samples) that lie in at least one salient window, with
    windows of `window_s` seconds and otherwise the seed's settings. Then train once with
    `fragments=None` and once with the fragments of the short windows (both passed to
    `recipe_configs`): does the vocals score change on the toy songs? Why so little?
    """,
    hint="""
    `sad.find_salient_fragments(y, sr, window_s=window_s)` lists the salient windows, which
    overlap; `sad.merge_fragments` joins them before you count samples.
    """,
    answer="a function `covered_share(y, sr, window_s)` returning a float between 0 and 1",
    notes="""
    ```python
    fragments = sad.detect_fragments(train_db, target, window_s=sad_window_s)
    data, config = recipe_configs("bsrnn", fragments=fragments, ...)   # and once fragments=None
    ```
    Section 4 counted it: the toy songs' singers rest only briefly, so SAD keeps almost everything
    either way (with the seed's 6 s windows, a 10 s song's two complete windows never cover its
    last second, whatever the voice does). The
    sampler with and without SAD then draws almost the same excerpts, so the scores can only differ
    by the run-to-run noise. On real MUSDB18, with long instrumental passages, SAD removes much
    more, and it matters more.
    """,
    wrong_answers=(
        lambda: _window_share,  # salient windows / all windows
        lambda: _unmerged_share,  # overlapping windows counted twice
        lambda: (lambda y, sr, window_s: _covered_share(y, sr, 6.0)),  # window_s ignored
    ),
)
def _check_06_3(answer):
    function = expect_callable(answer, "covered_share")
    for what, y, sr in _activity_cases():
        for window_s in (6.0, 1.0):
            got = function(y.copy(), sr, window_s)
            expect_close(got, _covered_share(y, sr, window_s), f"{what}, {window_s:g} s windows", rtol=0, atol=1e-4)
    return "the union of the salient windows, as a share of the stem"


def _window_share(y, sr, window_s):
    from ..data import sad

    p = sad.SADParams(window_s=window_s)
    return float(sad.salient_windows(sad.chunk_rms(y, p.window(sr), p.hop(sr), p.n_chunks), p).mean())


def _unmerged_share(y, sr, window_s):
    from ..data import sad

    return sum(e - s for s, e in sad.find_salient_fragments(y, sr, window_s=window_s)) / np.asarray(y).shape[-1]


@_check_06_3.solution
def _solve_06_3():
    import numpy as np

    from mssbook.data import sad

    def covered_share(y, sr, window_s):
        windows = sad.find_salient_fragments(y, sr, window_s=window_s)  # overlapping (start, end) pairs
        kept = sum(end - start for start, end in sad.merge_fragments(windows))  # each sample once
        return kept / np.asarray(y).shape[-1]

    return covered_share


# ----------------------------------------------------------------------------------------------
# 06.4 The recipe as published
# ----------------------------------------------------------------------------------------------


def _frames(seconds: float) -> int:
    from .. import models

    with torch.device("meta"):
        model = models.create("bsrnn", preset="tutorial", targets=("vocals",))
    return model.spectrogram(torch.zeros(1, 2, int(round(seconds * model.sample_rate)), device="meta")).shape[-1]


@exercise(
    "06.4",
    "The recipe as published",
    """
    The recipe trains on 3 s excerpts with `lr=1e-3`; the chapter uses 1.5 s and `lr=3e-3`. Each
    step of the recipe costs more because the BLSTMs run along more frames. How many STFT frames
    does the tutorial model's spectrogram have for one excerpt of 3.0 s, and for one of 1.5 s (at
    its sample rate)? Then train with the recipe's two settings for the same time budget: how many
    steps happen, and how does the score compare?
    """,
    hint="""
    `model.spectrogram(torch.zeros(1, 2, n))` for n samples; the STFT is centred. For the run, leave
    `lr` and `seq_dur` out of `recipe_configs`; keep `time_budget`, `patience` and
    `validation=False`.
    """,
    answer="a pair of ints `(frames for 3.0 s, frames for 1.5 s)`",
    notes="""
    ```python
    data, config = recipe_configs("bsrnn", samples_per_track=samples_per_track, batch_size=batch_size,
                                  validation=False, patience=epochs, epochs=epochs, time_budget=time_budget)
    ```
    Twice the frames per excerpt make each step roughly twice as expensive, so expect about half
    the steps in the same budget, each with a third of the learning rate: the published recipe
    was made for batches of 16 × 3 s and days on a GPU, not for minutes of CPU. The chapter's
    shorter excerpts and higher rate trade the recipe's stability for speed.
    """,
    wrong_answers=(
        lambda: (_frames(3.0) - 1, _frames(1.5) - 1),  # a non-centred STFT
        lambda: (3 * 44100 // 512, 3 * 44100 // 1024),  # hop without the extra frame, and halved twice
        lambda: (_frames(1.5), _frames(3.0)),  # swapped
    ),
)
def _check_06_4(answer):
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong("hand in a pair (frames for 3.0 s, frames for 1.5 s)")
    expect_int(answer[0], _frames(3.0), "frames of a 3.0 s excerpt")
    expect_int(answer[1], _frames(1.5), "frames of a 1.5 s excerpt")
    return "a centred STFT: 1 + samples // hop frames"


@_check_06_4.solution
def _solve_06_4():
    import torch

    from mssbook import models

    model = models.create("bsrnn", preset="tutorial", targets=("vocals",))
    sr = model.sample_rate
    return tuple(model.spectrogram(torch.zeros(1, 2, int(seconds * sr))).shape[-1] for seconds in (3.0, 1.5))


# ----------------------------------------------------------------------------------------------
# 06.5 Which SDR punishes leakage?
# ----------------------------------------------------------------------------------------------


def leakage_example() -> dict:
    """Exercise 06.5's signals: 6 s at 8 kHz, stereo; vocals silent from 2 to 4 s.

    ``{"reference": vocals, "estimate": an estimate (silent where the vocals are),
    "accompaniment": the accompaniment, "sr": 8000}``, arrays (2, 48000) float32, the same on every call.
    """
    rng = np.random.default_rng(65)
    sr = 8000
    t = np.arange(6 * sr) / sr
    voice = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 440 * t + 0.3)
    voice *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t) ** 2
    active = ~((t >= 2.0) & (t < 4.0))
    vocals = np.stack([voice, 0.8 * voice]) * active
    accompaniment = 0.4 * rng.standard_normal((2, t.size)) + 0.3 * np.sin(2 * np.pi * 110 * t)
    estimate = vocals + (0.15 * accompaniment + 0.05 * rng.standard_normal((2, t.size))) * active
    return {"reference": vocals.astype(np.float32), "estimate": estimate.astype(np.float32),
            "accompaniment": accompaniment.astype(np.float32), "sr": sr}


def _leakage_scores(leak_everywhere: bool = False) -> dict:
    from ..metrics import csdr, usdr

    x = leakage_example()
    reference, estimate = x["reference"], x["estimate"]
    silent = np.all(reference == 0, axis=0)
    leaked = estimate + x["accompaniment"] * (True if leak_everywhere else silent)
    ref, sr = {"vocals": reference}, x["sr"]
    return {"usdr": (usdr(ref, {"vocals": estimate})["vocals"], usdr(ref, {"vocals": leaked})["vocals"]),
            "csdr": (csdr(ref, {"vocals": estimate}, sr)["vocals"], csdr(ref, {"vocals": leaked}, sr)["vocals"])}


@exercise(
    "06.5",
    "Which SDR punishes leakage?",
    """
    Take the signals of `leakage_example()` (`from mssbook.exercises.ch06 import leakage_example`):
    a vocals reference that is silent from 2 to 4 s, an estimate of it, and the accompaniment.
    Add the accompaniment to the estimate **only where the vocals are silent** (every channel
    zero), and compute uSDR and cSDR of the estimate before and after. Hand in
    `{"usdr": (before, after), "csdr": (before, after)}` in dB. Which SDR punishes the leakage?
    """,
    hint="""
    The silent samples: `np.all(reference == 0, axis=0)`. `csdr` and `usdr` of `mssbook.metrics`
    take `{target: array}` dicts of (channels, samples); `csdr` also takes `sr`.
    """,
    answer='a dict `{"usdr": (before, after), "csdr": (before, after)}` of floats in dB',
    notes="""
    uSDR sums the error over the whole track, so the leaked accompaniment counts in full and the
    score drops by several dB. cSDR is a median of 1 s frames in which frames with a silent
    reference are undefined (museval's rule, NaN) and left out: the leakage happens only there,
    so cSDR does not move at all. This is why the MDX challenges and the BSRNN paper report uSDR
    next to cSDR: a model that lets the band play through the vocals' pauses is not punished by
    the SiSEC number.
    """,
    wrong_answers=(
        lambda: _leakage_scores(leak_everywhere=True),  # leaked everywhere
        lambda: {key: pair[::-1] for key, pair in _leakage_scores().items()},  # before and after swapped
        lambda: {"usdr": _leakage_scores()["csdr"], "csdr": _leakage_scores()["usdr"]},  # metrics swapped
    ),
)
def _check_06_5(answer):
    if not isinstance(answer, dict) or set(answer) != {"usdr", "csdr"}:
        raise Wrong('hand in a dict with the keys "usdr" and "csdr", each a pair (before, after)')
    want = _leakage_scores()
    for key in ("usdr", "csdr"):
        pair = answer[key]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise Wrong(f"{key}: expected a pair (before, after)")
        for value, expected, when in zip(pair, want[key], ("before", "after")):
            expect_close(value, expected, f"{key} {when} the leakage", rtol=0, atol=0.01)
    return "uSDR drops, cSDR cannot see the leakage (its silent frames are left out)"


@_check_06_5.solution
def _solve_06_5():
    import numpy as np

    from mssbook.exercises.ch06 import leakage_example
    from mssbook.metrics import csdr, usdr

    x = leakage_example()
    reference, estimate, sr = x["reference"], x["estimate"], x["sr"]
    silent = np.all(reference == 0, axis=0)  # (samples,): every channel zero
    leaked = estimate + x["accompaniment"] * silent
    ref = {"vocals": reference}
    return {
        "usdr": (usdr(ref, {"vocals": estimate})["vocals"], usdr(ref, {"vocals": leaked})["vocals"]),
        "csdr": (csdr(ref, {"vocals": estimate}, sr)["vocals"], csdr(ref, {"vocals": leaked}, sr)["vocals"]),
    }


# ----------------------------------------------------------------------------------------------
# 06.6 Without the gain augmentation
# ----------------------------------------------------------------------------------------------


def _gain_reference(audio, gain_db):
    from ..data.sampler import GainDB

    return GainDB().apply(np.asarray(audio, dtype=np.float32), gain_db)


@exercise(
    "06.6",
    "Without the gain augmentation",
    """
    The recipe scales each source of a training example by a random gain of −10 to +10 dB
    (`source_augmentations=("gain_db",)`). Write `apply_gain(audio, gain_db)` that scales an
    array by a gain in dB as the sampler does. Then train with `source_augmentations=()` for the
    same time: does the model learn faster on the toy songs? What would it lose on real
    recordings, whose levels vary much more?
    """,
    hint="""
    A gain in dB is on the amplitude: 20·log10 of the factor. One override in `recipe_configs`
    for the run; compare against the gain baseline, not only the mixture.
    """,
    answer="a function `apply_gain(audio, gain_db)` returning an array shaped like `audio`",
    notes="""
    ```python
    data, config = recipe_configs("bsrnn", source_augmentations=(), ...)   # the chapter's other overrides
    ```
    ±10 dB is a factor of 0.32 to 3.2 in amplitude. The toy songs are mixed at similar levels
    every time, so without the augmentation the model sees mixtures that look like the test
    songs and may learn faster in a short budget. What it loses is invariance: on real songs the
    voice sits anywhere from well above the band to buried in it, and a model that never saw other
    balances relies on the level to tell the sources apart.
    """,
    wrong_answers=(
        lambda: (lambda audio, gain_db: np.asarray(audio) * 10.0 ** (gain_db / 10.0)),  # a power ratio
        lambda: (lambda audio, gain_db: np.asarray(audio) * gain_db),  # not converted
        lambda: (lambda audio, gain_db: np.asarray(audio) * 10.0 ** (-gain_db / 20.0)),  # the sign
    ),
)
def _check_06_6(answer):
    function = expect_callable(answer, "apply_gain")
    audio = np.random.default_rng(66).standard_normal((2, 50)).astype(np.float32)
    for gain_db in (-10.0, -3.0, 0.0, 6.0, 10.0):
        got = function(audio.copy(), gain_db)
        expect_close(got, _gain_reference(audio, gain_db), f"a gain of {gain_db:+g} dB", rtol=1e-5, atol=1e-7)
    return "a gain in dB scales the amplitude by 10^(dB/20)"


@_check_06_6.solution
def _solve_06_6():
    import numpy as np

    def apply_gain(audio, gain_db):
        return np.asarray(audio) * np.float32(10.0 ** (gain_db / 20.0))  # dB on the amplitude

    return apply_gain
