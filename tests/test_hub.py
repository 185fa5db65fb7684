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
from mssbook.weights import Release

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
    names = [p.name for p, _ in files.values()]
    hub.register_release(Release("testumx", "umx", "openunmix", tuple("http://unused/" + n for n in names),
                                 tuple(files), "toy", "MIT", "here", files=tuple(names)))
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", files, requests
    finally:
        server.shutdown()
        del hub.releases()["testumx"]


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
    with pytest.raises(MSSBookError) as info:
        hub.load_pretrained("umxhq", targets=["vocals"], cache_dir=tmp_path, base_url="http://127.0.0.1:9/", progress=False)
    message = str(info.value)
    assert "could not download http://127.0.0.1:9/vocals-b62c91ce.pth" in message and "Offline?" in message
    assert f"put them in {tmp_path}" in message and "path='path/to/file/or/folder'" in message
    assert "drums" not in message  # only the file that was asked for
    assert not any(tmp_path.iterdir())


def test_unknown_names_and_empty_folders_are_clear(tmp_path):
    with pytest.raises(MSSBookError, match="unknown pretrained model 'umxx'.*umxhq"):
        hub.load_pretrained("umxx")
    with pytest.raises(MSSBookError, match="holds no weight file mssbook can convert"):
        hub.load_pretrained(tmp_path)
    with pytest.raises(MSSBookError, match="no official weights of BSRNN exist.*mssbook train --model bsrnn"):
        mssbook.pretrained("bsrnn")


def test_every_seed_release_is_known_with_urls_and_files():
    expected = {"umxhq", "umx", "umxl", "umxhq-nnabla", "umx-nnabla", "xumx", "xumx-nnabla", "d3net",
                "tfc_tdf_net-large", "wavenet-multi-instrument", "wavenet-singing-voice"}
    table = hub.releases()
    assert expected <= set(table), expected - set(table)
    for name in expected:
        rel = table[name]
        assert rel.urls and all(u.startswith("https://") for u in rel.urls), name
        assert rel.format in mssbook.weights.FORMATS and rel.model in mssbook.models.available(), name
        assert rel.targets and rel.homepage.startswith("https://"), name
    text = hub.describe()
    assert all(name in text for name in expected)


def test_a_local_file_of_another_bandwidth_loads(tmp_path):
    """hub used to build every UMX with bandwidth=16000, whatever max_bin the file had."""
    torch.manual_seed(3)
    net = openunmix_model.OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=16, max_bin=900)
    torch.save(net.state_dict(), tmp_path / "vocals.pth")
    model = mssbook.pretrained(tmp_path / "vocals.pth")
    assert model.target_models["vocals"].max_bin == 900
    mag = torch.rand(1, 2, 2049, 12)
    assert torch.allclose(model.target_models["vocals"](mag), net.eval()(mag), atol=1e-5)


def test_a_zip_release_is_unpacked_once_and_path_loads_a_copy(tmp_path):
    import zipfile

    remote = tmp_path / "remote"
    remote.mkdir()
    (path, reference) = write_official(remote, "vocals")
    archive = remote / "testzip.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(path, f"testzip/{path.name}")
    rel = Release("testzip", "umx", "openunmix", ("https://example.invalid/testzip.zip",), ("vocals",), "toy",
                  "MIT", "https://example.invalid", files=(path.name,))
    hub.register_release(rel)
    try:
        # path= a zip, a folder and a file fetched by hand: nothing is downloaded
        for source in (archive, remote, path):
            model = mssbook.pretrained("testzip", path=source, niter=2)
            assert model.niter == 2 and model.config["niter"] == 2
            assert torch.equal(model.target_models["vocals"].fc1.weight, reference.fc1.weight)
        with pytest.raises(MSSBookError, match="does not exist"):
            mssbook.pretrained("testzip", path=tmp_path / "nope.zip")
        with pytest.raises(MSSBookError, match="has no setting nitre"):
            mssbook.pretrained("testzip", path=path, nitre=2)
        # the cache: a zip is unpacked once, then served from the folder
        import http.server
        import threading

        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(remote)))
        server.RequestHandlerClass.log_message = lambda *a: None
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            cache = tmp_path / "cache"
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            model = hub.load_pretrained("testzip", cache_dir=cache, base_url=url, progress=False)
            assert (cache / "testzip" / path.name).is_file() and (cache / ".testzip.zip.unpacked").is_file()
            (cache / "testzip.zip").unlink()
            server.shutdown()  # now offline: the unpacked copy serves
            assert hub.load_pretrained("testzip", cache_dir=cache, base_url=url, progress=False).targets == ("vocals",)
        finally:
            server.shutdown()
    finally:
        del hub.releases()["testzip"]


def test_detect_format_by_content(tmp_path):
    write_official(tmp_path, "vocals")
    assert hub.detect_format(tmp_path) == "openunmix"
    torch.save({"state_dict": {"layer_enc.vocals.enc.0.weight": torch.zeros(1)}}, tmp_path / "x.pth")
    assert hub.detect_format(tmp_path / "x.pth") == "asteroid"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "vocals.h5").write_bytes(b"")
    assert hub.detect_format(tmp_path / "d") == "nnabla"


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures" / "official"


@pytest.mark.parametrize("source, family, release", [
    ("umx-nnabla", "umx", "umxhq-nnabla"),
    ("xumx-nnabla/x-umx.h5", "xumx", "xumx-nnabla"),
    ("xumx-asteroid/stereo.pth", "xumx", "xumx"),
    ("d3net/d3net-mss-reduced.zip", "d3net", "d3net"),
    ("tfc_tdf_net/tfc_tdf_net_vocals.ckpt", "tfc_tdf_net", "tfc_tdf_net-large"),
    ("wavenet/multi-instrument", "wavenet", "wavenet-multi-instrument"),
])
def test_official_format_files_load_by_path_and_as_a_release_copy(source, family, release, tmp_path):
    """Whatever the format, a file or folder converts by itself (format detected) and as path= of a release."""
    by_path = mssbook.pretrained(FIXTURES / source)
    assert by_path.name == family and not by_path.training
    as_release = mssbook.pretrained(release, path=FIXTURES / source)
    assert as_release.name == family
    for key, value in by_path.state_dict().items():
        assert torch.equal(as_release.state_dict()[key], value), key
    # the official inference settings live in the configuration: a checkpoint rebuilds them
    rebuilt = mssbook.models.from_config(as_release.name, as_release.config)
    assert rebuilt.separation_options() == as_release.separation_options()


def test_target_names_in_files_and_urls_are_read_one_way(tmp_path):
    from mssbook.weights.common import find_target_files, names_target

    assert names_target("vocals-b62c91ce.pth", "vocals") and names_target("X_VOCALS_epoch=2007.ckpt", "vocals")
    assert not names_target("basses.h5", "bass") and not names_target("othervocals.h5", "vocals")
    for name in ("vocals.h5", "bass_epoch=1.h5", "notes.txt", "drummer.h5"):
        (tmp_path / name).write_bytes(b"x")
    assert find_target_files(tmp_path, [".h5"]) == {"vocals": tmp_path / "vocals.h5", "bass": tmp_path / "bass_epoch=1.h5"}
    rel = hub.release("umxhq")  # one URL per target: only the wanted targets' files are fetched
    wanted = hub._wanted_urls(rel, ["drums"])
    assert len(wanted) == 1 and names_target(hub.file_name(wanted[0]), "drums")
