#!/usr/bin/env python
"""Build the course book (Jupyter Book 1.x, Sphinx): execute the chapters, then render the HTML.

    python scripts/build_book.py                    # profile from $MSSBOOK_PROFILE, else ci
    python scripts/build_book.py --profile default  # the classroom sizes (about 30 min on 2 cores)
    python scripts/build_book.py --reuse            # execute only chapters whose cells or library changed

``scripts/book.sh`` installs what is missing and runs this script. The steps:

1. every ``notebooks/NN_*.ipynb`` is executed once, in order, by ``scripts/run_notebooks.py``
   (a fresh kernel each, working directory ``notebooks/``) with ``MSSBOOK_WIDGETS=static``, so that
   players and widgets leave real ``<audio>`` and ``<img>`` elements and no widget state. The
   executed copies go to ``book/chapters/`` (git-ignored); the clean sources are never written.
2. ``jupyter-book build book/`` renders them as they are (the book never executes a notebook
   itself) next to the landing page, the glossary, the references and the API page.
3. the built HTML is checked: every chapter page exists and no page shows a cell error.

It prints the execution and rendering times and the size of ``book/_build/html``, and writes them
to ``book/_build/html/mssbook-book.json`` together with a digest of the inputs (chapters, library,
book sources, profile), with which ``tests/test_book.py`` and ``--reuse`` recognise a current build.
The exit code is 0 on success, 1 when a cell fails (or a chapter is missing from the HTML), 2 when
the ``book`` extra is not installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
CHAPTERS = BOOK / "chapters"  # executed copies (git-ignored)
HTML = BOOK / "_build" / "html"
STAMP_NAME = "mssbook-book.json"
STAMP = HTML / STAMP_NAME
CHAPTER_STAMP = CHAPTERS / STAMP_NAME
INSTALL_HINT = ('install the `book` extra: `pip install -e ".[book]"`, or run `bash scripts/book.sh`, '
                "which installs it")

# what an error output looks like once myst-nb has rendered it
ERROR_PATTERNS = (
    re.compile(r'class="[^"]*\btraceback\b'),
    re.compile(r"Traceback \(most recent call last\)"),
    re.compile(r'class="[^"]*\boutput error\b'),
)


def chapter_sources() -> list[Path]:
    """The course's chapters, in order: ``notebooks/NN_*.ipynb``."""
    return sorted(p for p in NOTEBOOKS.glob("*.ipynb") if re.match(r"\d\d_", p.name))


