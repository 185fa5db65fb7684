"""BSRNN: band schemes (spec §4.2), paper parameter counts (§4.5), §4.3 shapes, mask layout, training, separation."""

from dataclasses import fields

import numpy as np
import pytest
import torch
from helpers import ToneDataset, fit_tiny_batch  # tests/helpers.py

from mssbook import models
from mssbook.models.bsrnn import (  # importing the module registers "bsrnn"
    BAND_SCHEMES,
    BandSplit,
    MaskEstimation,
    band_widths,
    target_band_scheme,
)

SR, N_FFT, HOP = 8000, 256, 64  # 129 bins; v7 gives 23 bands at this resolution
TINY = dict(sample_rate=SR, n_fft=N_FFT, n_hop=HOP, feature_dim=8, num_repeat=1, mask_hidden_layers=2)

# the spec §4.2 table, lineage A at 44.1 kHz / 2048 (50 Hz → 2 bins, 100 → 4, 250 → 11, 500 → 23, 1 k → 46, 2 k → 92)
V7 = [4] * 10 + [11] * 12 + [23] * 8 + [46] * 8 + [92] * 2 + [117]
BASS = [2] * 10 + [4] * 5 + [23] * 6 + [46] * 4 + [92] * 4 + [295]
DRUMS = [2] * 20 + [4] * 10 + [11] * 8 + [23] * 8 + [46] * 8 + [305]


def tiny_bsrnn(targets=("vocals",), seed=0, **overrides):
    torch.manual_seed(seed)
    return models.create("bsrnn", preset="paper", target=targets, **{**TINY, **overrides})


def noise(*shape, seed=0, scale=0.3):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# --- band schemes (spec §4.2) ---------------------------------------------------------------------
def test_authors_band_widths_at_44k_2048():
    assert band_widths("v7") == V7 and len(V7) == 41
    assert band_widths("bass") == BASS and len(BASS) == 30
    assert band_widths("drums") == DRUMS and len(DRUMS) == 55
    assert band_widths("v7", 44100, 2048) == band_widths("v7")  # the defaults
    # the schemes in Hz: (bandwidth, up to) segments, the rest as one band
    assert BAND_SCHEMES["v7"] == ((100, 1000), (250, 4000), (500, 8000), (1000, 16000), (2000, 20000))
    assert [target_band_scheme(t) for t in ("vocals", "other", "bass", "drums", "guitar")] == \
        ["v7", "v7", "bass", "drums", "v7"]


@pytest.mark.parametrize("sample_rate, n_fft", [(44100, 2048), (44100, 4096), (48000, 2048), (22050, 1024),
                                                (16000, 1024), (8000, 256)])
@pytest.mark.parametrize("scheme", sorted(BAND_SCHEMES))
def test_every_scheme_covers_all_bins_with_positive_widths(scheme, sample_rate, n_fft):
    widths = band_widths(scheme, sample_rate, n_fft)
    assert sum(widths) == n_fft // 2 + 1
    assert all(isinstance(w, int) and w > 0 for w in widths)


def test_paper_schemes_band_counts():
    counts = {s: len(band_widths(s)) for s in BAND_SCHEMES}
    # v1: 22 bands of 1 kHz + 13 bins; v2: 16 + 2 + rest; v3: 8 + 4 + rest; v4: 10 + 7 + 4 + rest;
    # v5: 10 + 15 + 2 + rest; v6: 10 + 6 + 4 + 4 + rest
    assert counts == {"v1": 23, "v2": 19, "v3": 13, "v4": 22, "v5": 28, "v6": 25, "v7": 41, "bass": 30, "drums": 55}
    assert band_widths("v1")[-1] == 13 and band_widths("v3")[-1] == 1025 - 8 * 46 - 4 * 92


