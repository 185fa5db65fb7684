"""Exercises of chapter 04 (D3Net): receptive fields, dilations, band splits, improvements, channel swap."""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch

from . import Wrong, exercise, expect_callable, expect_close, expect_int

# ----------------------------------------------------------------------------------------------
# 04.1 The receptive field of the bottleneck D2 block
# ----------------------------------------------------------------------------------------------


def _block_field(block) -> int:
    """Positions (along one axis) that the last layer of a MultidilatedD2Block sees, from its own
    convolutions: layers[i] reads x_i with dilation d_i and feeds layers i+1 … L."""
    dilations = [layer.conv.dilation[0] for layer in block.layers]
    k = block.layers[0].conv.kernel_size[0]
    n_layers = len(dilations)
    radius = sum(d * (k // 2) for d in dilations) + 1
    fields = np.zeros((n_layers + 1, 2 * radius + 1), dtype=bool)
    fields[0, radius] = True
    for j in range(1, n_layers + 1):
        for i in range(j):
            for tap in range(-(k // 2), k // 2 + 1):
                fields[j] |= np.roll(fields[i], tap * dilations[i])
    return int(fields[-1].sum())


def _bottleneck():
    from ..models.d3net import MultidilatedD2Block, network_config

    layers = network_config("vocals")["full_layers"]
    n_down = len(layers) // 2  # each level before the bottleneck halves the resolution
    block = MultidilatedD2Block(c_in=1, growth=1, n_layers=layers[n_down])
    return block, 2**n_down


@exercise(
    "04.1",
    "Receptive fields of the paper network",
    """
    The bottleneck of the paper's full-band U-Net (`network_config("vocals")["full_layers"]`, the
    middle entry) is a multidilated D2 block of L = 8 layers, working four down-samplings below the
    input, at 1/16 of its resolution. How many positions (frames, at the bottleneck's resolution)
    does its last layer see along time, and about how many **input** frames is that (16 times as
    many)? Use `receptive_fields` of section 1, or reason layer by layer.
    """,
    hint="""
    Layer j of a multidilated block reads the output of layer i with dilation 2^i; with 3-tap
    convolutions the field after L layers is 2^(L+1) − 1, not the 2L + 1 of a plain block.
    `MultidilatedD2Block(1, 1, 8).layers[i].conv.dilation` shows the dilations.
    """,
    answer="a pair of ints `(positions at the bottleneck, input frames)`",
    notes="""
    With L8 = max(config["full_layers"]) = 8 the last layer sees 2^9 − 1 = 511 positions at 1/16
    resolution, about 16 × 511 = 8,176 input frames (the down-sampling adds a little more):
    far more than the 256-frame patch, so the bottleneck sees the whole patch. A plain dense block
    of 8 layers would see 17 positions, about 272 frames.

    ```python
    L8 = max(config["full_layers"])                       # 8, at the bottleneck, 4 levels down
    fields, views = receptive_fields(DESIGNS["multidilated (input i: d = 2^i)"], L8, 2 ** (L8 + 1))
    print(fields[-1].sum(), "positions at 1/16 resolution, about", 16 * fields[-1].sum(), "input frames")
    ```
    """,
    wrong_answers=(
        lambda: (17, 272),  # a plain dense block: 2L + 1
        lambda: (255, 4080),  # one layer too few
        lambda: (511, 511),  # not converted to input frames
        lambda: (511, 8192),  # 16 · 2^9: the span, not the positions
    ),
)
def _check_04_1(answer):
    block, factor = _bottleneck()
    positions = _block_field(block)
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong("hand in a pair (positions at the bottleneck, input frames)")
    expect_int(answer[0], positions, "positions at the bottleneck's resolution")
    expect_int(answer[1], factor * positions, "input frames (each bottleneck position stands for 16 frames)")
    return "511 positions of the bottleneck cover about 8,176 input frames"


@_check_04_1.solution
def _solve_04_1():
    from mssbook.models.d3net import MultidilatedD2Block, network_config

    layers = network_config("vocals")["full_layers"]
    L8 = max(layers)  # the bottleneck: 8 layers, 4 down-samplings below the input
    block = MultidilatedD2Block(c_in=1, growth=1, n_layers=L8)
    # what layer j sees: the union over its inputs x_i of x_i's field widened by 3 taps, dilation 2^i
    radius = 2 ** (L8 + 1)
    fields = [{0}]
    for j in range(1, L8 + 1):
        seen = set()
        for i in range(j):
            d = block.layers[i].conv.dilation[0]
            seen |= {p + t * d for p in fields[i] for t in (-1, 0, 1) if abs(p + t * d) <= radius}
        fields.append(seen)
    positions = len(fields[-1])
    return positions, 2 ** (len(layers) // 2) * positions


# ----------------------------------------------------------------------------------------------
# 04.2 No multidilation
# ----------------------------------------------------------------------------------------------


def _plain_reference(block):
    plain = copy.deepcopy(block)
    for layer in plain.layers:
        layer.conv.dilation, layer.conv.padding = (1, 1), (1, 1)
    return plain


def _grad_field(block, size: int = 65) -> int:
    """Frames that the centre output of ``block`` depends on, by a gradient (positive weights)."""
    block = copy.deepcopy(block).eval()
    with torch.no_grad():
        for layer in block.layers:
            layer.conv.weight.fill_(1.0)
            layer.conv.bias.zero_()
    x = torch.ones(1, block.layers[0].norm.num_features, size, size, requires_grad=True)
    block(x)[0, :, size // 2, size // 2].sum().backward()
    return int((x.grad[0].sum(0)[:, size // 2] > 0).sum())


@exercise(
    "04.2",
    "No multidilation",
    """
    Write a function `plain(block)` that takes a `MultidilatedD2Block` and returns a **new** block
    with the same weights in which every convolution has dilation 1 (as `plain` in section 1),
    leaving the block it was given unchanged and keeping the output's shape. Applied to every D2
    block of the trained model (`model.modules()`), it lets you evaluate the model without
    multidilation; train a model that way from the start and compare the two.
    """,
    hint="""
    `copy.deepcopy` first; a 3×3 convolution keeps the size with padding equal to its dilation,
    so set `layer.conv.dilation` and `layer.conv.padding` together.
    """,
    answer="a function `plain(block)` returning a new `MultidilatedD2Block`",
    notes="""
    ```python
    for module in model.modules():
        if isinstance(module, MultidilatedD2Block):
            for layer in module.layers[1:]:
                layer.conv.dilation, layer.conv.padding = (1, 1), (1, 1)
    ```
    The trained weights were learned for dilated inputs, so the model without dilation separates
    worse at once (its layers now read neighbours they never saw together). A model trained plain
    from the start has the same number of parameters, but its bottleneck sees 2L + 1 positions
    instead of 2^(L+1) − 1. Compare the three numbers (trained dilated, dilation removed after
    training, trained plain) with the mixture's score, and against the song-to-song spread.
    """,
    wrong_answers=(
        lambda: copy.deepcopy,  # a copy, still dilated
        lambda: _in_place,  # the given block changed
        lambda: _dilation_only,  # padding left as it was: the shapes change
    ),
)
def _check_04_2(answer):
    from ..models.d3net import MultidilatedD2Block

    function = expect_callable(answer, "plain")
    for n_layers in (2, 3, 5):
        with torch.random.fork_rng():
            torch.manual_seed(n_layers)
            block = MultidilatedD2Block(c_in=3, growth=2, n_layers=n_layers).eval()
        before = copy.deepcopy(block.state_dict())
        dilations = [u.conv.dilation for u in block.layers]
        result = function(block)
        case = f"a block of {n_layers} layers"
        if not isinstance(result, MultidilatedD2Block):
            raise Wrong(f"{case}: expected a MultidilatedD2Block back, got {type(result).__name__}")
        if result is block or [u.conv.dilation for u in block.layers] != dilations:
            raise Wrong(f"{case}: the block you were given was changed; work on a copy")
        if any(u.conv.dilation != (1, 1) for u in result.layers):
            raise Wrong(f"{case}: some convolutions still have a dilation other than 1")
        state = result.state_dict()
        if state.keys() != before.keys() or any(not torch.equal(state[k], before[k]) for k in before):
            raise Wrong(f"{case}: the weights differ from the block's; keep them")
        x = torch.randn(2, 3, 16, 12, generator=torch.Generator().manual_seed(n_layers))
        with torch.no_grad():
            want = _plain_reference(block).eval()(x)
            try:
                got = result.eval()(x)
            except RuntimeError as exc:
                raise Wrong(f"{case}: the new block fails on a (2, 3, 16, 12) input ({exc})") from None
        if got.shape != want.shape:
            raise Wrong(f"{case}: output shape {tuple(got.shape)} for a (2, 3, 16, 12) input; the size must stay "
                        f"{tuple(want.shape)} (look at the padding)")
        if not torch.allclose(got, want, atol=1e-5):
            raise Wrong(f"{case}: the outputs are not those of the block with every dilation set to 1")
        if _grad_field(result) != 2 * n_layers + 1:
            raise Wrong(f"{case}: the receptive field is not that of a plain dense block")
    return "every dilation is 1, the weights and shapes are kept: a plain dense block (2L + 1 frames)"


def _dilation_only(block):
    block = copy.deepcopy(block)
    for layer in block.layers:
        layer.conv.dilation = (1, 1)
    return block


def _in_place(block):
    for layer in block.layers:
        layer.conv.dilation, layer.conv.padding = (1, 1), (1, 1)
    return block


@_check_04_2.solution
def _solve_04_2():
    import copy

    def plain(block):
        block = copy.deepcopy(block)
        for layer in block.layers:
            layer.conv.dilation, layer.conv.padding = (1, 1), (1, 1)  # 3×3 keeps the size with padding 1
        return block

    return plain


# ----------------------------------------------------------------------------------------------
# 04.3 Another split
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _valid_splits(preset: str, target: str) -> list[int]:
    from .. import models

    with torch.device("meta"):
        net = models.create("d3net", preset=preset, target=target).target_models[target]
    units = [2**band.n_down for band in net.band_nets]
    return [s for s in range(1, net.valid_bins) if s % units[0] == 0 and (net.valid_bins - s) % units[1] == 0]


_SPLIT_CASES = (("paper", "vocals"), ("paper", "bass"), ("tutorial", "vocals"))


@exercise(
    "04.3",
    "Another split",
    """
    D3Net splits the bins below `valid_bins` (1600) into a low and a high band at `band_splits`,
    each with its own U-Net. Write a function `valid_splits(preset, target)` that returns, in
    increasing order, every single split `s` (1 ≤ s < 1600) with which the model builds:
    `models.create("d3net", preset=preset, target=target, network=dict(base, band_splits=[s]))`,
    where `base = models.presets("d3net")[preset].get("network") or {}` (the paper preset takes
    each target's own network). Then train the tutorial model with `band_splits=[128]`: does the
    vocals score change?
    """,
    hint="""
    Each band's width must divide by 2 to the power of its U-Net's down-samplings:
    `model.target_models[target].band_nets[b].n_down`, and the high band ends at `valid_bins`.
    Build the model once (on the `meta` device) to read them instead of trying 1599 splits.
    """,
    answer="a function `valid_splits(preset, target)` returning a list of ints",
    notes="""
    For the paper vocals network the low-band U-Net down-samples 3 times and the high band twice:
    the split must be a multiple of 8 (and 1600 − s of 4). The tutorial's U-Nets down-sample once,
    so any even split works, and its parameter count does not depend on the split (convolutions
    share their weights along frequency). With `band_splits=[128]` the low band keeps less of the
    voice's fundamental and first harmonics in its own U-Net. Whether the score moves by more
    than the song-to-song spread is what the run tells you; one run on six songs decides little.
    """,
    wrong_answers=(
        lambda: (lambda preset, target: list(range(8, 1600, 8))),  # the paper vocals' rule for every case
        lambda: (lambda preset, target: list(range(2, 1600, 2))),  # the tutorial's rule for every case
        lambda: (lambda preset, target: [s for s in _valid_splits(preset, target)] + [1600]),  # includes 1600
    ),
)
def _check_04_3(answer):
    function = expect_callable(answer, "valid_splits")
    for preset, target in _SPLIT_CASES:
        want = _valid_splits(preset, target)
        got = function(preset, target)
        case = f"valid_splits({preset!r}, {target!r})"
        try:
            got = [int(s) for s in got]
        except (TypeError, ValueError):
            raise Wrong(f"{case}: expected a list of ints, got {type(got).__name__}") from None
        if got != sorted(set(got)):
            raise Wrong(f"{case}: the splits must be increasing, each once")
        extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
        if extra:
            raise Wrong(f"{case}: {len(extra)} of your splits do not build, e.g. {extra[0]}")
        if missing:
            raise Wrong(f"{case}: {len(missing)} valid splits are missing, e.g. {missing[0]}")
    return "the band widths divide by 2^n_down of their U-Nets: " + ", ".join(
        f"{p}/{t} {len(_valid_splits(p, t))} splits" for p, t in _SPLIT_CASES)


@_check_04_3.solution
def _solve_04_3():
    import torch

    from mssbook import models

    def valid_splits(preset, target):
        with torch.device("meta"):  # shapes only
            net = models.create("d3net", preset=preset, target=target).target_models[target]
        low, high = (2**band.n_down for band in net.band_nets)  # each U-Net halves its band n_down times
        return [s for s in range(1, net.valid_bins) if s % low == 0 and (net.valid_bins - s) % high == 0]

    return valid_splits


# ----------------------------------------------------------------------------------------------
# 04.4 Longer training: compare improvements, not raw SDRs
# ----------------------------------------------------------------------------------------------


def _improvement(reference, estimate, mixture, sr):
    from ..metrics import csdr

    return csdr({"vocals": reference}, {"vocals": estimate}, sr)["vocals"] - \
        csdr({"vocals": reference}, {"vocals": mixture}, sr)["vocals"]


def _improvement_cases():
    rng = np.random.default_rng(4)
    sr = 8000
    cases = []
    for k, (noise, leak) in enumerate(((0.1, 0.2), (0.5, 0.0), (0.02, 0.6))):
        t = np.arange(4 * sr) / sr
        vocals = np.stack([np.sin(2 * np.pi * (220 + 30 * k) * t), 0.8 * np.sin(2 * np.pi * (330 + 20 * k) * t)])
        vocals *= (1 + np.sin(2 * np.pi * 0.5 * t)) / 2  # a swelling voice: the frames' SDRs differ
        accompaniment = rng.standard_normal((2, t.size)) * (0.3 + 0.2 * k)
        mixture = vocals + accompaniment
        burst = np.where(t < 1.0, 8.0, 1.0)  # one bad second: the median of frames ignores it, a global SDR not
        estimate = vocals + leak * accompaniment + noise * burst * rng.standard_normal((2, t.size))
        cases.append((vocals.astype(np.float32), estimate.astype(np.float32), mixture.astype(np.float32), sr))
    return cases


@exercise(
    "04.4",
    "Longer training",
    """
    Doubling `time_budget` and `epochs` for both models raises both scores; to say which model
    gains more, compare each one's **improvement over the mixture**. Write a function
    `improvement(reference, estimate, mixture, sr)` that returns, in dB, the vocals cSDR (median
    over 1 s frames, `mssbook.metrics.csdr`) of `estimate` minus that of the mixture itself, for
    arrays of shape (channels, samples). Then rerun the chapter with the doubled budget (a new
    `run_dir`) and compare the two models' improvements.
    """,
    hint="""
    `csdr({"vocals": reference}, {"vocals": estimate}, sr)["vocals"]`, once for the estimate and
    once with the mixture as the estimate.
    """,
    answer="a function `improvement(reference, estimate, mixture, sr)` returning a float in dB",
    notes="""
    ```python
    improvement = sdr["D3Net"] - sdr["mixture"]      # and the same for UMX
    ```
    The raw SDR mixes two things: how hard the songs are (the mixture's own SDR) and what the
    model adds. The improvement removes the first. Which model gains more from the extra minute
    depends on how far from convergence each was: look at their loss curves at the end of the
    default budget, and at the steps each manages per second. One run on six songs is one
    sample: the gap must exceed the song-to-song spread.
    """,
    wrong_answers=(
        lambda: _raw_sdr,  # the estimate's SDR, not its improvement
        lambda: (lambda reference, estimate, mixture, sr: _usdr_gain(reference, estimate, mixture)),  # uSDR
        lambda: (lambda reference, estimate, mixture, sr: -_improvement(reference, estimate, mixture, sr)),
    ),
)
def _check_04_4(answer):
    function = expect_callable(answer, "improvement")
    for k, (reference, estimate, mixture, sr) in enumerate(_improvement_cases()):
        want = _improvement(reference, estimate, mixture, sr)
        got = function(reference.copy(), estimate.copy(), mixture.copy(), sr)
        expect_close(got, want, f"case {k + 1} of 3 (4 s at {sr} Hz, stereo)", rtol=0, atol=0.01)
    return "the improvement over the mixture, in dB, on 3 cases"


def _raw_sdr(reference, estimate, mixture, sr):
    from ..metrics import csdr

    return csdr({"vocals": reference}, {"vocals": estimate}, sr)["vocals"]


def _usdr_gain(reference, estimate, mixture):
    from ..metrics import usdr

    return usdr({"v": reference}, {"v": estimate})["v"] - usdr({"v": reference}, {"v": mixture})["v"]


@_check_04_4.solution
def _solve_04_4():
    from mssbook.metrics import csdr

    def improvement(reference, estimate, mixture, sr):
        model = csdr({"vocals": reference}, {"vocals": estimate}, sr)["vocals"]
        baseline = csdr({"vocals": reference}, {"vocals": mixture}, sr)["vocals"]  # the mixture as the estimate
        return model - baseline

    return improvement


# ----------------------------------------------------------------------------------------------
# 04.5 What the channel swap buys
# ----------------------------------------------------------------------------------------------


def _swap_average(network, patch):
    return 0.5 * (network(patch) + network(patch.flip(1)).flip(1))


def _swap_networks():
    from .. import models

    with torch.random.fork_rng():  # seeded weights, the caller's random state left as it was
        torch.manual_seed(5)
        conv = torch.nn.Conv2d(2, 2, 3, padding=1).eval()  # mixes the channels unequally
        d3 = models.create("d3net", preset="tutorial", target="vocals").target_models["vocals"].eval()
    return [("a 3×3 convolution", conv, torch.rand(3, 2, 8, 10, generator=torch.Generator().manual_seed(1))),
            ("the tutorial D3Net network", d3, torch.rand(1, 2, 2049, 4, generator=torch.Generator().manual_seed(2)))]


@exercise(
    "04.5",
    "What the channel swap buys",
    """
    At inference D3Net runs each patch twice, once with left and right swapped, and averages the
    two predictions (swapped back). Write `swap_average(network, patch)` that does this for a
    network mapping (batch, 2, …) to (batch, 2, …). Then evaluate the trained D3Net with
    `evaluate_tracks(..., channel_swap=False)` (another `output_dir`): how much SDR is lost, and
    how much time is saved?
    """,
    hint="""
    The channels are dimension 1: `patch.flip(1)` swaps them. The swapped prediction must be
    swapped back before it is averaged with the other.
    """,
    answer="a function `swap_average(network, patch)` returning a tensor shaped like the network's output",
    notes="""
    ```python
    both = network(torch.cat([patch, patch.flip(1)], dim=0))       # the library's one-batch form
    pred = 0.5 * (both[:batch] + both[batch:].flip(1))
    ```
    The average is an ensemble of two for the price of a second forward pass: it makes the
    network's output symmetric under a channel swap (swapping the input swaps the output), which
    the true separation is. Without it the network runs once per patch instead of twice (the
    Wiener filter and the STFTs cost the same), and the SDR lost is what the symmetrisation was
    worth: small when the trained network is already close to symmetric.
    """,
    wrong_answers=(
        lambda: (lambda network, patch: 0.5 * (network(patch) + network(patch.flip(1)))),  # not swapped back
        lambda: (lambda network, patch: 0.5 * (network(patch) + network(patch.flip(2)).flip(2))),  # wrong axis
        lambda: (lambda network, patch: network(patch) + network(patch.flip(1)).flip(1)),  # no halving
    ),
)
def _check_04_5(answer):
    function = expect_callable(answer, "swap_average")
    for name, network, patch in _swap_networks():
        with torch.no_grad():
            want = _swap_average(network, patch)
            got = function(network, patch.clone())
            swapped = function(network, patch.flip(1).clone())
        expect_close(got, want, f"{name} on a {tuple(patch.shape)} patch", rtol=1e-4, atol=1e-5)
        expect_close(swapped, want.flip(1), f"{name}: swapping the input must swap the output", rtol=1e-4, atol=1e-5)
    return "the two predictions are averaged, the swapped one swapped back"


@_check_04_5.solution
def _solve_04_5():
    def swap_average(network, patch):
        straight = network(patch)
        swapped = network(patch.flip(1)).flip(1)  # left/right swapped in, swapped back out
        return 0.5 * (straight + swapped)

    return swap_average
