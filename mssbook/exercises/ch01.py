"""Exercises of chapter 01 (evaluation: BSSEval, frames, medians, oracles)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import Wrong, exercise, expect_callable, expect_close, expect_close_each, expect_keys

SOURCES = ("vocals", "drums", "bass", "other")
METRICS = ("SDR", "ISR", "SIR", "SAR")
EXERCISE_SR = 16000  # the chapter's exercises use a short toy song at 16 kHz: BSSEval runs in a second


@lru_cache(maxsize=None)
def _song(seed: int = 2, duration: float = 3.0, sample_rate: int = EXERCISE_SR) -> dict[str, np.ndarray]:
    from ..data.toy import plan_song, render_song

    stems = render_song(plan_song(seed, duration), sample_rate=sample_rate)
    return {k: v.astype(np.float64) for k, v in stems.items()}


def exercise_song() -> tuple[dict[str, np.ndarray], int]:
    """The toy song of chapter 01's exercises: ``({source: (2, samples) float64}, sample rate)``,
    3 s of ``plan_song(2, 3.0)`` rendered at 16 kHz (a copy: change it freely)."""
    return {k: v.copy() for k, v in _song().items()}, EXERCISE_SR


def drums_leak_estimate(stems: dict[str, np.ndarray], target: str = "vocals", db: float = -10.0) -> np.ndarray:
    """The chapter's "+ drums alone at -10 dB" estimate: the target plus the drums scaled to ``db``
    relative to the target's RMS."""
    s, drums = stems[target], stems["drums"]

    def rms(x):
        return float(np.sqrt(np.mean(np.square(x))))

    return s + drums * rms(s) / rms(drums) * 10 ** (db / 20)


# ---------------------------------------------------------------------------------------------
_GAINS = (0.25, 0.5, 0.9, 1.1, 1.5, 2.0, 4.0)


@lru_cache(maxsize=None)
def _gain_sdrs() -> tuple[float, ...]:
    from ..metrics import bss_eval

    stems = _song(2, 1.0)
    s = stems["vocals"]
    rest = stems["drums"] + stems["bass"] + stems["other"]
    group = {"vocals": s, "rest": rest}
    # SDR does not depend on the distortion filters: sdr_only gives the full mode's SDR, quickly
    return tuple(float(bss_eval(group, {"vocals": a * s, "rest": rest}, EXERCISE_SR, win=None,
                                sdr_only=True)["vocals"]["SDR"][0]) for a in _GAINS)


@exercise(
    "01.1", "Gains",
    statement="""
        Score `a * s` for `a` in 0.25, 0.5, 0.9, 1.1, 2 and 4 with `bss_eval` (one frame, `win=None`)
        and with `si_sdr`. Then write `sdr_of_gain(a)`: the BSSEval SDR in dB of the estimate `a * s`
        of a target `s`, as a formula in `a` (no BSSEval inside). For which gain is SDR 0 dB, and is
        SDR symmetric in `a` and `1/a`?
    """,
    hint="The error is `(a - 1) s`: SDR compares the energy of `s` with the energy of the error.",
    answer="a function `sdr_of_gain(a) -> float` (dB)",
    notes="""
        `sdr_of_gain(a) = -20 log10 |a - 1|`. SDR is 0 dB at `a = 2` (the error is as loud as the
        target), 6.02 dB at 0.5, 20 dB at 0.9 and 1.1: not symmetric in `a` and `1/a` (0.5 gives
        6 dB, 2 gives 0 dB). BSSEval v4 fits its 512-tap filter on the *reference*, so a gain error is
        an error of the image (ISR), priced in SDR. SI-SDR is infinite (or above 300 dB, rounding) for
        every gain: it rescales the reference first, by design.
    """,
    wrong_answers=(
        lambda: (lambda a: -10 * np.log10(abs(a - 1))),  # a power ratio taken for an amplitude ratio
        lambda: (lambda a: -20 * np.log10(abs(1 / a - 1))),  # the error relative to the estimate
        lambda: (lambda a: 20 * np.log10(abs(a - 1))),  # the sign
    ),
)
def _check_gain(answer):
    f = expect_callable(answer, "sdr_of_gain")
    for a, want in zip(_GAINS, _gain_sdrs()):
        try:
            got = float(f(a))
        except (TypeError, ValueError) as exc:
            raise Wrong(f"sdr_of_gain({a}) should return a number ({exc})") from None
        expect_close(got, want, f"sdr_of_gain({a}), compared with bss_eval", rtol=0, atol=0.01)
    return f"matches bss_eval within 0.01 dB for the gains {', '.join(map(str, _GAINS))}"


