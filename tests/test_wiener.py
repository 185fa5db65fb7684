"""Multichannel Wiener filter: agreement with ``openunmix.filtering.wiener`` and its own invariants."""

import pytest
import torch

from mssbook.signal.wiener import (
    apply_wiener_filter,
    expectation_maximization,
    power_spectral_density,
    spatial_covariance,
    wiener,
)

reference = pytest.importorskip("openunmix.filtering")


def reference_wiener(spectrograms, mix_stft, **kwargs):
    """openunmix's filter in mssbook's layout: (S, C', F, T) real, (C, F, T) complex → (S, C, F, T)."""
    spec = spectrograms.permute(3, 2, 1, 0).contiguous()  # (T, F, C', S)
    mix = torch.view_as_real(mix_stft.permute(2, 1, 0)).clone().contiguous()  # (T, F, C, 2); it writes into it
    out = reference.wiener(spec, mix, **kwargs)  # (T, F, C, 2, S)
    return torch.view_as_complex(out.permute(4, 2, 1, 0, 3).contiguous())


def random_inputs(n_sources, channels, bins=129, frames=60, dtype=torch.float64, seed=0, spec_channels=None):
    gen = torch.Generator().manual_seed(seed)
    shape = (channels, bins, frames)
    mix = torch.complex(torch.randn(shape, generator=gen, dtype=dtype), torch.randn(shape, generator=gen, dtype=dtype))
    mix = mix * 40 * torch.rand(1, bins, 1, generator=gen, dtype=dtype)  # loud bins: exercises the rescaling
    spec_channels = spec_channels or channels
    spec = torch.rand(n_sources, spec_channels, bins, frames, generator=gen, dtype=dtype)
    spec = spec * mix.abs().mean(0, keepdim=True)  # plausible magnitudes
    return spec, mix


def relative_error(a, b):
    return float((a - b).abs().norm() / b.abs().norm())


CASES = [
    dict(niter=0),
    dict(niter=1),
    dict(niter=2),
    dict(niter=0, softmask=True),
    dict(niter=1, softmask=True),
    dict(niter=0, residual=True),
    dict(niter=1, residual=True),
    dict(niter=2, softmask=True, residual=True),
]


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
@pytest.mark.parametrize("channels", [2, 1])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{int(v)}" for k, v in c.items()))
def test_agrees_with_openunmix(case, channels, dtype, tol):
    spec, mix = random_inputs(3, channels, dtype=dtype)
    ours = wiener(spec, mix, wiener_win_len=None, **case)
    ref = reference_wiener(
        spec, mix, iterations=case["niter"], softmask=case.get("softmask", False), residual=case.get("residual", False)
    )
    assert ours.shape == ref.shape == (3 + case.get("residual", False), channels, 129, 60)
    assert relative_error(ours, ref) < tol


@pytest.mark.parametrize("niter", [0, 1])
def test_mono_estimates_are_shared_by_the_channels(niter):
    spec, mix = random_inputs(2, 2, spec_channels=1)
    ours = wiener(spec, mix, niter=niter)
    assert ours.shape == (2, 2, 129, 60)
    assert relative_error(ours, reference_wiener(spec, mix, iterations=niter)) < 1e-6


def test_blocks_are_filtered_independently_like_the_separator():
    spec, mix = random_inputs(3, 2, frames=70)
    ours = wiener(spec, mix, niter=1, wiener_win_len=32)
    blocks = [
        reference_wiener(spec[..., s : s + 32], mix[..., s : s + 32], iterations=1) for s in range(0, 70, 32)
    ]
    assert relative_error(ours, torch.cat(blocks, dim=-1)) < 1e-6
    # and blocks matter: one block over all frames is a different filter
    assert relative_error(ours, wiener(spec, mix, niter=1, wiener_win_len=None)) > 1e-3


def test_leading_dimensions_are_independent_signals():
    pairs = [random_inputs(2, 2, seed=s) for s in range(3)]
    spec = torch.stack([p[0] for p in pairs])  # (3, S, C, F, T)
    mix = torch.stack([p[1] for p in pairs])
    batched = wiener(spec, mix, niter=2, residual=True, wiener_win_len=25)
    for i, (s, m) in enumerate(pairs):
        assert torch.allclose(batched[i], wiener(s, m, niter=2, residual=True, wiener_win_len=25), atol=1e-10)


def test_estimates_add_up_to_the_mixture():
    spec, mix = random_inputs(3, 2)
    with_residual = wiener(spec, mix, niter=0, residual=True)
    assert torch.allclose(with_residual.sum(0), mix, atol=1e-10)
    soft = wiener(spec, mix, niter=0, softmask=True)
    assert relative_error(soft.sum(0), mix) < 1e-8
    # EM: Σ_j v_j R_j C_x⁻¹ x = (C_x − √eps I) C_x⁻¹ x ≈ x; the √eps = 1e-5 of white noise (on
    # the block scaled to a peak of 10) is what is missing, relatively more in quiet bins
    em = wiener(spec, mix, niter=2)
    assert relative_error(em.sum(0), mix) < 1e-3


def test_niter_zero_keeps_magnitudes_and_takes_the_mixture_phase():
    spec, mix = random_inputs(2, 2)
    est = wiener(spec, mix, niter=0)
    assert torch.allclose(est.abs(), spec, atol=1e-10)
    phase_difference = est * mix.conj().unsqueeze(0)  # real and positive where the phases agree
    assert phase_difference.imag.abs().max() < 1e-8 * phase_difference.abs().max()


def test_model_quantities_have_the_documented_shapes():
    spec, mix = random_inputs(3, 2)
    y = wiener(spec, mix, niter=0)
    v = power_spectral_density(y)
    R = spatial_covariance(y, v)
    assert v.shape == (3, 129, 60) and R.shape == (3, 129, 2, 2)
    assert torch.allclose(R, R.conj().transpose(-1, -2))  # Hermitian
    assert apply_wiener_filter(v, R, mix).shape == y.shape
    refined, v_last, R_last = expectation_maximization(y, mix, niter=1)
    assert refined.shape == y.shape and torch.equal(v_last, v) and torch.equal(R_last, R)


def test_is_differentiable():
    spec, mix = random_inputs(2, 2, bins=17, frames=10)
    spec.requires_grad_(True)
    wiener(spec, mix, niter=1).abs().sum().backward()
    assert spec.grad is not None and torch.isfinite(spec.grad).all() and spec.grad.abs().sum() > 0


def test_bad_inputs_raise_clear_errors():
    spec, mix = random_inputs(2, 2)
    with pytest.raises(ValueError, match="complex"):
        wiener(spec, mix.abs())
    with pytest.raises(ValueError, match="one more dimension"):
        wiener(spec[0], mix)
    with pytest.raises(ValueError, match="do not match"):
        wiener(spec[..., :-1], mix)
    with pytest.raises(ValueError, match="do not match"):
        wiener(torch.cat([spec, spec], dim=1), mix)  # 4 channels for a stereo mixture
    with pytest.raises(ValueError, match="two sources"):
        wiener(spec[:1], mix, niter=1)
    assert wiener(spec[:1], mix, niter=1, residual=True).shape[0] == 2
    with pytest.raises(ValueError, match="niter"):
        wiener(spec, mix, niter=-1)
