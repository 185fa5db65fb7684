"""ISMIR 2020 U-Nets (TFC, TDF, TFC-TDF, TDC, TDC-RNN): spec §5 counts, shapes, blocks, framework,
windowed separation, training."""

import argparse
import math
from dataclasses import fields

import numpy as np
import pytest
import torch
from torch import nn
from helpers import ToneDataset, fit_tiny_batch  # tests/helpers.py

import mssbook.models.tfc_tdf_unet  # noqa: F401  (registers tfc_net, tdf_net, tfc_tdf_net, tdc_net, tdc_rnn_net)
from mssbook import models
from mssbook.models.tfc_tdf_unet import TDC, TDF, TFC, parse_layers, parse_optional_int, parse_precision
from mssbook.utils import parse_bool

SR = 8000
NAMES = ("tfc_net", "tdf_net", "tfc_tdf_net", "tdc_net", "tdc_rnn_net")
# a tiny U-Net on a 64-point STFT (33 bins → 32 after the first conv): 3 blocks (one level), c = 4,
# windows of 32 frames = 496 samples, 32 trimmed from each side, so each window keeps 432
TINY = dict(sample_rate=SR, n_fft=64, hop_length=16, num_frame=32, n_blocks=3, internal_channels=4,
            n_internal_layers=2, bn_factor=4, min_bn_units=4, bn_factor_rnn=4, min_bn_units_rnn=4, min_trim=32)
WINDOW, TRIM, KEEP = 496, 32, 432


def tiny(name="tfc_tdf_net", targets=("vocals",), seed=0, **overrides):
    torch.manual_seed(seed)
    return models.create(name, preset="seed", target=targets, **{**TINY, **overrides})


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# --- sizes (spec §5.5), built on the meta device: no memory, no computation ----------------------------
@pytest.mark.parametrize("name, preset, count", [
    ("tfc_net", "seed", 639_316), ("tdf_net", "seed", 359_492), ("tfc_tdf_net", "seed", 987_476),
    ("tdc_net", "seed", 217_684), ("tdc_rnn_net", "seed", 1_532_228),
    ("tfc_tdf_net", "paper", 1_930_840), ("tdc_net", "paper", 535_924), ("tfc_tdf_net", "large", 2_232_132),
])
def test_presets_have_the_measured_parameter_counts(name, preset, count):
    with torch.device("meta"):
        model = models.create(name, preset=preset, target="vocals")
    assert model.num_parameters() == count
    assert list(model.target_models) == ["vocals"]


def test_registry_presets_and_the_seed_recipe():
    from mssbook.training import DataConfig, TrainConfig

    known = {f.name for f in fields(TrainConfig)} | {f.name for f in fields(DataConfig)} | {"targets"}
    for name in NAMES:
        entry = models.entry(name)
        assert {"seed", "tutorial"} <= set(entry.presets)
        recipe = entry.training
        assert set(recipe) <= known
        assert recipe["targets"] == ("vocals",) and recipe["optimizer"] == "adam" and recipe["lr"] == 1e-3
        assert recipe["lr_schedule"] == "none" and recipe["batch_size"] == 16 and recipe["weight_decay"] == 0
        assert (recipe["patience"], recipe["min_epochs"], recipe["epochs"]) == (100, 1000, 2000)
        assert recipe["source_augmentations"] == () and recipe["random_track_mix"] and recipe["validation"]
        TrainConfig(**{k: v for k, v in recipe.items() if k in {f.name for f in fields(TrainConfig)}})  # valid
        seed = entry.presets["seed"]
        assert (seed["spec_type"], seed["spec_est_mode"], seed["last_activation"]) == ("complex", "mapping", "identity")
        assert (seed["train_loss"], seed["val_loss"], seed["tfc_tdf_bias"]) == ("spec_mse", "raw_l1", False)
    assert set(models.entry("tfc_tdf_net").presets) == {"seed", "paper", "large", "tutorial"}
    assert set(models.entry("tdc_net").presets) == {"seed", "paper", "tutorial"}
    tutorial = models.create("tfc_tdf_net", preset="tutorial", target="vocals")
    assert tutorial.num_parameters() < 987_476 / 4
    again = models.from_config("tfc_tdf_net", tutorial.config)
    again.load_state_dict(tutorial.state_dict())  # same keys and shapes
    assert type(again.target_models["vocals"].encoders[0]).__name__ == "TFC_TDF"


