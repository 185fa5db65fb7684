"""Exercises of chapter 05 (U-Nets): the five blocks, fair budgets, seeds, TDF bottleneck, CaC masks."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from . import Wrong, exercise, expect_callable, expect_close, expect_int, expect_keys

BLOCKS = ("tfc_tdf", "tfc", "tdf", "tdc", "tdc_rnn")


@functools.lru_cache(maxsize=None)
def _parameters(block: str, preset: str = "tutorial", **overrides) -> int:
    from .. import models

    with torch.device("meta"):  # shapes only
        return models.create(f"{block}_net", preset=preset, target="vocals", **overrides).num_parameters()


# ----------------------------------------------------------------------------------------------
# 05.1 All five blocks
# ----------------------------------------------------------------------------------------------


@exercise(
    "05.1",
    "All five blocks",
    """
    Before training all five variants (`variants = ("tfc_tdf", "tfc", "tdf", "tdc", "tdc_rnn")`),
    size them up: hand in a dict mapping each block name to the parameter count of its tutorial
    U-Net for vocals (`models.create(f"{block}_net", preset="tutorial", target="vocals")`). Then
    run the chapter with all five: where do TDF and TDC-RNN land, and how many steps does each
    manage in the same time?
    """,
    hint="""
    `model.num_parameters()`; building on `with torch.device("meta"):` is instant. Training costs
    about 45 s more per variant at the default budget (training plus scoring).
    """,
    answer='a dict `{"tfc_tdf": int, "tfc": int, "tdf": int, "tdc": int, "tdc_rnn": int}`',
    notes="""
    ```python
    counts = {block: models.create(f"{block}_net", preset="tutorial", target="vocals").num_parameters()
              for block in ("tfc_tdf", "tfc", "tdf", "tdc", "tdc_rnn")}
    ```
    The TDC net is the smallest and the TDC-RNN the largest (its GRUs along time). Parameters are
    not cost: the TDF and TDC nets never mix frames and halve only frequency, so their feature maps
    stay wide in time, and the GRU runs frame after frame. Compare the `s/step` column of the
    table with these counts, then the scores: with the same seconds, the cheaper steps buy more
    updates.
    """,
    wrong_answers=(
        lambda: {block: _parameters(block, "seed") for block in BLOCKS},  # the seed preset
        lambda: {block: _parameters(block) for block in BLOCKS[:3]},  # not all five
        lambda: {**{block: _parameters(block) for block in BLOCKS}, "tdf": _parameters("tdf") - 1},  # off by one
    ),
)
def _check_05_1(answer):
    expect_keys(answer, BLOCKS, "{block: parameters}")
    extra = sorted(set(answer) - set(BLOCKS))
    if extra:
        raise Wrong(f"unknown block names {extra}; the keys are {', '.join(BLOCKS)}")
    for block in BLOCKS:
        expect_int(answer[block], _parameters(block), f"{block}_net (tutorial)")
    return "the five tutorial U-Nets, smallest to largest: " + ", ".join(
        sorted(BLOCKS, key=_parameters))


@_check_05_1.solution
def _solve_05_1():
    import torch

    from mssbook import models

    with torch.device("meta"):
        return {block: models.create(f"{block}_net", preset="tutorial", target="vocals").num_parameters()
                for block in ("tfc_tdf", "tfc", "tdf", "tdc", "tdc_rnn")}


# ----------------------------------------------------------------------------------------------
# 05.2 Same steps instead of same time
# ----------------------------------------------------------------------------------------------


def _epochs_for(steps, n_tracks, samples_per_track, batch_size):
    per_epoch = n_tracks * samples_per_track // batch_size  # the loader drops the last partial batch
    if per_epoch == 0:
        raise ValueError("an epoch with no full batch")
    return math.ceil(steps / per_epoch)


_EPOCH_CASES = ((200, 20, 1, 4), (200, 22, 1, 4), (150, 20, 3, 8), (64, 86, 1, 16), (1, 20, 1, 4), (1000, 20, 2, 6))


@exercise(
    "05.2",
    "Same steps instead of same time",
    """
    To give every variant the same number of updates, set `time_budget=None` and choose `epochs`.
    The trainer's loader draws `samples_per_track` excerpts from each of the `n_tracks` training
    songs per epoch and **drops the last incomplete batch**. Write
    `epochs_for(steps, n_tracks, samples_per_track, batch_size)`: the fewest epochs that give at
    least `steps` optimiser steps (the chapter: 200 steps on 20 songs, 1 excerpt each, batches of
    4 → 40 epochs). Then train every variant for 200 steps: does the ranking change? Which
    comparison is fairer, and for what question?
    """,
    hint="""
    Steps per epoch = (n_tracks · samples_per_track) // batch_size; then round the number of
    epochs up. `seconds / steps` in the table tells you how long each variant will take.
    """,
    answer="a function `epochs_for(steps, n_tracks, samples_per_track, batch_size)` returning an int",
    notes="""
    ```python
    runs[block] = train_and_evaluate(block, block)   # after time_budget = None, epochs = 40
    ```
    With the same number of steps the comparison asks *which block learns most per update*; with
    the same seconds it asks *which learns most per unit of compute*, which is what a user with a
    fixed machine cares about. The cheap-per-step blocks lose their advantage in the first, the
    expensive ones in the second. Neither says where each block ends after days of training.
    """,
    wrong_answers=(
        lambda: (lambda steps, n_tracks, samples_per_track, batch_size:
                 math.ceil(steps / math.ceil(n_tracks * samples_per_track / batch_size))),  # keeps the last batch
        lambda: (lambda steps, n_tracks, samples_per_track, batch_size:
                 steps // (n_tracks * samples_per_track // batch_size)),  # rounds down
        lambda: (lambda steps, n_tracks, samples_per_track, batch_size:
                 math.ceil(steps / (n_tracks // batch_size))),  # forgets samples_per_track
    ),
)
def _check_05_2(answer):
    function = expect_callable(answer, "epochs_for")
    for steps, n_tracks, spt, batch in _EPOCH_CASES:
        expect_int(function(steps, n_tracks, spt, batch), _epochs_for(steps, n_tracks, spt, batch),
                   f"epochs_for({steps}, {n_tracks}, {spt}, {batch})")
    return f"right on {len(_EPOCH_CASES)} cases"


@_check_05_2.solution
def _solve_05_2():
    import math

    def epochs_for(steps, n_tracks, samples_per_track, batch_size):
        per_epoch = n_tracks * samples_per_track // batch_size  # full batches only (drop_last)
        return math.ceil(steps / per_epoch)

    return epochs_for


# ----------------------------------------------------------------------------------------------
# 05.3 Seeds
# ----------------------------------------------------------------------------------------------


def _seed_spread(scores):
    medians = [float(np.median(np.asarray(v, dtype=np.float64))) for v in scores.values()]
    return float(np.std(medians, ddof=1))


def _seed_cases():
    rng = np.random.default_rng(53)
    cases = []
    for n_seeds, n_songs in ((3, 6), (4, 5), (2, 6)):
        song_level = rng.normal(3.0, 2.5, n_songs)  # some songs are harder: a large song-to-song spread
        cases.append({seed: list(song_level + rng.normal(0.3 * k, 0.4, n_songs))
                      for k, seed in enumerate(range(42, 42 + n_seeds))})
    return cases


@exercise(
    "05.3",
    "Seeds",
    """
    One run per variant is one sample. Train the best variant with three different `seed` values
    (each in its own `run_dir` subfolder). Each run gives per-song SDRs; its score is their median.
    Write `seed_spread(scores)` that takes `{seed: [SDR of song 1, song 2, …]}` and returns the
    sample standard deviation (`ddof=1`) of the runs' scores, the spread due to the seed alone.
    Is the gap between the first and second variant of section 7 larger?
    """,
    hint="""
    First one number per seed (the median over songs), then the spread of those numbers. The
    spread over all songs of all runs measures how different the songs are, not the seeds.
    """,
    answer="a function `seed_spread(scores)` returning a float in dB",
    notes="""
    ```python
    for s in (1, 2, 3):
        seed = s
        runs[f"{best}_seed{s}"] = train_and_evaluate(f"{best}_seed{s}", best)
    scores = {s: [runs[f"{best}_seed{s}"]["table"].per_track[n][target]["SDR"] for n in names] for s in (1, 2, 3)}
    ```
    Keep the two spreads apart: the song-to-song spread (several dB here) says how much one
    song's score tells about another's; the seed-to-seed spread of the median says how much a
    *ranking* of variants can move by chance. A gap between two variants smaller than about two
    seed spreads is not a result; a paired comparison (the same songs, several seeds) is the
    minimum.
    """,
    wrong_answers=(
        lambda: (lambda scores: float(np.std([float(np.median(v)) for v in scores.values()]))),  # ddof 0
        lambda: (lambda scores: float(np.std(np.concatenate([np.asarray(v) for v in scores.values()]), ddof=1))),
        lambda: (lambda scores: float(np.std([float(np.mean(v)) for v in scores.values()], ddof=1))),  # means
    ),
)
def _check_05_3(answer):
    function = expect_callable(answer, "seed_spread")
    for k, scores in enumerate(_seed_cases()):
        got = function({seed: list(v) for seed, v in scores.items()})
        expect_close(got, _seed_spread(scores), f"case {k + 1} of 3 ({len(scores)} seeds, "
                     f"{len(next(iter(scores.values())))} songs)", rtol=1e-6, atol=1e-9)
    return "the spread of the runs' medians: the chance in one ranking"


@_check_05_3.solution
def _solve_05_3():
    import numpy as np

    def seed_spread(scores):
        medians = [np.median(per_song) for per_song in scores.values()]  # one score per run
        return float(np.std(medians, ddof=1))  # sample standard deviation over the seeds

    return seed_spread


# ----------------------------------------------------------------------------------------------
# 05.4 TDF without a bottleneck
# ----------------------------------------------------------------------------------------------


@exercise(
    "05.4",
    "TDF without a bottleneck",
    """
    `models.create("tfc_tdf_net", preset="tutorial", target="vocals", bn_factor=None)` turns every
    TDF into a single Linear F → F instead of F → F/16 → F. How many parameters does this model
    have? Then train it in the same time as the others: how does it compare?
    """,
    hint="""
    `num_parameters()`. Most of them are in the outer levels: 512² per TDF there.
    """,
    answer="an int (the parameter count)",
    notes="""
    ```python
    full = models.create("tfc_tdf_net", preset="tutorial", target="vocals", bn_factor=None)
    print(f"{full.num_parameters():,d}")
    ```
    More than four times the bottlenecked tutorial model: the level-0 TDFs alone hold
    512 × 512 weights each (encoder and decoder). Each step gets slower too; whether the extra
    capacity pays off in half a minute is what the table of section 7 will tell you.
    """,
    wrong_answers=(
        lambda: _parameters("tfc_tdf"),  # the bottlenecked model
        lambda: _parameters("tfc_tdf", bn_factor=None) - 1,  # off by one
        lambda: _parameters("tfc_tdf", preset="seed", bn_factor=None),  # another preset
    ),
)
def _check_05_4(answer):
    full = _parameters("tfc_tdf", bn_factor=None)
    expect_int(answer, full, "parameters of the tutorial TFC-TDF net without bottleneck")
    return f"{full / _parameters('tfc_tdf'):.1f} times the bottlenecked model"


@_check_05_4.solution
def _solve_05_4():
    from mssbook import models

    full = models.create("tfc_tdf_net", preset="tutorial", target="vocals", bn_factor=None)
    return full.num_parameters()


# ----------------------------------------------------------------------------------------------
# 05.5 Masking in CaC
# ----------------------------------------------------------------------------------------------


def _cac_mask(stft, mask):
    from ..signal.transforms import from_complex_channels, to_complex_channels

    return from_complex_channels(mask * to_complex_channels(stft))


def _cac_cases():
    g = torch.Generator().manual_seed(55)
    cases = []
    for shape in ((2, 5, 7), (1, 2, 9, 4)):
        stft = torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))
        mask_shape = shape[:-3] + (2 * shape[-3],) + shape[-2:]
        cases.append((stft, torch.rand(*mask_shape, generator=g) * 1.5))
    return cases


@exercise(
    "05.5",
    "Masking in CaC",
    """
    With `spec_type="complex"` and `spec_est_mode="masking"` the network outputs a real mask per
    complex-as-channels channel, [Re L, Re R, Im L, Im R], multiplied element-wise with the
    mixture's channels. Write `cac_mask(stft, mask)`: for a complex STFT (…, 2, F, T) and a real
    mask (…, 4, F, T) in that order, return the complex estimate (…, 2, F, T). Then train this
    variant (keep `last_activation="identity"`) and compare it with both variants of section 6.
    """,
    hint="""
    `mssbook.signal.transforms.to_complex_channels` / `from_complex_channels`, or by hand:
    `torch.complex(m_re * X.real, m_im * X.imag)` per channel. Think about what a separate mask on
    Re and on Im does to the phase.
    """,
    answer="a function `cac_mask(stft, mask)` returning a complex tensor",
    notes="""
    ```python
    run = train_and_evaluate("tdc_cac_mask", "tdc", spec_type="complex", spec_est_mode="masking")
    ```
    A mask of (m_re, m_im) maps X = a + ib to m_re·a + i·m_im·b: when m_re ≠ m_im it **rotates**
    the phase (and changes the magnitude), so CaC masking can correct the phase where a magnitude
    mask cannot, while starting, like a mask, from a sensible guess (every mask near 1 keeps the
    mixture). It cannot move energy between bins or invent it where the mixture has none; the
    mapping can, at the cost of learning everything from scratch.
    """,
    wrong_answers=(
        lambda: (lambda stft, mask: stft * 0.5 * (mask[..., :2, :, :] + mask[..., 2:, :, :])),  # one real mask
        lambda: (lambda stft, mask: torch.complex(mask[..., 0::2, :, :] * stft.real,
                                                  mask[..., 1::2, :, :] * stft.imag)),  # [Re L, Im L, …] order
        lambda: (lambda stft, mask: torch.complex(mask[..., :2, :, :] * stft.real,
                                                  mask[..., :2, :, :] * stft.imag)),  # the Re mask for both
    ),
)
def _check_05_5(answer):
    function = expect_callable(answer, "cac_mask")
    for stft, mask in _cac_cases():
        got = function(stft.clone(), mask.clone())
        if not torch.is_tensor(got) or not got.is_complex():
            raise Wrong(f"for a {tuple(stft.shape)} STFT: expected a complex tensor, got "
                        f"{type(got).__name__}{'' if not torch.is_tensor(got) else ' ' + str(got.dtype)}")
        want = _cac_mask(stft, mask)
        what = f"STFT {tuple(stft.shape)}, mask {tuple(mask.shape)}"
        expect_close(got.real, want.real, f"{what}: real part", rtol=1e-5, atol=1e-6)
        expect_close(got.imag, want.imag, f"{what}: imaginary part", rtol=1e-5, atol=1e-6)
    return "each real and imaginary channel has its own mask: the phase can turn"


@_check_05_5.solution
def _solve_05_5():
    from mssbook.signal.transforms import from_complex_channels, to_complex_channels

    def cac_mask(stft, mask):
        channels = to_complex_channels(stft)  # (…, 4, F, T): [Re L, Re R, Im L, Im R]
        return from_complex_channels(mask * channels)  # back to complex (…, 2, F, T)

    return cac_mask
