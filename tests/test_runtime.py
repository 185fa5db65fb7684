"""runtime="onnx": the networks through onnxruntime give eager PyTorch's outputs, cached sessions, clear errors."""

import copy
import sys

import numpy as np
import pytest
import torch

import mssbook
from mssbook import models
from mssbook.errors import MissingDependencyError
from mssbook.runtime import OnnxRunner, import_onnxruntime

SR = 8000
# the tiny D3Net of tests/test_d3net.py: 256-point STFT, bands [0, 32) and [32, 96), patches 32/16
TINY_D3NET = dict(valid_bins=96, band_splits=[32], band_init=[4, 2], band_ks=[[4, 4, 4], [2, 2, 2]],
                  band_layers=[[2, 2, 2], [1, 1, 1]], band_blocks=[2, 1], full_init=4, full_ks=[4, 4, 4, 4, 4],
                  full_layers=[2, 2, 3, 2, 2], full_blocks=2, final_k=4, final_layers=2, patch_length=32, patch_hop=16)
BUILD = {
    "d3net": lambda: models.create("d3net", preset="paper", target=("vocals", "bass"), sample_rate=SR, n_fft=256,
                                   n_hop=64, network=TINY_D3NET),
    "umx": lambda: models.create("umx", preset="paper", target=("vocals", "drums"), sample_rate=SR, n_fft=512,
                                 n_hop=128, hidden_size=16, nb_layers=1, bandwidth=3000),
    "xumx": lambda: models.create("xumx", preset="tutorial", sample_rate=SR, n_fft=512, n_hop=128, hidden_size=16,
                                  nb_layers=1, bandwidth=3000),
}


def build(name, seed=0):
    torch.manual_seed(seed)
    model = BUILD[name]().eval()
    with torch.no_grad():  # non-trivial normalisation and BatchNorm statistics, so the export carries them
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model


def audio(seconds=1.0, seed=1):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((1, 2, int(seconds * SR))).astype(np.float32) * 0.3)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


needs_onnx = pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("onnx", "onnxruntime")),
    reason="needs onnxruntime and onnx (pip install \"mssbook[onnx]\")")


@needs_onnx
@pytest.mark.parametrize("name", ["d3net", "umx", "xumx"])
def test_onnx_runtime_matches_eager_torch(name):
    model = build(name)
    x = audio()
    with torch.inference_mode():
        eager = model.separate(x, runtime="torch")
        fast = model.separate(x, runtime="onnx")
    assert fast.shape == eager.shape
    assert float(eager.abs().max()) > 0.01
    assert torch.allclose(fast, eager, rtol=0, atol=1e-4), float((fast - eager).abs().max())
    assert "runtime" in model.separation_options() and model.separation_options()["runtime"] == "torch"


@needs_onnx
def test_sessions_are_cached_per_shape_and_rebuilt_after_new_weights():
    model = build("d3net")
    with torch.inference_mode():
        first = model.separate(audio(1.0), runtime="onnx")  # many patches, one export per target
        runners = model._runtime_runners
        assert {k: r.exports for k, r in runners.items()} == {"vocals": 1, "bass": 1}
        model.separate(audio(1.5, seed=2), runtime="onnx")  # another length: same patch shape
        assert {k: r.exports for k, r in runners.items()} == {"vocals": 1, "bass": 1}
        model.separate(audio(1.0), runtime="onnx", channel_swap=False)  # batch 1, not 2: a new shape
        assert runners["vocals"].exports == 2 and len(runners["vocals"].sessions) == 2
    # new weights (as after a training step or load_state_dict): the runner exports again
    with torch.no_grad():
        model.target_models["vocals"].decode_bias.add_(0.5)
    with torch.inference_mode():
        changed = model.separate(audio(1.0), runtime="onnx")
        eager = model.separate(audio(1.0), runtime="torch")
    assert runners["vocals"].exports == 3 and len(runners["vocals"].sessions) == 1
    assert not torch.allclose(changed, first) and torch.allclose(changed, eager, rtol=0, atol=1e-4)
    # copies of the model start without sessions and run on their own weights
    clone = copy.deepcopy(model)
    assert clone._runtime_runners["vocals"].sessions == {}
    assert clone._runtime_runners["vocals"].network is clone.target_models["vocals"]
    # UMX takes any number of frames: one export serves every length
    umx = build("umx")
    with torch.inference_mode():
        for seconds in (0.5, 1.0, 1.7):
            umx.separate(audio(seconds), runtime="onnx")
    assert {k: r.exports for k, r in umx._runtime_runners.items()} == {"vocals": 1, "drums": 1}


@needs_onnx
def test_separate_passes_the_option_and_refuses_misuse():
    model = build("umx")
    x = audio(1.0)[0].numpy()
    fast = mssbook.separate(x, SR, model=model, device="cpu", runtime="onnx")
    eager = mssbook.separate(x, SR, model=model, device="cpu")
    assert all(np.abs(fast[k] - eager[k]).max() < 1e-4 for k in eager)
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        model.separate(audio(), runtime="tensorrt")
    model.train()
    with pytest.raises(ValueError, match="eval mode"):
        model.separate(audio(), runtime="onnx")
    with pytest.raises(ValueError, match="on the CPU"):
        OnnxRunner(torch.nn.Identity().eval())(torch.zeros(2, device="meta"))


@pytest.mark.parametrize("missing", ["onnxruntime", "onnx"])
def test_missing_runtime_names_the_install_command(monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=rf"{missing}.*pip install onnxruntime onnx.*mssbook\[onnx\]"):
        import_onnxruntime()
    model = build("d3net")
    with pytest.raises(MissingDependencyError, match="pip install onnxruntime onnx"):
        model.separate(audio(0.5), runtime="onnx")
    with torch.inference_mode():
        assert model.separate(audio(0.5)).shape == (1, 2, 2, SR // 2)  # the default runtime needs neither
