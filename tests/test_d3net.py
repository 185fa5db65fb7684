"""D3Net: paper parameter counts, §3.3 shapes, block structure, band copy, training, separation."""

from dataclasses import fields

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from helpers import ToneDataset, fit_tiny_batch  # tests/helpers.py

import mssbook.models.d3net  # noqa: F401  (registers "d3net")
import mssbook.separation
from mssbook import models
from mssbook.models import d3net as d3net_module
from mssbook.models.d3net import D3Block, D3NetNetwork, MultidilatedD2Block, network_config

SR = 8000

# a tiny network on a 256-point STFT (129 bins): bands [0, 32) and [32, 96), full band [0, 96)
TINY = dict(valid_bins=96, band_splits=[32], band_init=[4, 2], band_ks=[[4, 4, 4], [2, 2, 2]],
            band_layers=[[2, 2, 2], [1, 1, 1]], band_blocks=[2, 1], full_init=4, full_ks=[4, 4, 4, 4, 4],
            full_layers=[2, 2, 3, 2, 2], full_blocks=2, final_k=4, final_layers=2, patch_length=32, patch_hop=16)


def tiny_d3net(targets=("vocals",), seed=0, **overrides):
    torch.manual_seed(seed)
    config = dict(sample_rate=SR, n_fft=256, n_hop=64, network=TINY, train_frames=64)
    config.update(overrides)
    return models.create("d3net", preset="paper", target=targets, **config)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# --- registry and sizes (spec §3.5) ----------------------------------------------------------
@pytest.mark.parametrize("target, count", [("vocals", 2_967_407), ("other", 2_967_407),
                                           ("drums", 2_873_284), ("bass", 2_419_822)])
def test_paper_presets_have_the_published_parameter_counts(target, count):
    model = models.create("d3net", preset="paper", target=target)
    assert model.num_parameters() == count
    net = model.target_models[target]
    scalers = [net.in_offset, net.in_scale, net.decode_scale, net.decode_bias]
    assert sum(p.numel() for p in scalers) == 7298
    assert torch.all(net.decode_scale == 1) and torch.all(net.decode_bias == 1)  # both start at 1
    if target == "vocals":  # the breakdown of spec §3.5
        size = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
        assert [size(m) for m in net.band_nets] == [1_330_964, 454]
        assert size(net.full_net) == 1_614_385 and size(net.final) == 12_810 and size(net.band_match) == 52
        assert [size(m) for m in net.band_init] + [size(net.full_init)] == [608, 152, 608]
        assert sum(b.numel() for n, b in net.named_buffers() if "running" in n) == 8082


def test_registry_recipe_and_presets():
    from mssbook.training import DataConfig, TrainConfig

    entry = models.entry("d3net")
    known = {f.name for f in fields(TrainConfig)} | {f.name for f in fields(DataConfig)} | {"targets"}
    assert set(entry.training) <= known
    recipe = entry.training
    assert (recipe["lr"], recipe["weight_decay"], recipe["batch_size"], recipe["epochs"]) == (1e-3, 1e-4, 6, 50)
    assert recipe["lr_schedule"] == "multistep" and list(recipe["lr_milestones"]) == [40]
    assert recipe["lr_decay_gamma"] == 0.1 and recipe["validation"] is False
    assert tuple(recipe["gain_range"]) == (0.75, 1.25) and "channelswap" in recipe["source_augmentations"]
    TrainConfig(**{k: v for k, v in recipe.items() if k in {f.name for f in fields(TrainConfig)}})  # valid
    tutorial = models.create("d3net", preset="tutorial", target="vocals")
    assert tutorial.num_parameters() < 2_967_407 / 50
    assert tutorial.patches == {"vocals": (256, 128)}
    assert models.create("d3net", preset="tutorial", target="bass").patches == {"bass": (384, 192)}
    again = models.from_config("d3net", tutorial.config)
    again.load_state_dict(tutorial.state_dict())  # same keys and shapes