def inputs_digest(profile: str, book: bool = True) -> str:
    """A digest of what a build depends on. ``book=False``: what every executed chapter depends on
    besides its own cells (the library, the data tables, the runner, the profile). ``book=True``:
    that, plus the chapters, the book's own sources and this script (what the HTML depends on)."""
    files = sorted((ROOT / "mssbook").rglob("*.py"))
    files += sorted((ROOT / "data").glob("*.csv"))
    files += [ROOT / "scripts" / "run_notebooks.py"]
    if book:
        files += chapter_sources()
        files += sorted(p for p in BOOK.glob("*") if p.is_file() and p.suffix in {".md", ".yml", ".yaml", ".css", ".py"})
        files += [ROOT / "scripts" / "build_book.py"]
    digest = hashlib.sha256(f"profile={profile}\n".encode())
    for path in files:
        if path.is_file():
            name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            digest.update(str(name).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def read_stamp(path: Path = STAMP) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _jupyter_book() -> list[str]:
    try:
        import jupyter_book  # noqa: F401
    except ImportError:
        print(f"jupyter-book is not installed: {INSTALL_HINT}.", file=sys.stderr)
        raise SystemExit(2)
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    print(f"the jupyter-book command was not found next to {sys.executable}: {INSTALL_HINT}.", file=sys.stderr)
    raise SystemExit(2)


def _prepare_for_book(path: Path) -> None:
    """Adjust an executed copy for the book: the Colab install cell is hidden, widget state dropped."""
    import nbformat

    try:
        from mssbook.notebook import COLAB_INSTALL_CELL
    except ImportError:
        sys.path.insert(0, str(ROOT))
        from mssbook.notebook import COLAB_INSTALL_CELL

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.strip() == COLAB_INSTALL_CELL.strip():
            tags = cell.metadata.setdefault("tags", [])
            if "remove-cell" not in tags:
                tags.append("remove-cell")
    # static views leave no widget; one that slips through (a tqdm progress bar in a training cell)
    # has no front end in the book and would show as an empty element or a stale "0%": drop it
    widget = "application/vnd.jupyter.widget-view+json"
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if widget not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


def _cell_sources(path: Path) -> list[tuple[str, str]] | None:
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None
    return [(c.cell_type, c.source) for c in nb.cells]


def reusable(source: Path, previous: dict | None, common: str) -> bool:
    """Whether book/chapters/ holds a clean run of ``source`` made with today's library, data and
    profile (``common``) from the same cells as the source has now."""
    if not previous or previous.get("common") != common:
        return False
    record = next((r for r in previous.get("notebooks", []) if r.get("notebook") == source.name), None)
    executed = CHAPTERS / source.name
    return bool(record and record.get("ok") and executed.is_file()
                and _cell_sources(executed) == _cell_sources(source))


def execute_chapters(profile: str, budget: float, sources: list[Path]) -> tuple[float, list[dict]]:
    """Execute ``sources`` once each into book/chapters/; returns (seconds, records)."""
    staging = BOOK / "_build" / "executing"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    env = dict(os.environ, MSSBOOK_PROFILE=profile, MSSBOOK_WIDGETS="static")
    command = [sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), "--profile", profile,
               "--budget", str(budget), "--output", str(staging), *map(str, sources)]
    start = time.perf_counter()
    subprocess.call(command, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    records = (read_stamp(staging / "summary.json") or {}).get("notebooks", [])
    done = {r["notebook"] for r in records}
    records += [{"notebook": p.name, "seconds": 0.0, "ok": False, "error": "not executed (see the messages above)"}
                for p in sources if p.name not in done]
    CHAPTERS.mkdir(parents=True, exist_ok=True)
    for record in records:
        executed = staging / record["notebook"]
        if executed.is_file():
            os.replace(executed, CHAPTERS / record["notebook"])
        record["executed"] = str(CHAPTERS / record["notebook"])
    shutil.rmtree(staging, ignore_errors=True)
    return seconds, records


def check_html(chapters: list[str]) -> list[str]:
    """Problems in the built HTML: a missing chapter page or a page that shows a cell error."""
    problems = []
    for stem in chapters:
        page = HTML / "chapters" / f"{stem}.html"
        if not page.is_file():
            problems.append(f"{page.relative_to(ROOT)} is missing (is chapters/{stem} listed in book/_toc.yml?)")
            continue
        text = page.read_text(errors="replace")
        for pattern in ERROR_PATTERNS:
            if pattern.search(text):
                problems.append(f"{page.relative_to(ROOT)} shows a cell error ({pattern.pattern})")
                break
    return problems


def html_size() -> int:
    """Bytes under book/_build/html (the build's own stamp file not counted)."""
    return sum(p.stat().st_size for p in HTML.rglob("*") if p.is_file() and p.name != STAMP_NAME)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("ci", "default"),
                        default=os.environ.get("MSSBOOK_PROFILE") or "ci",
                        help="size profile the chapters run at (default: $MSSBOOK_PROFILE, else ci)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the executed copies in book/chapters/ that ran cleanly from the cells the "
                             "chapter has now, with the same library, data and profile; execute only the others")
    parser.add_argument("--budget", type=float, default=1200.0,
                        help="seconds one chapter may take before it counts as failed (default 1200)")
    args = parser.parse_args(argv)
    if args.profile not in ("ci", "default"):
        parser.error(f"--profile must be ci or default, not {args.profile!r}")

    jupyter_book = _jupyter_book()
    sources = chapter_sources()
    if not sources:
        print(f"no chapters (NN_*.ipynb) found in {NOTEBOOKS}", file=sys.stderr)
        return 1
    stems = [p.stem for p in sources]
    digest = inputs_digest(args.profile)
    chapters_digest = inputs_digest(args.profile, book=False)
    total_start = time.perf_counter()

    # 1. execute the chapters (once each; with --reuse only those whose run is not current)
    previous = read_stamp(CHAPTER_STAMP) if args.reuse else None
    if not args.reuse:
        shutil.rmtree(CHAPTERS, ignore_errors=True)
    kept = [p for p in sources if reusable(p, previous, chapters_digest)]
    todo = [p for p in sources if p not in kept]
    records = {r["notebook"]: r for r in (previous or {}).get("notebooks", []) if r["notebook"] in {p.name for p in kept}}
    if kept:
        print(f"[book] reusing {len(kept)} chapters executed at the {args.profile} profile from the same cells "
              f"and library: {', '.join(p.stem for p in kept)}")
    execute_seconds = 0.0
    if todo:
        print(f"[book] executing {len(todo)} chapters at the {args.profile} profile (MSSBOOK_WIDGETS=static)",
              flush=True)
        execute_seconds, fresh = execute_chapters(args.profile, args.budget, todo)
        records.update({r["notebook"]: r for r in fresh})
    records = [records[p.name] for p in sources]
    for path in sources:  # idempotent, so reused chapters get today's adjustments too
        if (CHAPTERS / path.name).is_file():
            _prepare_for_book(CHAPTERS / path.name)
    CHAPTERS.mkdir(parents=True, exist_ok=True)
    CHAPTER_STAMP.write_text(json.dumps({"profile": args.profile, "common": chapters_digest,
                                         "notebooks": records}, indent=2))
    failed = [f"{r['notebook']}: {r['error']}" for r in records if not r.get("ok")]
    if failed:
        print("[book] FAILED: a chapter did not run cleanly, so the book is not built:\n  " + "\n  ".join(failed),
              file=sys.stderr)
        print(f"[book] the executed copies (with the error) are in {CHAPTERS.relative_to(ROOT)}/", file=sys.stderr)
        return 1

    # 2. render (the book never executes: _config.yml sets execute_notebooks: "off")
    STAMP.unlink(missing_ok=True)
    print("[book] rendering the HTML with jupyter-book", flush=True)
    start = time.perf_counter()
    rc = subprocess.call([*jupyter_book, "build", str(BOOK), "--builder", "html", "--all"], cwd=ROOT)
    render_seconds = time.perf_counter() - start
    if rc != 0:
        print(f"[book] FAILED: jupyter-book build exited with {rc}", file=sys.stderr)
        return 1

    # 3. check what came out
    problems = check_html(stems)
    if problems:
        print("[book] FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    size = html_size()
    total = time.perf_counter() - total_start
    STAMP.write_text(json.dumps({
        "profile": args.profile, "digest": digest, "chapters": stems,
        "execute_seconds": round(execute_seconds, 1), "render_seconds": round(render_seconds, 1),
        "total_seconds": round(total, 1), "html_bytes": size,
        "notebooks": [{k: r.get(k) for k in ("notebook", "seconds", "ok")} for r in records],
    }, indent=2))
    for r in records:
        print(f"[book]   {r['notebook']:28s} {r['seconds']:7.1f} s")
    print(f"[book] built {HTML.relative_to(ROOT)}/index.html at the {args.profile} profile in {total:.0f} s "
          f"(executing {execute_seconds:.0f} s, rendering {render_seconds:.0f} s); "
          f"HTML size {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
