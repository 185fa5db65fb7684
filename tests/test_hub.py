"""Pretrained Open-Unmix weights: official file format, checksums, cache, download and offline paths.

The real Zenodo files cannot be fetched here, so the tests write files in the official format
(``openunmix.model.OpenUnmix`` state dicts named ``<target>-<sha256 prefix>.pth``) and serve them
from a web server on 127.0.0.1.
"""

import functools
import hashlib
import http.server
import threading

import pytest
import torch

import mssbook
from mssbook import hub
from mssbook.errors import MSSBookError

openunmix_model = pytest.importorskip("openunmix.model")


def write_official(folder, target, hidden_size=16, seed=0):
    """An Open-Unmix weight file as the package publishes them: state dict, hashed name."""
    torch.manual_seed(seed)
    net = openunmix_model.OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=hidden_size, max_bin=1487)
    tmp = folder / f"{target}.tmp"
    torch.save(net.state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    path = folder / f"{target}-{digest}.pth"
    tmp.rename(path)
    return path, net.eval()


@pytest.fixture
def served(tmp_path):
    """Official-format files for vocals and drums behind a loopback HTTP server that counts requests."""
    remote = tmp_path / "remote"
    remote.mkdir()
    files = {t: write_official(remote, t, seed=i) for i, t in enumerate(("vocals", "drums"))}
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(remote)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    spec = hub.PretrainedModel("testumx", "unused", {t: p.name for t, (p, _) in files.items()}, "toy", "MIT")
    hub.PRETRAINED["testumx"] = spec
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", files, requests
    finally:
        server.shutdown()
        del hub.PRETRAINED["testumx"]


def test_local_folder_of_official_files_loads(tmp_path):
    path, reference = write_official(tmp_path, "vocals")
    model = mssbook.pretrained(tmp_path)
    assert model.targets == ("vocals",) and not model.training
    assert model.target_models["vocals"].hidden_size == 16  # sizes read from the weights
    for key, value in reference.state_dict().items():
        assert torch.equal(model.target_models["vocals"].state_dict()[key], value), key
    mag = torch.rand(1, 2, 2049, 20)
    assert torch.allclose(model.target_models["vocals"](mag), reference(mag), atol=1e-5)
    # a single file works too, and the checksum in the name is enforced
    assert mssbook.pretrained(path).targets == ("vocals",)
    path.write_bytes(path.read_bytes()[:-10] + b"corrupted!")
    with pytest.raises(MSSBookError, match="does not match the checksum"):
        mssbook.pretrained(tmp_path)


def test_download_verifies_caches_and_loads(served, tmp_path):
    url, files, requests = served
    cache = tmp_path / "cache"
    model = hub.load_pretrained("testumx", targets=["vocals", "drums"], cache_dir=cache, base_url=url, progress=False)
    assert model.targets == ("vocals", "drums")
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p, _ in files.values())
    assert len(requests) == 2
    hub.load_pretrained("testumx", targets=["vocals"], cache_dir=cache, base_url=url, progress=False)
    assert len(requests) == 2  # served from the cache
    x = torch.randn(1, 2, 44100)
    ref = openunmix_model.Separator({"vocals": files["vocals"][1], "drums": files["drums"][1]}, niter=1,
                                    sample_rate=44100.0, wiener_win_len=300).eval()
    with torch.no_grad():
        assert torch.allclose(model.separate(x), ref(x), atol=1e-4)


def test_a_damaged_download_is_rejected_and_not_cached(served, tmp_path):
    url, files, _ = served
    path, _ = files["vocals"]
    path.write_bytes(path.read_bytes()[:-10] + b"corrupted!")  # the server now sends a damaged file
    cache = tmp_path / "cache"
    with pytest.raises(MSSBookError, match="does not match the checksum"):
        hub.load_pretrained("testumx", targets=["vocals"], cache_dir=cache, base_url=url, progress=False)
    assert not any(cache.iterdir())


def test_offline_fails_with_instructions(tmp_path):
    with pytest.raises(MSSBookError, match=r"could not download .*Offline\?.*pretrained\('path/to/folder'\)"):
        hub.load_pretrained("umxhq", targets=["vocals"], cache_dir=tmp_path, base_url="http://127.0.0.1:9/", progress=False)
    assert not any(tmp_path.iterdir())


def test_unknown_names_and_empty_folders_are_clear(tmp_path):
    with pytest.raises(MSSBookError, match="unknown pretrained model 'umxx'.*umxhq"):
        hub.load_pretrained("umxx")
    with pytest.raises(MSSBookError, match="holds no Open-Unmix weights"):
        hub.load_pretrained(tmp_path)
    assert set(hub.PRETRAINED) >= {"umxhq", "umx", "umxl"}
    assert all(len(spec.files) == 4 for spec in hub.PRETRAINED.values())
