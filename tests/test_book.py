"""The rendered course book (``scripts/book.sh``, ``scripts/build_book.py``, ``book/``).

The book is built once per test session at the ci profile, or reused when ``book/_build/html``
holds a build made from the same inputs (chapters, library, book sources, profile: the digest in
``mssbook-book.json``), e.g. right after ``bash scripts/book.sh``. Building executes every chapter
once (about 5 minutes on 2 cores at the ci profile) and renders it with jupyter-book. The tests
then read the HTML: every chapter in order with its figures and audio players, no cell errors, no
widget state, the glossary, the references and the API page with their key entries, and every
internal link and anchor resolving.

Needs the ``book`` extra (jupyter-book<2); without it the build tests skip and say how to install it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load_build_book():
    spec = importlib.util.spec_from_file_location("mssbook_build_book", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bb = _load_build_book()

try:
    import jupyter_book  # noqa: F401

    HAVE_BOOK = True
except ImportError:
    HAVE_BOOK = False
needs_book = pytest.mark.skipif(
    not HAVE_BOOK, reason='the `book` extra (jupyter-book<2) is not installed: `pip install -e ".[book]"`, '
                          "or `bash scripts/test.sh` / `bash scripts/book.sh`, which install it")

STEMS = [p.stem for p in bb.chapter_sources()]
# how a chapter puts a player or an interactive view (whose static form has players) on the page
PLAYER_CALL = re.compile(r"\b(play|players|StemMixer|ABPlayer|MaskExplorer|SeparationPlayer)\b\s*[.(]")


class _Page(HTMLParser):
    """What the tests need from one HTML page: ids, links, images, audio sources, headings."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images: list[str] = []
        self.audio = 0
        self.audio_sources: list[str] = []
        self.h1: list[str] = []
        self._in_h1 = False
        self._in_audio = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "link" and a.get("href"):
            self.links.append(a["href"])
        if tag == "script" and a.get("src"):
            self.links.append(a["src"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if tag == "audio":
            self.audio += 1
            self._in_audio = True
            if a.get("src"):
                self.audio_sources.append(a["src"])
        if tag == "source" and self._in_audio and a.get("src"):
            self.audio_sources.append(a["src"])
        if tag == "h1":
            self._in_h1 = True
            self.h1.append("")

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False
        if tag == "audio":
            self._in_audio = False

    def handle_data(self, data):
        if self._in_h1:
            self.h1[-1] += data


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(errors="replace"))
    return page


def test_toc_lists_every_chapter_in_order():
    toc = yaml.safe_load((bb.BOOK / "_toc.yml").read_text())
    assert toc["root"] == "intro"
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    chapters = [f for f in files if f.startswith("chapters/")]
    assert chapters == [f"chapters/{s}" for s in STEMS], (
        "book/_toc.yml must list every notebooks/NN_*.ipynb as chapters/NN_..., in order")
    assert {"glossary", "references", "api"} <= set(files)
    assert len(STEMS) >= 8


def test_digest_follows_inputs(tmp_path, monkeypatch):
    """The reuse rule: a build is current only for the same profile and the same input files."""
    assert bb.inputs_digest("ci") == bb.inputs_digest("ci")
    assert bb.inputs_digest("ci") != bb.inputs_digest("default")
    assert bb.inputs_digest("ci") != bb.inputs_digest("ci", book=False)
    # a changed book source changes the book's digest, not the chapters' one
    book = tmp_path / "book"
    book.mkdir()
    (book / "intro.md").write_text("# one\n")
    monkeypatch.setattr(bb, "BOOK", book)
    before, chapters_before = bb.inputs_digest("ci"), bb.inputs_digest("ci", book=False)
    (book / "intro.md").write_text("# two\n")
    assert bb.inputs_digest("ci") != before
    assert bb.inputs_digest("ci", book=False) == chapters_before


def test_reuse_only_a_clean_run_of_the_same_cells(tmp_path, monkeypatch):
    """--reuse keeps an executed chapter only when it ran cleanly, from the cells the source has now,
    with the same library and profile; anything else is executed again."""
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    monkeypatch.setattr(bb, "CHAPTERS", chapters)
    source = tmp_path / "00_x.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# X"), nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(nb, source)
    executed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# X"), nbformat.v4.new_code_cell("1 + 1")])
    executed.cells[1].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    nbformat.write(executed, chapters / source.name)
    stamp = {"common": "abc", "notebooks": [{"notebook": source.name, "ok": True}]}
    assert bb.reusable(source, stamp, "abc")
    assert not bb.reusable(source, stamp, "other library")
    assert not bb.reusable(source, None, "abc")
    assert not bb.reusable(source, {"common": "abc", "notebooks": [{"notebook": source.name, "ok": False}]}, "abc")
    nb.cells[1].source = "1 + 2"
    nbformat.write(nb, source)
    assert not bb.reusable(source, stamp, "abc")


