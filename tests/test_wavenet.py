"""Wavenet: the seed's lengths and parameter counts, the true receptive field, windows, losses, training."""

from dataclasses import fields

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

import mssbook.models.wavenet  # noqa: F401  (registers "wavenet")
from mssbook import models
from mssbook.errors import MSSBookError
from mssbook.models.wavenet import MODE_RECIPES, MODES, NonCausalWavenet, Wavenet
from helpers import fit_tiny_batch  # tests/helpers.py

SR = 16000

# a tiny network: 2 stacks of dilations 1, 2, 4 (receptive field 2 · 2 · 7 + 1 = 29), target field 64
TINY = dict(stacks=2, dilations=2, residual_channels=8, skip_channels=8, head_channels=[16, 8], target_field_length=64)


def tiny_wavenet(target="multi-instrument", seed=0, **overrides) -> Wavenet:
    torch.manual_seed(seed)
    return models.create("wavenet", preset="paper", target=target, **{**TINY, **overrides})


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def noise(*shape, seed=0, scale=0.3):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --- the published configurations (spec §6.1, §6.4) --------------------------------------------
@pytest.mark.parametrize("target, count, n_out", [("multi-instrument", 3_277_763, 3), ("singing-voice", 3_277_249, 1)])
def test_paper_parameter_counts_and_lengths(target, count, n_out):
    with torch.device("meta"):
        model = models.create("wavenet", preset="paper", target=target)
    assert model.num_parameters() == count
    net = model.network
    size = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    # spec §6.4: 192 + 40 · 32 768 + 393 216 + 1 572 864 + 771 (or 257)
    assert (size(net.initial), len(net.blocks), size(net.blocks[0])) == (192, 40, 32_768)
    assert size(net.head) == 393_216 + 1_572_864 and size(net.output) == 256 * n_out + n_out
    assert [b.dilation for b in net.blocks[:10]] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert net.blocks[-1].dilation == 512 and net.blocks[10].dilation == 1
    assert (model.receptive_field_length, model.target_field_length, model.input_length) == (8185, 1601, 9785)
    assert (model.output_length, model.target_padding) == (1603, 1)
    # the output runs from input sample 4091 to 5693 (spec §6.1), around floor(9785 / 2) = 4892
    assert (model.output_start, model.output_start + model.output_length - 1) == (4091, 5693)
    assert model.output_start + 1 + model.target_field_length // 2 == 9785 // 2
    assert net.exact_receptive_field == 8191 and net.edge_context == 3
    assert model.training_seq_dur() == pytest.approx(9785 / 16000)
    assert (model.sample_rate, model.nb_channels, model.targets) == (16000, 1, MODES[target])
    out = net(torch.empty(2, 1, 9785, device="meta"))
    assert tuple(out.shape) == (2, n_out, 1603)
    assert tuple(net(torch.empty(1, 1, 8185 + 16001 - 1, device="meta")).shape) == (1, n_out, 16003)


def test_tutorial_preset_is_cpu_sized():
    """The figures documented next to TUTORIAL in mssbook/models/wavenet.py."""
    model = models.create("wavenet", preset="tutorial")
    assert model.mode == "multi-instrument"
    assert model.num_parameters() == 98_571
    assert models.create("wavenet", preset="tutorial", target="singing-voice").num_parameters() == 98_441
    assert (model.receptive_field_length, model.target_field_length, model.input_length) == (509, 2001, 2509)
    assert model.training_seq_dur() == pytest.approx(2509 / 16000)


