"""Exercises of chapter 03 (X-UMX: the bridges, the combination loss, joint training)."""

from __future__ import annotations

import copy
from functools import lru_cache

import torch

from . import Wrong, exercise, expect_callable, expect_close

SOURCES = ("vocals", "drums", "bass", "other")


# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _bridged_size() -> int:
    from .. import models

    return models.create("xumx", preset="tutorial").num_parameters()


def _crossing(model) -> float:
    """How much the vocals estimate changes when only the drums branch's weights change."""
    net = copy.deepcopy(model).eval()
    first = net.target_models["vocals"]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, first.nb_channels, first.nb_output_bins, 6, generator=g)
    with torch.no_grad():
        before = net(x)
        for p in net.target_models["drums"].parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g))
        after = net(x)
    return float((before[:, 0] - after[:, 0]).abs().max())


@exercise(
    "03.1", "Without the bridges",
    statement="""
        Build the tutorial X-UMX without its bridges (`models.create("xumx", preset=preset,
        bridges=False)`), train it with the same data and budget (a fresh `run_dir`) and evaluate it
        as in section 4: same parameters, no crossing. How do the four SDRs compare? Hand in the
        model (trained or not): the checker verifies that its branches do not talk to each other.
    """,
    hint="One short run per setting is noisy; compare improvements over the mixture, and if you can, "
         "two seeds each. The bridges are plain means: switching them off removes no parameter.",
    answer="a model (`models.create(\"xumx\", ...)`)",
    notes="""
        ```python
        plain = models.create("xumx", preset=preset, bridges=False, time_loss_weight=time_loss_weight)
        train_model(plain, data, config, output=run_dir / "no-bridges")
        plain = load_model(run_dir / "no-bridges" / "best.pt")
        result = evaluate_tracks(plain, root=root, subset="test", output_dir=run_dir / "eval" / "no-bridges",
                                 tracks=n_eval_tracks, backend="fast", device="cpu", progress=False)
        print({name: result["table"][name]["SDR"] for name in SOURCES})
        ```
        Without bridges, changing the drums branch leaves the vocals estimate untouched (the checker
        perturbs the drums weights and watches the vocals); with them, every branch reads the mean
        of the four encodings, so every estimate depends on every branch. The combination loss
        still couples the branches during training. On a few minutes of CPU training the difference
        is often within the noise of one run: the paper reports the bridges' gain on MUSDB18 after
        days of training.
    """,
    wrong_answers=(
        lambda: _create(),  # the bridged model
        lambda: _create(preset="paper", bridges=False),  # not the tutorial size
        lambda: _umx(),  # a single Open-Unmix
    ),
)
def _check_bridges(answer):
    branches = getattr(answer, "target_models", None)
    if branches is None or not hasattr(answer, "num_parameters"):
        raise Wrong(f"expected an X-UMX model (models.create('xumx', ...)), got {type(answer).__name__}")
    if list(branches) != list(SOURCES):
        raise Wrong(f"expected the four targets {list(SOURCES)}, got {list(branches)}")
    if answer.num_parameters() != _bridged_size():
        raise Wrong("not the tutorial X-UMX's parameters: build it with preset='tutorial'")
    if _crossing(answer) > 1e-6:
        raise Wrong("changing the drums branch's weights changes the vocals estimate: the branches still cross")
    return "four independent branches with the bridged model's parameters"


def _create(**options):
    from .. import models

    return models.create("xumx", **{"preset": "tutorial", **options})


def _umx():
    from .. import models

    return models.create("umx", preset="tutorial", target="vocals")


@_check_bridges.solution
def _solve_bridges():
    from mssbook import models

    plain = models.create("xumx", preset="tutorial", bridges=False)
    bridged = models.create("xumx", preset="tutorial")
    print(plain.num_parameters(), "parameters, as the bridged model:", bridged.num_parameters())
    return plain


