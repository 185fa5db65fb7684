"""Open-Unmix: parameter counts, shapes, weight compatibility with ``openunmix``, statistics, training."""

import numpy as np
import pytest
import torch

from mssbook import models
from mssbook.models.umx import UMX, OpenUnmix, input_statistics, openunmix_config_from_state_dict
from helpers import fit_tiny_batch  # tests/helpers.py

om = pytest.importorskip("openunmix.model")

SR = 44100
SIX_SECONDS = 6 * SR  # 264 600 samples


def perturbed_reference(seed=0, **kwargs):
    """A random ``openunmix.model.OpenUnmix`` in eval mode, with non-trivial scalers and BN statistics."""
    torch.manual_seed(seed)
    ref = om.OpenUnmix(**kwargs)
    with torch.no_grad():
        for tensor in list(ref.parameters()) + [b for n, b in ref.named_buffers() if "running" in n]:
            tensor.add_(0.1 * torch.randn_like(tensor))
            if tensor.is_floating_point() and tensor.ndim == 1:
                tensor.abs_()  # keeps running_var positive
    return ref.eval()


def small_umx(targets=("vocals", "drums"), **overrides):
    config = dict(hidden_size=16, nb_layers=1)
    config.update(overrides)
    return models.create("umx", preset="paper", target=targets, **config)


# --- registry and sizes ------------------------------------------------------------------
def test_paper_preset_has_the_published_parameter_count():
    assert "umx" in models.available()
    assert models.create("umx", preset="paper", target="vocals").num_parameters() == 8_893_348
    assert models.create("umx", preset="paper").num_parameters() == 35_573_392  # four targets


def test_tutorial_preset_is_small_and_keeps_the_paper_front_end():
    presets = models.presets("umx")
    tutorial = models.create("umx", preset="tutorial", target="vocals")
    assert tutorial.num_parameters() < 8_893_348 / 4
    for key in ("n_fft", "n_hop", "bandwidth", "sample_rate", "nb_channels"):
        assert presets["tutorial"][key] == presets["paper"][key]
    assert tutorial.max_bin == 1487


def test_config_round_trip_rebuilds_the_same_model():
    model = models.create("umx", preset="tutorial", target=["vocals", "bass"], hidden_size=32)
    again = models.from_config("umx", model.config)
    assert again.targets == ("vocals", "bass") and again.num_parameters() == model.num_parameters()
    again.load_state_dict(model.state_dict())  # same keys and shapes


# --- shapes ----------------------------------------------------------------------------------
def test_shapes_at_each_stage_for_a_six_second_excerpt():
    model = small_umx(targets=("vocals",), hidden_size=16).eval()
    audio = 0.1 * torch.randn(1, 2, SIX_SECONDS)
    mag = model.magnitudes(audio)  # center=False, as in training
    assert mag.shape == (1, 2, 2049, 255)
    assert model.magnitudes(audio, center=True).shape == (1, 2, 2049, 259)
    trace = {}
    with torch.no_grad():
        out = model.target_models["vocals"](mag, trace=trace)
    h = 16
    assert trace["normalized"].shape == (255, 1, 2, 1487)  # (T, B, C, max_bin)
    assert trace["encoder"].shape == (255, 1, h)
    assert trace["lstm"].shape == (255, 1, h)
    assert trace["skip"].shape == (255, 1, 2 * h)
    assert trace["decoder"].shape == (255, h)
    assert trace["mask"].shape == (255, 1, 2, 2049)
    assert out.shape == (1, 2, 2049, 255)
    with torch.no_grad():
        assert model.separate(audio[..., : 2 * SR]).shape == (1, 1, 2, 2 * SR)