# --- shapes (spec §5.2, §5.4) -------------------------------------------------------------------------
def stage_shapes(net, x):
    """Output shape of every stage of a U-Net, in call order, and the decoders' input shapes."""
    shapes, decoder_inputs, hooks = [], [], []

    def record(label):
        return lambda module, inputs, output: shapes.append((label, tuple(output.shape)))

    for name in ("first_conv", "encoders", "downsamplings", "mid_block", "upsamplings", "decoders", "last_conv"):
        module = getattr(net, name)
        for index, stage in enumerate(module if isinstance(module, nn.ModuleList) else [module]):
            label = name if not isinstance(module, nn.ModuleList) else f"{name}{index}"
            hooks.append(stage.register_forward_hook(record(label)))
    for decoder in net.decoders:
        hooks.append(decoder.register_forward_hook(lambda m, i, o: decoder_inputs.append(tuple(i[0].shape))))
    out = net(x)
    for hook in hooks:
        hook.remove()
    return shapes, decoder_inputs, tuple(out.shape)


def test_frequency_round_trip_and_the_shape_of_every_stage():
    # n_fft 256: F = 129 → 128 → 64 → 32 → 16 → back; time halved at levels 0 and 2 only
    model = tiny("tfc_tdf_net", n_fft=256, hop_length=64, num_frame=32, n_blocks=7, t_down_layers=[0, 2], min_trim=64)
    net = model.target_models["vocals"]
    assert net.time_multiple == 4
    shapes, decoder_inputs, out = stage_shapes(net, torch.randn(2, 4, 16, 129))
    assert shapes == [
        ("first_conv", (2, 4, 16, 128)),
        ("encoders0", (2, 4, 16, 128)), ("downsamplings0", (2, 4, 8, 64)),  # (2, 2)
        ("encoders1", (2, 4, 8, 64)), ("downsamplings1", (2, 4, 8, 32)),  # (1, 2): frequency only
        ("encoders2", (2, 4, 8, 32)), ("downsamplings2", (2, 4, 4, 16)),
        ("mid_block", (2, 4, 4, 16)),
        ("upsamplings0", (2, 4, 8, 32)), ("decoders0", (2, 4, 8, 32)),  # mirrors level 2
        ("upsamplings1", (2, 4, 8, 64)), ("decoders1", (2, 4, 8, 64)),
        ("upsamplings2", (2, 4, 16, 128)), ("decoders2", (2, 4, 16, 128)),
        ("last_conv", (2, 4, 16, 129)),
    ]
    assert decoder_inputs == [(2, 8, 8, 32), (2, 8, 8, 64), (2, 8, 16, 128)]  # 2c: upsampled + skip
    assert out == (2, 4, 16, 129)
    assert [e.tdf.mlp[0].out_features for e in net.encoders] == [32, 16, 8]  # F / 4 (bn_factor 4), at least 4
    # the TDC net samples frequency only (1-D conv per frame): T never changes
    tdc = tiny("tdc_net", n_fft=256, hop_length=64, n_blocks=5, min_trim=64).target_models["vocals"]
    shapes, _, out = stage_shapes(tdc, torch.randn(1, 4, 6, 129))
    assert [s for _, s in shapes] == [(1, 4, 6, 128), (1, 4, 6, 128), (1, 4, 6, 64), (1, 4, 6, 64), (1, 4, 6, 32),
                                      (1, 4, 6, 32), (1, 4, 6, 64), (1, 4, 6, 64), (1, 4, 6, 128), (1, 4, 6, 128),
                                      (1, 4, 6, 129)]
    assert tdc.time_multiple == 1


