"""X-UMX: parameter count, shapes, the two bridges, UMX weight compatibility, the multi-domain
combination loss by hand, the edge trim, gradients, overfitting, separation and the trainer."""

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import mssbook.models.xumx  # noqa: F401  (registers "xumx")
from mssbook import models
from mssbook.models.xumx import (XUMX, frequency_domain_loss, source_combinations, time_domain_loss,
                                 weighted_sdr_loss)
from helpers import fit_tiny_batch  # tests/helpers.py

SR = 8000
TARGETS = ("vocals", "drums", "bass", "other")
# the 14 combinations of the paper written out: 4 singles, 6 pairs, 4 triples
COMBOS = [(0,), (1,), (2,), (3,), (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3),
          (0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]


def tiny(seed=0, **overrides):
    """A CPU-instant X-UMX: 8 kHz, 512-point STFT, 3 kHz crop (193 of 257 bins), hidden 16, one LSTM layer."""
    torch.manual_seed(seed)
    config = dict(sample_rate=SR, n_fft=512, n_hop=128, hidden_size=16, nb_layers=1, bandwidth=3000)
    config.update(overrides)
    return models.create("xumx", preset="tutorial", **config)


def perturb(model, seed=1):
    """Non-trivial scalers and BatchNorm statistics (so eval-mode outputs depend on every tensor)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + [(n, b) for n, b in model.named_buffers() if "running" in n]:
            tensor.add_(0.1 * torch.randn(tensor.shape, generator=gen))
            if tensor.ndim == 1:
                tensor.abs_()
    return model


def toy_batch(batch=2, seconds=0.5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    refs = 0.2 * torch.randn(batch, 4, 2, int(seconds * SR), generator=gen)  # (B, S, C, L)
    return refs.sum(1), refs


# --- registry and sizes ---------------------------------------------------------------------
def test_paper_preset_has_the_published_parameter_count():
    assert "xumx" in models.available()
    model = models.create("xumx", preset="paper")
    assert model.targets == TARGETS
    assert model.num_parameters() == 35_573_392  # = 4 × 8,893,348: the bridges add no parameters
    assert models.create("umx", preset="paper").num_parameters() == model.num_parameters()
    assert model.max_bin == 1487 and model.n_fft == 4096 and model.n_hop == 1024


def test_tutorial_preset_and_training_recipe():
    presets = models.presets("xumx")
    assert presets["tutorial"]["hidden_size"] == 128 and presets["tutorial"]["nb_layers"] == 2
    assert models.create("xumx", preset="tutorial").num_parameters() == 4 * 1_152_420
    recipe = models.entry("xumx").training
    assert recipe["targets"] == TARGETS
    assert (recipe["batch_size"], recipe["seq_dur"], recipe["lr"], recipe["weight_decay"]) == (16, 6.0, 1e-3, 1e-5)
    assert (recipe["lr_decay_patience"], recipe["lr_decay_gamma"], recipe["patience"]) == (80, 0.3, 140)
    assert recipe["gain_range"] == (0.25, 1.25) and recipe["samples_per_track"] == 64
    assert "channelswap" in recipe["source_augmentations"]
    model = tiny()
    again = models.from_config("xumx", model.config)
    again.load_state_dict(model.state_dict())  # same keys and shapes


# --- shapes -------------------------------------------------------------------------------------
def test_shapes_at_each_stage():
    model = tiny().eval()
    mixture, _ = toy_batch(batch=2, seconds=0.5)  # 4000 samples → 32 centred frames
    mag = model.magnitudes(mixture)  # X-UMX trains on the centred STFT
    assert mag.shape == (2, 2, 257, 32)
    trace = {}
    with torch.no_grad():
        out = model(mag, trace=trace)
        est_mag, est_time = model.training_estimates(mixture)
    assert out.shape == est_mag.shape == (2, 4, 2, 257, 32)  # (B, S, C, F, T)
    assert est_time.shape == (2, 4, 2, 31 * 128)  # (T − 1)·hop samples, as the official ISTFT
    for key, shape in [("encoder", (32, 2, 16)), ("lstm_input", (32, 2, 16)), ("skip", (32, 2, 32)),
                       ("decoder_input", (32, 2, 32)), ("mask", (32, 2, 2, 257))]:
        assert len(trace[key]) == 4 and all(t.shape == shape for t in trace[key]), key
    with torch.no_grad():
        assert model.separate(mixture).shape == (2, 4, 2, 4000)
        assert model.separate(mixture, residual=True, niter=0).shape == (2, 5, 2, 4000)


# --- the bridges --------------------------------------------------------------------------------
def test_each_lstm_and_decoder_receives_the_average_over_branches():
    model = perturb(tiny()).eval()
    received = {"lstm": [], "fc2": []}
    hooks = [getattr(branch, layer).register_forward_pre_hook(lambda mod, args, layer=layer: received[layer].append(args[0]))
             for branch in model.target_models.values() for layer in ("lstm", "fc2")]
    mixture, _ = toy_batch(batch=1)
    trace = {}
    with torch.no_grad():
        model(model.magnitudes(mixture), trace=trace)
    for hook in hooks:
        hook.remove()
    assert len(received["lstm"]) == len(received["fc2"]) == 4
    h_bar = torch.stack(trace["encoder"]).mean(0)  # bridge 1: mean of the 4 tanh encodings
    z_bar = torch.stack(trace["skip"]).mean(0)  # bridge 2: mean of the 4 concat[h_s, LSTM_s(h̄)]
    assert not torch.allclose(trace["encoder"][0], trace["encoder"][1])  # the branches differ...
    for seen in received["lstm"]:
        assert torch.allclose(seen, h_bar, atol=1e-6)  # ...but every LSTM reads the same average
    for seen in received["fc2"]:
        assert torch.allclose(seen, z_bar.reshape(-1, 32), atol=1e-6)
    # the skip keeps the branch's own encoding next to the LSTM output
    for h, z in zip(trace["encoder"], trace["skip"]):
        assert torch.equal(z[..., :16], h)


@pytest.mark.parametrize("bridges", [True, False])
def test_one_branch_encoder_reaches_every_output_only_through_the_bridges(bridges):
    model = perturb(tiny(bridges=bridges)).eval()
    mixture, _ = toy_batch(batch=1)
    mag = model.magnitudes(mixture)
    with torch.no_grad():
        before = model(mag)
        model.target_models["vocals"].fc1.weight.add_(0.5)
        after = model(mag)
    changed = [(after[:, s] - before[:, s]).abs().max().item() > 1e-4 for s in range(4)]
    assert changed == ([True] * 4 if bridges else [True, False, False, False])


# --- weight compatibility with UMX --------------------------------------------------------------
def test_branches_load_umx_state_dicts_and_reproduce_umx():
    sizes = dict(sample_rate=SR, n_fft=512, n_hop=128, hidden_size=16, nb_layers=2, bandwidth=3000)
    umx = perturb(models.create("umx", preset="tutorial", target=TARGETS, **sizes), seed=3).eval()
    mixture, _ = toy_batch(batch=2)
    mag = umx.magnitudes(mixture, center=True)
    with torch.no_grad():
        umx_out = torch.stack([umx.target_models[t](mag) for t in TARGETS], dim=1)  # (B, S, C, F, T)

    # without bridges, four branches holding UMX's four networks are UMX
    plain = models.create("xumx", preset="tutorial", bridges=False, **sizes).eval()
    for target in TARGETS:
        assert plain.load_target_state_dict(target, umx.target_models[target].state_dict()) == []
    with torch.no_grad():
        assert torch.allclose(plain(mag), umx_out, rtol=1e-5, atol=1e-6)

    # with bridges, every branch holding the same UMX network: each average equals the branch's own
    # features, so each branch reproduces that UMX network exactly
    bridged = models.create("xumx", preset="tutorial", **sizes).eval()
    for target in TARGETS:
        bridged.load_target_state_dict(target, umx.target_models["vocals"].state_dict())
    with torch.no_grad():
        out = bridged(mag)
    for s in range(4):
        assert torch.allclose(out[:, s], umx_out[:, 0], rtol=1e-5, atol=1e-6)

    # and a trained branch goes back into a UMX of the same sizes (same names and shapes)
    assert list(bridged.target_models["bass"].state_dict()) == list(umx.target_models["bass"].state_dict())
    umx.load_target_state_dict("bass", bridged.target_models["bass"].state_dict())
    wrong = models.create("umx", preset="tutorial", target="vocals", **dict(sizes, hidden_size=8))
    with pytest.raises(ValueError, match="other sizes"):
        bridged.load_target_state_dict("vocals", wrong.target_models["vocals"].state_dict())


# --- the loss -----------------------------------------------------------------------------------
def test_combinations_are_the_fourteen_of_the_paper():
    assert source_combinations(4) == COMBOS
    assert len(source_combinations(3)) == 6 and source_combinations(1) == [(0,)]


def hand_wsdr(est, ref, mix):
    """Choi et al.'s weighted SDR loss of one row, in plain float64 torch."""
    noise, noise_est = mix - ref, mix - est
    cos = lambda a, b: float(a @ b / (a.norm() * b.norm()))  # noqa: E731
    alpha = float(ref @ ref / (ref @ ref + noise @ noise))
    return -alpha * cos(est, ref) - (1 - alpha) * cos(noise_est, noise)


def test_loss_terms_against_a_hand_computed_small_case():
    gen = torch.Generator().manual_seed(0)
    est_mag, ref_mag = torch.rand(2, 4, 2, 3, 5, generator=gen, dtype=torch.float64).unbind(0)  # (S, C, F, T)
    est_mag, ref_mag = est_mag[None], ref_mag[None]  # B = 1
    by_hand = sum(((est_mag[0, list(c)].sum(0) - ref_mag[0, list(c)].sum(0)) ** 2).mean() for c in COMBOS) / 14
    assert float(frequency_domain_loss(est_mag, ref_mag)) == pytest.approx(float(by_hand), rel=1e-12)
    singles = sum(((est_mag[0, s] - ref_mag[0, s]) ** 2).mean() for s in range(4)) / 4
    assert float(frequency_domain_loss(est_mag, ref_mag, combination=False)) == pytest.approx(float(singles), rel=1e-12)

    refs = torch.randn(2, 4, 2, 50, generator=gen, dtype=torch.float64)  # (B, S, C, L)
    mix = refs.sum(1)
    est = refs + 0.5 * torch.randn(refs.shape, generator=gen, dtype=torch.float64)
    rows = [hand_wsdr(est[b, list(c)].sum(0)[ch], refs[b, list(c)].sum(0)[ch], mix[b, ch])
            for c in COMBOS for b in range(2) for ch in range(2)]
    assert len(rows) == 14 * 2 * 2
    assert float(time_domain_loss(mix, est, refs)) == pytest.approx(1 + np.mean(rows), rel=1e-9)
    assert float(time_domain_loss(mix, refs, refs)) == pytest.approx(0.0, abs=1e-9)  # perfect: wSDR = −1
    assert float(weighted_sdr_loss(est[0, 0, 0], refs[0, 0, 0], mix[0, 0])) == pytest.approx(
        hand_wsdr(est[0, 0, 0], refs[0, 0, 0], mix[0, 0]), rel=1e-9)


def test_model_loss_is_freq_plus_ten_times_time():
    model = perturb(tiny()).eval()
    mixture, refs = toy_batch(batch=2)
    loss, logs = model.loss(mixture, refs)
    with torch.no_grad():
        est_mag, est_time = model.training_estimates(mixture)  # the masked magnitude with the mixture phase
        length = est_time.shape[-1]
        freq = frequency_domain_loss(est_mag, model.magnitudes(refs))
        time = time_domain_loss(mixture[..., :length], est_time, refs[..., :length])
    assert logs["loss/freq"] == pytest.approx(float(freq), rel=1e-5)
    assert logs["loss/time"] == pytest.approx(float(time), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float(freq) + 10 * float(time), rel=1e-5)
    # the time signals are the ISTFT of the masked magnitudes with the mixture phase
    phase = torch.polar(torch.ones(()), torch.angle(model.stft(mixture)))  # (B, C, F, T)
    rebuilt = torch.istft((est_mag * phase[:, None]).reshape(-1, 257, est_mag.shape[-1]), 512, 128,
                          window=torch.hann_window(512), center=True).reshape(est_time.shape)
    assert torch.allclose(rebuilt, est_time, atol=1e-6)


def test_edge_trim_ignores_exactly_the_edges():
    gen = torch.Generator().manual_seed(5)
    refs = torch.randn(1, 4, 2, 1000, generator=gen, dtype=torch.float64)
    mix = refs.sum(1)
    est = refs.clone()
    est[..., :200] += torch.randn(est[..., :200].shape, generator=gen, dtype=torch.float64)  # wrong only at the edges
    est[..., -200:] = 0
    assert float(time_domain_loss(mix, est, refs)) > 0.01
    assert float(time_domain_loss(mix, est, refs, edge_trim=200)) == pytest.approx(0.0, abs=1e-9)
    noisy = est + 0.3 * torch.randn(est.shape, generator=gen, dtype=torch.float64)
    trimmed = time_domain_loss(mix[..., 200:-200], noisy[..., 200:-200], refs[..., 200:-200])
    assert float(time_domain_loss(mix, noisy, refs, edge_trim=200)) == pytest.approx(float(trimmed), rel=1e-12)
    # the model option reaches its time term
    model = perturb(tiny()).eval()
    mixture, refs32 = toy_batch(batch=1)
    with torch.no_grad():
        plain = model.loss(mixture, refs32)[1]
        model.edge_trim = 200
        trimmed_logs = model.loss(mixture, refs32)[1]
    assert trimmed_logs["loss/freq"] == plain["loss/freq"] and trimmed_logs["loss/time"] != plain["loss/time"]


# --- learning -----------------------------------------------------------------------------------
def test_gradient_reaches_every_parameter():
    model = tiny(nb_layers=2)
    mixture, refs = toy_batch(batch=2)
    loss, _ = model.loss(mixture, refs)
    loss.backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []


def test_overfits_a_tiny_batch():
    model = tiny()
    mixture, refs = toy_batch(batch=2, seconds=0.25)
    losses = fit_tiny_batch(model, mixture, refs, steps=40, lr=1e-2)
    assert losses[-1] < 0.3 * losses[0], losses


# --- separation and the shared trainer ----------------------------------------------------------
def test_shared_separator_returns_every_target():
    from mssbook.separation import separate

    model = tiny().eval()
    audio = 0.1 * np.random.default_rng(0).standard_normal((2, SR)).astype(np.float32)
    stems = separate(audio, SR, model, device="cpu")
    assert list(stems) == list(TARGETS) and all(s.shape == (2, SR) for s in stems.values())
    stems = separate(audio, SR, model, device="cpu", residual=True, niter=0)
    assert set(stems) == set(TARGETS) | {"residual"}
    assert np.allclose(sum(stems.values()), audio, atol=1e-4)


class FourSourceDataset(Dataset):
    """Four stereo sources (a tone per source and a little noise), deterministic per index."""

    def __init__(self, n=4, seconds=0.5, seed=0):
        self.n, self.length, self.seed = n, int(seconds * SR), seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, i])
        t = np.arange(self.length) / SR
        refs = np.stack([np.stack([0.3 * np.sin(2 * np.pi * rng.uniform(100, 1500) * t)] * 2) for _ in range(4)])
        refs = (refs + 0.01 * rng.standard_normal(refs.shape)).astype(np.float32)  # (S, C, L)
        return torch.from_numpy(refs.sum(0)), torch.from_numpy(refs)