# --- weight compatibility with openunmix -----------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [
        dict(hidden_size=32, nb_layers=3),
        dict(hidden_size=32, nb_layers=2, nb_channels=1),
        dict(hidden_size=32, nb_layers=2, unidirectional=True),
    ],
    ids=["stereo-blstm", "mono", "unidirectional"],
)
def test_openunmix_state_dict_loads_and_outputs_agree(config):
    ref = perturbed_reference(nb_bins=2049, max_bin=1487, **config)
    ours = OpenUnmix(nb_bins=2049, max_bin=1487, **config).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = torch.rand(2, config.get("nb_channels", 2), 2049, 40) * 5
    with torch.no_grad():
        expected, got = ref(x.clone()), ours(x)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
    assert openunmix_config_from_state_dict(ref.state_dict()) == {
        "hidden_size": 32,
        "nb_layers": config["nb_layers"],
        "unidirectional": config.get("unidirectional", False),
        "nb_channels": config.get("nb_channels", 2),
        "nb_bins": 2049,
        "max_bin": 1487,
    }


def separator_pair(targets=("vocals", "drums", "bass"), nb_channels=2, hidden_size=24):
    """mssbook's UMX and openunmix's Separator holding the same random weights."""
    ours = small_umx(targets=targets, hidden_size=hidden_size, nb_layers=2, nb_channels=nb_channels).eval()
    refs = {}
    for i, target in enumerate(targets):
        refs[target] = perturbed_reference(
            seed=i, nb_bins=2049, max_bin=1487, nb_channels=nb_channels, hidden_size=hidden_size, nb_layers=2
        )
        assert ours.load_target_state_dict(target, refs[target].state_dict()) == []
    return ours, refs


@pytest.mark.parametrize(
    "options",
    [
        dict(niter=0),
        dict(niter=1),
        dict(niter=1, residual=True),
        dict(niter=0, residual=True, softmask=True),
    ],
    ids=["niter0", "niter1", "niter1-residual", "niter0-residual-softmask"],
)
def test_separation_agrees_with_the_openunmix_separator(options):
    ours, refs = separator_pair()
    gen = torch.Generator().manual_seed(1)
    audio = 0.3 * torch.randn(2, 2, 2 * SR, generator=gen)
    separator = om.Separator(refs, wiener_win_len=30, **options).eval()  # 87 frames: three blocks
    with torch.no_grad():
        expected = separator(audio)
        got = ours.separate(audio, wiener_win_len=30, **options)
    assert got.shape == expected.shape == (2, 3 + options.get("residual", False), 2, 2 * SR)
    assert float((got - expected).norm() / expected.norm()) < 1e-5
    assert ours.output_names(options.get("residual", False))[-1] == ("residual" if options.get("residual") else "bass")