def test_large_preset_shapes_match_the_spec():
    with torch.device("meta"):
        net = models.create("tfc_tdf_net", preset="large", target="vocals").target_models["vocals"]
        shapes, _, out = stage_shapes(net, torch.empty(1, 4, 128, 2049))
    shapes = dict(shapes)
    assert shapes["first_conv"] == (1, 24, 128, 2048)
    assert [shapes[f"downsamplings{i}"] for i in range(4)] == [(1, 24, 64, 1024), (1, 24, 32, 512), (1, 24, 16, 256),
                                                               (1, 24, 8, 128)]
    assert shapes["decoders3"] == (1, 24, 128, 2048) and out == (1, 4, 128, 2049)
    assert [e.tdf.mlp[0].out_features for e in net.encoders] + [net.mid_block.tdf.mlp[0].out_features] == \
        [128, 64, 32, 16, 16]


# --- blocks (spec §5.3) ---------------------------------------------------------------------------------
def test_tdf_bias_switches_linear_bias_and_batchnorm_affine():
    off, on = TDF(3, 64, bn_factor=16, min_bn_units=8, bias=False), TDF(3, 64, bn_factor=16, min_bn_units=8, bias=True)
    single = TDF(3, 64, bn_factor=None)
    linears = [m for m in off.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in off.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 8), (8, 64)]  # max(64 // 16, 8) = 8 units
    assert all(m.bias is None for m in linears) and all(not m.affine and m.weight is None for m in norms)
    assert sum(p.numel() for p in off.parameters()) == 2 * 64 * 8
    assert all(m.bias is not None for m in on.modules() if isinstance(m, nn.Linear))
    assert all(m.affine for m in on.modules() if isinstance(m, nn.BatchNorm2d))
    assert sum(p.numel() for p in on.parameters()) == 2 * 64 * 8 + 8 + 64 + 2 * (3 + 3)
    assert [(m.in_features, m.out_features) for m in single.modules() if isinstance(m, nn.Linear)] == [(64, 64)]
    # one MLP over frequency, shared by every channel and frame
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 64)
    off.eval()
    lin0, lin1 = linears
    norm = math.sqrt(1 + 1e-5)  # a fresh BatchNorm in eval mode (mean 0, variance 1, no affine): x / √(1 + ε)
    expected = torch.relu(lin1(torch.relu(lin0(x) / norm)) / norm)
    assert torch.allclose(off(x), expected, atol=1e-5)


def test_tdc_rnn_block_structure():
    with torch.device("meta"):
        block = models.create("tdc_rnn_net", preset="seed", target="vocals").target_models["vocals"].encoders[0]
    assert block.rnn.input_size == 1024 and block.rnn.hidden_size == 64 and block.rnn.bidirectional
    assert block.rnn.num_layers == 1 and not block.rnn.bias
    linears = [m for m in block.mlp.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 64), (64, 1024)]  # 2·hidden → F/16 → F
    assert all(m.bias is None for m in linears)
    assert all(m.affine for m in block.mlp.modules() if isinstance(m, nn.BatchNorm2d))  # always affine


def capture_layers(block, x):
    """Inputs and outputs of every layer of a dense block."""
    seen = []
    hooks = [layer.register_forward_hook(lambda m, i, o: seen.append((i[0], o))) for layer in block.layers]
    with torch.no_grad():
        out = block(x)
    for hook in hooks:
        hook.remove()
    return seen, out


@pytest.mark.parametrize("kind", ["tfc", "tdc"])
def test_dense_blocks_concatenate_newest_first_and_output_the_last_layer(kind):
    torch.manual_seed(0)
    block = (TFC(3, 3, 2, 3, 3) if kind == "tfc" else TDC(3, 3, 2, 3)).eval()
    assert [layer[0].in_channels for layer in block.layers] == [3, 5, 7]
    assert [layer[0].out_channels for layer in block.layers] == [2, 2, 2]
    x = torch.randn(2, 3, 4, 10)
    seen, out = capture_layers(block, x)
    (in0, out0), (in1, out1), (in2, out2) = seen
    flat = x if kind == "tfc" else x.transpose(1, 2).reshape(8, 3, 10)  # TDC: frames as a batch (B·T, C, F)
    assert torch.equal(in0, flat)
    assert torch.equal(in1, torch.cat([out0, flat], 1))
    assert torch.equal(in2, torch.cat([out1, out0, flat], 1))  # newest first
    expected = out2 if kind == "tfc" else out2.reshape(2, 4, 2, 10).transpose(1, 2)
    assert out.shape == (2, 2, 4, 10) and torch.equal(out, expected)