# --- shapes (spec §3.3), on the meta device: no computation ----------------------------------
def test_vocals_shapes_at_each_stage():
    with torch.device("meta"):
        model = models.create("d3net", preset="paper", target="vocals").eval()
    trace = {}
    out = model.target_models["vocals"](torch.empty(1, 2, 2049, 256, device="meta"), trace=trace)
    expected = {
        "input": (1, 2, 256, 2049), "normalized": (1, 2, 256, 1600),
        "band0.down0": (1, 16, 256, 256), "band0.down1": (1, 18, 128, 128), "band0.down2": (1, 20, 64, 64),
        "band0.bottleneck": (1, 22, 32, 32), "band0.up0": (1, 20, 64, 64), "band0.up2": (1, 16, 256, 256),
        "band1.down0": (1, 2, 256, 1344), "band1.bottleneck": (1, 2, 64, 336), "band1.up1": (1, 2, 256, 1344),
        "band1": (1, 16, 256, 1344), "bands": (1, 16, 256, 1600),
        "full.down0": (1, 13, 256, 1600), "full.bottleneck": (1, 17, 16, 100), "full.up3": (1, 11, 256, 1600),
        "concat": (1, 27, 256, 1600), "final": (1, 12, 256, 1600), "gate": (1, 2, 256, 1600),
        "decoded": (1, 2, 256, 1600),
    }
    for name, shape in expected.items():
        assert tuple(trace[name].shape) == shape, name
    assert tuple(out.shape) == (1, 2, 2049, 256)
    with torch.device("meta"):
        bass = models.create("d3net", preset="paper", target="bass").target_models["bass"]
    trace = {}
    bass(torch.empty(1, 2, 2049, 256, device="meta"), trace=trace)
    assert tuple(trace["band0.bottleneck"].shape) == (1, 20, 32, 24)  # 192 bins / 8
    assert tuple(trace["band1.bottleneck"].shape) == (1, 2, 32, 176)  # 1408 bins / 8: three down-samplings


def test_divisibility_rules_raise_clear_errors():
    with torch.device("meta"):
        net = models.create("d3net", preset="paper", target="vocals").target_models["vocals"]
        assert net.frame_multiple == 16
        with pytest.raises(ValueError, match="multiple of 16.*got 250 frames"):
            net(torch.empty(1, 2, 2049, 250))
        with pytest.raises(ValueError, match=r"band 0 spans bins 0..250 \(250 bins\).*2\^3 = 8"):
            D3NetNetwork(band_splits=[250])
        with pytest.raises(ValueError, match="valid_bins = 1592 is not a multiple of 2\\^4 = 16"):
            D3NetNetwork(valid_bins=1592, band_splits=[256])
        with pytest.raises(ValueError, match="2049 bins"):
            net(torch.empty(1, 2, 1600, 256))
    with pytest.raises(ValueError, match="patch_length 42 must be a multiple of 4"):
        tiny_d3net(network=dict(TINY, patch_length=42, patch_hop=21))


# --- blocks (spec §3.2) ------------------------------------------------------------------------
def test_multidilated_d2_block_structure_and_shared_batchnorms():
    torch.manual_seed(0)
    c_in, g, L = 5, 3, 4
    block = MultidilatedD2Block(c_in, g, L).eval()
    # one BN → ReLU → conv per source chunk x_0 … x_{L−1}; the conv of x_i has dilation 2^i and
    # feeds all later layers at once (g·(L − i) channels)
    assert len(block.layers) == L
    assert sum(isinstance(m, nn.BatchNorm2d) for m in block.modules()) == L
    assert [u.norm.num_features for u in block.layers] == [c_in, g, g, g]
    assert [u.conv.dilation for u in block.layers] == [(1, 1), (2, 2), (4, 4), (8, 8)]
    assert [u.conv.padding for u in block.layers] == [(1, 1), (2, 2), (4, 4), (8, 8)]
    assert [u.conv.out_channels for u in block.layers] == [g * 4, g * 3, g * 2, g * 1]
    with torch.no_grad():  # non-trivial BN statistics
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2)
    seen = []
    hooks = [u.norm.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape))) for u in block.layers]
    x = torch.randn(2, c_in, 24, 20)
    out = block(x).detach()  # with autograd on: the plain path, which runs every BN module
    for h in hooks:
        h.remove()
    assert seen == [(2, c_in, 24, 20)] + [(2, g, 24, 20)] * (L - 1)  # each BN runs once, on one chunk
    assert out.shape == (2, g, 24, 20)  # the last layer only
    # x_j = Σ_{i<j} [Conv_{2^i}(ReLU(BN_i(x_i)))]_{chunk for layer j}, computed by hand
    with torch.no_grad():
        xs = [x]
        for j in range(1, L + 1):
            xs.append(sum(block.layers[i](xs[i])[:, (j - i - 1) * g : (j - i) * g] for i in range(j)))
    assert torch.allclose(out, xs[L], atol=1e-5)
    single = MultidilatedD2Block(4, 6, 1)
    assert len(single.layers) == 1 and single(torch.randn(1, 4, 8, 8)).shape == (1, 6, 8, 8)