# ---------------------------------------------------------------------------------------------
def _loss_cases():
    g = torch.Generator().manual_seed(3)
    cases = []
    for shape in ((2, 4, 2, 5, 3), (1, 3, 1, 4, 2), (3, 2, 2, 3, 4), (1, 4, 2, 6, 6)):
        cases.append((f"{shape[1]} sources, shape {shape}", torch.rand(shape, generator=g), torch.rand(shape, generator=g)))
    # the chapter's point: leakage and invented energy, equal without combinations
    ref = torch.zeros(1, 4, 1, 2, 2)
    ref[:, :, :, 0, 0] = 1.0
    leak = ref.clone()
    leak[0, 0, 0, 1, 1] += 0.5
    leak[0, 1, 0, 1, 1] -= 0.5
    cases.append(("leakage from one source into another", leak, ref))
    return cases


@exercise(
    "03.2", "Without the combinations",
    statement="""
        `combination_loss=False` scores the four sources alone. Write `combination_mse(estimates,
        references)` yourself: for magnitudes of shape (batch, sources, channels, bins, frames), the
        mean over every combination of one to `sources − 1` sources of the MSE between the summed
        estimates and the summed references (the paper's `L_freq`). Check that the leakage and
        invention examples of section 3.1 differ with it and give the same number with
        `frequency_domain_loss(..., combination=False)`; then train with `combination_loss=False`.
    """,
    hint="`itertools.combinations(range(S), k)` for k = 1 … S − 1 (14 combinations for four sources, "
         "the full mix is not one of them); sum over the source axis, then the MSE, then the mean over "
         "the combinations.",
    answer="a function `combination_mse(estimates, references)` returning a scalar tensor",
    notes="""
        Without combinations, a leak of drums into the vocals and the same energy invented out of
        nothing cost the same: each single source is off by the same amount. With them, the leak
        cancels in every combination that holds both sources (the sum is right), the invention does
        not, so the loss can tell them apart. The full mix is left out because it is the input:
        the masks add up to it anyway after the Wiener filter.
    """,
    wrong_answers=(
        lambda: (lambda est, ref: (est - ref).square().mean()),  # singles only
        lambda: (lambda est, ref: _subset_mse(est, ref, include_full=True)),  # the full mix counted
        lambda: (lambda est, ref: _subset_mse(est, ref) * _n_combos(est.shape[1])),  # summed, not averaged
    ),
)
def _check_combination(answer):
    from ..models.xumx import frequency_domain_loss

    f = expect_callable(answer, "combination_mse")
    for name, est, ref in _loss_cases():
        got = f(est.clone(), ref.clone())
        want = frequency_domain_loss(est, ref, combination=True)
        expect_close(got, want, f"combination_mse for {name}", rtol=1e-5, atol=1e-8)
    return f"matches the library's L_freq on {len(_loss_cases())} cases"


def _n_combos(n_sources: int) -> int:
    return max(1, 2 ** n_sources - 2)


def _subset_mse(est, ref, include_full: bool = False):
    import itertools

    n = est.shape[1]
    top = n + 1 if include_full else max(2, n)
    combos = [c for k in range(1, top) for c in itertools.combinations(range(n), k)]
    return torch.stack([(est[:, list(c)].sum(1) - ref[:, list(c)].sum(1)).square().mean() for c in combos]).mean()


@_check_combination.solution
def _solve_combination():
    import itertools

    import torch

    from mssbook.models.xumx import frequency_domain_loss

    def combination_mse(estimates, references):
        n = estimates.shape[1]
        combos = [c for k in range(1, max(2, n)) for c in itertools.combinations(range(n), k)]
        losses = [(estimates[:, list(c)].sum(1) - references[:, list(c)].sum(1)).square().mean() for c in combos]
        return torch.stack(losses).mean()

    reference = torch.zeros(1, 4, 1, 2, 2)
    reference[:, :, :, 0, 0] = 1.0
    leakage, invention = reference.clone(), reference.clone()
    leakage[0, 0, 0, 1, 1], leakage[0, 1, 0, 1, 1] = 0.5, -0.5  # vocals gain what drums lose
    invention[0, 0, 0, 1, 1], invention[0, 1, 0, 1, 1] = 0.5, 0.5  # energy from nowhere
    for name, estimate in (("leakage", leakage), ("invention", invention)):
        print(name, float(combination_mse(estimate, reference)),
              float(frequency_domain_loss(estimate, reference, combination=False)))
    return combination_mse


