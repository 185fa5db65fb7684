"""The official Wavenet's Keras/Theano checkpoints: converted, they give the official outputs.

Fixtures (tests/fixtures/official/wavenet/<mode>/, made by tools/official_keras_wavenet.py with the
official code, Keras 2.1.5 on Theano 1.0.1): a checkpoint of a reduced configuration written by
the official trainer's ModelCheckpoint, the session's config.json, and io.npz with the official
network outputs on 3 windows and the official track inference (separate.py) of a 200-sample mixture.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

h5py = pytest.importorskip("h5py")

from mssbook.models import wavenet  # noqa: E402
from mssbook.weights import keras as K  # noqa: E402
from mssbook.weights.common import ConversionError, load_mapped  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "official" / "wavenet"
MODES = ("multi-instrument", "singing-voice")
CHECKPOINT = "checkpoint.00001-0.000.hdf5"
TOL = 1e-5  # relative to the largest official output; float32 in both, measured about 4e-7


def fixture(mode):
    return dict(np.load(FIXTURES / mode / "io.npz"))


def rel_error(ours, ref):
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape
    return np.abs(ours - ref).max() / np.abs(ref).max()


def network_output(net, windows):
    with torch.no_grad():
        return net.network(torch.from_numpy(windows)[:, None]).numpy()  # (B, n_out, T + 2p)


@pytest.mark.parametrize("mode", MODES)
def test_network_equals_official(mode):
    data = fixture(mode)
    net = K.convert(FIXTURES / mode)
    assert not net.training
    assert rel_error(network_output(net, data["windows"]), data["heads"]) <= TOL


@pytest.mark.parametrize("mode", MODES)
def test_track_inference_equals_official(mode):
    data = fixture(mode)
    net = K.convert(FIXTURES / mode / CHECKPOINT)  # config.json found beside the file
    ours = K.separate_like_official(net, data["mixture"]).numpy()
    reference = np.stack([data[f"sep_{name}"] for name in net.targets])
    assert ours.shape == (len(net.targets), len(data["mixture"]) - net.receptive_field_length + 1)
    assert rel_error(ours, reference) <= TOL


def test_default_separation_differs_from_official_only_at_window_edges():
    data = fixture("multi-instrument")
    net = K.convert(FIXTURES / "multi-instrument")
    with torch.no_grad():
        full = net.separate(torch.tensor(data["mixture"], dtype=torch.float32)[None, None])[0, :, 0].numpy()
    assert full.shape == (4, len(data["mixture"]))  # mssbook covers the whole track
    R, T, edge = net.receptive_field_length, net.target_field_length, net.network.edge_context
    reference = np.stack([data[f"sep_{name}"] for name in net.targets])
    ours = full[:, R // 2 : R // 2 + reference.shape[1]]
    inner = (np.arange(reference.shape[1]) % T >= edge) & (np.arange(reference.shape[1]) % T < T - edge)
    assert rel_error(ours[:, inner], reference[:, inner]) <= TOL
    assert rel_error(ours, reference) > 1e-3  # the seed's windows see zeros at their edges


def test_sizes_and_defaults_come_from_the_file_and_config():
    net = K.convert(FIXTURES / "multi-instrument")
    assert net.targets == ("vocals", "drums", "bass", "other")
    assert (net.network.stacks, net.network.dilations) == (2, [1, 2, 4, 8])
    assert net.network.blocks[0].residual_channels == 6 and net.network.blocks[0].skip_channels == 5
    assert [net.network.head[i].out_channels for i in (1, 3)] == [7, 5]
    assert net.network.head_kernel_sizes == [3, 5]
    assert net.receptive_field_length == 61 and net.target_field_length == 13 and net.target_padding == 1
    assert net.separation_options()["target_field_length"] == 13
    # batch_size=None: DEFAULT_WINDOW_BATCH windows of the trained field per pass, the seed's 10
    assert net.separation_options()["batch_size"] is None
    assert wavenet.DEFAULT_WINDOW_BATCH == K.SEPARATION["batch_size"]
    assert K.convert(FIXTURES / "singing-voice").targets == ("vocals", "accompaniment")


def test_without_config_the_layer_names_give_the_dilations(tmp_path):
    shutil.copy(FIXTURES / "singing-voice" / CHECKPOINT, tmp_path / CHECKPOINT)
    net = K.convert(tmp_path)
    assert net.network.dilations == [1, 2, 4, 8] and net.target_field_length == 1601  # the paper's default
    data = fixture("singing-voice")
    assert rel_error(network_output(net, data["windows"]), data["heads"]) <= TOL


def test_unflipped_or_untransposed_kernels_give_other_outputs():
    """The Theano kernel flip matters: the mapping without it loads fine and is wrong."""
    data = fixture("multi-instrument")
    net = K.convert(FIXTURES / "multi-instrument")
    layers, backend = K.read_layers(FIXTURES / "multi-instrument" / CHECKPOINT)
    assert backend == "theano"
    arrays, _ = K.map_weights(layers, {}, "fixture", flip=False)
    load_mapped(net, arrays, "fixture")
    assert rel_error(network_output(net, data["windows"]), data["heads"]) > 0.1


def test_save_weights_layout_loads_too(tmp_path):
    """Keras' save_weights: the layer groups at the root, TensorFlow-style ':0' weight names."""
    source = FIXTURES / "multi-instrument" / CHECKPOINT
    target = tmp_path / "weights.hdf5"
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        weights = src["model_weights"]
        dst.attrs["backend"] = b"theano"
        dst.attrs["layer_names"] = weights.attrs["layer_names"]
        for name in weights.attrs["layer_names"]:
            name = name.decode()
            group = dst.create_group(name)
            names = [n.decode() for n in weights[name].attrs["weight_names"]]
            group.attrs["weight_names"] = [f"{n}:0".encode() for n in names]
            for n in names:
                group[f"{n}:0"] = weights[name][n][()]
    shutil.copy(FIXTURES / "multi-instrument" / "config.json", tmp_path / "config.json")
    data = fixture("multi-instrument")
    assert rel_error(network_output(K.convert(target), data["windows"]), data["heads"]) <= TOL