def test_d3_block_holds_densely_connected_d2_blocks():
    block = D3Block(c_in=7, growth=4, n_layers=3, n_blocks=3)
    firsts = [b.layers[0] for b in block.blocks]
    assert [(u.norm.num_features, u.conv.out_channels) for u in firsts] == [(7, 12 * 3), (4, 8 * 3), (4, 4 * 3)]
    assert [b.growth for b in block.blocks] == [12, 8, 4]
    assert block(torch.randn(1, 7, 16, 16)).shape == (1, 4, 16, 16)


# --- the network ------------------------------------------------------------------------------
def test_bins_above_valid_bins_are_the_mixture():
    model = tiny_d3net().eval()
    net = model.target_models["vocals"]
    x = torch.rand(2, 2, 129, 32) * 3
    with torch.no_grad():
        out = net(x)
        estimate = model.estimate(x[..., :30], "vocals")  # patches + channel swap
    assert torch.equal(out[:, :, 96:], x[:, :, 96:])
    assert not torch.allclose(out[:, :, :96], x[:, :, :96])
    assert torch.allclose(estimate[:, :, 96:], x[:, :, 96:, :30], atol=1e-6)
    assert (out >= 0).all()


def test_every_parameter_gets_a_gradient():
    model = tiny_d3net(targets=("vocals", "drums")).train()
    gen = torch.Generator().manual_seed(0)
    mixture = torch.randn(2, 2, 64 * 40, generator=gen)
    references = torch.randn(2, 2, 2, 64 * 40, generator=gen)
    loss, logs = model.loss(mixture, references)
    assert set(logs) == {"mse/vocals", "mse/drums"}
    assert loss.item() == pytest.approx(logs["mse/vocals"] + logs["mse/drums"], rel=1e-5)
    loss.backward()
    for name, parameter in model.named_parameters():
        grad = parameter.grad
        if name.endswith(("in_offset", "in_scale")):  # bins ≥ valid_bins are copied, not processed
            assert grad[:96].abs().sum() > 0 and torch.all(grad[96:] == 0), name
        else:
            assert grad is not None and grad.abs().sum() > 0, name


def test_loss_uses_the_first_train_frames_of_a_centred_stft():
    model = tiny_d3net(train_frames=16).eval()
    gen = torch.Generator().manual_seed(1)
    mixture, references = torch.randn(1, 2, 64 * 30, generator=gen), torch.randn(1, 1, 2, 64 * 30, generator=gen)
    mag = model.magnitudes(mixture)
    assert mag.shape == (1, 2, 129, 31)  # centred: 1 + L // hop
    with torch.no_grad():
        expected = nn.functional.mse_loss(model.target_models["vocals"](mag[..., :16]),
                                          model.magnitudes(references[:, 0])[..., :16])
        assert float(model.loss(mixture, references)[0]) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="fewer than the 4"):
        model.loss(mixture[..., :150], references[..., :150])  # 3 frames


def test_a_tiny_d3net_overfits_a_tiny_batch():
    model = tiny_d3net(seed=1).train()
    gen = torch.Generator().manual_seed(2)
    t = torch.arange(64 * 31) / SR
    vocals = 0.5 * torch.sin(2 * torch.pi * torch.tensor([400.0, 700.0])[:, None, None] * t).expand(2, 2, -1)
    # accompaniment below valid_bins (3 kHz): the copied bins above hold little error
    accompaniment = 0.4 * torch.sin(2 * torch.pi * 1500.0 * t) + 0.02 * torch.randn(2, 2, t.numel(), generator=gen)
    mixture = vocals + accompaniment
    model.initialize_from_data(list(mixture.numpy()))
    losses = fit_tiny_batch(model, mixture, vocals[:, None], steps=80, lr=1e-2)
    assert losses[-1] < losses[0] / 20  # about 100x in practice