@_check_gain.solution
def _solve_gain():
    import numpy as np

    from mssbook.exercises.ch01 import exercise_song
    from mssbook.metrics import bss_eval, si_sdr

    def sdr_of_gain(a):
        return float(-20 * np.log10(abs(a - 1)))

    stems, sr = exercise_song()
    s, rest = stems["vocals"], stems["drums"] + stems["bass"] + stems["other"]
    for a in (0.25, 0.5, 0.9, 1.1, 2, 4):  # sdr_only: the same SDR, without the projections' cost
        r = bss_eval({"vocals": s, "rest": rest}, {"vocals": a * s, "rest": rest}, sr, win=None, sdr_only=True)["vocals"]
        print(a, round(float(r["SDR"][0]), 2), round(sdr_of_gain(a), 2),
              round(si_sdr({"vocals": s}, {"vocals": a * s})["vocals"], 1))
    return sdr_of_gain


# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _group_scores(four: bool) -> dict[str, float]:
    from ..metrics import bss_eval

    stems = _song()
    estimate = drums_leak_estimate(stems)
    if four:
        refs, ests = stems, {**stems, "vocals": estimate}
    else:
        rest = stems["drums"] + stems["bass"] + stems["other"]
        refs, ests = {"vocals": stems["vocals"], "rest": rest}, {"vocals": estimate, "rest": rest}
    r = bss_eval(refs, ests, EXERCISE_SR, win=None)["vocals"]
    return {m: float(r[m][0]) for m in METRICS}


def _metrics_dict(answer, what: str) -> dict[str, float]:
    if not isinstance(answer, dict):
        raise Wrong(f"{what}: expected a dict {{'SDR': ..., 'ISR': ..., 'SIR': ..., 'SAR': ...}}, "
                    f"got {type(answer).__name__}")
    missing = [m for m in METRICS if m not in answer]
    if missing:
        raise Wrong(f"{what}: missing {missing}")
    out = {}
    for m in METRICS:
        value = np.asarray(answer[m], dtype=np.float64) if not isinstance(answer[m], str) else None
        if value is None or value.size != 1:
            raise Wrong(f"{what}: {m} should be one number (the whole excerpt is one frame)")
        out[m] = float(value.reshape(()))
    return out


@exercise(
    "01.2", "Which group?",
    statement="""
        Score the "+ drums alone at -10 dB" estimate of the vocals with the **four stems** as the
        group, as SiSEC scores a four-target system: `bss_eval(stems, {**stems, "vocals": estimate},
        sr, win=None)`, on the exercise song (`stems, sr = exercise_song()` and `estimate =
        drums_leak_estimate(stems)`, both from `mssbook.exercises.ch01`). Hand in the vocals'
        SDR, ISR, SIR and SAR. Where does the drums leakage land now, compared with the group
        `{vocals, rest}` of section 1, and why do SDR and ISR not change?
    """,
    hint="The interference subspace is spanned by the references *of the group*, each through its own "
         "filter: with the drums a reference of their own, their leakage is interference.",
    answer="a dict `{\"SDR\": dB, \"ISR\": dB, \"SIR\": dB, \"SAR\": dB}`",
    notes="""
        With the group `{vocals, rest}`, the drums are only part of the "rest" reference; the
        projection on the rest's filtered versions catches only part of them, and what is left is
        counted as artefacts (a lower SAR). With the drums a reference of their own, the projection
        catches the leakage entirely: it moves from SAR to SIR (SAR climbs to a very high value, SIR
        drops to about the 10 dB of the leakage). SDR compares the estimate with the reference only,
        and ISR only the target's projection: neither depends on the other references, so neither
        changes. SIR and SAR are only comparable between papers that score the same groups.
    """,
    wrong_answers=(
        lambda: _group_scores(False),  # the two-source group {vocals, rest}
        lambda: {m: v for m, v in zip(METRICS, (_group_scores(True)[m] for m in ("SDR", "SIR", "ISR", "SAR")))},
    ),
)
def _check_group(answer):
    got = _metrics_dict(answer, "the four-stem group's scores")
    want = _group_scores(True)
    wrong = [m for m in METRICS if not abs(got[m] - want[m]) <= 0.05 + 1e-3 * abs(want[m])]
    if wrong:
        right = [m for m in METRICS if m not in wrong]
        raise Wrong(f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} off"
                    + (f" ({', '.join(right)} right)" if right else "")
                    + ": check the group, the estimate and win=None")
    return "all four metrics right (within 0.05 dB)"


