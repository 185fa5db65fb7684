"""End to end, in a real browser: the stem mixer served by Voila, driven in headless Chromium.

A small notebook builds a :class:`~mssbook.widgets.StemMixer` over seeded synthetic stems; Voila
runs it in a kernel and serves its live widgets on 127.0.0.1; Chromium (Debian's package, driven
by Selenium through Debian's chromedriver: nothing is downloaded) clicks *mute* on the vocals and
moves the bass fader with the keyboard. After each action the status line, which the kernel
computes from the mix it has just rendered, must read exactly what the same mixer computes here for
the same settings, and the ``<audio>`` element must play new bytes: the kernel's encoding of the
new mix.

Needs the ``browser`` extra (selenium, voila) and the chromium and chromium-driver packages, which
``scripts/setup.sh`` installs with that extra (``scripts/test.sh`` asks for it). The test skips only
where those are missing; any other failure fails it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SETUP = "MSSBOOK_EXTRAS=torchaudio,notebooks,test,browser bash scripts/setup.sh"
webdriver = pytest.importorskip("selenium.webdriver", reason=f"selenium is not installed; run `{SETUP}`")
pytest.importorskip("voila", reason=f"voila is not installed; run `{SETUP}`")
nbformat = pytest.importorskip("nbformat", reason=f"nbformat is not installed; run `{SETUP}`")
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from mssbook.widgets import StemMixer  # noqa: E402

# Generous waits: on a loaded 2-core CI machine a kernel can take a minute to start.
SERVER_START_S = 60  # until Voila listens
KERNEL_S = 180  # until the notebook has run and the widgets are on the page
ACTION_S = 60  # until the kernel has answered a click

SR = 16000
SECONDS = 2.0

# The stems, built the same way in the notebook and here (seeded: the test is deterministic).
STEMS_SOURCE = f"""\
import numpy as np

sr = {SR}
t = np.arange(int({SECONDS} * sr)) / sr
rng = np.random.default_rng(13)
vocals = 0.25 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
drums = 0.3 * rng.standard_normal(t.size) * np.exp(-30 * (t % 0.5))
bass = 0.3 * np.sin(2 * np.pi * 55 * t)
stems = {{name: np.stack([x, 0.8 * x]).astype(np.float32)
         for name, x in (("vocals", vocals), ("drums", drums), ("bass", bass))}}
