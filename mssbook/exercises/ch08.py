"""Exercises of chapter 08 (the comparison): the gain baseline, the cost of four stems, paired comparisons."""

from __future__ import annotations

import numpy as np

from . import Wrong, exercise, expect_callable, expect_close, expect_int

# ----------------------------------------------------------------------------------------------
# 08.1 The gain baseline
# ----------------------------------------------------------------------------------------------


def _gain_cases():
    rng = np.random.default_rng(8)
    cases = []
    for songs, length in ((3, 500), (5, 300)):
        mixtures, targets = [], []
        for k in range(songs):
            target = rng.normal(size=(2, length + 37 * k)) * (0.3 + 0.4 * k)  # songs of other lengths and levels
            rest = rng.normal(size=target.shape) * (1.0 + 0.2 * k)
            mixtures.append(target + rest)
            targets.append(target)
        cases.append((mixtures, targets))
    return cases


def _fit_gain(mixtures, targets):
    num = sum(float(np.sum(x * s)) for x, s in zip(mixtures, targets))
    den = sum(float(np.sum(x * x)) for x in mixtures)
    return num / den


@exercise(
    "08.1",
    "The gain baseline",
    """
    The table of section 3 shows every model next to the mixture times **one** gain $g$, fitted
    on the training songs (`mssbook.comparison.fit_gains`). Write `fit_gain(mixtures, targets)`
    that takes lists of arrays (one mixture and its target per song, shaped (channels, samples),
    songs of different lengths) and returns the $g$ that minimises the squared error
    $\\sum_{songs} \\|g x - s\\|^2$ over all songs together. Then check it against
    `fit_gains(root, ["vocals"])` on the toy training songs.
    """,
    hint="""
    Set the derivative of $\\sum \\|g x - s\\|^2$ with respect to $g$ to zero. The sums run over
    every sample of every song: do not average one gain per song.
    """,
    answer="a function `fit_gain(mixtures, targets)` returning a float",
    notes="""
    $g = \\sum x \\cdot s / \\sum x \\cdot x$, both sums over all samples, channels and songs. A
    mean of per-song gains weighs a quiet song like a loud one, and $\\sqrt{\\sum s^2 / \\sum x^2}$
    matches the loudness but not the correlation: both fit worse. On the toy songs the vocals'
    $g$ is about a third, so the "gain" estimate is the whole band turned down; it beats the
    mixture because BSSEval's SDR is not scale-invariant.
    """,
    wrong_answers=(
        lambda: (lambda mixtures, targets: float(np.mean([np.sum(x * s) / np.sum(x * x)
                                                          for x, s in zip(mixtures, targets)]))),  # per-song mean
        lambda: (lambda mixtures, targets: float(np.sqrt(sum(np.sum(s * s) for s in targets)
                                                         / sum(np.sum(x * x) for x in mixtures)))),  # loudness ratio
        lambda: (lambda mixtures, targets: float(sum(np.sum(x * s) for x, s in zip(mixtures, targets))
                                                 / sum(np.sum(s * s) for s in targets))),  # wrong denominator
    ),
)
def _check_08_1(answer):
    function = expect_callable(answer, "fit_gain")
    for k, (mixtures, targets) in enumerate(_gain_cases()):
        got = function([x.copy() for x in mixtures], [s.copy() for s in targets])
        expect_close(got, _fit_gain(mixtures, targets), f"the gain for test case {k + 1} ({len(mixtures)} songs)",
                     rtol=1e-6)
    return "the least-squares gain over all songs together"


@_check_08_1.solution
def _solve_08_1():
    def fit_gain(mixtures, targets):
        num = sum(float(np.sum(x * s)) for x, s in zip(mixtures, targets))  # Σ x·s over songs and samples
        den = sum(float(np.sum(x * x)) for x in mixtures)  # Σ x·x
        return num / den

    return fit_gain


# ----------------------------------------------------------------------------------------------
# 08.2 The cost of four stems
# ----------------------------------------------------------------------------------------------

_FOUR = ("vocals", "drums", "bass", "other")
_CHECKED = ("umx", "xumx", "d3net")


def _four_stem_parameters(name: str) -> int:
    from .. import models

    if name == "xumx":  # one network for the four targets
        return models.create(name, preset="paper", target=_FOUR).num_parameters()
    return sum(models.create(name, preset="paper", target=t).num_parameters() for t in _FOUR)