@_check_group.solution
def _solve_group():
    from mssbook.exercises.ch01 import drums_leak_estimate, exercise_song
    from mssbook.metrics import bss_eval

    stems, sr = exercise_song()
    estimate = drums_leak_estimate(stems)
    four = bss_eval(stems, {**stems, "vocals": estimate}, sr, win=None)["vocals"]
    # compare with the group {vocals, rest}: bss_eval({"vocals": v, "rest": r}, {"vocals": estimate, "rest": r}, ...)
    return {m: float(four[m][0]) for m in ("SDR", "ISR", "SIR", "SAR")}


# ---------------------------------------------------------------------------------------------
_WINS = (0.5, 1.0, None)


@lru_cache(maxsize=None)
def _framewise() -> dict:
    from ..metrics import bss_eval

    stems = _song()
    rest = stems["drums"] + stems["bass"] + stems["other"]
    estimate = drums_leak_estimate(stems)
    return {win: bss_eval({"vocals": stems["vocals"], "rest": rest}, {"vocals": estimate, "rest": rest},
                          EXERCISE_SR, win=win, hop=win)["vocals"] for win in _WINS}


def _frame_medians(statistic=np.nanmedian) -> dict:
    return {win: {m: float(statistic(r[m])) for m in METRICS} for win, r in _framewise().items()}


@exercise(
    "01.3", "Frame length",
    statement="""
        Score the "+ drums alone at -10 dB" estimate of the vocals (group `{vocals, rest}`, the rest
        being drums + bass + other) on the exercise song (`exercise_song()`, `drums_leak_estimate`
        from `mssbook.exercises.ch01`) with `win = hop =` 0.5 and 1 s and with `win=None`. Hand
        in the median over frames of each metric for each frame length. How do the medians of ISR,
        SIR and SAR move, and SDR's?
    """,
    hint="The filters are fitted once, on the whole signal; only the number of frame edges changes. "
         "Frames must not overlap (`hop=win`), and museval's median skips NaN frames.",
    answer="a dict `{win: {\"SDR\": dB, \"ISR\": dB, \"SIR\": dB, \"SAR\": dB}}` for win in 0.5, 1.0, None",
    notes="""
        SDR stays near the 10 dB of the leakage whatever the frames. ISR climbs with the frame
        length, and SIR and SAR settle at their whole-signal values: fewer frame edges, less residue
        of the globally fitted filters in each frame. Nothing about the estimate changed, only the
        bookkeeping, which is why papers state their frame length (1 s in SiSEC 2018).
    """,
    wrong_answers=(
        # the mean over frames instead of the median
        lambda: _frame_medians(np.nanmean),
        # ISR and SIR swapped (museval's order is SDR, ISR, SIR, SAR)
        lambda: {w: {"SDR": d["SDR"], "ISR": d["SIR"], "SIR": d["ISR"], "SAR": d["SAR"]} for w, d in _frame_medians().items()},
    ),
)
def _check_frames(answer):
    expect_keys(answer, _WINS, "{win: {metric: median}}")
    want = _frame_medians()
    for win in _WINS:
        got = _metrics_dict(answer[win], f"win={win}")
        wrong = [m for m in METRICS if not abs(got[m] - want[win][m]) <= 0.05 + 1e-3 * abs(want[win][m])]
        if wrong:
            raise Wrong(f"win={win}: the median of {', '.join(wrong)} is off (frames of win seconds, hop=win, "
                        "median over frames)")
    return "every median right (within 0.05 dB)"