# --- separation ---------------------------------------------------------------------------------
def test_patches_overlap_add_to_the_identity():
    model = tiny_d3net()
    model.target_models["vocals"] = nn.Identity()  # every patch returns its input
    x = torch.rand(1, 2, 129, 75)
    assert torch.allclose(model.estimate(x, "vocals", channel_swap=True), x, atol=1e-6)
    model.target_models["vocals"] = SwapLeft()
    # channel swap: the swapped prediction (left ↔ right), swapped back, is averaged with the plain one
    got = model.estimate(x, "vocals", channel_swap=True)
    assert torch.allclose(got, 0.5 * (x + x.flip(1)), atol=1e-6)


class SwapLeft(nn.Module):
    def forward(self, x):  # both channels become the left one
        return x[:, :1].expand_as(x)


def test_separate_shapes_through_patches_channel_swap_and_wiener():
    from mssbook.separation import separate

    model = tiny_d3net(targets=("vocals", "bass")).eval()
    assert model.separation_options() == {"niter": 1, "residual": False, "wiener_win_len": 0, "channel_swap": True,
                                         "patch_overlap": True, "runtime": "torch"}
    audio = 0.3 * torch.randn(2, 2, SR, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = model.separate(audio)
        assert out.shape == (2, 2, 2, SR) and torch.isfinite(out).all()
        assert model.separate(audio, residual=True, channel_swap=False).shape == (2, 3, 2, SR)
        single = tiny_d3net(targets=("vocals",)).eval()
        assert single.separate(audio).shape == (2, 1, 2, SR)  # one source: niter falls back to 0
        stems = separate(audio[0].numpy(), SR, model=model, residual=True)
    assert list(stems) == ["vocals", "bass", "residual"]
    assert all(v.shape == (2, SR) for v in stems.values())
    assert np.allclose(sum(stems.values()), audio[0].numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="2 channels but the mixture has 1"):
        model.separate(torch.zeros(1, 1, SR))


# --- the trainer --------------------------------------------------------------------------------
def test_one_trainer_epoch_with_the_seed_schedule(tmp_path):
    from mssbook.checkpoints import load_model
    from mssbook.training import Trainer, TrainConfig

    model = tiny_d3net()
    recipe = models.entry("d3net").training
    config = TrainConfig(epochs=1, batch_size=2, lr=1e-3, weight_decay=recipe["weight_decay"], lr_schedule="multistep",
                         lr_milestones=recipe["lr_milestones"], lr_decay_gamma=recipe["lr_decay_gamma"],
                         progress=False, seed=1)
    trainer = Trainer(model, ToneDataset(), ToneDataset(n=1), output=tmp_path / "run", config=config)
    history = trainer.fit()
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"]) and np.isfinite(history[0]["valid_loss"])
    rebuilt = load_model(tmp_path / "run" / "last.pt").eval()
    x = 0.1 * torch.randn(1, 2, SR // 2)
    with torch.no_grad():
        assert torch.allclose(rebuilt.separate(x), model.eval().separate(x), atol=1e-5)


def test_network_config_merges_overrides_over_the_paper_table():
    assert network_config("bass")["patch_length"] == 384
    assert network_config("accompaniment") == network_config("vocals")
    assert network_config("drums", {"final_k": 8})["final_k"] == 8


def test_bandwidth_option_sets_the_processed_bins():
    """The seed's --bandwidth: bins below it, rounded down to a multiple of 16, are processed."""
    from mssbook import models
    from mssbook.cli import build_parser

    model = models.create("d3net", preset="tutorial", target="vocals", bandwidth=16000)
    assert model.target_models["vocals"].valid_bins == 1472  # 1487 bins below 16 kHz -> 1472
    assert models.create("d3net", preset="tutorial", target="vocals").target_models["vocals"].valid_bins == 1600
    args = build_parser().parse_args(["train", "--model", "d3net", "--bandwidth", "16000", "--toy"])
    assert args.bandwidth == 16000
    with pytest.raises(ValueError, match="fewer than 16 bins"):
        models.create("d3net", preset="tutorial", target="vocals", bandwidth=100)


# --- the eval-only fused path and the laptop mode (issue 16) ----------------------------------------
def _random_statistics(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=generator))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=generator))
                m.weight.copy_(torch.randn(n, generator=generator))  # negative scales too
                m.bias.copy_(torch.randn(n, generator=generator))