@exercise(
    "08.2",
    "What four stems cost",
    """
    The cost table of section 5 counts the parameters of each family's model as the chapters
    trained it; most separate the vocals only. Write `four_stem_parameters(name)` that returns
    how many parameters the **paper** preset of registry model `name` needs to separate all four
    targets (vocals, drums, bass, other), for `"umx"`, `"xumx"` and `"d3net"`. Which of the
    three is the cheapest for four stems, and is it the cheapest for vocals alone?
    """,
    hint="""
    Open-Unmix and D3Net train one network per target, and D3Net's networks differ from target to
    target (band splits, layers); X-UMX is one network for the four. Build them with
    `models.create(name, preset="paper", target=...)` and count with `num_parameters()`.
    """,
    answer="a function `four_stem_parameters(name)` returning an int",
    notes="""
    Open-Unmix: 4 × 8,893,348 = 35,573,392, exactly X-UMX's count (its bridges average the
    branches and add no weights). D3Net's four networks differ (vocals 2,967,407, drums 2,873,284,
    bass 2,419,822, other 2,967,407: 11,227,920 in all), about a third of the Open-Unmix total: the
    cheapest of the three for four stems, as for the vocals alone. Parameters are not time: set
    them against the seconds per second of audio that section 5 measures.
    """,
    wrong_answers=(
        lambda: (lambda name: 4 * __import__("mssbook.models", fromlist=["create"]).create(
            name, preset="paper", target="vocals").num_parameters()),  # 4 × the vocals model: wrong for D3Net
        lambda: (lambda name: __import__("mssbook.models", fromlist=["create"]).create(
            name, preset="paper", target="vocals").num_parameters()),  # one target only
    ),
)
def _check_08_2(answer):
    function = expect_callable(answer, "four_stem_parameters")
    for name in _CHECKED:
        expect_int(function(name), _four_stem_parameters(name), f"four_stem_parameters({name!r})")
    return "the parameters of four stems, per family"


@_check_08_2.solution
def _solve_08_2():
    from mssbook import models

    def four_stem_parameters(name):
        targets = ("vocals", "drums", "bass", "other")
        if name == "xumx":  # one network, the four targets bridged
            return models.create(name, preset="paper", target=targets).num_parameters()
        return sum(models.create(name, preset="paper", target=t).num_parameters() for t in targets)

    return four_stem_parameters


# ----------------------------------------------------------------------------------------------
# 08.3 A paired comparison, song by song
# ----------------------------------------------------------------------------------------------


def _paired(a, b):
    songs = sorted(set(a) & set(b))
    differences = np.array([a[s] - b[s] for s in songs], dtype=np.float64)
    keep = np.isfinite(differences)
    return int(np.sum(differences[keep] > 0)), float(np.median(differences[keep]))


def _paired_cases():
    rng = np.random.default_rng(3)
    cases = []
    for n, shift in ((6, 0.4), (9, -0.2)):
        songs = [f"song {k}" for k in range(n)]
        base = rng.normal(3.0, 2.5, size=n)  # songs differ far more than the systems
        a = {s: float(v + shift + rng.normal(0, 0.5)) for s, v in zip(songs, base)}
        b = {s: float(v) for s, v in zip(songs, base)}
        b = dict(reversed(list(b.items())))  # the same songs in another order
        cases.append((a, b))
    a, b = cases[0]
    a = {**a, "song 0": float("nan")}  # a song without a valid frame: left out
    cases.append((a, b))
    return cases


@exercise(
    "08.3",
    "Song by song",
    """
    Two boxes that overlap do not tell which system is better: the songs differ more than the
    systems. Write `paired(a, b)` that takes two dicts `{song: SDR}` (the per-song medians of two
    systems, e.g. from `results[label].per_track`, not necessarily in the same order) and returns
    `(wins, median_difference)`: on how many songs `a` beats `b`, and the median over songs of
    `a[song] - b[song]`. Songs where either value is NaN are left out. Apply it to two trained
    models of section 3: does the difference of their medians tell the same story?
    """,
    hint="""
    Match the songs by name, not by position. The median of the differences is not the
    difference of the medians.
    """,
    answer="a function `paired(a, b)` returning a pair `(int, float)`",
    notes="""
    A paired comparison removes what the songs have in common (how hard each one is): a system
    that wins on five of six songs by a fraction of a dB can still have a box that overlaps the
    other's entirely. With six songs a 6-0 or 0-6 split is the only one a sign test would call
    unlikely under chance (2 × 1/64 ≈ 3 %); more songs, or several training seeds, are needed
    before a small gap means anything.
    """,
    wrong_answers=(
        lambda: (lambda a, b: (sum(x > y for x, y in zip(a.values(), b.values())),
                               float(np.nanmedian([x - y for x, y in zip(a.values(), b.values())])))),  # by position
        lambda: (lambda a, b: (sum(a[s] > b[s] for s in a if np.isfinite(a[s])),
                               float(np.nanmedian(list(a.values())) - np.nanmedian(list(b.values()))))),  # medians
    ),
)
def _check_08_3(answer):
    function = expect_callable(answer, "paired")
    for k, (a, b) in enumerate(_paired_cases()):
        got = function(dict(a), dict(b))
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Wrong(f"case {k + 1}: return a pair (wins, median_difference), got {got!r}")
        wins, median = _paired(a, b)
        expect_int(got[0], wins, f"case {k + 1}: the songs a wins")
        expect_close(got[1], median, f"case {k + 1}: the median difference", rtol=1e-9, atol=1e-9)
    return "songs matched by name, NaN left out, the median of the differences"


@_check_08_3.solution
def _solve_08_3():
    def paired(a, b):
        songs = sorted(set(a) & set(b))
        differences = np.array([a[s] - b[s] for s in songs], dtype=float)
        differences = differences[np.isfinite(differences)]  # a NaN on either side: left out
        return int((differences > 0).sum()), float(np.median(differences))

    return paired