@_check_frames.solution
def _solve_frames():
    import numpy as np

    from mssbook.exercises.ch01 import drums_leak_estimate, exercise_song
    from mssbook.metrics import bss_eval

    stems, sr = exercise_song()
    group = {"vocals": stems["vocals"], "rest": stems["drums"] + stems["bass"] + stems["other"]}
    estimates = {"vocals": drums_leak_estimate(stems), "rest": group["rest"]}
    result = {}
    for win in (0.5, 1.0, None):
        r = bss_eval(group, estimates, sr, win=win, hop=win)["vocals"]
        result[win] = {m: float(np.nanmedian(r[m])) for m in ("SDR", "ISR", "SIR", "SAR")}
        print(win, {m: round(v, 1) for m, v in result[win].items()})
    return result


# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _oracle_gains() -> dict[str, float]:
    return _oracle_difference("irm2", 4096, 1024)


def _oracle_difference(method: str, n_fft: int, hop: int, flip: bool = False) -> dict[str, float]:
    from ..metrics import usdr
    from ..oracles import oracle

    stems = _song()
    mixture = sum(stems.values())
    big = usdr(stems, oracle(method, mixture, stems, n_fft=n_fft, hop_length=hop))
    small = usdr(stems, oracle(method, mixture, stems))
    return {k: (small[k] - big[k]) if flip else (big[k] - small[k]) for k in SOURCES}


@exercise(
    "01.4", "A bigger STFT for the oracles",
    statement="""
        Does the ideal ratio mask get better with a longer window? Run `oracle("irm2", mixture,
        stems, n_fft=4096, hop_length=1024)` and `oracle("irm2", mixture, stems)` (the default STFT)
        on the exercise song (`stems, sr = exercise_song()`, the mixture being the sum of the stems)
        and hand in, for each target, the uSDR (`mssbook.metrics.usdr`) of the bigger STFT minus the
        uSDR of the default one. Try the real excerpts too (`load_real_excerpts()` in the chapter):
        for which targets does the oracle improve?
    """,
    hint="Longer windows resolve the bass' harmonics, but smear the drums' attacks. `usdr(references, "
         "estimates)` takes the true stems first.",
    answer="a dict `{target: dB}` for vocals, drums, bass and other (positive: the bigger STFT is better)",
    notes="""
        A 4096-point window at 16 kHz lasts a quarter of a second: the bass' harmonics fall into
        separate bins, so its mask gets sharper, while a drum hit is spread over the whole window
        and its mask blurs in time. Which targets win depends on the song and the sample rate
        (4096 points span 93 ms at 44.1 kHz): print the differences on the exercise song and on the
        real excerpts. An oracle's score is a property of the method *and* its settings, which is why
        SiSEC reports its oracles with their STFT.
    """,
    wrong_answers=(
        lambda: _oracle_difference("irm2", 4096, 1024, flip=True),  # the difference the other way round
        lambda: _oracle_difference("irm1", 4096, 1024),  # the other oracle
    ),
)
def _check_oracle(answer):
    want = _oracle_gains()
    expect_close_each(answer, {k: want[k] for k in SOURCES}, "the difference for {key}", rtol=0, atol=0.02)
    return "the four differences are right (within 0.02 dB)"


@_check_oracle.solution
def _solve_oracle():
    from mssbook.exercises.ch01 import exercise_song
    from mssbook.metrics import usdr
    from mssbook.oracles import oracle

    stems, sr = exercise_song()
    mixture = sum(stems.values())
    big = usdr(stems, oracle("irm2", mixture, stems, n_fft=4096, hop_length=1024))
    default = usdr(stems, oracle("irm2", mixture, stems))
    return {target: big[target] - default[target] for target in stems}