@pytest.mark.parametrize("onednn_fusion", [True, False], ids=["onednn-fused", "conv-add-relu"])
def test_fused_inference_equals_the_plain_path_and_keeps_the_state_dict(onednn_fusion, monkeypatch):
    if onednn_fusion and not d3net_module._onednn_fusion_works():
        pytest.skip("this PyTorch build has no working oneDNN fused convolution")
    monkeypatch.setattr(d3net_module, "_ONEDNN_FUSION", onednn_fusion)
    model = tiny_d3net(targets=("vocals",)).eval()
    net = model.target_models["vocals"]
    _random_statistics(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(2, 2, 129, 64, generator=torch.Generator().manual_seed(1))
    plain = net(x).detach()  # autograd on: the plain path, every BN module runs
    calls = []
    hooks = [m.register_forward_hook(lambda *a: calls.append(1)) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for channels_last in (True, False):
        net.channels_last = channels_last
        calls.clear()
        with torch.no_grad():
            fused = net(x)
        assert torch.allclose(fused, plain, rtol=1e-5, atol=1e-5 * plain.abs().max().item()), channels_last
        n_norms = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
        assert len(calls) < n_norms * 0.7  # the BNs inside the D2 blocks were folded away
    for h in hooks:
        h.remove()
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with torch.no_grad():  # training mode (batch statistics) keeps the plain path
        net.train()
        assert torch.allclose(net(x), net(x).detach())


def _d2_block_and_plain_output(c_in, growth, n_layers, shape, seed):
    """An eval D2 block with random BN statistics, an input of ``shape`` and its plain-path output."""
    torch.manual_seed(0)
    block = MultidilatedD2Block(c_in, growth, n_layers).eval()
    _random_statistics(block, seed=seed)
    x = torch.randn(*shape)
    return block, x, block(x).detach()  # autograd on: the plain path


class _MapOps(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the name of every operator whose output is a feature map (4-D, the given T × F)."""

    def __init__(self, size):
        super().__init__()
        self.size, self.names = tuple(size), []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.ndim == 4 and tuple(out.shape[-2:]) == self.size:
            self.names.append(func._opname)
        return out


def test_each_d2_layer_is_summed_in_its_own_tensor_by_fused_convolutions(monkeypatch):
    if not d3net_module._onednn_fusion_works():
        pytest.skip("this PyTorch build has no working oneDNN fused convolution")
    monkeypatch.setattr(d3net_module, "_ONEDNN_FUSION", True)
    block, x, reference = _d2_block_and_plain_output(5, 3, 4, (2, 5, 24, 20), seed=3)
    with torch.no_grad(), _MapOps((24, 20)) as ops:
        fused = block(x)
    assert torch.allclose(fused, reference, rtol=1e-5, atol=1e-5 * reference.abs().max().item())
    # x_0 starts each of the 4 layers; x_1, x_2, x_3 add into the 3, 2, 1 layers after them, in place;
    # on the maps nothing else but BN_0's affine map and ReLU on the block input: no slices, no
    # separate additions or ReLUs
    assert sorted(ops.names) == sorted(["addcmul", "relu_"] + ["_convolution_pointwise"] * 4
                                       + ["_convolution_pointwise_"] * (3 + 2 + 1)), ops.names


def test_the_fused_convolution_probe_refuses_a_wrong_answer(monkeypatch):
    class Wrong:  # an op that runs but adds nothing: the fused path must not trust it
        @staticmethod
        def binary(acc, *args):
            return acc

    class Namespace:
        _convolution_pointwise_ = Wrong

    monkeypatch.setattr(torch.ops, "mkldnn", Namespace())
    assert d3net_module._onednn_fusion_works() is False
    monkeypatch.setattr(d3net_module, "_ONEDNN_FUSION", None)  # probed again on first use: falls back
    block, x, reference = _d2_block_and_plain_output(5, 3, 3, (1, 5, 16, 12), seed=4)
    with torch.no_grad():
        assert torch.allclose(block(x), reference, rtol=1e-5, atol=1e-5 * reference.abs().max().item())
    assert d3net_module._ONEDNN_FUSION is False


def test_folded_weights_are_the_batchnorms_moved_into_the_producing_convs():
    block, x, reference = _d2_block_and_plain_output(5, 3, 4, (2, 5, 24, 20), seed=2)
    with torch.no_grad():
        assert torch.allclose(block(x), reference, atol=1e-5)
        folded = block.folded_weights()
        scale, shift = block.layers[1].folded_norm()  # BN_1, read by layers[1]
        conv = block.layers[0].conv
        raw = conv(torch.relu(block.layers[0].norm(x)))[:, :3]  # x_1 before its BN
        moved = F.conv2d(torch.relu(block.layers[0].norm(x)), folded[0][0], folded[0][1], padding=1)[:, :3]
        assert torch.allclose(moved, raw * scale[:, None, None] + shift[:, None, None], atol=1e-5)
        assert torch.equal(folded[-1][0][-3:], block.layers[-1].conv.weight[-3:])  # x_L's rows: unchanged
    d3 = D3Block(4, 3, 2, 3).eval()
    _random_statistics(d3, seed=3)
    y = torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        assert torch.allclose(d3(y), d3(y).detach(), atol=0)  # deterministic
    assert torch.allclose(torch.no_grad()(d3)(y), d3(y).detach(), atol=1e-5)


class CountCalls(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += x.shape[0]
        return x


def test_laptop_options_quarter_the_network_calls_and_keep_the_identity():
    from mssbook.models.d3net import LAPTOP_OPTIONS

    assert LAPTOP_OPTIONS == {"channel_swap": False, "patch_overlap": False}
    model = tiny_d3net()
    x = torch.rand(1, 2, 129, 300)
    counts = {}
    for name, options in {"official": {}, "laptop": LAPTOP_OPTIONS}.items():
        model.target_models["vocals"] = counter = CountCalls()
        out = model.estimate(x, "vocals", **options)
        assert torch.allclose(out, x, atol=1e-6)  # every frame covered, averaged back to the input
        counts[name] = counter.calls
    assert counts == {"official": 40, "laptop": 10}  # 300 frames: 20 half-overlapping patches × 2 (swap); 10
    assert tiny_d3net(patch_overlap=False).separation_options()["patch_overlap"] is False
    audio = 0.3 * torch.randn(1, 2, SR, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():  # through the shared separator, whose own `overlap` is the segments'
        stems = mssbook.separation.separate(audio[0].numpy(), SR, model=tiny_d3net().eval(), **LAPTOP_OPTIONS)
    assert stems["vocals"].shape == (2, SR)


def test_the_benchmark_counts_the_fused_convolutions_like_the_plain_ones(monkeypatch):
    """benchmarks/bench_models.py reports GFLOP/s: the fused path must not look cheaper than it is."""
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_models import flop_counter

    torch.manual_seed(0)
    block = MultidilatedD2Block(5, 3, 4).eval()
    x = torch.randn(2, 5, 24, 20)
    counts = {}
    for fusion in (False, True):
        if fusion and not d3net_module._onednn_fusion_works():
            continue
        monkeypatch.setattr(d3net_module, "_ONEDNN_FUSION", fusion)
        with torch.no_grad(), flop_counter() as counter:
            block(x)
        counts[fusion] = counter.get_total_flops()
    expected = 2 * 24 * 20 * 2 * 9 * (5 * 3 * 4 + 3 * 3 * (3 + 2 + 1))  # 2·B·T·F·k²·(c_in·g·L + g·g·Σ)
    assert set(counts.values()) == {expected}, counts
    sys.modules.pop("bench_models", None)