@torch.no_grad()
def test_initialisation_follows_the_last_activation():
    # Xavier-normal for identity (and sigmoid, tanh), Kaiming-normal for ReLU (spec §5.6, weight_initialization.py)
    torch.manual_seed(0)
    net = models.create("tfc_tdf_net", preset="seed", target="vocals").target_models["vocals"]
    linear = net.encoders[0].tdf.mlp[0]  # Linear(1024 → 64)
    assert float(linear.weight.std()) == pytest.approx(math.sqrt(2 / (1024 + 64)), rel=0.03)
    assert float(net.first_conv[0].weight.std()) == pytest.approx(math.sqrt(2 / (8 + 48)), rel=0.2)
    relu = models.create("tfc_tdf_net", preset="seed", target="vocals", last_activation="relu").target_models["vocals"]
    assert float(relu.first_conv[0].weight.std()) == pytest.approx(math.sqrt(2 / 8), rel=0.2)


# --- the framework --------------------------------------------------------------------------------------
def test_complex_as_channels_order():
    model = tiny()
    t = torch.arange(2000) / SR
    audio = torch.stack([torch.sin(2 * math.pi * 440 * t), 0.5 * torch.cos(2 * math.pi * 1000 * t)])[None]
    stft = model.stft(audio)  # (1, 2, 33, T) complex
    spec = model.spectrogram(stft)  # (1, 4, T, 33)
    expected = torch.stack([stft[:, 0].real, stft[:, 1].real, stft[:, 0].imag, stft[:, 1].imag], 1).transpose(-1, -2)
    assert torch.equal(spec, expected)  # [Re L, Re R, Im L, Im R]
    magnitude = tiny(spec_type="magnitude")
    assert torch.equal(magnitude.spectrogram(stft), stft.abs().transpose(-1, -2))
    assert magnitude.target_models["vocals"].first_conv[0].in_channels == 2


@pytest.mark.parametrize("spec_type", ["complex", "magnitude"])
@pytest.mark.parametrize("spec_est_mode", ["mapping", "masking"])
@pytest.mark.parametrize("last_activation", ["identity", "sigmoid", "relu", "tanh"])
def test_every_framework_combination_separates_and_trains(spec_type, spec_est_mode, last_activation):
    model = tiny("tdc_net", targets=("vocals", "bass"), spec_type=spec_type, spec_est_mode=spec_est_mode,
                 last_activation=last_activation, train_loss="raw_l1" if spec_type == "magnitude" else "spec_mse")
    gen = torch.Generator().manual_seed(0)
    mixture, references = torch.randn(2, 2, 700, generator=gen), torch.randn(2, 2, 2, 700, generator=gen)
    loss, logs = model.loss(mixture, references)
    assert torch.isfinite(loss) and set(logs) == {f"{model.train_loss}/vocals", f"{model.train_loss}/bass"}
    model.eval()
    with torch.no_grad():
        out = model.separate(mixture)
        assert out.shape == (2, 2, 2, 700) and torch.isfinite(out).all()
        mix_stft = model.stft(mixture[..., :496])
        mix = model.spectrogram(mix_stft)
        raw = model.target_models["bass"](mix)
        expected = raw * mix if spec_est_mode == "masking" else raw
        assert torch.allclose(model.estimate(mix_stft)[:, 1], expected)


class Passthrough(nn.Module):
    """A 'network' whose estimate is the mixture: its input (mapping) or ones (masking)."""

    def __init__(self, masking=False):
        super().__init__()
        self.masking = masking

    def forward(self, x):
        return torch.ones_like(x) if self.masking else x


@pytest.mark.parametrize("spec_type, spec_est_mode", [("complex", "mapping"), ("complex", "masking"),
                                                      ("magnitude", "mapping"), ("magnitude", "masking")])