def test_mono_model_separation_agrees_with_the_openunmix_separator():
    ours, refs = separator_pair(targets=("vocals", "other"), nb_channels=1)
    audio = 0.3 * torch.randn(1, 2, 2 * SR, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = om.Separator(refs, niter=1, nb_channels=1).eval()(audio)
        got = ours.separate(audio, niter=1)
    assert got.shape == (1, 2, 2, 2 * SR)
    assert float((got - expected).norm() / expected.norm()) < 1e-5


def test_load_target_state_dict_ignores_extras_and_names_problems():
    ours = small_umx(targets=("vocals",), hidden_size=16)
    ref = om.OpenUnmix(nb_bins=2049, max_bin=1487, hidden_size=16, nb_layers=1)
    extra = dict(ref.state_dict(), sample_rate=torch.tensor(44100.0))
    assert ours.load_target_state_dict("vocals", extra) == ["sample_rate"]
    wider = om.OpenUnmix(nb_bins=2049, max_bin=1487, hidden_size=32, nb_layers=1).state_dict()
    with pytest.raises(ValueError, match="hidden_size=16"):
        ours.load_target_state_dict("vocals", wider)
    partial = {k: v for k, v in ref.state_dict().items() if k != "fc3.weight"}
    with pytest.raises(ValueError, match="fc3.weight"):
        ours.load_target_state_dict("vocals", partial)
    with pytest.raises(KeyError, match="drums"):
        ours.load_target_state_dict("drums", ref.state_dict())


# --- input statistics ------------------------------------------------------------------------
def numpy_mono_magnitudes(audio, n_fft=4096, hop=1024):
    """(C, L) → (T, F): center=False STFT magnitudes with a periodic Hann window, channel average."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    n_frames = 1 + (audio.shape[1] - n_fft) // hop
    frames = np.stack([audio[:, t * hop : t * hop + n_fft] for t in range(n_frames)], axis=1)  # (C, T, n_fft)
    return np.abs(np.fft.rfft(frames * window, axis=-1)).mean(axis=0)


def test_initialize_from_data_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    t = np.arange(int(2.5 * SR)) / SR
    mixtures = []
    for length in (int(2.5 * SR), int(1.2 * SR), 3000):  # the last one is shorter than a frame
        tone = np.sin(2 * np.pi * 440 * t[:length]) * (1 + np.sin(2 * np.pi * 3 * t[:length]))  # loud, modulated
        noise = 1e-7 * rng.standard_normal((2, length))  # very quiet elsewhere: triggers the std floor
        mixtures.append((tone[None] + noise).astype(np.float32))

    frames = np.concatenate([numpy_mono_magnitudes(m.astype(np.float64)) for m in mixtures[:2]])  # (T, F)
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    floor = 1e-4 * std.max()
    assert (std < floor).sum() > 100  # the floor matters in this example
    std = np.maximum(std, floor)

    got_mean, got_std = input_statistics(mixtures, frames_per_block=7)  # several blocks per track
    assert np.allclose(got_mean, mean, rtol=1e-4, atol=1e-5 * mean.max())
    assert np.allclose(got_std, std, rtol=1e-4, atol=1e-5 * std.max())

    model = small_umx(targets=("vocals", "bass"))
    model.initialize_from_data(mixtures)
    for network in model.target_models.values():
        assert network.input_mean.shape == (1487,)
        assert np.allclose(network.input_mean.detach().numpy(), -got_mean[:1487], rtol=1e-6)
        assert np.allclose(network.input_scale.detach().numpy(), 1 / got_std[:1487], rtol=1e-6)
    with pytest.raises(ValueError, match="shorter than n_fft"):
        input_statistics([mixtures[2]])


def test_silent_bins_get_unit_std_like_scikit_learn():
    mean, std = input_statistics([np.zeros((2, 3 * 4096)), torch.zeros(1, 5000)])
    assert np.all(mean == 0) and np.all(std == 1)


# --- training --------------------------------------------------------------------------------
def test_every_parameter_gets_a_gradient():
    model = small_umx(targets=("vocals", "drums"), nb_layers=2).train()
    gen = torch.Generator().manual_seed(0)
    mixture = torch.randn(2, 2, 8 * 1024 + 4096, generator=gen)
    references = torch.randn(2, 2, 2, 8 * 1024 + 4096, generator=gen)
    loss, logs = model.loss(mixture, references)
    assert set(logs) == {"mse/vocals", "mse/drums"}
    assert loss.item() == pytest.approx(logs["mse/vocals"] + logs["mse/drums"], rel=1e-5)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_loss_is_the_magnitude_mse_of_the_reference_module():
    model = small_umx(targets=("vocals",), hidden_size=16).eval()
    ref = om.OpenUnmix(nb_bins=2049, max_bin=1487, hidden_size=16, nb_layers=1).eval()
    ref.load_state_dict(model.target_models["vocals"].state_dict())
    gen = torch.Generator().manual_seed(3)
    mixture, vocals = torch.randn(1, 2, 20000, generator=gen), torch.randn(1, 1, 2, 20000, generator=gen)
    stft = om.make_filterbanks(n_fft=4096, n_hop=1024, center=False)[0]
    norm = om.ComplexNorm()
    expected = torch.nn.functional.mse_loss(ref(norm(stft(mixture))), norm(stft(vocals[:, 0])))
    with torch.no_grad():
        assert float(model.loss(mixture, vocals)[0]) == pytest.approx(float(expected), rel=1e-5)


def test_a_small_umx_learns_to_pull_a_sine_out_of_noise(one_thread):
    torch.manual_seed(0)
    sr, n = 8000, 8000
    model = models.create(
        "umx", preset=None, target="vocals", sample_rate=sr, n_fft=256, n_hop=64, bandwidth=None,
        hidden_size=32, nb_layers=1,
    ).train()
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(n) / sr
    freqs = torch.tensor([300.0, 500.0, 700.0, 900.0])[:, None, None]
    vocals = 0.5 * torch.sin(2 * torch.pi * freqs * t).expand(4, 2, n)  # (B, C, L)
    noise = 0.3 * torch.randn(4, 2, n, generator=gen)
    mixture, references = vocals + noise, vocals[:, None]
    model.initialize_from_data(list(mixture.numpy()))
    losses = fit_tiny_batch(model, mixture, references, steps=100, lr=1e-2)
    assert losses[-1] < losses[0] / 20  # about 85x in practice
    model.eval()
    with torch.no_grad():
        estimate = model.separate(mixture)[:, 0]
    snr_in = 10 * torch.log10(vocals.square().sum() / noise.square().sum())
    snr_out = 10 * torch.log10(vocals.square().sum() / (estimate - vocals).square().sum())
    assert snr_out > snr_in + 10  # about +14 dB in practice


# --- options and errors ----------------------------------------------------------------------
def test_separation_options_and_output_names():
    model = small_umx(targets=("vocals", "drums"))
    assert model.separation_options() == {"niter": 1, "softmask": False, "residual": False, "wiener_win_len": 300,
                                         "runtime": "torch"}
    assert model.output_names() == ["vocals", "drums"]
    assert model.output_names(residual=True) == ["vocals", "drums", "residual"]
    assert small_umx(residual=True, wiener_win_len=None).separation_options()["wiener_win_len"] == 0


def test_single_target_defaults_to_no_em_and_refuses_it_explicitly():
    model = small_umx(targets=("vocals",)).eval()
    audio = 0.1 * torch.randn(1, 2, SR)
    with torch.no_grad():
        assert model.separate(audio).shape == (1, 1, 2, SR)  # default niter falls back to 0
        assert model.separate(audio, residual=True).shape == (1, 2, 2, SR)  # EM with the residual
        with pytest.raises(ValueError, match="two sources"):
            model.separate(audio, niter=1)


def test_bad_inputs_raise_clear_errors():
    model = small_umx(targets=("vocals", "drums"))
    with pytest.raises(ValueError, match=r"\(batch, channels, samples\)"):
        model.separate(torch.zeros(2, SR))
    with pytest.raises(ValueError, match="2 channels but the mixture has 1"):
        model.separate(torch.zeros(1, 1, SR))
    with pytest.raises(ValueError, match="references must be"):
        model.loss(torch.zeros(1, 2, SR), torch.zeros(1, 3, 2, SR))
    with pytest.raises(ValueError, match="shorter than one frame"):
        model.loss(torch.zeros(1, 2, 1000), torch.zeros(1, 2, 2, 1000))
    with pytest.raises(ValueError, match="2049 bins"):
        model.target_models["vocals"](torch.zeros(1, 2, 1487, 10))
    with pytest.raises(ValueError, match="reserved"):
        UMX(targets=("vocals", "residual"), hidden_size=16, nb_layers=1)
    # a mono model accepts any channel count: it averages the magnitudes, as the reference
    mono = small_umx(targets=("vocals", "drums"), nb_channels=1).eval()
    with torch.no_grad():
        assert mono.separate(0.1 * torch.randn(1, 2, SR), niter=0).shape == (1, 2, 2, SR)