def test_widths_follow_the_sample_rate_and_n_fft():
    # every fixed band is floor(bw_Hz / bin spacing) bins: within one bin of its nominal width in Hz
    v7_hz = [100] * 10 + [250] * 12 + [500] * 8 + [1000] * 8 + [2000] * 2
    for sample_rate, n_fft, nominal in [(44100, 2048, v7_hz), (48000, 4096, v7_hz), (16000, 512, v7_hz[:30])]:
        spacing = sample_rate / 2 / (n_fft // 2 + 1)
        widths = band_widths("v7", sample_rate, n_fft)
        assert len(widths) == len(nominal) + 1  # the fixed bands, then the rest
        for width, hz in zip(widths, nominal):
            assert width * spacing <= hz < (width + 1) * spacing
    # twice the STFT size: every fixed band twice as many bins (or one more), same bands
    double = band_widths("v7", 44100, 4096)
    assert len(double) == 41 and all(w2 in (2 * w, 2 * w + 1) for w, w2 in zip(V7[:-1], double[:-1]))
    # half the sample rate and n_fft: the same bins per band below the new Nyquist (11.025 kHz: 3 bands of 1 kHz)
    half = band_widths("v7", 22050, 1024)
    assert half[:33] == V7[:33] and len(half) == 34 and half[-1] == 513 - sum(V7[:33])
    # 16 kHz: bands above 8 kHz are gone, the rest keeps its Hz layout (100 Hz → 12 bins at 2048)
    assert band_widths("v7", 16000, 2048) == [12] * 10 + [32] * 12 + [64] * 8 + [9]


def test_band_width_errors_are_clear():
    with pytest.raises(ValueError, match="unknown band scheme 'v8'.*v7, bass, drums"):
        band_widths("v8")
    with pytest.raises(ValueError, match="50 Hz bands, less than one bin.*larger n_fft"):
        band_widths("drums", 44100, 512)
    with pytest.raises(ValueError, match="unknown band scheme"):
        models.create("bsrnn", preset="tutorial", target="vocals", band_scheme="v9")


# --- registry and sizes (spec §4.5) ---------------------------------------------------------------
@pytest.mark.parametrize("target, count", [("vocals", 36_417_160), ("other", 36_417_160),
                                           ("bass", 32_797_192), ("drums", 41_024_392)])
def test_paper_presets_have_the_published_parameter_counts(target, count):
    with torch.device("meta"):
        model = models.create("bsrnn", preset="paper", target=target)
    assert model.num_parameters() == count
    assert model.band_schemes == {target: target_band_scheme(target)}


def test_parameter_breakdown_and_the_one_hidden_layer_masker():
    size = lambda module: sum(p.numel() for p in module.parameters())
    with torch.device("meta"):
        net = models.create("bsrnn", preset="paper", target="vocals").target_models["vocals"]
        one_layer = models.create("bsrnn", preset="paper", target="vocals", mask_hidden_layers=1)
        drums_v7 = models.create("bsrnn", preset="paper", target="drums", band_scheme="v7")
    assert size(net.band_split) == 271_748
    assert len(net.blocks) == 12 and size(net.blocks) == 20_554_752
    assert size(net.mask_estimation) == 15_590_660
    rnn = net.blocks[0].time_rnn
    assert (size(rnn.norm), size(rnn.blstm), size(rnn.proj)) == (256, 790_528, 65_664)
    assert rnn.blstm.hidden_size == 256 and rnn.blstm.bidirectional  # 2N per direction
    assert one_layer.num_parameters() == 25_648_264
    assert drums_v7.num_parameters() == 36_417_160 and drums_v7.band_schemes == {"drums": "v7"}


def test_registry_recipe_and_presets():
    from mssbook.training import DataConfig, TrainConfig

    entry = models.entry("bsrnn")
    assert entry.default_targets == ("vocals", "drums", "bass", "other")
    recipe = entry.training
    known = {f.name for f in fields(TrainConfig)} | {f.name for f in fields(DataConfig)} | {"targets"}
    assert set(recipe) <= known
    assert recipe["fragments"] == "auto" and recipe["samples_per_track"] == 233
    assert (recipe["lr"], recipe["weight_decay"], recipe["grad_clip"], recipe["batch_size"]) == (1e-3, 0.0, 5.0, 16)
    assert (recipe["lr_schedule"], recipe["lr_step"], recipe["lr_decay_gamma"], recipe["patience"]) == \
        ("step", 2, 0.98, 10)
    assert recipe["seq_dur"] == 3.0 and tuple(recipe["gain_db_range"]) == (-10.0, 10.0)
    assert recipe["silence_target_p"] == 0.1 and recipe["random_track_mix"] is True
    TrainConfig(**{k: v for k, v in recipe.items() if k in {f.name for f in fields(TrainConfig)}})  # valid
    assert {o.key for o in entry.cli_options} == {"band_scheme", "feature_dim", "num_repeat", "mask_hidden_layers"}
    tutorial = models.create("bsrnn", preset="tutorial", target="vocals")
    assert tutorial.num_parameters() == 576_024
    assert len(tutorial.target_models["vocals"].band_split.bands) == 41  # the paper's front end and v7
    again = models.from_config("bsrnn", tutorial.config)
    again.load_state_dict(tutorial.state_dict())  # same keys and shapes


# --- shapes (spec §4.3) -------------------------------------------------------------------------------
def test_paper_network_shapes_on_a_3s_excerpt():
    with torch.device("meta"):  # one band-sequence layer: the other 11 have the same shapes (and meta LSTMs are slow)
        model = models.create("bsrnn", preset="paper", target="vocals", num_repeat=1)
    frames = model.stft.frames(3 * 44100)
    assert frames == 259
    trace = {}
    mask = model.target_models["vocals"](torch.empty(2, 1025, frames, dtype=torch.complex64, device="meta"), trace)
    expected = {"spec_ri": (2, 2, 1025, 259), "band_split": (2, 41, 128, 259), "band_sequence": (2, 41, 128, 259),
                "mask_ri": (2, 2, 1025, 259)}
    assert {k: tuple(v.shape) for k, v in trace.items()} == expected
    assert mask.shape == (2, 1025, 259) and mask.dtype == torch.complex64


def test_stage_shapes_for_a_short_stereo_excerpt():
    model = tiny_bsrnn(sample_rate=44100, n_fft=2048, n_hop=512, feature_dim=4).eval()  # v7: 41 bands
    mixture = noise(1, 2, 44100 // 2)  # 0.5 s: 1 + 22050 // 512 = 44 frames
    with torch.no_grad():
        mix_spec = model.spectrogram(mixture)
        trace = {}
        model.target_models["vocals"](mix_spec.reshape(2, 1025, 44), trace)
        masks = model.masks(mix_spec)
        estimates = model.separate(mixture)
    assert mix_spec.shape == (1, 2, 1025, 44) and mix_spec.is_complex()
    assert trace["band_split"].shape == (2, 41, 4, 44) and trace["band_sequence"].shape == (2, 41, 4, 44)
    assert trace["mask_ri"].shape == (2, 2, 1025, 44)
    assert masks.shape == (1, 1, 2, 1025, 44) and masks.is_complex()
    assert estimates.shape == (1, 1, 2, 44100 // 2)


# --- properties of the network -----------------------------------------------------------------------
def test_an_all_ones_mask_returns_the_mixture():
    model = tiny_bsrnn(targets=("vocals", "bass"))
    for length in (SR, 1234, 100):  # 100 < n_fft: padded for the STFT, cut back
        mixture = noise(2, 2, length, seed=length)
        mix_spec = model.spectrogram(mixture)
        ones = torch.ones(2, 2, *mix_spec.shape[1:], dtype=torch.complex64)
        out = model.apply_masks(mixture, ones)
        assert out.shape == (2, 2, 2, length)
        assert torch.allclose(out, mixture[:, None].expand_as(out), atol=1e-5)
        with torch.no_grad():  # separate is that same synthesis with the network's masks
            assert torch.allclose(model.separate(mixture), model.apply_masks(mixture, model.masks(mix_spec)), atol=1e-6)
    with pytest.raises(ValueError, match="masks must be complex"):
        model.apply_masks(mixture, torch.ones(2, 2, 2, 129, 3))


def test_channels_are_processed_independently():
    model = tiny_bsrnn().eval()
    mixture = noise(2, 2, SR // 2)
    other_right = mixture.clone()
    other_right[:, 1] = noise(2, SR // 2, seed=5)
    with torch.no_grad():
        out = model.separate(mixture)
        swapped = model.separate(mixture.flip(1))
        changed = model.separate(other_right)
    assert torch.allclose(swapped, out.flip(2), atol=1e-6)  # swapping the inputs swaps the outputs
    assert torch.allclose(changed[:, :, 0], out[:, :, 0], atol=1e-6)  # left does not see right
    assert not torch.allclose(changed[:, :, 1], out[:, :, 1], atol=1e-3)


def test_any_input_length_works_and_bad_inputs_raise():
    model = tiny_bsrnn().eval()
    with torch.no_grad():
        for length in (SR, int(1.37 * SR), N_FFT - 1, 7, 1):
            out = model.separate(noise(1, 2, length, seed=length))
            assert out.shape == (1, 1, 2, length) and torch.isfinite(out).all(), length
    with pytest.raises(ValueError, match="built for 2 channels but the mixture has 1"):
        model.separate(torch.zeros(1, 1, SR))
    with pytest.raises(ValueError, match=r"\(batch, channels, samples\).*mixture\[None\]"):
        model.separate(torch.zeros(2, SR))
    with pytest.raises(ValueError, match="empty"):
        model.separate(torch.zeros(1, 2, 0))
    with pytest.raises(ValueError, match="complex spectrogram"):
        model.target_models["vocals"](torch.zeros(2, 129, 10))
    with pytest.raises(ValueError, match="at least one hidden layer"):
        tiny_bsrnn(mask_hidden_layers=0)


def test_mask_head_output_is_read_as_glu_halves_then_re_im_then_bins():
    """The §4.7 pitfall: the mask must come out of the head without mixing time and frequency."""
    torch.manual_seed(0)
    widths = [3, 5, 2]
    masker = MaskEstimation(widths, feature_dim=6, hidden_layers=2)
    x = torch.randn(2, 3, 6, 11)  # (B', K, N, T)
    with torch.no_grad():
        mask = masker(x)  # (B', 2, F, T)
        start = 0
        for k, w in enumerate(widths):
            h = masker.heads[k](x[:, k])  # (B', 4·BW, T): channels (value Re, value Im, gate Re, gate Im) × BW
            value_re, value_im, gate_re, gate_im = h.split(w, dim=1)
            assert torch.allclose(mask[:, 0, start:start + w], value_re * torch.sigmoid(gate_re), atol=1e-6)
            assert torch.allclose(mask[:, 1, start:start + w], value_im * torch.sigmoid(gate_im), atol=1e-6)
            start += w
    assert mask.shape == (2, 2, 10, 11)
    assert [len(head) for head in masker.heads] == [6] * 3  # norm, conv, tanh, conv, tanh, conv
    assert len(MaskEstimation(widths, 6, hidden_layers=1).heads[0]) == 4


def test_band_split_features_of_a_band_depend_on_its_bins_only():
    torch.manual_seed(0)
    split = BandSplit([3, 5, 2], feature_dim=4)
    x = torch.randn(2, 2, 10, 7)
    y = x.clone()
    y[:, :, 3:8] += torch.randn(2, 2, 5, 7)  # band 1 only
    with torch.no_grad():
        a, b = split(x), split(y)
    assert a.shape == (2, 3, 4, 7)
    assert torch.equal(a[:, [0, 2]], b[:, [0, 2]]) and not torch.allclose(a[:, 1], b[:, 1])


def test_without_the_time_blstm_the_network_is_frame_local():
    """With the time path's output projection at zero, every layer acts on one frame at a time (the
    GroupNorms' statistics pool all frames, but do not depend on their order): permuting the frames
    of the input permutes the mask's frames the same way. A time/frequency mix-up would not."""
    model = tiny_bsrnn(num_repeat=2)
    net = model.target_models["vocals"]
    spec = model.spectrogram(noise(3, SR // 4))  # (3, 129, 32)
    perm = torch.randperm(spec.shape[-1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert not torch.allclose(net(spec[..., perm]), net(spec)[..., perm], atol=1e-4)  # the time BLSTM sees order
        for block in net.blocks:
            block.time_rnn.proj.weight.zero_()
            block.time_rnn.proj.bias.zero_()
        assert torch.allclose(net(spec[..., perm]), net(spec)[..., perm], atol=1e-5)


def test_every_parameter_gets_a_gradient():
    model = tiny_bsrnn(targets=("vocals", "bass"), num_repeat=2).train()
    mixture, references = noise(2, 2, SR // 2), noise(2, 2, 2, SR // 2, seed=1)
    loss, logs = model.loss(mixture, references)
    assert set(logs) == {"l1_spec/vocals", "l1_wave/vocals", "l1_spec/bass", "l1_wave/bass"}
    assert loss.item() == pytest.approx(sum(logs.values()), rel=1e-5)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_loss_equals_a_hand_computation():
    model = tiny_bsrnn().eval()
    mixture, references = noise(2, 2, 1000), noise(2, 1, 2, 1000, seed=1)
    window = torch.hann_window(N_FFT)
    stft = lambda a: torch.stft(a.reshape(-1, 1000), N_FFT, HOP, window=window, center=True,
                                return_complex=True).reshape(2, 2, 129, -1)
    with torch.no_grad():
        mix, ref = stft(mixture), stft(references[:, 0])
        est = model.target_models["vocals"](mix.reshape(4, 129, -1)).reshape(mix.shape) * mix
        wave = torch.istft(est.reshape(4, 129, -1), N_FFT, HOP, window=window, length=1000).reshape(2, 2, 1000)
        expected = ((est.real - ref.real).abs().mean() + (est.imag - ref.imag).abs().mean()
                    + (wave - references[:, 0]).abs().mean())
        loss, logs = model.loss(mixture, references)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logs["l1_wave/vocals"] == pytest.approx((wave - references[:, 0]).abs().mean().item(), rel=1e-5)
    assert model.validation_loss(mixture, references).item() == pytest.approx(loss.item(), rel=1e-6)
    with pytest.raises(ValueError, match="references must be"):
        model.loss(mixture, references[:, :, :1])


def test_a_tiny_bsrnn_overfits_a_tiny_batch():
    model = tiny_bsrnn(seed=1, feature_dim=16).train()
    t = torch.arange(SR // 2) / SR
    vocals = 0.5 * torch.sin(2 * torch.pi * torch.tensor([440.0, 660.0])[:, None, None] * t).expand(2, 2, -1)
    accompaniment = noise(2, 2, t.numel(), seed=2, scale=0.2)
    mixture = vocals + accompaniment
    losses = fit_tiny_batch(model, mixture, vocals[:, None], steps=60, lr=3e-3)
    assert losses[-1] < losses[0] / 5
    mix_spec, voc_spec = model.spectrogram(mixture), model.spectrogram(vocals)  # the loss of answering the mixture
    unmasked = ((mix_spec - voc_spec).real.abs().mean() + (mix_spec - voc_spec).imag.abs().mean()
                + accompaniment.abs().mean())
    assert losses[-1] < unmasked.item() / 5


# --- separation -----------------------------------------------------------------------------------------
def test_separation_through_the_shared_separator():
    from mssbook.separation import separate

    model = tiny_bsrnn(targets=("vocals", "bass")).eval()
    assert model.separation_options() == {}
    audio = noise(2, int(1.3 * SR), seed=3).numpy()
    stems = separate(audio, SR, model=model, residual=True)
    assert list(stems) == ["vocals", "bass", "residual"]
    assert all(v.shape == audio.shape and np.isfinite(v).all() for v in stems.values())
    assert np.allclose(sum(stems.values()), audio, atol=1e-4)
    mono = separate(audio[0], SR, model=model, segment=0.5)  # dual mono, segments shorter than a second
    assert mono["vocals"].shape == audio[0].shape


# --- the trainer ------------------------------------------------------------------------------------------
def test_trainer_epochs_with_clipping_and_the_step_schedule(tmp_path):
    from mssbook.checkpoints import load_model
    from mssbook.training import TrainConfig, Trainer

    model = tiny_bsrnn()
    recipe = models.entry("bsrnn").training
    config = TrainConfig(epochs=3, batch_size=2, lr=recipe["lr"], weight_decay=recipe["weight_decay"],
                         grad_clip=recipe["grad_clip"], lr_schedule=recipe["lr_schedule"], lr_step=recipe["lr_step"],
                         lr_decay_gamma=recipe["lr_decay_gamma"], patience=recipe["patience"], progress=False, seed=1)
    trainer = Trainer(model, ToneDataset(n=2, length=2000), ToneDataset(n=1, length=2000), output=tmp_path / "run",
                      config=config)
    history = trainer.fit()
    assert len(history) == 3 and all(np.isfinite(h["train_loss"]) and np.isfinite(h["valid_loss"]) for h in history)
    assert [h["lr"] for h in history] == pytest.approx([1e-3, 1e-3, 0.98e-3])  # × 0.98 every 2 epochs
    rebuilt = load_model(tmp_path / "run" / "last.pt").eval()
    assert rebuilt.config == model.config and rebuilt.band_schemes == {"vocals": "v7"}
    x = noise(1, 2, SR // 2, seed=4)
    with torch.no_grad():
        assert torch.allclose(rebuilt.separate(x), model.eval().separate(x), atol=1e-6)


# --- activation checkpointing (issue 16) ------------------------------------------------------------
def _saved_bytes(model, mixture, references) -> int:
    """Bytes of the (distinct) non-parameter storages autograd keeps for the backward of the loss."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss, _ = model.loss(mixture, references)
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(size for ptr, size in storages.items() if ptr not in parameters)


def test_checkpointing_gives_the_same_gradients_and_keeps_far_less():
    mixture, references = noise(2, 2, SR // 2), noise(2, 1, 2, SR // 2, seed=1)
    grads, losses = {}, {}
    for flag in (False, True):
        model = tiny_bsrnn(num_repeat=2, checkpointing=flag).train()
        assert all(block.checkpointing == flag for block in model.target_models["vocals"].blocks)
        loss, _ = model.loss(mixture, references)
        loss.backward()
        losses[flag] = loss.item()
        grads[flag] = {name: p.grad.clone() for name, p in model.named_parameters()}
    assert losses[True] == losses[False]
    for name, grad in grads[False].items():
        assert torch.allclose(grads[True][name], grad, rtol=1e-5, atol=1e-7), name
    # what is kept for the backward pass: the BLSTMs' and mask MLPs' inputs only
    kept = {flag: _saved_bytes(tiny_bsrnn(num_repeat=2, checkpointing=flag).train(), mixture, references)
            for flag in (False, True)}
    assert kept[True] < kept[False] / 4, kept


def test_checkpointing_is_a_setting_of_the_paper_preset_only():
    assert models.create("bsrnn", preset="tutorial", target="vocals").target_models["vocals"].blocks[0].checkpointing \
        is False
    with torch.device("meta"):
        paper = models.create("bsrnn", preset="paper", target="vocals", num_repeat=1)
    net = paper.target_models["vocals"]
    assert net.blocks[0].checkpointing and net.mask_estimation.checkpointing
    assert paper.config["checkpointing"] is True
    # no weights of its own: the state dict is the same with it off
    with torch.device("meta"):
        plain = models.create("bsrnn", preset="paper", target="vocals", num_repeat=1, checkpointing=False)
    assert list(plain.state_dict()) == list(paper.state_dict())


def test_checkpointing_changes_nothing_at_inference():
    x = noise(1, 2, SR // 2, seed=5)
    with torch.no_grad():
        a = tiny_bsrnn(checkpointing=True).eval().separate(x)
        b = tiny_bsrnn(checkpointing=False).eval().separate(x)
    assert torch.equal(a, b)
