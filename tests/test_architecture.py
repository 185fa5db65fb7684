"""Architecture figures (mssbook.architecture): drawn from the model object, so they follow it."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from mssbook import models  # noqa: E402
from mssbook.architecture import architecture_figure, figure_texts  # noqa: E402
from mssbook.errors import MSSBookError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _create(name, preset="tutorial", **overrides):
    if name in ("xumx", "wavenet"):  # X-UMX's branches are joint; the Wavenet's targets are a mode
        return models.create(name, preset=preset, **overrides)
    return models.create(name, preset=preset, target="vocals", **overrides)


def _text(fig) -> str:
    return "\n".join(figure_texts(fig))


def _hook_shapes(modules, run):
    shapes = {}

    def hook_for(key):
        def hook(_module, _inputs, out):  # returns None: the output is left as it is
            shapes.setdefault(key, tuple((out[0] if isinstance(out, tuple) else out).shape))
        return hook

    handles = [m.register_forward_hook(hook_for(key)) for key, m in modules.items()]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return shapes


@pytest.mark.parametrize("name", models.available())
def test_every_family_draws_its_real_parameter_count(name):
    model = _create(name)
    fig = architecture_figure(model)
    text = _text(fig)
    # the model's own count is printed, and the boxes add up to the drawn network(s)
    assert f"{model.num_parameters():,d}" in text
    assert sum(b.params for b in fig.blocks.values()) == model.num_parameters()
    for block in fig.blocks.values():
        assert f"{block.params:,d}" in text
    assert len(fig.blocks) >= 5


def test_presets_give_different_figures():
    tutorial, paper = _create("umx", "tutorial"), _create("umx", "paper")
    a, b = _text(architecture_figure(tutorial)), _text(architecture_figure(paper))
    assert a != b
    assert "8,893,348" in b and "8,893,348" not in a  # the published per-target count (spec §1.6)
    assert "Linear 2974→512" in b and "Linear 2974→128" in a  # fc1: 2 × 1487 bins → hidden size
    assert "3-layer bidirectional LSTM" in b and "2-layer bidirectional LSTM" in a


def test_umx_shapes_are_the_hooked_shapes():
    model = _create("umx", hidden_size=96, nb_layers=1)
    net = model.target_models["vocals"]
    fig = architecture_figure(model, seconds=0.5)
    audio = torch.zeros(1, 2, 22050)
    shapes = _hook_shapes({"lstm": net.lstm, "bn1": net.bn1, "bn3": net.bn3},
                          lambda: net.eval()(model.magnitudes(audio)))
    frames = 1 + (22050 - 4096) // 1024  # center=False frames of 0.5 s
    assert shapes["lstm"] == (frames, 1, 96)
    text = _text(fig)
    for shape in shapes.values():
        assert str(shape) in text
    assert "(x + mean) · scale" in text and f"{2 * net.max_bin:,d} params" in text
    assert fig.blocks["lstm"].shape == shapes["lstm"]
    assert fig.blocks["lstm"].params == sum(p.numel() for p in net.lstm.parameters())


def test_unet_figure_is_a_u_with_the_hooked_skips():
    model = _create("tfc_tdf_net")
    net = model.target_models["vocals"]
    fig = architecture_figure(model, seconds=1.0)
    n = len(net.encoders)
    assert sum(key.startswith("enc") for key in fig.blocks) == n
    assert sum(key.startswith("dec") for key in fig.blocks) == n
    # encoders go down, decoders come back up: level i's encoder and its decoder share a row
    for i in range(n):
        assert fig.blocks[f"enc{i}"].xy[1] == fig.blocks[f"dec{n - 1 - i}"].xy[1]
        assert fig.blocks[f"enc{i}"].xy[0] < fig.blocks[f"dec{n - 1 - i}"].xy[0]
    spec = model.spectrogram(model.stft(torch.zeros(1, 2, 44100)))  # 1 s: 87 centred frames of hop 512
    spec = spec[..., : spec.shape[-2] // net.time_multiple * net.time_multiple, :]  # 84, a multiple of 4
    shapes = _hook_shapes({f"enc{i}": e for i, e in enumerate(net.encoders)}, lambda: net.eval()(spec))
    text = _text(fig)
    for i in range(n):
        assert f"skip {shapes[f'enc{i}']}" in text
    assert "TFC_TDF" in text


def test_xumx_bridges_follow_the_model():
    bridged = architecture_figure(_create("xumx"))
    plain = architecture_figure(_create("xumx", bridges=False))
    assert "bridge1" in bridged.blocks and "bridge2" in bridged.blocks
    assert "bridge1" not in plain.blocks and "bridges off" in _text(plain)
    assert sum(key.startswith("lstm") for key in bridged.blocks) == 4


def test_d3net_bsrnn_wavenet_labels_hold_their_configuration():
    d3 = _create("d3net")
    net = d3.target_models["vocals"]
    text = _text(architecture_figure(d3))
    assert f"bins [0, {net.edges[1]})" in text and f"bins [0, {net.valid_bins})" in text
    assert f"k = {[b.growth for b in [*net.full_net.down, net.full_net.bottleneck, *net.full_net.up]]}" in text

    bs = _create("bsrnn", num_repeat=3)
    fig = architecture_figure(bs)
    widths = bs.target_models["vocals"].widths
    assert f"K = {len(widths)} bands" in _text(fig)
    assert sum(key.startswith("block") for key in fig.blocks) == 3
    assert fig.blocks["split"].shape == (2, len(widths), 16, fig.blocks["in"].shape[-1])  # (B·C, K, N, T)

    wn = _create("wavenet")
    fig = architecture_figure(wn)
    assert f"R = {wn.receptive_field_length} samples" in _text(fig)
    assert sum(key.startswith("b") and key[1:].isdigit() for key in fig.blocks) == len(wn.network.blocks)
    assert fig.blocks["output"].shape == (1, len(wn.heads), wn.output_length)  # one training fragment in


def test_drawing_leaves_the_model_and_random_state_alone():
    model = _create("umx").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    architecture_figure(model)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


def test_generic_fallback_draws_the_children():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 3, 5)
            self.pool = nn.AdaptiveAvgPool1d(4)
            self.proj = nn.Linear(4, 2)

        def forward(self, x):
            return self.proj(self.pool(self.conv(x)))

    fig = architecture_figure(Tiny(), example_input=torch.zeros(1, 1, 20))
    text = _text(fig)
    assert "(1, 3, 16)" in text and "(1, 3, 4)" in text
    assert "Conv1d" in text and f"{3 * 5 + 3:,d} params" in text


def test_bad_input_is_explained():
    with pytest.raises(MSSBookError, match="seconds"):
        architecture_figure(_create("umx"), seconds=-1)
    with pytest.raises(MSSBookError, match="torch module"):
        architecture_figure("umx")
    with pytest.raises(MSSBookError, match="no target"):
        architecture_figure(_create("umx"), target="drums")
    with pytest.raises(MSSBookError, match="example_input"):
        architecture_figure(nn.Sequential(nn.Linear(2, 2)))