def test_a_model_returning_the_mixture_gives_the_mixture_back(spec_type, spec_est_mode):
    model = tiny(spec_type=spec_type, spec_est_mode=spec_est_mode)
    model.target_models["vocals"] = Passthrough(spec_est_mode == "masking")
    x = torch.randn(1, 2, 1500, generator=torch.Generator().manual_seed(1))
    for context in ("zeros", "audio"):
        assert torch.allclose(model.separate(x, context=context)[:, 0], x, atol=1e-5)


@pytest.mark.parametrize("length", [1, 37, KEEP, KEEP + 1, WINDOW, 3 * WINDOW + 5])
@pytest.mark.parametrize("context", ["zeros", "audio"])
def test_windowed_separation_covers_every_sample(length, context):
    model = tiny()
    model.target_models["vocals"] = Passthrough()
    assert (model.window_length, model.trim_length) == (WINDOW, TRIM)
    windows = []
    hook = model.stft.register_forward_hook(lambda m, i, o: windows.append(i[0]))
    x = torch.randn(2, 2, length, generator=torch.Generator().manual_seed(length))
    out = model.separate(x, batch_size=3, context=context)
    hook.remove()
    assert out.shape == (2, 1, 2, length) and torch.allclose(out[:, 0], x, atol=1e-5)
    chunks = math.ceil(length / KEEP)
    windows = torch.cat(windows).reshape(2, chunks, 2, WINDOW)  # batched 3 at a time: ceil(2·chunks / 3) calls
    padded = torch.nn.functional.pad(x, (TRIM, chunks * KEEP - length + TRIM))
    for k in range(chunks):
        assert torch.equal(windows[:, k, :, TRIM:TRIM + KEEP], padded[..., TRIM + k * KEEP:TRIM + (k + 1) * KEEP])
        if context == "zeros":  # the seed: every chunk extended with zeros, windows do not overlap
            assert not windows[:, k, :, :TRIM].any() and not windows[:, k, :, TRIM + KEEP:].any()
        else:  # the paper-era code: the neighbouring audio, windows overlap by 2·trim
            assert torch.equal(windows[:, k], padded[..., k * KEEP:k * KEEP + WINDOW])