# ---------------------------------------------------------------------------------------------
def _wsdr_cases():
    g = torch.Generator().manual_seed(4)
    y = torch.randn(3, 2, 400, generator=g)
    noise = torch.randn(3, 2, 400, generator=g)
    x = y + noise
    quiet = torch.randn(2, 300, generator=g)
    loud = 5 * torch.randn(2, 300, generator=g)
    return [
        ("a noisy estimate", y + 0.3 * torch.randn(3, 2, 400, generator=g), y, x),
        ("a perfect estimate", y.clone(), y, x),
        ("an estimate at half gain", 0.5 * y, y, x),
        ("a quiet target in a loud mixture", quiet + 0.1 * loud, quiet, quiet + loud),
    ]


@exercise(
    "03.3", "The time-domain term",
    statement="""
        Train with `time_loss_weight=0` (only `L_freq`) and with 1. Steps are faster without it: is
        the SDR per minute of training better or worse? The time-domain term is built on the
        weighted SDR loss of Choi et al.: write `weighted_sdr(estimate, reference, mixture)` for
        tensors (..., samples), returning one value per row (...): `−α cos(ŷ, y) − (1 − α) cos(x − ŷ,
        x − y)` with `α = ‖y‖² / (‖y‖² + ‖x − y‖²)`.
    """,
    hint="The history's `seconds` gives the time per epoch; the validation loss of different weights "
         "is not comparable, the test SDR is. For the loss: the cosine is `⟨a, b⟩ / (‖a‖ ‖b‖)` along the "
         "last axis, and α weighs the target against the *noise* `x − y`, not against the mixture.",
    answer="a function `weighted_sdr(estimate, reference, mixture)` returning a tensor of shape (...)",
    notes="""
        The weighted SDR is −1 for a perfect estimate and insensitive to the estimate's scale (a
        cosine), which is why X-UMX pairs it with the magnitude MSE. Without the time term a step is
        cheaper (no ISTFT, no 14 waveform sums), so the same budget buys more steps; whether that beats
        the better-aimed loss can only be judged on the test SDR, in dB per minute of training: the
        validation losses of different weights measure different things. `show_source(weighted_sdr_loss)`
        shows the library's version, with the official code's epsilons.
    """,
    wrong_answers=(
        lambda: (lambda est, ref, mix: _wsdr(est, ref, mix, alpha_vs_mixture=True)),  # α against the mixture
        lambda: (lambda est, ref, mix: -_cos(est, ref)),  # the first term only
        lambda: (lambda est, ref, mix: -_wsdr(est, ref, mix)),  # the sign
    ),
)
def _check_wsdr(answer):
    from ..models.xumx import weighted_sdr_loss

    f = expect_callable(answer, "weighted_sdr")
    for name, est, ref, mix in _wsdr_cases():
        got = f(est.clone(), ref.clone(), mix.clone())
        want = weighted_sdr_loss(est, ref, mix)
        expect_close(got, want, f"weighted_sdr for {name}", rtol=1e-4, atol=1e-5)
    return f"matches the library on {len(_wsdr_cases())} cases"


def _cos(a, b):
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def _wsdr(est, ref, mix, alpha_vs_mixture: bool = False):
    energy = ref.square().sum(-1)
    other = mix.square().sum(-1) if alpha_vs_mixture else (mix - ref).square().sum(-1)
    alpha = energy / (energy + other)
    return -alpha * _cos(est, ref) - (1 - alpha) * _cos(mix - est, mix - ref)


