"""Exercises of chapter 07 (Wavenet): the singing-voice recipe, fields, the seed's windows, look-ahead, cost."""

from __future__ import annotations

import functools

import numpy as np
import torch

from . import Wrong, exercise, expect_callable, expect_close, expect_int

# ----------------------------------------------------------------------------------------------
# 07.1 The singing-voice mode
# ----------------------------------------------------------------------------------------------


def _recipe_difference() -> dict:
    from .. import models

    multi = models.training_recipe("wavenet")
    voice = models.training_recipe("wavenet", "singing-voice")
    return {k: v for k, v in voice.items() if k != "targets" and (k not in multi or multi[k] != v)}


@exercise(
    "07.1",
    "The singing-voice mode",
    """
    With `mode = "singing-voice"` the Wavenet has one head (vocals, with the accompaniment as the
    residual) and its recipe changes how fragments are drawn. Hand in a dict of the training
    settings (other than `targets`) in which `models.training_recipe("wavenet", "singing-voice")`
    differs from the multi-instrument recipe `models.training_recipe("wavenet")`, with the
    singing-voice values. Then run the chapter in that mode: does the vocals SDR change for the
    same time budget?
    """,
    hint="""
    Compare the two dicts key by key. For the run, compare the improvement over the mixture, not
    the raw SDR.
    """,
    answer="a dict `{setting: value}`",
    notes="""
    ```python
    voice, multi = models.training_recipe("wavenet", "singing-voice"), models.training_recipe("wavenet")
    print({k: v for k, v in voice.items() if multi.get(k) != v})
    ```
    `fragments="auto"` runs source activity detection on the vocals and `fragment_p=0.5` draws
    half of the fragments from the vocal-active regions (the seed's `extract_voice_percentage`):
    fewer fragments of pure accompaniment, where the vocals head has nothing to learn but silence.
    The singing-voice model also spends its capacity on one head instead of three; whether these
    gains show in a two-minute budget is what the run measures.
    """,
    wrong_answers=(
        lambda: {},  # no difference
        lambda: {"fragments": "auto"},  # one of the two
        lambda: {**_recipe_difference(), "fragment_p": 1.0},  # every fragment from active regions
    ),
)
def _check_07_1(answer):
    if not isinstance(answer, dict):
        raise Wrong(f"expected a dict {{setting: value}}, got {type(answer).__name__}")
    want = _recipe_difference()
    answer = {k: v for k, v in answer.items() if k != "targets"}
    missing = sorted(set(want) - set(answer))
    if missing:
        raise Wrong(f"{len(missing)} setting(s) that differ are missing")
    extra = sorted(set(answer) - set(want))
    if extra:
        raise Wrong(f"these settings are the same in both recipes (or do not exist): {extra}")
    for key, value in want.items():
        if answer[key] != value:
            raise Wrong(f"{key}: {answer[key]!r} is not the singing-voice recipe's value")
    return "half of the fragments come from where the voice sings"


@_check_07_1.solution
def _solve_07_1():
    from mssbook import models

    voice = models.training_recipe("wavenet", "singing-voice")
    multi = models.training_recipe("wavenet")
    return {k: v for k, v in voice.items() if k != "targets" and multi.get(k) != v}


# ----------------------------------------------------------------------------------------------
# 07.2 A wider field
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _geometry(dilations: int) -> tuple[int, int, int]:
    from .. import models

    with torch.device("meta"):
        model = models.create("wavenet", preset="tutorial", target="multi-instrument", dilations=dilations)
    return model.receptive_field_length, model.num_parameters(), model.input_length