def edited_copy(tmp_path, edit):
    folder = tmp_path / "multi-instrument"
    shutil.copytree(FIXTURES / "multi-instrument", folder)
    with h5py.File(folder / CHECKPOINT, "r+") as f:
        edit(f["model_weights"])
    return folder


def test_missing_weight_is_named(tmp_path):
    folder = edited_copy(tmp_path, lambda g: g["conv1d_3"].__delitem__("conv1d_3/kernel"))
    with pytest.raises(ConversionError, match="conv1d_3/kernel"):
        K.convert(folder)


def test_misshapen_kernel_is_named(tmp_path):
    def edit(g):
        del g["res_4_dilated_conv_d8_s0/res_4_dilated_conv_d8_s0/kernel"]
        g["res_4_dilated_conv_d8_s0/res_4_dilated_conv_d8_s0/kernel"] = np.zeros((3, 6, 10), np.float32)

    with pytest.raises(ConversionError, match=r"res_4_dilated_conv_d8_s0/kernel .*\(3, 6, 10\).*\(3, 6, 12\)"):
        K.convert(edited_copy(tmp_path, edit))


def test_missing_output_bias_and_missing_layers_are_named(tmp_path):
    def drop_bias(g):
        del g["conv1d_11/conv1d_11/bias"]
        g["conv1d_11"].attrs["weight_names"] = [b"conv1d_11/kernel"]

    with pytest.raises(ConversionError, match="conv1d_11.* no bias"):
        K.convert(edited_copy(tmp_path / "a", drop_bias))

    def drop_head(g):
        g.attrs["layer_names"] = [n for n in g.attrs["layer_names"] if n not in (b"conv1d_9", b"conv1d_10", b"conv1d_11")]

    with pytest.raises(ConversionError, match="missing layers"):
        K.convert(edited_copy(tmp_path / "b", drop_head))


def test_mode_mismatch_and_foreign_files(tmp_path):
    with pytest.raises(ConversionError, match="multi-instrument Wavenet"):
        K.convert(FIXTURES / "multi-instrument", targets="singing-voice")
    with pytest.raises(ConversionError, match="wavenet"):
        K.convert(FIXTURES / "multi-instrument", model="umx")
    with h5py.File(tmp_path / "other.hdf5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ConversionError, match="not a Keras weight file"):
        K.convert(tmp_path / "other.hdf5")


def test_releases():
    names = {r.name: r for r in K.RELEASES}
    assert set(names) == {"wavenet-multi-instrument", "wavenet-singing-voice"}
    for release in K.RELEASES:
        assert release.model == "wavenet" and release.format == "keras"
        assert [url.rsplit("/", 1)[-1] for url in release.urls] == list(release.files)
        assert all(url.startswith("https://raw.githubusercontent.com/francesclluis/source-separation-wavenet/")
                   for url in release.urls)
    assert names["wavenet-singing-voice"].targets == ("vocals", "accompaniment")