@pytest.mark.parametrize("config, receptive_field", [
    (dict(stacks=2, dilations=2), 29),  # 2 · (1 + 2 + 4) · 2 + 1
    (dict(stacks=1, dilations=[1, 3], kernel_size=5, head_kernel_sizes=[3, 5]), 17),  # (1 + 3) · 4 + 1
    (dict(stacks=3, dilations=1, head_kernel_sizes=[1, 1]), 19),  # 3 · (1 + 2) · 2 + 1
])
def test_lengths_match_a_brute_force_measurement(config, receptive_field):
    """Perturb one input sample and see which outputs move: the footprint is the exact receptive
    field, i.e. the seed's field (the dilated stack) plus what the initial conv and the head read."""
    torch.manual_seed(0)
    net = NonCausalWavenet(n_out=2, residual_channels=6, skip_channels=5, head_channels=[7, 6],
                           **{"head_kernel_sizes": [3, 3], **config}).double()
    assert net.receptive_field == receptive_field
    length, q = 160, 80
    x = torch.randn(1, 1, length, dtype=torch.float64)
    bumped = x.clone()
    bumped[..., q] += 1.0
    with torch.no_grad():
        out, out_bumped = net(x), net(bumped)
    assert out.shape[-1] == net.output_length(length) == length - receptive_field + 1 + 2 * net.target_padding
    first = receptive_field // 2 - net.target_padding  # input index of output sample 0
    moved = ((out - out_bumped).abs().amax(dim=1)[0] > 0).nonzero().flatten() + first
    half = net.exact_receptive_field // 2
    assert moved.tolist() == list(range(q - half, q + half + 1))
    assert net.exact_receptive_field == receptive_field + 2 * net.edge_context


# --- windows (the seed's separate.py) ---------------------------------------------------------------
def test_one_window_equals_the_same_samples_of_a_one_shot_pass():
    model = tiny_wavenet().eval()
    net, T, R = model.network, model.target_field_length, model.receptive_field_length
    m, p = net.edge_context, model.target_padding
    x = noise(1, 700, seed=1)
    with torch.no_grad():
        whole = model.separate_heads(x, one_shot=True)  # (1, 3, 700)
        start = 250  # a window of T + R − 1 + 2m samples inside the signal
        window = x[:, None, start : start + T + R - 1 + 2 * m]
        own = net(window)[..., m + p : m + p + T]  # its T central outputs
    first = start + R // 2 + m  # the signal sample of the window's first kept output
    assert torch.allclose(own, whole[..., first : first + T], atol=1e-5)


def test_windowed_separation_agrees_for_any_target_field_and_batch():
    model = tiny_wavenet().eval()
    x = noise(2, 1, 1000, seed=2)
    with torch.no_grad():
        trained = model.separate(x)  # target field 64, 10 windows per pass
        longer = model.separate(x, target_field_length=301, batch_size=1)
        one_shot = model.separate(x, one_shot=True)
    assert trained.shape == (2, 4, 1, 1000)
    assert torch.allclose(longer, trained, atol=1e-5)
    assert torch.allclose(one_shot, trained, atol=1e-5)
    assert model.separation_options() == {"target_field_length": 64, "batch_size": None, "one_shot": False,
                                          "seed_windows": False}


def test_longer_windows_go_fewer_per_pass_so_memory_does_not_grow():
    """batch_size=None: as many windows as hold the samples of 10 windows of the trained field."""
    model = tiny_wavenet().eval()
    R, m = model.receptive_field_length, model.network.edge_context
    x = noise(1, 20000, seed=4)
    widths = []
    hook = model.network.register_forward_hook(lambda net, args, out: widths.append(tuple(args[0].shape)))
    with torch.no_grad():
        model.separate_heads(x)  # trained field: 10 windows per pass
        trained = widths[:]
        widths.clear()
        model.separate_heads(x, target_field_length=640)  # 10x the field: fewer windows per pass
    hook.remove()
    samples = (64 + R - 1 + 2 * m) * 10  # what one pass of 10 trained windows holds
    assert trained[0][0] == 10
    assert widths[0][0] == samples // (640 + R - 1 + 2 * m) < 10
    assert max(batch * width for batch, _, width in widths) <= samples