"""


def stems() -> tuple[dict, int]:
    scope: dict = {}
    exec(STEMS_SOURCE, scope)
    return scope["stems"], scope["sr"]


def binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    path = Path("/usr/bin") / name
    return str(path) if path.is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@pytest.fixture
def chromium_paths() -> tuple[str, str]:
    browser, driver = binary("chromium"), binary("chromedriver")
    if browser is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if p is None)
        pytest.skip(f"{missing} not found: install Debian's chromium and chromium-driver with `{SETUP}` "
                    "(or `sudo apt-get install chromium chromium-driver`)")
    return browser, driver


@pytest.fixture
def voila_url(tmp_path):
    """Voila serving a notebook with the stem mixer on 127.0.0.1 (no token: loopback only)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(STEMS_SOURCE),
        nbformat.v4.new_code_cell("from mssbook.widgets import StemMixer\n\n"
                                  "mixer = StemMixer(stems, sr, static=False)\nmixer"),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "mixer.ipynb"
    nbformat.write(notebook, path)

    port = free_port()
    log = tmp_path / "voila.log"
    env = dict(os.environ)
    env.pop("MSSBOOK_WIDGETS", None)  # the notebook asks for the interactive view anyway
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),  # no user configuration
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
               JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),  # no user kernelspecs: this Python
               JUPYTER_PLATFORM_DIRS="1")
    command = [sys.executable, "-m", "voila", str(path), "--no-browser", f"--port={port}",
               "--Voila.ip=127.0.0.1", "--Voila.token=", "--VoilaConfiguration.show_tracebacks=True",
               f"--VoilaExecutor.startup_timeout={KERNEL_S}", f"--VoilaExecutor.timeout={KERNEL_S}"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"voila exited with code {server.returncode} before serving:\n{tail(log)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"voila did not listen on port {port} within {SERVER_START_S} s:\n{tail(log)}")
                time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/", log
    finally:
        # Voila shuts its kernel down on SIGTERM; a kernel whose server was killed exits on its own
        # (ipykernel watches its parent). The kernel runs in a session of its own (jupyter_client).
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
            try:
                os.killpg(server.pid, sig)
            except ProcessLookupError:
                break
            try:
                server.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # anything else left in the server's process group
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def browser(chromium_paths, tmp_path):
    chromium, chromedriver = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", "--mute-audio", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(KERNEL_S)
        driver.set_script_timeout(ACTION_S)
        yield driver
    finally:
        driver.quit()


STATUS = re.compile(r"audible: (?P<audible>[^·]*?) · mix RMS (?P<rms>−?[\d.]+) dBFS")


def parse_status(text: str) -> tuple[list[str], float]:
    match = STATUS.search(text)
    assert match, f"the status line does not read 'audible: ... · mix RMS ... dBFS': {text!r}"
    return [n.strip() for n in match["audible"].split(",")], float(match["rms"].replace("−", "-"))


# the bytes behind the audio element's blob: URL, hashed in the page (127.0.0.1 is a secure context)
BLOB_SHA256 = """
const [src, done] = arguments;
fetch(src).then(r => r.arrayBuffer()).then(b => crypto.subtle.digest("SHA-256", b))
  .then(h => done(Array.from(new Uint8Array(h)).map(x => x.toString(16).padStart(2, "0")).join("")))
  .catch(e => done("error: " + e));
"""


def test_stem_mixer_in_a_real_browser(browser, voila_url):  # browser first: it skips without chromium
    url, log = voila_url
    driver = browser

    def fail(message: str):
        pytest.fail(f"{message}\n--- page text ---\n{driver.find_element(By.TAG_NAME, 'body').text[-2000:]}"
                    f"\n--- voila log ---\n{tail(log)}")

    def status() -> str:
        return driver.find_element(By.CSS_SELECTOR, ".mssbook-mixer-status").text.strip()

    def audio_src() -> str:
        element = driver.find_element(By.CSS_SELECTOR, "audio.mssbook-mixer-audio, .mssbook-mixer-audio audio")
        return element.get_attribute("src") or ""

    def wait(condition, seconds: float, what: str):
        try:
            return WebDriverWait(driver, seconds, poll_frequency=0.25,
                                 ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
                                 ).until(lambda _: condition())
        except TimeoutException:
            fail(f"timed out after {seconds} s waiting for {what}")

    def ready() -> bool:
        try:
            return bool(status()) and audio_src().startswith("blob:")
        except (NoSuchElementException, StaleElementReferenceException):  # not rendered yet
            return False

    def blob_sha256(src: str) -> str:
        return driver.execute_async_script(BLOB_SHA256, src)

    # What the kernel should show, from the same mixer built here.
    local = StemMixer(*stems(), static=True)

    def expected(**settings) -> tuple[str, str]:
        local.set(**settings)  # renders the mix as the kernel does
        return local.status_text(), hashlib.sha256(local.last_audio.data).hexdigest()

    driver.get(url)  # returns once Voila has run the notebook
    wait(ready, KERNEL_S, "the stem mixer's status line and audio element")
    status0, src0 = status(), audio_src()
    audible0, rms0 = parse_status(status0)
    assert audible0 == ["vocals", "drums", "bass"], status0
    want_status, want_sha = expected(gains_db={"vocals": 0.0, "drums": 0.0, "bass": 0.0}, muted=(), solo=())
    assert status0 == want_status
    assert blob_sha256(src0) == want_sha, "the audio element does not play the kernel's mix"

    # 1. mute the vocals
    mute = driver.find_element(By.CSS_SELECTOR, ".mssbook-mute-vocals")
    if mute.tag_name != "button":
        mute = mute.find_element(By.TAG_NAME, "button")
    mute.click()
    wait(lambda: status() != status0 and audio_src() != src0, ACTION_S,
         "the status line and the audio source to change after muting the vocals")
    status1, src1 = status(), audio_src()
    audible1, rms1 = parse_status(status1)
    assert audible1 == ["drums", "bass"], status1
    assert rms1 < rms0, (status0, status1)
    want_status, want_sha = expected(muted=["vocals"])
    assert status1 == want_status
    assert src1.startswith("blob:") and blob_sha256(src1) == want_sha, "the audio element does not play the new mix"

    # 2. raise the bass fader with the keyboard (the slider's handle takes arrow keys)
    handle = driver.find_element(By.CSS_SELECTOR, ".mssbook-gain-bass .noUi-handle")
    driver.execute_script("arguments[0].focus();", handle)
    for _ in range(4):
        handle.send_keys(Keys.ARROW_RIGHT)
    readout = driver.find_element(By.CSS_SELECTOR, ".mssbook-gain-bass .widget-readout")
    wait(lambda: readout.text.strip() not in ("", "0.0"), ACTION_S, "the bass fader to move")
    wait(lambda: status() != status1 and audio_src() != src1, ACTION_S,
         "the status line and the audio source to change after moving the bass fader")
    # the kernel renders after each step: wait for the one that matches where the fader stopped
    gain = float(readout.text.replace("−", "-"))
    assert gain > 0, readout.text
    want_status, want_sha = expected(gains_db={"bass": gain}, muted=["vocals"])
    wait(lambda: status() == want_status, ACTION_S, f"the status line for bass at {gain} dB: {want_status!r}")
    audible2, rms2 = parse_status(status())
    assert audible2 == ["drums", "bass"] and rms2 > rms1
    src2 = audio_src()
    assert src2 not in (src0, src1) and src2.startswith("blob:")
    wait(lambda: blob_sha256(audio_src()) == want_sha, ACTION_S, "the audio element to play the mix with the bass raised")