@pytest.fixture(scope="session")
def built_book():
    """book/_build/html at the ci profile: reused when current, else built (executing each chapter once)."""
    if not HAVE_BOOK:
        pytest.skip(needs_book.kwargs["reason"])
    stamp = bb.read_stamp()
    current = (stamp and stamp.get("profile") == "ci" and stamp.get("digest") == bb.inputs_digest("ci")
               and all((bb.CHAPTERS / f"{s}.ipynb").is_file() for s in STEMS))
    if not current:
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_book.py"), "--profile", "ci", "--reuse"],
                              cwd=ROOT, capture_output=True, text=True, timeout=2400)
        tail = (proc.stdout + proc.stderr)[-6000:]
        assert proc.returncode == 0, f"scripts/build_book.py --profile ci failed:\n{tail}"
        stamp = bb.read_stamp()
        assert stamp is not None, f"the build wrote no {bb.STAMP}:\n{tail}"
    assert stamp["profile"] == "ci"
    return stamp


@needs_book
@pytest.mark.slow
def test_build_stamp(built_book):
    assert built_book["chapters"] == STEMS
    assert built_book["html_bytes"] == bb.html_size() > 0
    assert all(n["ok"] for n in built_book["notebooks"])


@needs_book
@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
def test_chapter_page(built_book, stem):
    page_path = bb.HTML / "chapters" / f"{stem}.html"
    assert page_path.is_file(), f"{page_path} missing"
    text = page_path.read_text(errors="replace")
    page = parse(page_path)
    source = nbformat.read(bb.NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    executed = nbformat.read(bb.CHAPTERS / f"{stem}.ipynb", as_version=4)

    # the chapter's title is the page's title
    title = next(line[2:].strip() for c in source.cells if c.cell_type == "markdown"
                 for line in c.source.splitlines() if line.startswith("# "))
    assert page.h1 and re.sub(r"\W+", "", page.h1[0]) == re.sub(r"\W+", "", re.sub(r"[*`_]", "", title))

    # no cell errors, and no widget state (static views only)
    for pattern in bb.ERROR_PATTERNS:
        assert not pattern.search(text), f"{stem}: a cell error is on the page ({pattern.pattern})"
    assert "application/vnd.jupyter.widget-view+json" not in text
    assert "google.colab" not in text  # the Colab install cell is hidden in the book

    # figures: every image the run produced is on the page, as a file that exists and is not empty
    produced = sum("image/png" in o.get("data", {}) or "image/jpeg" in o.get("data", {})
                   for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    rendered = [src for src in page.images if "_images/" in src or src.startswith("data:image/")]
    assert produced >= 1 and len(rendered) >= produced, f"{stem}: {produced} figures, {len(rendered)} on the page"
    for src in rendered:
        if not src.startswith("data:"):
            image = (page_path.parent / unquote(src)).resolve()
            assert image.is_file() and image.stat().st_size > 1000, src

    # audio: a chapter that builds players shows every one of them, with embedded compressed audio
    calls = any(PLAYER_CALL.search(c.source) for c in source.cells if c.cell_type == "code")
    in_outputs = sum(o.get("data", {}).get("text/html", "").count("<audio")
                     for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    if calls:
        assert in_outputs >= 1, f"{stem} builds players but its run has no <audio> output"
    assert page.audio == in_outputs, f"{stem}: {in_outputs} players in the run, {page.audio} on the page"
    for src in page.audio_sources:
        assert re.match(r"data:audio/(mpeg|ogg|wav|x-wav);base64,[A-Za-z0-9+/]{100}", src), src[:60]


@needs_book
@pytest.mark.slow
def test_chapters_in_order(built_book):
    """The landing page lists the chapters in order, and each chapter's "next" link is the next one."""
    index = (bb.HTML / "intro.html").read_text()
    positions = [index.find(f"chapters/{s}.html") for s in STEMS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    for stem, following in zip(STEMS, STEMS[1:]):
        text = (bb.HTML / "chapters" / f"{stem}.html").read_text()
        match = re.search(r'<a[^>]*class="[^"]*right-next[^"]*"[^>]*href="([^"]+)"', text) or \
            re.search(r'<a[^>]*href="([^"]+)"[^>]*class="[^"]*right-next', text)
        assert match and match.group(1).split("#")[0] == f"{following}.html", stem
    assert (bb.HTML / "index.html").is_file()


GLOSSARY_TERMS = ["SDR", "SIR", "SAR", "ISR", "cSDR", "uSDR", "SI-SDR", "BSSEval", "IBM", "IRM", "MWF",
                  "Wiener filter", "EM", "STFT", "ISTFT", "NOLA", "COLA", "CaC", "Complex as channels",
                  "Receptive field", "Target field", "Dilation", "Mask", "Source image", "Stems",
                  "MUSDB18", "Oracle", "Residual"]


@needs_book
@pytest.mark.slow
def test_glossary(built_book):
    page = parse(bb.HTML / "glossary.html")
    ids = {i.lower() for i in page.ids}
    missing = [t for t in GLOSSARY_TERMS if f"term-{t}".replace(" ", "-").lower() not in ids]
    assert not missing, f"glossary terms missing: {missing}"


@needs_book
@pytest.mark.slow
def test_references(built_book):
    text = (bb.HTML / "references.html").read_text()
    for needle in ["https://doi.org/10.21105/joss.01667", "https://arxiv.org/abs/2010.04228",
                   "https://arxiv.org/abs/2010.01733", "https://arxiv.org/abs/1912.02591",
                   "https://arxiv.org/abs/2209.15174", "https://arxiv.org/abs/1810.12187",
                   "https://doi.org/10.1109/TSA.2005.858005", "https://arxiv.org/abs/1804.06267",
                   "https://doi.org/10.5281/zenodo.1117372", "https://github.com/sigsep/sigsep-mus-eval",
                   "https://github.com/sigsep/sigsep-mus-oracle", "https://github.com/sigsep/open-unmix-pytorch",
                   "https://github.com/sony/ai-research-code", "https://github.com/ws-choi/ISMIR2020_U_Nets_SVS",
                   "https://github.com/francesclluis/source-separation-wavenet", "https://github.com/magronp/bsrnn"]:
        assert f'href="{needle}' in text, needle


@needs_book
@pytest.mark.slow
def test_api_page(built_book):
    ids = parse(bb.HTML / "api.html").ids
    for name in ["mssbook.separate", "mssbook.pretrained", "mssbook.models.create",
                 "mssbook.separation.separate", "mssbook.allocator.reuse_freed_memory",
                 "mssbook.training.train_model", "mssbook.training.Trainer",
                 "mssbook.evaluation.evaluate_dataset",
                 "mssbook.metrics.bss_eval", "mssbook.metrics.usdr", "mssbook.oracles.oracle",
                 "mssbook.widgets.play", "mssbook.widgets.StemMixer", "mssbook.exercises.check",
                 "mssbook.data.audio.load_audio", "mssbook.data.toy.generate_toy_dataset"]:
        assert name in ids, f"{name} is not documented on the API page"


def _html_pages():
    return sorted(p for p in bb.HTML.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


@needs_book
@pytest.mark.slow
def test_internal_links_resolve(built_book):
    """Every relative link, image and script of every page points to a file of the build, and every
    fragment of a link to a page names an id on that page."""
    pages = {p.resolve(): parse(p) for p in _html_pages()}
    broken = []
    for path, page in pages.items():
        for link in page.links + page.images:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("data:", "mailto:", "javascript:")):
                continue
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if not target.exists():
                broken.append(f"{path.relative_to(bb.HTML)}: {link}")
            elif parts.fragment and target in pages and unquote(parts.fragment) not in pages[target].ids:
                broken.append(f"{path.relative_to(bb.HTML)}: {link} (no such anchor)")
    assert not broken, f"{len(broken)} broken internal links, e.g. {broken[:10]}"