def test_window_batches_do_not_change_the_result():
    model = tiny("tdc_rnn_net", targets=("vocals", "drums")).eval()
    x = 0.3 * torch.randn(1, 2, 2000, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(model.separate(x, batch_size=1), model.separate(x, batch_size=5), atol=1e-5)
    with pytest.raises(ValueError, match="context must be one of zeros, audio"):
        model.separate(x, context="mirror")


def test_separation_through_the_shared_separator():
    from mssbook.errors import MSSBookError
    from mssbook.separation import separate

    model = tiny("tfc_net", targets=("vocals", "bass")).eval()
    assert model.separation_options() == {"batch_size": None, "context": "audio"}
    audio = 0.3 * np.random.default_rng(3).standard_normal((2, SR)).astype(np.float32)
    stems = separate(audio, SR, model=model, residual=True)
    assert list(stems) == ["vocals", "bass", "residual"] and all(v.shape == (2, SR) for v in stems.values())
    assert np.allclose(sum(stems.values()), audio, atol=1e-5)
    again = separate(audio, SR, model=model, context="zeros", batch_size=1)
    assert again["vocals"].shape == (2, SR) and np.isfinite(again["vocals"]).all()
    with pytest.raises(MSSBookError, match="context"):
        separate(audio, SR, model=model, niter=1)


# --- training ---------------------------------------------------------------------------------------------
def test_every_parameter_gets_a_gradient():
    gen = torch.Generator().manual_seed(0)
    mixture, references = torch.randn(2, 2, WINDOW, generator=gen), torch.randn(2, 2, 2, WINDOW, generator=gen)
    for name in NAMES:
        for train_loss in ("spec_mse", "raw_l1"):
            model = tiny(name, targets=("vocals", "drums"), train_loss=train_loss, tfc_tdf_bias=True, bias_rnn=True,
                         bias_tdf=True).train()
            loss, logs = model.loss(mixture, references)
            assert loss.item() == pytest.approx(sum(logs.values()), rel=1e-5)
            loss.backward()
            for parameter_name, parameter in model.named_parameters():
                grad = parameter.grad
                assert grad is not None and grad.abs().sum() > 0, (name, train_loss, parameter_name)


def test_a_tiny_model_overfits_a_tiny_batch():
    model = tiny(seed=1, internal_channels=8).train()
    gen = torch.Generator().manual_seed(2)
    t = torch.arange(16 * 63) / SR  # 64 frames
    vocals = 0.5 * torch.sin(2 * math.pi * torch.tensor([400.0, 700.0])[:, None, None] * t).expand(2, 2, -1)
    mixture = vocals + 0.1 * torch.randn(2, 2, t.numel(), generator=gen)
    losses = fit_tiny_batch(model, mixture, vocals[:, None], steps=60, lr=1e-2)
    assert losses[-1] < losses[0] / 20  # about 90x in practice


def test_training_excerpts_and_seq_dur():
    seed = models.create("tfc_tdf_net", preset="seed", target="vocals")
    assert seed.training_seq_dur() == pytest.approx(1024 * 127 / 44100)  # 2.95 s
    samples = round(seed.training_seq_dur() * 44100)  # the sampler's rounding
    assert samples == 130048 and seed.stft.frames(samples) == 128
    # the loss uses the longest prefix whose frames the U-Net can halve: 1000 samples = 63 frames → 62
    model = tiny(n_blocks=3)
    frames = []
    hook = model.target_models["vocals"].register_forward_hook(lambda m, i, o: frames.append(i[0].shape[-2]))
    model.loss(torch.randn(1, 2, 1000), torch.randn(1, 1, 2, 1000))
    hook.remove()
    assert frames == [62] and model._trainable_length(1000) == 16 * 61
    with pytest.raises(ValueError, match=r"too short.*496 samples"):
        model.loss(torch.randn(1, 2, 20), torch.randn(1, 1, 2, 20))


@pytest.mark.parametrize("spec_type", ["complex", "magnitude"])
def test_losses_run_under_mixed_precision(spec_type):
    # the trainer runs loss() and validation_loss() under autocast (--precision 16); the iSTFT needs float32
    model = tiny(spec_type=spec_type, train_loss="raw_l1", val_loss="raw_l1")
    x, r = torch.randn(1, 2, 1000), torch.randn(1, 1, 2, 1000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = model.loss(x, r)
        with torch.no_grad():
            valid = model.eval().validation_loss(x, r)
    assert torch.isfinite(loss) and torch.isfinite(valid)


def test_one_trainer_epoch_with_the_seed_recipe_and_a_checkpoint_round_trip(tmp_path):
    from mssbook.checkpoints import load_model
    from mssbook.training import Trainer, TrainConfig

    model = tiny()
    recipe = models.entry("tfc_tdf_net").training
    names = {f.name for f in fields(TrainConfig)}
    settings = {k: v for k, v in recipe.items() if k in names and k not in ("epochs", "batch_size")}
    config = TrainConfig(epochs=1, batch_size=2, progress=False, seed=1, **settings)
    trainer = Trainer(model, ToneDataset(length=WINDOW), ToneDataset(n=1, length=2000), output=tmp_path / "run",
                      config=config)
    history = trainer.fit()
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"]) and np.isfinite(history[0]["valid_loss"])
    rebuilt = load_model(tmp_path / "run" / "last.pt").eval()
    assert rebuilt.name == "tfc_tdf_net" and rebuilt.config == model.config
    x = 0.1 * torch.randn(1, 2, 1200)
    with torch.no_grad():
        assert torch.allclose(rebuilt.separate(x), model.eval().separate(x), atol=1e-5)
        references = torch.stack([x, 0.5 * x], 1)[:, :1]
        expected = (model.separate(x) - references).abs().mean()  # raw_l1 on the whole track
        assert float(model.validation_loss(x, references)) == pytest.approx(float(expected), rel=1e-5)


# --- command-line options and errors -------------------------------------------------------------------
def test_cli_options_use_the_seed_names_and_real_converters():
    options = {o.flag: o for o in models.entry("tfc_tdf_net").cli_options}
    model_flags = ["--n_fft", "--hop_length", "--num_frame", "--n_blocks", "--internal_channels", "--n_internal_layers",
                   "--kernel_size_t", "--kernel_size_f", "--bn_factor", "--min_bn_units", "--tfc_tdf_bias",
                   "--spec_type", "--spec_est_mode", "--last_activation", "--train_loss", "--val_loss"]
    train_flags = {"--optimizer": "optimizer", "--lr": "lr", "--batch_size": "batch_size", "--patience": "patience",
                   "--min_epochs": "min_epochs", "--max_epochs": "epochs", "--precision": "amp"}
    assert all(options[f].where == "model" and options[f].key == f[2:] for f in model_flags)
    assert all(options[f].where == "train" and options[f].key == key for f, key in train_flags.items())
    assert options["--tfc_tdf_bias"].type is parse_bool and options["--precision"].type is parse_precision
    assert options["--spec_type"].choices == ("complex", "magnitude")
    assert parse_precision("16") is True and parse_precision("32") is False
    with pytest.raises(argparse.ArgumentTypeError, match="16 .* or 32"):
        parse_precision("64")
    assert parse_optional_int("None") is None and parse_optional_int("8") == 8
    assert parse_layers("0,2,4,6") == [0, 2, 4, 6] and parse_layers("[0, 2]") == [0, 2] and parse_layers("None") is None
    # the seed's type=bool turned "False" into True; these parse it as False
    assert (options["--window-batch"].key, options["--window-batch"].where) == ("batch_size", "separate")
    assert options["--window-context"].choices == ("zeros", "audio")
    parser = argparse.ArgumentParser()
    for option in options.values():
        if option.where != "separate":
            parser.add_argument(option.flag, dest=option.key, type=option.type, choices=option.choices)
    args = parser.parse_args(["--tfc_tdf_bias", "False", "--precision", "16", "--bn_factor", "None", "--n_fft", "4096"])
    assert (args.tfc_tdf_bias, args.amp, args.bn_factor, args.n_fft) == (False, True, None, 4096)
    tdf = {o.flag: o for o in models.entry("tdf_net").cli_options}
    assert tdf["--bias"].key == "tfc_tdf_bias" and tdf["--bias"].type is parse_bool and "--kernel_size_t" not in tdf
    rnn = {o.flag for o in models.entry("tdc_rnn_net").cli_options}
    assert {"--bn_factor_rnn", "--num_layers_rnn", "--bias_rnn", "--bn_factor_tdf", "--bias_tdf"} <= rnn


def test_bad_configurations_raise_clear_errors():
    with pytest.raises(ValueError, match="n_blocks must be an odd"):
        tiny(n_blocks=4)
    with pytest.raises(ValueError, match="n_fft = 200 gives F = 100 bins.*level 2"):
        tiny(n_fft=200, n_blocks=7, num_frame=64)
    with pytest.raises(ValueError, match="num_frame must be a multiple of 8"):
        tiny(n_blocks=7, n_fft=256, num_frame=36)
    with pytest.raises(ValueError, match="longer than the 64 samples trimmed"):
        tiny(num_frame=4)
    with pytest.raises(ValueError, match="apply to tfc_net, tfc_tdf_net and tdc_rnn_net only"):
        tiny("tdc_net", t_down_layers=[0])
    with pytest.raises(ValueError, match=r"levels 0..0"):
        tiny(t_down_layers=[3])
    with pytest.raises(ValueError, match="spec_type must be one of complex, magnitude"):
        tiny(spec_type="polar")
    with pytest.raises(ValueError, match="kernel_size_t and kernel_size_f must be odd"):
        tiny(kernel_size_t=2)
    model = tiny()
    with pytest.raises(ValueError, match="multiple of 2; got 5 frames"):
        model.target_models["vocals"](torch.randn(1, 4, 5, 33))
    with pytest.raises(ValueError, match="built for 2 channels but the mixture has 1"):
        model.separate(torch.zeros(1, 1, 100))
