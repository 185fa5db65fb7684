"""Exercises of chapter 02 (Open-Unmix: the model, training, the Wiener filter, evaluation)."""

from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np
import torch

from . import Wrong, exercise, expect_callable, expect_close, expect_close_each, expect_int, expect_keys

SOURCES = ("vocals", "drums", "bass", "other")


# ---------------------------------------------------------------------------------------------
_STEP_CASES = ((16, 16, 4, 12), (16, 64, 16, 10), (10, 7, 4, 3), (3, 5, 8, 2), (86, 64, 16, 1))


def _steps(n_tracks, samples_per_track, batch_size, epochs) -> int:
    return epochs * ((n_tracks * samples_per_track) // batch_size)  # the loader drops the last partial batch


@exercise(
    "02.1", "Longer training",
    statement="""
        Double `time_budget` and `epochs` and train again (keep `seed`, use a new `run_dir`). How do
        the learning curve and the test SDR change? Where does the gain flatten out? To read the
        curves against the amount of training, write `n_steps(n_tracks, samples_per_track,
        batch_size, epochs)`: the number of optimiser steps `train_model` takes when the time budget
        does not stop it first (an epoch holds `samples_per_track` excerpts of every track).
    """,
    hint="Keep `seed`, so only the amount of training changes. The trainer's loader drops the last, "
         "incomplete batch of every epoch (`drop_last=True`).",
    answer="a function `n_steps(n_tracks, samples_per_track, batch_size, epochs) -> int`",
    notes="""
        An epoch is `n_tracks × samples_per_track` excerpts, in `floor(n_tracks × samples_per_track /
        batch_size)` batches: the last partial batch is dropped so that batch norm never sees a
        batch of one. Doubling `epochs` doubles the steps only when the time budget allows them;
        read `history.json`'s epochs and seconds to see which limit stopped the run. The validation
        loss falls quickly at first and then flattens out; with 16 short toy songs it can rise again
        while the training loss keeps falling (the model starts memorising), which is where early
        stopping (`patience`) keeps the best epoch. Plot both runs' curves against steps, not epochs.
    """,
    wrong_answers=(
        lambda: (lambda n, s, b, e: e * -(-(n * s) // b)),  # ceil: the last batch counted
        lambda: (lambda n, s, b, e: e * (s // b)),  # one track only
        lambda: (lambda n, s, b, e: (e - 1) * ((n * s) // b)),  # off by one epoch
    ),
)
def _check_steps(answer):
    f = expect_callable(answer, "n_steps")
    for case in _STEP_CASES:
        got = f(*case)
        expect_int(got, _steps(*case), f"n_steps{case}")
    return f"right on {len(_STEP_CASES)} cases"


@_check_steps.solution
def _solve_steps():
    def n_steps(n_tracks, samples_per_track, batch_size, epochs):
        batches_per_epoch = (n_tracks * samples_per_track) // batch_size  # drop_last=True
        return epochs * batches_per_epoch

    return n_steps


# ---------------------------------------------------------------------------------------------
_MIX_CASES = ((16, 4, True, True), (16, 4, False, False), (16, 4, True, False), (16, 4, False, True),
              (5, 2, True, True), (3, 3, False, True), (1, 4, True, True))


def _mixtures(n_tracks, n_sources, random_track_mix, channelswap) -> int:
    tracks = n_tracks ** n_sources if random_track_mix else n_tracks
    return tracks * (2 ** n_sources if channelswap else 1)


@exercise(
    "02.2", "No augmentation",
    statement="""
        Build the datasets with `DataConfig(..., source_augmentations=(), random_track_mix=False)` and
        train again with the same budget; compare validation loss and test SDR with the augmented
        run. To see why it matters, count what the sampler can draw: write `n_mixtures(n_tracks,
        n_sources, random_track_mix, channelswap)`, the number of different mixtures it can build
        from whole tracks, ignoring excerpt positions and gains (each source comes from any track
        under `random_track_mix`, else all from the same track; `channelswap` swaps each source's
        channels or not).
    """,
    hint="With random track mixing every source picks its track independently; the channel swap is "
         "drawn for each source too. With 16 short songs, augmentation is what keeps the model from "
         "memorising them.",
    answer="a function `n_mixtures(n_tracks, n_sources, random_track_mix, channelswap) -> int`",
    notes="""
        Without augmentation the model sees 16 mixtures (at many offsets); with random track mixing
        and channel swaps, `16⁴ × 2⁴ = 1,048,576` combinations of tracks and channel orders, before
        counting offsets and gains. Without them, a long enough run memorises the 16 songs: the
        training loss keeps falling while the validation loss stalls. Over a short budget the two
        runs can be level; compare them on the test songs, not on the training loss.

        ```python
        plain = models.create("umx", preset=preset, target=target)
        plain_data = DataConfig(root=str(root), seq_dur=seq_dur, samples_per_track=samples_per_track, seed=seed,
                                source_augmentations=(), random_track_mix=False)
        plain_trainer = train_model(plain, plain_data, TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr,
                                    time_budget=time_budget, seed=seed), output=run_dir / "plain")
        print([round(h["valid_loss"], 3) for h in plain_trainer.history])
        ```
    """,
    wrong_answers=(
        lambda: (lambda n, s, mix, swap: (n * s if mix else n) * (2 ** s if swap else 1)),  # adds instead of multiplying
        lambda: (lambda n, s, mix, swap: (n ** s if mix else n) * (2 if swap else 1)),  # one swap for the mixture
        lambda: (lambda n, s, mix, swap: (n ** (s - 1) if mix else n) * (2 ** s if swap else 1)),  # off by one source
    ),
)
def _check_mixtures(answer):
    f = expect_callable(answer, "n_mixtures")
    for case in _MIX_CASES:
        expect_int(f(*case), _mixtures(*case), f"n_mixtures{case}")
    return f"right on {len(_MIX_CASES)} cases"


@_check_mixtures.solution
def _solve_mixtures():
    def n_mixtures(n_tracks, n_sources, random_track_mix, channelswap):
        track_choices = n_tracks ** n_sources if random_track_mix else n_tracks  # one track each, or one for all
        channel_orders = 2 ** n_sources if channelswap else 1  # each source swapped or not
        return track_choices * channel_orders

    print(n_mixtures(16, 4, True, True), "vs", n_mixtures(16, 4, False, False))
    return n_mixtures


# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _song() -> dict[str, np.ndarray]:
    from ..data.toy import plan_song, render_song

    return {k: v.astype(np.float64) for k, v in render_song(plan_song(4, 3.0), sample_rate=22050).items()}


def exercise_song() -> dict[str, np.ndarray]:
    """The toy song of chapter 02's exercises: ``{source: (2, samples) float64}``, 3 s of
    ``plan_song(4, 3.0)`` rendered at 22.05 kHz (a copy)."""
    return {k: v.copy() for k, v in _song().items()}


def _baselines(swap: bool = False) -> dict[str, float]:
    from ..metrics import usdr

    stems = _song()
    mixture = sum(stems.values())
    mixes = {k: mixture for k in SOURCES}
    return usdr(mixes, stems) if swap else usdr(stems, mixes)


@exercise(
    "02.3", "Another target",
    statement="""
        Train a drums model (`target = "drums"`). Which target is easier on toy songs, judging by the
        improvement over the mixture? An improvement needs the baseline of every target: hand in the
        uSDR (`mssbook.metrics.usdr`) of the mixture used as the estimate of each of the four stems
        of the exercise song (`stems = exercise_song()` from `mssbook.exercises.ch02`).
    """,
    hint="The mixture baseline differs per target: compare improvements, not raw SDRs. `usdr(references, "
         "estimates)` takes the true stems first.",
    answer="a dict `{target: dB}` for vocals, drums, bass and other",
    notes="""
        The mixture as an estimate of a stem scores the stem's energy against the energy of all the
        others: a loud stem starts high, a quiet one far below 0 dB. A drums model that reaches the
        same SDR as a vocals model has therefore done more or less work depending on the two
        baselines: compare `SDR(model) − SDR(mixture)` per target. In the chapter, replace
        `target = "vocals"` by `"drums"` in the parameters cell and read both rows of the table.
    """,
    wrong_answers=(
        lambda: _baselines(swap=True),  # references and estimates swapped
        lambda: {k: -v for k, v in _baselines().items()},
    ),
)
def _check_baselines(answer):
    want = _baselines()
    expect_close_each(answer, {k: want[k] for k in SOURCES}, "the mixture's uSDR for {key}", rtol=0, atol=0.01)
    return "the four baselines are right (within 0.01 dB)"


@_check_baselines.solution
def _solve_baselines():
    from mssbook.exercises.ch02 import exercise_song
    from mssbook.metrics import usdr

    stems = exercise_song()
    mixture = sum(stems.values())
    return usdr(stems, {target: mixture for target in stems})


# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _wide_minus_cropped() -> int:
    from .. import models

    base = models.create("umx", preset="tutorial", target="vocals")
    wide = models.create("umx", preset="tutorial", target="vocals", bandwidth=None)
    return wide.num_parameters() - base.num_parameters()


@exercise(
    "02.4", "Without the 16 kHz crop",
    statement="""
        Create the tutorial model with `bandwidth=None` (all 2049 bins enter the network). How many
        parameters more than the cropped tutorial model does it have? Does it separate better (train
        it to see)?
    """,
    hint="Everything that touches the cropped bins grows: fc1's weights (`2 × max_bin × hidden_size` "
         "for stereo) and the input scaling vectors (`input_mean`, `input_scale`, one value per "
         "cropped bin). The output layer already covers all 2049 bins.",
    answer="an int (the difference in parameters)",
    notes="""
        ```python
        wide = models.create("umx", preset=preset, target=target, bandwidth=None)
        print(wide.num_parameters() - model.num_parameters())
        ```
        fc1 grows by `2 × 562 × 128` weights and the input scaling vectors by `2 × 562` values
        (`2049 − 1487 = 562` more bins). The bins above 16 kHz carry little vocal energy in the toy
        songs, so expect no real gain, only a slower first layer: the reason Open-Unmix crops.
    """,
    wrong_answers=(
        lambda: 2 * (2049 - 1487) * 128,  # fc1 only
        lambda: 2 * (2049 - 1487) * 128 + (2049 - 1487),  # one scaling vector
        lambda: 2 * (2049 - 1486) * 128 + 2 * (2049 - 1486),  # off by one bin
    ),
)
def _check_wide(answer):
    if hasattr(answer, "num_parameters"):
        raise Wrong("hand in the difference in parameters (an int), not the model")
    return expect_int(answer, _wide_minus_cropped(), "the extra parameters")


@_check_wide.solution
def _solve_wide():
    from mssbook import models

    model = models.create("umx", preset="tutorial", target="vocals")
    wide = models.create("umx", preset="tutorial", target="vocals", bandwidth=None)
    return wide.num_parameters() - model.num_parameters()


# ---------------------------------------------------------------------------------------------
def _branch(model) -> torch.nn.Module:
    branches = getattr(model, "target_models", None)
    if branches is not None:
        if "vocals" not in branches:
            raise Wrong(f"expected a vocals model, got the targets {list(branches)}")
        return branches["vocals"]
    if isinstance(model, torch.nn.Module) and hasattr(model, "lstm"):
        return model
    raise Wrong(f"expected an Open-Unmix model (models.create('umx', ...)), got {type(model).__name__}")


def _future_leak(net: torch.nn.Module) -> float:
    """How much the outputs of the first half of the frames change when only the second half changes."""
    net = copy.deepcopy(net).eval()
    nb_bins = net.nb_output_bins
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, net.nb_channels, nb_bins, 12, generator=g)
    y = x.clone()
    y[..., 6:] = torch.rand(1, net.nb_channels, nb_bins, 6, generator=g)
    with torch.no_grad():
        a, b = net(x), net(y)
    return float((a[..., :6] - b[..., :6]).abs().max())


@lru_cache(maxsize=None)
def _tutorial_sizes() -> tuple[int, int]:
    """Parameters of the tutorial vocals model, causal and bidirectional."""
    from .. import models

    return tuple(models.create("umx", preset="tutorial", target="vocals", unidirectional=u).num_parameters()
                 for u in (True, False))


@exercise(
    "02.5", "Frames of context",
    statement="""
        The BiLSTM sees the whole excerpt, future frames included. Build a causal tutorial model for
        vocals (`unidirectional=True`, usable in real time), train it with the same budget and
        compare its test SDR with the bidirectional one. Hand in the model (trained or not): the
        checker verifies that no output frame depends on a later input frame.
    """,
    hint="`models.create(\"umx\", preset=\"tutorial\", target=\"vocals\", ...)` with one more option; "
         "the LSTM then runs forwards only, with `hidden_size` units instead of two directions of "
         "`hidden_size / 2`. Everything else in Open-Unmix works frame by frame.",
    answer="a model (`models.create(\"umx\", ...)`)",
    notes="""
        ```python
        causal = models.create("umx", preset=preset, target=target, unidirectional=True)
        train_model(causal, data, TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr,
                    time_budget=time_budget, seed=seed), output=run_dir / "causal")
        ```
        Every layer of Open-Unmix except the LSTM works on one frame at a time (fc1, batch norm in
        eval mode, fc2, fc3, the mask), so a forward-only LSTM makes the whole network causal: an
        output frame depends only on the frames up to it. The unidirectional LSTM has more
        parameters (one direction of 128 units instead of two of 64), yet it usually separates
        somewhat worse: it cannot hear where a note or a phrase is going. (The separator's Wiener
        filter and a centred STFT still look a little ahead.)
    """,
    wrong_answers=(
        lambda: _create(unidirectional=False),  # the bidirectional model
        lambda: _create(unidirectional=True, target="drums"),  # another target
        lambda: _create(unidirectional=True, preset="paper"),  # not the tutorial size
    ),
)
def _check_causal(answer):
    net = _branch(answer)
    size = answer.num_parameters() if hasattr(answer, "num_parameters") else sum(p.numel() for p in net.parameters())
    if size not in _tutorial_sizes():
        raise Wrong("not the tutorial size: build it with preset='tutorial'")
    if _future_leak(net) > 1e-6:
        raise Wrong("the output of an early frame changes when only later frames of the input change: "
                    "the model is not causal")
    return "causal: early output frames ignore later input frames"


def _create(**options):
    from .. import models

    config = {"preset": "tutorial", "target": "vocals", **options}
    return models.create("umx", **config)


@_check_causal.solution
def _solve_causal():
    from mssbook import models

    return models.create("umx", preset="tutorial", target="vocals", unidirectional=True)