@_check_wsdr.solution
def _solve_wsdr():
    def weighted_sdr(estimate, reference, mixture):
        def cosine(a, b):
            return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))

        noise, noise_estimate = mixture - reference, mixture - estimate
        energy, noise_energy = reference.square().sum(-1), noise.square().sum(-1)
        alpha = energy / (energy + noise_energy)
        return -alpha * cosine(estimate, reference) - (1 - alpha) * cosine(noise_estimate, noise)

    return weighted_sdr


# ---------------------------------------------------------------------------------------------
def _trim_cases():
    g = torch.Generator().manual_seed(5)
    cases = []
    for trim, length in ((200, 2048), (0, 1500), (1, 600), (37, 1000)):
        refs = torch.randn(2, 4, 2, length, generator=g)
        ests = refs + 0.5 * torch.randn(2, 4, 2, length, generator=g)
        ests[..., :50] += 3 * torch.randn(2, 4, 2, 50, generator=g)  # edges that are much worse
        cases.append((f"trim={trim}, {length} samples", refs.sum(1), ests, refs, trim))
    return cases


@exercise(
    "03.4", "The official edge trim",
    statement="""
        The official NNabla code drops 200 samples at both ends before the weighted SDR
        (`mssbook.models.xumx.OFFICIAL_EDGE_TRIM`). Write `trimmed_time_loss(mixture, estimates,
        references, trim)`: cut `trim` samples off both ends of every signal and return
        `time_domain_loss` of what is left (with `edge_trim=0`); `mixture` is (batch, channels,
        samples), the others (batch, sources, channels, samples), and `trim=0` keeps everything.
        Compute it on a training batch with 0 and 200: why would the code drop the edges?
    """,
    hint="Look at the first and last frames of an inverse STFT of a centred STFT. In Python, `x[..., t:-t]` "
         "with `t = 0` is empty.",
    answer="a function `trimmed_time_loss(mixture, estimates, references, trim)` returning a scalar tensor",
    notes="""
        A centred STFT pads the excerpt by reflection, so its first and last frames see half a window
        of mirrored signal; estimates rebuilt by the ISTFT are least reliable there, and a random
        excerpt cut mid-note starts and ends abruptly. Dropping 200 samples (4.5 ms at 44.1 kHz) at
        both ends keeps those edges out of the SDR term; asteroid's port does not. The slice is the classic trap: `x[..., t:-t]` is empty for
        `t = 0`, so write `x[..., t:x.shape[-1] - t]`.
    """,
    wrong_answers=(
        lambda: (lambda mix, est, ref, t: _time_loss(mix[..., t:-t], est[..., t:-t], ref[..., t:-t])),  # t = 0
        lambda: (lambda mix, est, ref, t: _time_loss(mix[..., t:], est[..., t:], ref[..., t:])),  # one end
        lambda: (lambda mix, est, ref, t: _time_loss(mix, est[..., t:est.shape[-1] - t], ref[..., t:ref.shape[-1] - t])),
    ),
)
def _check_trim(answer):
    from ..models.xumx import time_domain_loss

    f = expect_callable(answer, "trimmed_time_loss")
    for name, mix, est, ref, trim in _trim_cases():
        got = f(mix.clone(), est.clone(), ref.clone(), trim)
        want = time_domain_loss(mix, est, ref, edge_trim=trim)
        expect_close(got, want, f"trimmed_time_loss for {name}", rtol=1e-5, atol=1e-6)
    return f"right on {len(_trim_cases())} cases (trim=0 included)"


def _time_loss(mix, est, ref):
    from ..models.xumx import time_domain_loss

    return time_domain_loss(mix, est, ref)


@_check_trim.solution
def _solve_trim():
    from mssbook.models.xumx import time_domain_loss

    def trimmed_time_loss(mixture, estimates, references, trim):
        keep = slice(trim, mixture.shape[-1] - trim)  # x[..., t:-t] would be empty for t = 0
        return time_domain_loss(mixture[..., keep], estimates[..., keep], references[..., keep], edge_trim=0)

    return trimmed_time_loss