@exercise(
    "07.2",
    "A wider field",
    """
    `models.create("wavenet", preset="tutorial", target="multi-instrument", dilations=8)` repeats
    the dilations 1, 2, …, 256 in each stack instead of 1 … 64. Hand in its receptive field (in
    samples), its parameter count and its training fragment length. Then train it with the same
    budget and compare.
    """,
    hint="""
    `receptive_field_length`, `num_parameters()`, `input_length`. The field grows with the
    dilations, the parameters by two blocks per stack only.
    """,
    answer="a triple of ints `(receptive field, parameters, fragment length)`",
    notes="""
    ```python
    wide = models.create("wavenet", preset="tutorial", target=mode, dilations=8)
    print(wide.receptive_field_length, wide.num_parameters(), wide.input_length)
    ```
    2 stacks of dilations 1 … 256: R = 2 · 2 · 511 + 1 = 2045 samples (128 ms), 4 more blocks (two
    per stack, 4,608 parameters each at 24 channels) and fragments of 2045 + 2001 − 1 = 4045
    samples. Each fragment costs more (longer inputs, more blocks), so the same budget gives
    fewer steps; whether 128 ms of context beats 32 ms on the toy songs is what the run tells.
    """,
    wrong_answers=(
        lambda: _geometry(6),  # the tutorial model
        lambda: (_geometry(8)[0] - 1, _geometry(8)[1], _geometry(8)[2] - 1),  # 2 · 2 · 511, off by one
        lambda: (_geometry(8)[0], _geometry(8)[1], _geometry(8)[0] + 2001),  # R + T, not R + T − 1
    ),
)
def _check_07_2(answer):
    if not isinstance(answer, (tuple, list)) or len(answer) != 3:
        raise Wrong("hand in a triple (receptive field, parameters, fragment length)")
    field, parameters, length = _geometry(8)
    expect_int(answer[0], field, "receptive field (samples)")
    expect_int(answer[1], parameters, "parameters")
    expect_int(answer[2], length, "training fragment length (samples)")
    return f"{field / 16000 * 1000:.0f} ms of context at 16 kHz, against {_geometry(6)[0] / 16:.0f} ms for the tutorial"


@_check_07_2.solution
def _solve_07_2():
    from mssbook import models

    wide = models.create("wavenet", preset="tutorial", target="multi-instrument", dilations=8)
    return wide.receptive_field_length, wide.num_parameters(), wide.input_length


# ----------------------------------------------------------------------------------------------
# 07.3 The seed's windows
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _window_case():
    from .. import models

    with torch.random.fork_rng():  # the statement's seeds, without touching the caller's random state
        torch.manual_seed(0)
        model = models.create("wavenet", preset="tutorial", target="multi-instrument").eval()
        T = model.target_field_length
        torch.manual_seed(1)
        mixture = 0.1 * torch.randn(1, 1, 3 * T)
    return model, mixture


@functools.lru_cache(maxsize=1)
def _differing_samples() -> np.ndarray:
    model, mixture = _window_case()
    with torch.no_grad():
        default = model.separate(mixture)[0, 0, 0]
        seed = model.separate(mixture, seed_windows=True)[0, 0, 0]
    return np.flatnonzero((default - seed).abs().numpy() > 1e-5)


@exercise(
    "07.3",
    "The seed's windows",
    """
    Separate with and without `seed_windows=True` and find where the two estimates differ. Make
    it reproducible: `torch.manual_seed(0)`, then `model = models.create("wavenet",
    preset="tutorial", target="multi-instrument").eval()` (untrained); `T =
    model.target_field_length`; `torch.manual_seed(1)`, then `mixture = 0.1 * torch.randn(1, 1,
    3 * T)`. Hand in the sorted sample indices at which the two vocals estimates
    (`model.separate(mixture, ...)[0, 0, 0]`) differ by more than 1e-5. Then do the same on a test
    song with the trained model: by how much do they differ?
    """,
    hint="""
    `np.flatnonzero(np.abs(a - b) > 1e-5)`. Look where the windows meet, every
    `target_field_length` samples, and at the two ends of the signal.
    """,
    answer="an array (or list) of ints: the sample indices",
    notes="""
    The seed cuts windows of exactly R + T − 1 samples, but an output sample depends on more
    (`model.network.exact_receptive_field`: the kernel-3 first conv and head convs read beyond R).
    The network computes one extra output per side (`target_padding`), which absorbs part of it;
    what is left is the head's zero padding of the skip sum at the edges of each window. So the
    estimates differ at the last sample of one window and the first of the next (T − 1 and T,
    2T − 1 and 2T) and at the signal's first and last samples, where the seed's head sees zeros
    in the skip sum instead of the skips of zero input (not zero: the convolutions have biases
    and gates); everywhere else they agree to float precision. The library's default windows add
    `edge_context` samples of context per side, so windowed and one-shot separation agree. On a
    trained model, look at the size of those differences next to the signal: a small error every
    `target_field_length` samples (every 0.125 s for the tutorial's 2001 at 16 kHz).
    """,
    wrong_answers=(
        lambda: np.array([_window_case()[0].target_field_length * k for k in (1, 2)]),  # the joins only
        lambda: _differing_samples() + 1,  # off by one
        lambda: np.arange(3 * _window_case()[0].target_field_length),  # everywhere
    ),
)
def _check_07_3(answer):
    want = _differing_samples()
    try:
        got = np.asarray(answer)
        if got.dtype.kind == "f" and np.all(np.mod(got, 1) == 0):
            got = got.astype(np.int64)
        if got.ndim != 1 or got.dtype.kind not in "iu":
            raise ValueError
    except (TypeError, ValueError):
        raise Wrong("expected a 1-D array or list of whole sample indices") from None
    if not np.array_equal(got, np.unique(got)):
        raise Wrong("the indices must be sorted, each once")
    extra, missing = np.setdiff1d(got, want), np.setdiff1d(want, got)
    if len(extra):
        raise Wrong(f"{len(extra)} of your {len(got)} indices are samples where the estimates agree (e.g. {extra[0]})")
    if len(missing):
        raise Wrong(f"{len(missing)} samples where the estimates differ are missing")
    T = _window_case()[0].target_field_length
    return f"{len(want)} samples: where the windows meet (every T = {T}) and at the two ends"


