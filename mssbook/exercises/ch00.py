"""Exercises of chapter 00 (a tour: toy songs, listening, the STFT)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from . import Wrong, exercise, expect_callable, expect_close, expect_keys

SOURCES = ("vocals", "drums", "bass", "other")


@lru_cache(maxsize=None)
def _toy_stems(seed: int, duration: float, sample_rate: int) -> dict[str, np.ndarray]:
    from ..data.toy import plan_song, render_song

    return render_song(plan_song(seed, duration), sample_rate=sample_rate)


def _copy(stems: dict) -> dict:
    return {k: np.array(v, copy=True) for k, v in stems.items()}


# ---------------------------------------------------------------------------------------------
def _loudest_cases() -> list[tuple[str, dict]]:
    n = 16000
    rng = np.random.default_rng(0)
    quiet = 0.05 * rng.standard_normal((2, n))
    # a click: the highest peak, but little energy
    click = np.zeros((2, n))
    click[:, n // 2] = 0.9
    # loud on the left channel only, against a stem that is louder over both channels
    left_only = np.zeros((2, n))
    left_only[0] = 0.3 * rng.standard_normal(n)
    both = 0.25 * rng.standard_normal((2, n))
    cases = [(f"toy song {seed}", _toy_stems(seed, 2.0, 16000)) for seed in (0, 3, 5)]
    cases.append(("hand-made stems with a click", {"vocals": quiet, "drums": click, "bass": 0.6 * quiet,
                                                   "other": 2.0 * quiet}))
    cases.append(("hand-made stems, one panned hard left", {"vocals": left_only, "drums": both,
                                                            "bass": quiet, "other": 0.5 * quiet}))
    return cases


def _rms_loudest(stems: dict) -> str:
    return max(stems, key=lambda name: float(np.sqrt(np.mean(np.square(np.asarray(stems[name], np.float64))))))


@exercise(
    "00.1", "Another song",
    statement="""
        Set `song = 3` and run the chapter again: how do the plan, the piano roll and the spectrograms
        change? Then write `loudest(stems)`, which takes a dict of stems `{name: (channels, samples)}`
        (as `render_song` returns) and returns the name of the loudest stem, loudness being the RMS
        over all channels and samples. Which stem is loudest in song 3?
    """,
    hint="The RMS column of the loudness table: `np.sqrt(np.mean(x ** 2))` over the whole "
         "(channels, samples) array. A peak is not loudness.",
    answer="a function `loudest(stems) -> str`",
    notes="""
        A stem's loudness is its energy over the whole excerpt; a single loud click has the highest
        peak but hardly any energy, and a stem panned to one side is still as loud as its energy
        says. Which stem is loudest changes from song to song: the toy plan draws a level for each
        stem (`plan.levels_db`). That is why the course never normalises clips one by one when it
        plays them: the balance between the stems is part of what separation must get right.
    """,
    wrong_answers=(
        lambda: (lambda stems: max(stems, key=lambda k: float(np.abs(stems[k]).max()))),  # the peak
        lambda: (lambda stems: max(stems, key=lambda k: float(np.sqrt(np.mean(np.square(stems[k][0])))))),  # left only
        lambda: (lambda stems: min(stems, key=lambda k: float(np.sqrt(np.mean(np.square(stems[k])))))),
    ),
)
def _check_loudest(answer):
    f = expect_callable(answer, "loudest")
    for name, stems in _loudest_cases():
        got = f(_copy(stems))
        if not isinstance(got, str):
            raise Wrong(f"loudest should return a stem name (a str), got {type(got).__name__} for {name}")
        if got not in stems:
            raise Wrong(f"for {name}, {got!r} is not one of the stems {sorted(stems)}")
        if got != _rms_loudest(stems):
            raise Wrong(f"for {name}, {got!r} is not the stem with the highest RMS")
    return "right on three toy songs and two hand-made cases"


@_check_loudest.solution
def _solve_loudest():
    def loudest(stems):
        def rms(x):
            return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64)))))

        return max(stems, key=lambda name: rms(stems[name]))

    return loudest


# ---------------------------------------------------------------------------------------------
_BIN_CASES = ((100.0, 44100, 4096), (100.0, 44100, 512), (1000.0, 44100, 2048), (100.0, 16000, 1024),
              (44100 / 4096 * 10, 44100, 4096), (5.0, 44100, 4096))


@exercise(
    "00.2", "Where are the bass notes?",
    statement="""
        Write `bins_below(freq, sr, n_fft)`: the number of one-sided STFT bins whose centre frequency
        lies strictly below `freq` Hz. How many bins lie below 100 Hz with `n_fft = 4096` at 44.1 kHz,
        and with `n_fft = 512`? What does that mean for separating bass notes a semitone apart?
    """,
    hint="`bin_frequencies(sr, n_fft)` gives the centre of every bin, starting with 0 Hz (the DC bin); "
         "bins are `sr / n_fft` apart. A semitone near 55 Hz is about 3.3 Hz.",
    answer="a function `bins_below(freq, sr, n_fft) -> int`",
    notes="""
        With `n_fft = 4096` at 44.1 kHz 10 bins lie below 100 Hz (0, 10.8, ..., 96.9 Hz), with
        `n_fft = 512` only 2 (0 and 86.1 Hz). A semitone apart near 55 Hz is about 3.3 Hz, less than
        one bin (10.8 Hz) even at `n_fft = 4096`, so two low bass notes share bins; the model must use
        their harmonics (110 Hz, 165 Hz, ...) and time context to tell them apart.
    """,
    wrong_answers=(
        lambda: (lambda freq, sr, n_fft: int(freq / (sr / n_fft))),  # forgets the DC bin
        lambda: (lambda freq, sr, n_fft: int((np.linspace(0, sr / 2, n_fft // 2 + 1) <= freq).sum())),  # <=
    ),
)
def _check_bins(answer):
    from ..signal.transforms import bin_frequencies

    f = expect_callable(answer, "bins_below")
    for freq, sr, n_fft in _BIN_CASES:
        got = f(freq, sr, n_fft)
        want = int((bin_frequencies(sr, n_fft) < freq).sum())
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            raise Wrong(f"bins_below({freq:g}, {sr}, {n_fft}) should return an int, got {type(got).__name__}")
        if int(got) != want:
            raise Wrong(f"bins_below({freq:g}, {sr}, {n_fft}) = {got} is {'too high' if got > want else 'too low'}")
    return f"right on {len(_BIN_CASES)} cases (a frequency exactly on a bin included)"


@_check_bins.solution
def _solve_bins():
    from mssbook.signal.transforms import bin_frequencies

    def bins_below(freq, sr, n_fft):
        return int((bin_frequencies(sr, n_fft) < freq).sum())

    print(bins_below(100, 44100, 4096), bins_below(100, 44100, 512))  # the two counts asked for
    return bins_below


# ---------------------------------------------------------------------------------------------
_HOPS = (1024, 2048, 3072, 4096)
_WINDOWS = ("hann", "hamming")


def _roundtrip_hops(window: str) -> set[int]:
    from ..signal.transforms import ISTFT, STFT

    x = torch.randn(2, 36864, generator=torch.Generator().manual_seed(0))
    good = set()
    for hop in _HOPS:
        try:
            y = ISTFT(4096, hop, window)(STFT(4096, hop, window)(x), length=x.shape[-1])
        except RuntimeError:  # torch refuses when the summed squared windows vanish somewhere
            continue
        if float((y - x).abs().max()) < 1e-4:
            good.add(hop)
    return good


@lru_cache(maxsize=None)
def _expected_hops() -> dict[str, frozenset]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {w: frozenset(_roundtrip_hops(w)) for w in _WINDOWS}


@exercise(
    "00.3", "Break perfect reconstruction",
    statement="""
        Measure the reconstruction error of `ISTFT(4096, hop, window)(STFT(4096, hop, window)(x),
        length=x.shape[-1])` on `x = torch.randn(2, 36864, generator=torch.Generator().manual_seed(0))` for
        `hop` = 1024, 2048, 3072 and 4096 and the windows `"hann"` and `"hamming"`. Which hops still
        reconstruct (largest absolute error below 1e-4), and why? A hop that torch refuses does not
        reconstruct.
    """,
    hint="torch's ISTFT divides the overlap-added frames by the summed squared windows; look at where "
         "that sum could be zero. A Hamming window does not go to zero at its edges.",
    answer="a dict `{\"hann\": set of hops, \"hamming\": set of hops}`",
    notes="""
        With the Hann window, hops 1024, 2048 and 3072 reconstruct to float precision: as long as
        consecutive windows overlap, the summed squared windows never vanish and the division undoes
        the windowing. At 4096 the frames do not overlap, the Hann window is zero at its edges, and
        torch refuses (the "nonzero overlap-add" condition fails). The Hamming window never reaches
        zero, so the division is possible even without overlap. (The signal's length matters too:
        36864 samples is a whole number of every hop, so the last frame reaches the end; try 30000
        samples and hop 3072 to see the tail go uncovered.) Reconstruction is not the only
        criterion, though: a model *changes* the STFT, and with little overlap those changes jump from
        frame to frame and are heard as clicks and buzz. That is why separation uses 75 % overlap.
    """,
    wrong_answers=(
        lambda: {w: set(_HOPS) for w in _WINDOWS},  # every hop
        lambda: {w: {1024} for w in _WINDOWS},  # only 75 % overlap
        lambda: {"hann": {1024, 2048, 3072}, "hamming": {1024, 2048, 3072}},
    ),
)
def _check_hops(answer):
    expect_keys(answer, _WINDOWS, "{window: set of hops}")
    expected = _expected_hops()
    for window in _WINDOWS:
        try:
            got = {int(h) for h in answer[window]}
        except (TypeError, ValueError):
            raise Wrong(f"{window}: expected a set of hops (ints), got {answer[window]!r}") from None
        if got - set(_HOPS):
            raise Wrong(f"{window}: only the hops {list(_HOPS)} were asked about, got {sorted(got - set(_HOPS))}")
        extra, lacking = got - expected[window], expected[window] - got
        if extra:
            raise Wrong(f"{window}: your set holds {len(extra)} hop(s) that do not reconstruct")
        if lacking:
            raise Wrong(f"{window}: {len(lacking)} hop(s) that do reconstruct are missing")
    return "both windows right"


@_check_hops.solution
def _solve_hops():
    import torch

    from mssbook.signal.transforms import ISTFT, STFT

    x = torch.randn(2, 36864, generator=torch.Generator().manual_seed(0))
    result = {}
    for window in ("hann", "hamming"):
        result[window] = set()
        for hop in (1024, 2048, 3072, 4096):
            stft, istft = STFT(4096, hop, window), ISTFT(4096, hop, window)
            try:
                error = float((istft(stft(x), length=x.shape[-1]) - x).abs().max())
            except RuntimeError as exc:  # "window overlap add min" fails: nothing to divide by
                print(window, hop, "refused:", str(exc).splitlines()[0][:60])
                continue
            print(window, hop, f"max error {error:.2e}")
            if error < 1e-4:
                result[window].add(hop)
    return result


# ---------------------------------------------------------------------------------------------
def _mask_reference(mixture, stems, n_fft: int = 4096, hop: int = 1024) -> np.ndarray:
    from ..signal.transforms import ISTFT, STFT

    stft, istft = STFT(n_fft, hop), ISTFT(n_fft, hop)
    mags = {k: stft(torch.as_tensor(np.asarray(v), dtype=torch.float32)).abs() for k, v in stems.items()}
    mask = mags["vocals"] / (sum(mags.values()) + 1e-10)
    mix = stft(torch.as_tensor(np.asarray(mixture), dtype=torch.float32))
    return istft(mask * mix, length=np.asarray(mixture).shape[-1]).numpy()


def _mask_cases():
    rng = np.random.default_rng(1)
    noise = {k: (0.1 * rng.standard_normal((2, 12000))).astype(np.float32) for k in SOURCES}
    cases = [("toy song 3 (2 s)", _toy_stems(3, 2.0, 44100)), ("four noise stems", noise)]
    return [(name, sum(stems.values()), stems) for name, stems in cases]


@exercise(
    "00.4", "An ideal mask",
    statement="""
        Write `mask_vocals(mixture, stems)`: vocals estimated from the mixture's STFT (`STFT(4096,
        1024)`) times the mask `|V| / (|V| + |D| + |B| + |O|)` built from the true stems' STFTs, and
        inverted with `ISTFT(4096, 1024)` to the mixture's length; `mixture` is (channels, samples),
        `stems` a dict of (channels, samples) arrays. Then compare its SNR on a toy song with
        "vocal magnitude + mixture phase".
    """,
    hint="`mixture_phase` and masks are related: `mask * X` keeps the mixture's phase. Use magnitudes "
         "(`.abs()`), not powers, and pass `length=` to the ISTFT.",
    answer="a function `mask_vocals(mixture, stems)` returning a (channels, samples) array or tensor",
    notes="""
        A ratio mask between 0 and 1 times the mixture STFT keeps the mixture's phase, like "vocal
        magnitude + mixture phase", but it never puts more energy in a bin than the mixture has: where
        the stems cancel each other, the true magnitude with the mixture phase overshoots, the mask
        does not; where the vocals dominate a bin, the true magnitude wins, where the stems overlap,
        the mask spreads the mixture among them. Which one scores the higher SNR depends on the song,
        so print both. The four masks add up to one, so the four masked estimates add up to the
        mixture; the ideal ratio mask is the oracle chapter 01 scores as IRM1 (`oracle("irm1", ...)`).
    """,
    wrong_answers=(
        # power instead of magnitude (the IRM with alpha 2)
        lambda: (lambda mixture, stems: _power_mask(mixture, stems)),
        # the true magnitude with the mixture phase: not a mask
        lambda: (lambda mixture, stems: _magnitude_mixture_phase(mixture, stems)),
        # no length: the ISTFT returns a few samples fewer
        lambda: (lambda mixture, stems: _mask_reference(mixture, stems)[..., :-7]),
    ),
)
def _check_mask(answer):
    f = expect_callable(answer, "mask_vocals")
    for name, mixture, stems in _mask_cases():
        got = f(np.array(mixture, copy=True), _copy(stems))
        want = _mask_reference(mixture, stems)
        scale = float(np.abs(want).max())
        expect_close(got, want, f"mask_vocals on {name}", rtol=1e-3, atol=1e-4 * scale)
    return "right on a toy song and on four noise stems"


def _power_mask(mixture, stems):
    from ..signal.transforms import ISTFT, STFT

    stft, istft = STFT(4096, 1024), ISTFT(4096, 1024)
    power = {k: stft(torch.as_tensor(v)).abs() ** 2 for k, v in stems.items()}
    mix = stft(torch.as_tensor(np.asarray(mixture, np.float32)))
    return istft(power["vocals"] / (sum(power.values()) + 1e-10) * mix, length=mixture.shape[-1]).numpy()


def _magnitude_mixture_phase(mixture, stems):
    from ..signal.transforms import ISTFT, STFT

    stft, istft = STFT(4096, 1024), ISTFT(4096, 1024)
    mix = stft(torch.as_tensor(np.asarray(mixture, np.float32)))
    vocals = stft(torch.as_tensor(stems["vocals"])).abs()
    return istft(torch.polar(vocals, mix.angle()), length=mixture.shape[-1]).numpy()


@_check_mask.solution
def _solve_mask():
    import numpy as np
    import torch

    from mssbook.data.toy import plan_song, render_song
    from mssbook.signal.transforms import ISTFT, STFT

    stft, istft = STFT(4096, 1024), ISTFT(4096, 1024)

    def mask_vocals(mixture, stems):
        mags = {k: stft(torch.as_tensor(v, dtype=torch.float32)).abs() for k, v in stems.items()}
        mask = mags["vocals"] / (mags["vocals"] + mags["drums"] + mags["bass"] + mags["other"] + 1e-10)
        mix = stft(torch.as_tensor(mixture, dtype=torch.float32))
        return istft(mask * mix, length=mixture.shape[-1]).numpy()

    stems = render_song(plan_song(3, 4.0))
    mixture = sum(stems.values())
    vocals = stems["vocals"]
    mix = stft(torch.as_tensor(mixture))
    phase_only = istft(torch.polar(stft(torch.as_tensor(vocals)).abs(), mix.angle()), length=mixture.shape[-1]).numpy()

    def snr(estimate):
        return 10 * np.log10(np.sum(vocals ** 2) / np.sum((vocals - estimate) ** 2))

    print(f"ratio mask {snr(mask_vocals(mixture, stems)):.1f} dB, magnitude + mixture phase {snr(phase_only):.1f} dB")
    return mask_vocals