def test_seed_windows_differ_only_at_window_edges():
    """The seed's windows of R + T − 1 samples: the 3 outermost target samples of each window see
    zero padding (the initial conv and the head reach past R); every other sample is exact."""
    model = tiny_wavenet().eval()
    T, R, p = model.target_field_length, model.receptive_field_length, model.target_padding
    x = noise(1, 64 * 8, seed=3)
    with torch.no_grad():
        exact = model.separate_heads(x)
        seed = model.separate_heads(x, seed_windows=True)
        # the seed's first window by hand: R // 2 zeros, then the signal; keep [p, p + T)
        first = model.network(F.pad(x, (R // 2, 0))[:, None, : R + T - 1])[..., p : p + T]
    assert torch.allclose(seed[..., :T], first, atol=1e-6)
    position = torch.arange(x.shape[-1]) % T
    edges = (position < 3) | (position >= T - 3)
    difference = (exact - seed).abs().amax(dim=(0, 1))
    assert difference[~edges].max() < 1e-6
    assert difference[edges].max() > 1e-4


def test_the_last_source_is_the_residual_and_channels_are_separated_alone():
    for target, names in MODES.items():
        model = tiny_wavenet(target).eval()
        x = noise(2, 2, 333, seed=4)
        with torch.no_grad():
            out = model.separate(x)
            left = model.separate(x[:, :1])
        assert out.shape == (2, len(names), 2, 333)
        assert torch.allclose(out.sum(dim=1), x, atol=1e-5)  # other / accompaniment = the rest
        assert torch.allclose(out[:, :, :1], left, atol=1e-6)
        with torch.no_grad():
            heads = model.separate_heads(x.reshape(4, 333))
        assert torch.allclose(out[:, :-1].transpose(1, 2).reshape(4, -1, 333), heads, atol=1e-6)


def test_separation_options_are_checked():
    model = tiny_wavenet().eval()
    x = noise(1, 1, 200)
    for options, message in [({"target_field_length": 0}, "target_field_length"),
                             ({"target_field_length": 2.5}, "target_field_length"),
                             ({"batch_size": 0}, "batch_size"), ({"one_shot": "maybe"}, "one_shot")]:
        with pytest.raises(ValueError, match=message):
            model.separate(x, **options)
    with pytest.raises(ValueError, match=r"\(batch, channels, samples\)"):
        model.separate(x[0])
    assert model.separate(x, one_shot="true", seed_windows="no").shape == (1, 4, 1, 200)


# --- losses (spec §6.3) -----------------------------------------------------------------------------
def test_multi_instrument_loss_by_hand():
    model = tiny_wavenet().eval()
    N, start, out = model.input_length, model.output_start, model.output_length
    mixture, references = noise(3, 2, N + 40, seed=5), noise(3, 4, 2, N + 40, seed=6)
    with torch.no_grad():
        loss, logs = model.loss(mixture, references)
        # eval mode: the central window of N samples; stereo averaged to mono
        window = slice(20, 20 + N)
        heads = model.network(mixture.mean(1, keepdim=True)[..., window])
        refs = references.mean(2)[..., window][..., start : start + out]
        expected = [(heads[:, i] - refs[:, i]).abs().mean() for i in range(3)]
    assert heads.shape[-1] == out
    assert float(loss) == pytest.approx(float(sum(expected)), rel=1e-6)
    assert logs == pytest.approx({"l1/vocals": float(expected[0]), "l1/drums": float(expected[1]),
                                  "l1/bass": float(expected[2])}, rel=1e-6)
    with pytest.raises(ValueError, match=f"fragments of {N} samples"):
        model.loss(mixture[..., : N - 1], references[..., : N - 1])
    # validation: the same L1s over whole tracks separated in (long) windows
    with torch.no_grad():
        heads = model.separate_heads(mixture.mean(1))  # the trained target field, 10 windows per pass
        by_hand = sum((heads[:, i] - references.mean(2)[:, i]).abs().mean() for i in range(3))
        assert float(model.validation_loss(mixture, references)) == pytest.approx(float(by_hand), rel=1e-5)
    with pytest.raises(ValueError, match="references must be"):
        model.loss(mixture, references[:, :3])


def test_singing_voice_loss_by_hand():
    model = tiny_wavenet("singing-voice").eval()
    N, start, out = model.input_length, model.output_start, model.output_length
    vocals, accompaniment = noise(2, 1, N, seed=7), noise(2, 1, N, seed=8)
    mixture = vocals + accompaniment
    references = torch.stack([vocals, accompaniment], dim=1)  # (B, 2, 1, N)
    with torch.no_grad():
        loss, logs = model.loss(mixture, references)
        v_hat = model.network(mixture)[:, 0]
        v, a = vocals[:, 0, start : start + out], accompaniment[:, 0, start : start + out]
        expected = (v_hat - v).abs().mean() - 0.05 * (v_hat - a).abs().mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert logs["l1/vocals_vs_accompaniment"] == pytest.approx(float((v_hat - a).abs().mean()), rel=1e-6)


def test_training_mode_takes_a_random_window_of_longer_excerpts():
    model = tiny_wavenet().train()
    N = model.input_length
    mixture, references = noise(4, 1, 3 * N, seed=9), noise(4, 4, 1, 3 * N, seed=10)
    losses = set()
    for seed in range(3):
        torch.manual_seed(seed)
        losses.add(round(model.loss(mixture, references)[0].item(), 6))
    assert len(losses) == 3  # different windows
    torch.manual_seed(0)
    first = model.loss(mixture, references)[0].item()
    assert round(first, 6) in losses  # reproducible under the trainer's seed


def test_every_parameter_gets_a_gradient():
    for target in MODES:
        model = tiny_wavenet(target).train()
        N = model.input_length
        loss, _ = model.loss(noise(2, 2, N, seed=11), noise(2, len(model.targets), 2, N, seed=12))
        loss.backward()
        for name, parameter in model.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, (target, name)


def test_a_tiny_wavenet_overfits_a_tiny_batch():
    model = tiny_wavenet(seed=1).train()
    N = model.input_length
    t = torch.arange(N) / SR
    gen = torch.Generator().manual_seed(13)
    vocals = 0.3 * torch.sin(2 * torch.pi * torch.tensor([880.0, 1320.0])[:, None] * t)
    drums = 0.3 * (torch.rand(2, N, generator=gen) - 0.5) * (torch.sin(2 * torch.pi * 40 * t) > 0.5)
    bass = 0.4 * torch.sin(2 * torch.pi * torch.tensor([110.0, 82.0])[:, None] * t)
    other = 0.2 * torch.sin(2 * torch.pi * 3000.0 * t).expand(2, -1)
    references = torch.stack([vocals, drums, bass, other], dim=1)[:, :, None]  # (2, 4, 1, N)
    mixture = references.sum(dim=1)
    losses = fit_tiny_batch(model, mixture, references, steps=80, lr=3e-3)
    assert losses[-1] < losses[0] / 5


# --- registry, shared separator, trainer, checkpoints -----------------------------------------------
def test_registry_modes_recipe_and_options():
    from mssbook.training import DataConfig, TrainConfig

    entry = models.entry("wavenet")
    assert entry.default_targets == ("multi-instrument",)
    assert models.create("wavenet", preset="tutorial").targets == MODES["multi-instrument"]
    for mode, sources in MODES.items():
        for target in (mode, sources, [mode]):
            model = models.create("wavenet", preset="tutorial", target=target, **TINY)
            assert model.mode == mode and model.targets == sources
            again = models.from_config("wavenet", model.config)
            assert again.mode == mode and again.config == model.config
            again.load_state_dict(model.state_dict())  # same keys and shapes
    for bad in ("vocals", ("vocals", "drums"), ("singing-voice", "vocals")):
        with pytest.raises(ValueError, match="one of two modes"):
            models.create("wavenet", preset="tutorial", target=bad)
    known = {f.name for f in fields(TrainConfig)} | {f.name for f in fields(DataConfig)} | {"targets"}
    recipe = entry.training
    assert set(recipe) <= known
    assert (recipe["lr"], recipe["weight_decay"], recipe["batch_size"], recipe["epochs"]) == (1e-3, 0.0, 10, 250)
    assert (recipe["lr_schedule"], recipe["patience"], recipe["random_track_mix"]) == ("none", 16, False)
    assert tuple(recipe["source_augmentations"]) == () and recipe["targets"] == ("multi-instrument",)
    TrainConfig(**{k: v for k, v in recipe.items() if k in {f.name for f in fields(TrainConfig)}})  # valid
    assert recipe["monitor"] == "train_loss"  # Keras monitor='loss'
    # per-mode data settings on top of the shared recipe (models.training_recipe)
    assert set(MODE_RECIPES) == set(MODES)
    assert all(set(r) <= known for r in MODE_RECIPES.values())
    singing = models.training_recipe("wavenet", "singing-voice")
    assert (singing["fragments"], singing["fragment_p"], singing["batch_size"]) == ("auto", 0.5, 10)
    assert "fragments" not in models.training_recipe("wavenet", "multi-instrument")
    assert models.training_recipe("wavenet")["targets"] == ("multi-instrument",)
    options = {o.flag: o for o in entry.cli_options}
    assert set(options) == {"--target-field-length", "--window-batch", "--one-shot"}
    assert all(o.where == "separate" for o in options.values())
    assert [options[f].key for f in ("--target-field-length", "--window-batch", "--one-shot")] == \
        ["target_field_length", "batch_size", "one_shot"]
    assert options["--one-shot"].type("false") is False and options["--target-field-length"].type("16001") == 16001
    assert {o.key for o in options.values()} <= set(model.separation_options())


def test_shared_separator_returns_44k_stereo_estimates():
    from mssbook.separation import separate

    model = tiny_wavenet().eval()
    length = 11025  # 0.25 s at 44.1 kHz
    audio = noise(2, length, seed=14).numpy()
    stems = separate(audio, 44100, model=model)
    assert list(stems) == ["vocals", "drums", "bass", "other"]
    assert all(s.shape == (2, length) and s.dtype == np.float32 and np.isfinite(s).all() for s in stems.values())
    faster = separate(audio, 44100, model=model, target_field_length=500, batch_size=3)
    assert all(np.allclose(faster[k], stems[k], atol=1e-4) for k in stems)
    mono = separate(audio[0], 44100, model=tiny_wavenet("singing-voice").eval(), one_shot=True)
    assert list(mono) == ["vocals", "accompaniment"] and mono["vocals"].shape == (length,)
    with pytest.raises(MSSBookError, match="no separation option 'niter'"):
        separate(audio, 44100, model=model, niter=1)


class FragmentDataset(Dataset):
    """16 kHz excerpts: vocals a sine, drums noise bursts, bass a low sine, other noise; stereo mixture."""

    def __init__(self, model, n=4, length=None):
        self.n, self.targets = n, model.targets
        self.length = length or model.input_length

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        t = np.arange(self.length) / SR
        stems = {
            "vocals": 0.3 * np.sin(2 * np.pi * rng.uniform(300, 900) * t),
            "drums": 0.2 * rng.standard_normal(self.length) * (np.sin(2 * np.pi * 8 * t) > 0.7),
            "bass": 0.3 * np.sin(2 * np.pi * rng.uniform(50, 120) * t),
            "other": 0.05 * rng.standard_normal(self.length),
        }
        stems = {k: np.stack([v, 0.8 * v]) for k, v in stems.items()}  # (2, L) each
        mixture = sum(stems.values())
        stems["accompaniment"] = mixture - stems["vocals"]
        refs = np.stack([stems[t] for t in self.targets]).astype(np.float32)
        return torch.from_numpy(mixture.astype(np.float32)), torch.from_numpy(refs)


@pytest.mark.parametrize("target", list(MODES))
def test_one_trainer_epoch_and_a_checkpoint_round_trip(tmp_path, target):
    from mssbook.checkpoints import load_model
    from mssbook.training import TrainConfig, Trainer

    model = tiny_wavenet(target)
    recipe = models.entry("wavenet").training
    config = TrainConfig(epochs=1, batch_size=2, lr=recipe["lr"], weight_decay=recipe["weight_decay"],
                         lr_schedule=recipe["lr_schedule"], patience=recipe["patience"], progress=False, seed=1)
    trainer = Trainer(model, FragmentDataset(model), FragmentDataset(model, n=1, length=700),
                      output=tmp_path / "run", config=config)
    history = trainer.fit()
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"]) and np.isfinite(history[0]["valid_loss"])
    rebuilt = load_model(tmp_path / "run" / "last.pt")
    assert isinstance(rebuilt, Wavenet) and rebuilt.mode == target and rebuilt.targets == MODES[target]
    assert rebuilt.config == model.config
    x = noise(1, 2, 500, seed=15)
    with torch.no_grad():
        assert torch.allclose(rebuilt.separate(x), model.eval().separate(x), atol=1e-6)