def test_one_epoch_through_the_shared_trainer(tmp_path):
    from mssbook.training import TrainConfig, Trainer

    model = tiny()
    train = FourSourceDataset(n=4)
    model.initialize_from_data(train[i][0].numpy() for i in range(len(train)))
    config = TrainConfig(epochs=1, batch_size=2, lr=1e-3, progress=False, seed=1, device="cpu")
    trainer = Trainer(model, train, FourSourceDataset(n=1, seconds=1.5, seed=9), output=tmp_path / "run", config=config)
    history = trainer.fit()
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"]) and np.isfinite(history[0]["valid_loss"])
    assert (tmp_path / "run" / "best.pt").is_file()
    from mssbook.checkpoints import load_model

    rebuilt = load_model(tmp_path / "run" / "last.pt")
    assert rebuilt.name == "xumx" and rebuilt.num_parameters() == model.num_parameters()


def test_validation_loss_averages_chunks():
    model = perturb(tiny(valid_chunk=0.5)).eval()
    mixture, refs = toy_batch(batch=1, seconds=1.25)  # two full 0.5 s chunks; the last 0.25 s is skipped
    with torch.no_grad():
        expected = np.mean([float(model.loss(mixture[..., s:s + 4000], refs[..., s:s + 4000])[0]) for s in (0, 4000)])
        assert float(model.validation_loss(mixture, refs)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("combination", [True, False])
def test_losses_equal_the_summed_combinations_they_avoid_building(combination):
    """The Gram-matrix losses give the numbers and gradients of combine() + MSE / weighted SDR."""
    from mssbook.models.xumx import combine, frequency_domain_loss, time_domain_loss, weighted_sdr_loss

    torch.manual_seed(0)
    est = torch.rand(3, 4, 2, 65, 20, requires_grad=True)
    ref = torch.rand(3, 4, 2, 65, 20)
    direct = combine(est - ref, combination).square().mean()
    fast = frequency_domain_loss(est, ref, combination)
    assert float(fast.detach()) == pytest.approx(float(direct.detach()), rel=1e-6)
    (g_direct,), (g_fast,) = torch.autograd.grad(direct, est), torch.autograd.grad(fast, est)
    assert torch.allclose(g_fast, g_direct, rtol=1e-4, atol=1e-6 * float(g_direct.abs().max()))

    waves = torch.randn(3, 4, 2, 3000, requires_grad=True)
    refs = torch.randn(3, 4, 2, 3000)
    refs[0, 1] = 0  # a silent source: a combination equal to the whole mixture minus nothing
    mixture = refs.sum(1)
    for trim in (0, 200):
        keep = slice(trim, 3000 - trim) if trim else slice(None)
        direct = 1.0 + weighted_sdr_loss(combine(waves[..., keep], combination), combine(refs[..., keep], combination),
                                         mixture[:, None, :, keep]).mean()
        fast = time_domain_loss(mixture, waves, refs, combination, edge_trim=trim)
        assert fast.dtype == torch.float32 and float(fast.detach()) == pytest.approx(float(direct.detach()), abs=1e-6)
        (g_direct,), (g_fast,) = torch.autograd.grad(direct, waves), torch.autograd.grad(fast, waves)
        assert torch.allclose(g_fast, g_direct, atol=1e-5 * float(g_direct.abs().max()))