# ---------------------------------------------------------------------------------------------
def _frames_cases() -> list[tuple[str, dict]]:
    rng = np.random.default_rng(5)
    skewed = {f"song {i}": rng.normal(loc, 2.0, size=n) for i, (loc, n) in enumerate([(2, 9), (4, 12), (12, 10)])}
    skewed["song 0"][:3] = [30.0, 31.0, 29.0]  # a few excellent frames pull a mean, not a median
    with_nan = {f"song {i}": rng.normal(5 + i, 3.0, size=8 + 3 * i) for i in range(4)}
    with_nan["song 1"][[0, 5]] = np.nan  # digitally silent frames
    with_nan["song 3"][-1] = np.nan
    unequal = {"short": np.array([1.0, 2.0, 3.0]), "long": np.linspace(10, 20, 31), "middle": np.array([5.0, 7.0])}
    return [("songs with a few excellent frames", skewed), ("songs with NaN frames", with_nan),
            ("songs of unequal lengths", unequal), ("one song", {"only": np.array([3.0, np.nan, 1.0, 8.0])})]


def _table(per_track: dict) -> tuple[float, float]:
    medians = [float(np.nanmedian(np.asarray(v, dtype=np.float64))) for v in per_track.values()]
    return float(np.median(medians)), float(np.mean(medians))


@exercise(
    "01.5", "Mean or median?",
    statement="""
        Write `aggregate(per_track)`: `per_track` maps each song to the array of its framewise SDRs
        (NaN for frames BSSEval leaves out). Return `(median, mean)` over the songs of each song's
        score, a song's score being the median over its frames, as museval's table. Then compute the
        mean over songs of the vocals SDR of `results["IRM2"].per_track` in the chapter and compare
        it with the median the table shows.
    """,
    hint="First one number per song (the median of its frames, leaving NaN out: `np.nanmedian`), then "
         "the median and the mean of those numbers. Pooling all frames of all songs is another rule.",
    answer="a function `aggregate(per_track) -> (median, mean)`",
    notes="""
        A song's score is the median over its frames, the table's the median over songs. The mean of
        the same per-song numbers can differ by several dB when a few songs are much easier or much
        harder than the rest; pooling every frame of every song weighs long songs more. In the
        chapter, `np.mean([row["vocals"]["SDR"] for row in results["IRM2"].per_track.values()])`
        gives the mean of the per-song medians; compare it with the table's median. State the
        aggregation with every number.
    """,
    wrong_answers=(
        lambda: (lambda pt: (float(np.median([np.nanmean(v) for v in pt.values()])),
                             float(np.mean([np.nanmean(v) for v in pt.values()])))),  # mean over frames
        lambda: (lambda pt: (float(np.nanmedian(np.concatenate(list(pt.values())))),
                             float(np.mean([np.nanmedian(v) for v in pt.values()])))),  # pooled frames
        lambda: (lambda pt: (float(np.median([np.median(v) for v in pt.values()])),
                             float(np.mean([np.median(v) for v in pt.values()])))),  # NaN not left out
        lambda: (lambda pt: _table(pt)[::-1]),  # (mean, median)
    ),
)
def _check_aggregate(answer):
    f = expect_callable(answer, "aggregate")
    for name, per_track in _frames_cases():
        got = f({k: np.array(v, copy=True) for k, v in per_track.items()})
        try:
            median, mean = got
        except (TypeError, ValueError):
            raise Wrong(f"aggregate should return a pair (median, mean), got {type(got).__name__}") from None
        want = _table(per_track)
        expect_close(median, want[0], f"the median for {name}", rtol=1e-6, atol=1e-9)
        expect_close(mean, want[1], f"the mean for {name}", rtol=1e-6, atol=1e-9)
    return f"right on {len(_frames_cases())} cases (NaN frames, unequal lengths, outliers)"


@_check_aggregate.solution
def _solve_aggregate():
    import numpy as np

    def aggregate(per_track):
        per_song = [float(np.nanmedian(frames)) for frames in per_track.values()]  # museval: median over frames
        return float(np.median(per_song)), float(np.mean(per_song))

    return aggregate