@_check_07_3.solution
def _solve_07_3():
    import numpy as np
    import torch

    from mssbook import models

    torch.manual_seed(0)
    model = models.create("wavenet", preset="tutorial", target="multi-instrument").eval()
    T = model.target_field_length
    torch.manual_seed(1)
    mixture = 0.1 * torch.randn(1, 1, 3 * T)
    with torch.no_grad():
        default = model.separate(mixture)[0, 0, 0]  # windows with 3 more samples of context per side
        seed = model.separate(mixture, seed_windows=True)[0, 0, 0]  # the seed's R + T - 1 windows
    return np.flatnonzero((default - seed).abs().numpy() > 1e-5)


# ----------------------------------------------------------------------------------------------
# 07.4 How far ahead?
# ----------------------------------------------------------------------------------------------


def _keep(E, k):
    lags = np.arange(E) - E // 2
    return lags <= k


@exercise(
    "07.4",
    "How far ahead?",
    """
    Section 6 probes the trained model with windows of E samples centred on the output sample
    (`lags = np.arange(E) - E // 2`: negative lags are the past, positive the future) and zeroes
    the whole future half. Write `keep(E, k)`: the boolean mask (length E) that keeps the past,
    the present and the first `k` future samples, zeroing only those more than `k` samples ahead.
    Add `keep(E, k)` for k = 4, 16, 64 to the section's `masks`: how much look-ahead does the
    trained model need to keep its SDR?
    """,
    hint="""
    `lags <= k`. A causal model with k samples of look-ahead has a latency of k samples
    (0.25 ms per 4 samples at 16 kHz).
    """,
    answer="a function `keep(E, k)` returning a boolean array of length E",
    notes="""
    ```python
    for k in (4, 16, 64):
        masks[f"look-ahead {k} samples ({1000 * k / SR:g} ms)"] = lags <= k
    ```
    The sensitivity plot of section 6 shows where the model looks, and how much of it lies in the
    near future. If a few dozen samples of future keep nearly all of the
    SDR, the non-causal model could run with a latency of a few milliseconds, well within what a
    live performer tolerates; the whole future half is not needed.
    """,
    wrong_answers=(
        lambda: (lambda E, k: np.arange(E) - E // 2 < k),  # k − 1 samples ahead
        lambda: (lambda E, k: np.abs(np.arange(E) - E // 2) <= k),  # cuts the past too
        lambda: (lambda E, k: np.arange(E) <= k),  # lags not centred
    ),
)
def _check_07_4(answer):
    function = expect_callable(answer, "keep")
    for E, k in ((515, 4), (515, 16), (515, 64), (11, 0), (9, 3)):
        got = np.asarray(function(E, k))
        if got.shape != (E,):
            raise Wrong(f"keep({E}, {k}): expected {E} values, got shape {got.shape}")
        if got.dtype != bool:
            raise Wrong(f"keep({E}, {k}): expected a boolean mask, got {got.dtype}")
        want = _keep(E, k)
        if not np.array_equal(got, want):
            wrong = np.flatnonzero(got != want) - E // 2
            raise Wrong(f"keep({E}, {k}): wrong at {len(wrong)} lag(s), e.g. lag {wrong[0]:+d}")
    return "past and present kept, the future cut after k samples"


@_check_07_4.solution
def _solve_07_4():
    import numpy as np

    def keep(E, k):
        lags = np.arange(E) - E // 2  # 0: the output sample itself
        return lags <= k

    return keep


# ----------------------------------------------------------------------------------------------
# 07.5 Parameters against work
# ----------------------------------------------------------------------------------------------

_NARROW = {"narrow blocks": dict(residual_channels=32, skip_channels=32),
           "narrow head": dict(head_channels=[1024, 128])}


def _costs(**overrides) -> tuple[int, float]:
    """(parameters, convolution multiply-adds per second of 16 kHz audio) of the paper multi-instrument
    Wavenet with ``overrides``, at its target field, in windows of R + T − 1 samples."""
    from .. import models

    with torch.device("meta"):
        model = models.create("wavenet", preset="paper", target="multi-instrument", **overrides)
    network = model.network
    macs = []

    def record(module, args, out):
        macs.append(module.weight.numel() * out.shape[-1])

    hooks = [m.register_forward_hook(record) for m in network.modules() if isinstance(m, torch.nn.Conv1d)]
    try:
        network(torch.empty(1, 1, model.input_length, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return model.num_parameters(), sum(macs) * model.sample_rate / model.target_field_length


@functools.lru_cache(maxsize=1)
def _ratios() -> dict:
    base_p, base_m = _costs()
    out = {}
    for name, overrides in _NARROW.items():
        p, m = _costs(**overrides)
        out[name] = (p / base_p, m / base_m)
    return out


@exercise(
    "07.5",
    "Parameters against work",
    """
    Two ways to make the paper Wavenet (multi-instrument) cheaper: **narrow blocks**
    (`residual_channels=32, skip_channels=32` instead of 64) or a **narrow head**
    (`head_channels=[1024, 128]` instead of [2048, 256]). With `conv_costs` (section 2), at the
    paper's target field of 1601 (inputs of `model.input_length` samples), compute each variant's
    parameters and multiply-adds per second of audio as fractions of the paper model's. Hand in
    `{"narrow blocks": (parameter ratio, work ratio), "narrow head": (parameter ratio, work ratio)}`.
    Which one halves the work, and which keeps more parameters?
    """,
    hint="""
    Build the models with `models.create("wavenet", preset="paper", target="multi-instrument", ...)`
    inside `with torch.device("meta"):`; `conv_costs(model.network, model.input_length)` gives the
    multiply-adds of one window, which yields `target_field_length` output samples. The head runs
    on the target field only, the blocks on the whole window.
    """,
    answer='a dict `{"narrow blocks": (float, float), "narrow head": (float, float)}` of ratios',
    notes="""
    ```python
    def cost(**overrides):
        with torch.device("meta"):
            m = models.create("wavenet", preset="paper", target="multi-instrument", **overrides)
        macs = sum(w for _, w in conv_costs(m.network, m.input_length).values())
        return m.num_parameters(), macs * SR / m.target_field_length
    ```
    Halving a convolution's input and output channels quarters its weights and its work. The 40
    blocks run on the whole window (9785 samples for 1601 outputs), so they do most of the work
    while holding few parameters; the 2048-channel head holds most of the parameters but runs on
    the target field only. Narrow blocks therefore cut the work far more and keep most of the
    parameters; a narrow head removes parameters and saves comparatively little work.
    """,
    wrong_answers=(
        lambda: {"narrow blocks": _ratios()["narrow head"], "narrow head": _ratios()["narrow blocks"]},  # swapped
        lambda: {name: (p, p) for name, (p, _) in _ratios().items()},  # work taken to follow the parameters
        lambda: {name: (1 / p, 1 / m) for name, (p, m) in _ratios().items()},  # inverted ratios
    ),
)
def _check_07_5(answer):
    if not isinstance(answer, dict) or set(answer) != set(_NARROW):
        raise Wrong(f"hand in a dict with the keys {sorted(_NARROW)}, each a pair (parameter ratio, work ratio)")
    for name, (p, m) in _ratios().items():
        pair = answer[name]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise Wrong(f"{name}: expected a pair (parameter ratio, work ratio)")
        expect_close(pair[0], p, f"{name}: parameters relative to the paper model", rtol=2e-3)
        expect_close(pair[1], m, f"{name}: multiply-adds per second relative to the paper model", rtol=2e-3)
    return "the blocks do the work, the head holds the parameters"


@_check_07_5.solution
def _solve_07_5():
    import torch

    from mssbook import models

    def cost(**overrides):
        with torch.device("meta"):
            model = models.create("wavenet", preset="paper", target="multi-instrument", **overrides)
        macs = []
        hooks = [m.register_forward_hook(lambda m, i, out: macs.append(m.weight.numel() * out.shape[-1]))
                 for m in model.network.modules() if isinstance(m, torch.nn.Conv1d)]
        model.network(torch.empty(1, 1, model.input_length, device="meta"))  # one window: T outputs
        for hook in hooks:
            hook.remove()
        return model.num_parameters(), sum(macs) * model.sample_rate / model.target_field_length

    base_p, base_m = cost()
    answer = {}
    for name, overrides in {"narrow blocks": dict(residual_channels=32, skip_channels=32),
                            "narrow head": dict(head_channels=[1024, 128])}.items():
        p, m = cost(**overrides)
        answer[name] = (p / base_p, m / base_m)
    return answer
