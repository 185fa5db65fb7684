#!/usr/bin/env python
"""Write each chapter's Exercises cell from ``mssbook.exercises`` (the single source of the exercises).

For every chapter with exercises registered (``mssbook/exercises/chNN.py``), in ``notebooks/NN_*.ipynb``:

* the markdown cell that holds ``## Exercises`` becomes exactly ``exercises_markdown(NN)``; text
  before the heading in the same cell (the Summary) stays where it is, in a cell of its own;
* the Exercises cell becomes the last cell: cells after it move to just before the Summary, in order;
* the chapter's import cell (the first code cell importing from mssbook, the parameters cell
  excepted) gains ``from mssbook.exercises import check, hint, solution``.

Run it under the notebook lock, since other developers edit the same notebooks::

    flock /tmp/mssbook-nb.lock .venv/bin/python scripts/sync_exercises.py            # rewrite
    .venv/bin/python scripts/sync_exercises.py --check                               # exit 1 if out of date
    .venv/bin/python scripts/sync_exercises.py --chapter 02                          # one chapter

Chapters without registered exercises are left untouched, and registered chapters without a
notebook yet are skipped with a note.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mssbook import exercises  # noqa: E402

IMPORT_LINE = "from mssbook.exercises import check, hint, solution"
EXERCISES_HEADING = re.compile(r"^## Exercises\s*$", re.M)
SUMMARY_HEADING = re.compile(r"^## Summary\s*$", re.M)


def registered_chapters() -> list[str]:
    return sorted({item.chapter for item in exercises.all_exercises()})


def notebook_path(chapter: str, folder: Path) -> Path | None:
    """The chapter's notebook, None when there is none yet (exercises may land before their chapter)."""
    found = sorted(folder.glob(f"{chapter}_*.ipynb"))
    if len(found) > 1:
        raise SystemExit(f"sync_exercises: expected one notebook {folder}/{chapter}_*.ipynb, found {len(found)}")
    return found[0] if found else None


def _exercises_index(nb) -> int | None:
    hits = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and EXERCISES_HEADING.search(c.source)]
    if len(hits) > 1:
        raise SystemExit(f"sync_exercises: several cells hold '## Exercises' (cells {hits}); keep one")
    return hits[0] if hits else None


def _summary_index(nb, before: int) -> int | None:
    hits = [i for i, c in enumerate(nb.cells[:before + 1])
            if c.cell_type == "markdown" and SUMMARY_HEADING.search(c.source)]
    return hits[-1] if hits else None


def _import_cell(nb) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        if "google.colab" in cell.source:
            continue
        if re.search(r"^(from mssbook[.\w]* import|import mssbook)", cell.source, re.M):
            return i
    return None


def _with_import(source: str) -> str:
    """``source`` with IMPORT_LINE among its ``from mssbook...`` lines, in alphabetical order."""
    if re.search(r"^from mssbook\.exercises import .*\bcheck\b", source, re.M):
        return source
    lines = source.split("\n")
    starts = [i for i, line in enumerate(lines) if re.match(r"from mssbook[.\w]* import", line)]
    for i in starts:
        if lines[i] > IMPORT_LINE:
            lines.insert(i, IMPORT_LINE)
            return "\n".join(lines)
    if starts:  # after the last mssbook import, past its continuation lines
        j = starts[-1]
        depth = lines[j].count("(") - lines[j].count(")")
        while j + 1 < len(lines) and (depth > 0 or lines[j].rstrip().endswith("\\")):
            j += 1
            depth += lines[j].count("(") - lines[j].count(")")
        lines.insert(j + 1, IMPORT_LINE)
        return "\n".join(lines)
    return IMPORT_LINE + "\n" + source


def sync(nb, chapter: str) -> list[str]:
    """Bring ``nb`` in line (in place); returns what changed, in words (empty: already in sync)."""
    changes = []
    text = exercises.exercises_markdown(chapter)
    index = _exercises_index(nb)
    if index is None:
        raise SystemExit(f"sync_exercises: chapter {chapter} has no '## Exercises' cell; add one after the Summary")
    cell = nb.cells[index]
    start = EXERCISES_HEADING.search(cell.source).start()
    before = cell.source[:start].rstrip()
    if before:  # the Summary (or other text) shares the cell: keep it in a cell of its own
        nb.cells.insert(index, nbformat.v4.new_markdown_cell(before))
        index += 1
        changes.append("split the Summary from the Exercises cell")
    if nb.cells[index].source != text:
        nb.cells[index].source = text
        changes.append("rewrote the Exercises cell")
    if index != len(nb.cells) - 1:
        trailing = nb.cells[index + 1:]
        del nb.cells[index + 1:]
        summary = _summary_index(nb, index)
        at = summary if summary is not None else index
        nb.cells[at:at] = trailing
        changes.append(f"moved {len(trailing)} cell(s) from after the Exercises to before the Summary")
    imports = _import_cell(nb)
    if imports is None:
        raise SystemExit(f"sync_exercises: chapter {chapter} has no code cell importing mssbook to add "
                         f"'{IMPORT_LINE}' to")
    new = _with_import(nb.cells[imports].source)
    if new != nb.cells[imports].source:
        nb.cells[imports].source = new
        changes.append("added the exercises import")
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 listing the chapters out of date")
    parser.add_argument("--chapter", action="append", default=None, help="only this chapter (repeatable), e.g. 02")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="the notebooks folder")
    args = parser.parse_args(argv)

    chapters = registered_chapters()
    if args.chapter:
        wanted = [f"{int(c):02d}" for c in args.chapter]
        unknown = sorted(set(wanted) - set(chapters))
        if unknown:
            parser.error(f"no exercises registered for chapter(s) {unknown}; registered: {chapters}")
        chapters = wanted
    stale = []
    for chapter in chapters:
        path = notebook_path(chapter, args.notebooks)
        if path is None:
            print(f"{chapter}: exercises registered but no notebook {chapter}_*.ipynb yet; skipped", file=sys.stderr)
            continue
        nb = nbformat.read(path, as_version=4)
        changes = sync(nb, chapter)
        if not changes:
            print(f"{path.name}: in sync")
            continue
        if args.check:
            stale.append(chapter)
            print(f"{path.name}: out of date ({'; '.join(changes)})")
        else:
            nbformat.write(nb, path)
            print(f"{path.name}: {'; '.join(changes)}")
    if stale:
        print(f"chapters out of date: {', '.join(stale)}; run "
              "`flock /tmp/mssbook-nb.lock .venv/bin/python scripts/sync_exercises.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
