"""Small helpers the course notebooks share: showing library code, Colab, and result lines.

Chapters never copy library code into cells: they call it, and show it with :func:`show_source`,
so what a student reads is exactly what runs (and what a script importing mssbook would run)::

    from mssbook.notebook import show_source
    from mssbook.models.umx import OpenUnmix
    show_source(OpenUnmix.forward)

Each chapter that evaluates ends with one line ``mssbook-scores: {...}`` (:func:`report_scores`),
which ``scripts/run_notebooks.py`` collects (:func:`parse_scores`).

Chapters train in a temporary folder (a rerun trains afresh) and then keep a copy of the run where
the other chapters find it (:func:`keep_run`, :func:`chapter_runs`)::

    trainer = train_model(model, data, config, output=run_dir / "train")
    keep_run(run_dir / "train", "ch02-umx-vocals")   # -> data/runs/ch02-umx-vocals-default/
"""

from __future__ import annotations

import inspect
import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any, Mapping

#: The project's repository (the Colab badges and the Colab install cell point here).
REPO_URL = "https://github.com/mssbook/mssbook"
#: ``owner/name`` of :data:`REPO_URL`, as Colab's GitHub URLs spell it.
REPO_SLUG = "mssbook/mssbook"
#: Branch the badges open.
BRANCH = "main"
#: Folder of the notebooks inside the repository.
NOTEBOOK_DIR = "notebooks"
#: What the first cell of every chapter installs on Colab (and only there).
COLAB_REQUIREMENT = f"mssbook[colab] @ git+{REPO_URL}"
#: The first code cell of every chapter, verbatim (``tests/test_notebooks_meta.py`` checks it).
COLAB_INSTALL_CELL = (
    "# On Google Colab, install mssbook first (elsewhere this cell does nothing).\n"
    "import sys\n"
    "\n"
    'if "google.colab" in sys.modules:\n'
    f'    %pip install -q "{COLAB_REQUIREMENT}"'
)
#: Prefix of the one line a chapter prints with its scores.
SCORES_PREFIX = "mssbook-scores:"

__all__ = [
    "REPO_URL",
    "REPO_SLUG",
    "COLAB_REQUIREMENT",
    "COLAB_INSTALL_CELL",
    "SCORES_PREFIX",
    "Source",
    "show_source",
    "in_colab",
    "colab_url",
    "colab_badge",
    "report_scores",
    "parse_scores",
    "RUN_INFO",
    "runs_dir",
    "kept_run_dir",
    "keep_run",
    "chapter_runs",
]


# --------------------------------------------------------------------------------------------
# Showing the library's own code
# --------------------------------------------------------------------------------------------


class Source:
    """Source code that a notebook displays as a highlighted Markdown code block.

    ``text`` is the code, ``where`` says where it comes from (``mssbook/models/umx.py``, line 120).
    Jupyter and Colab render it through ``_repr_markdown_``; ``str()`` gives the plain code.
    """

    def __init__(self, text: str, where: str = "", name: str = ""):
        self.text = text
        self.where = where
        self.name = name

    def _repr_markdown_(self) -> str:
        head = f"`{self.name}` in {self.where}\n\n" if self.where else ""
        fence = "````" if "```" in self.text else "```"
        return f"{head}{fence}python\n{self.text.rstrip()}\n{fence}\n"

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        head = f"# {self.name} in {self.where}\n" if self.where else ""
        return head + self.text.rstrip()


def _where(obj: Any) -> tuple[str, int | None]:
    """``(file, first line)`` of ``obj``; files inside the package are shown relative to its parent."""
    target = inspect.unwrap(obj.fget if isinstance(obj, property) else obj)
    try:
        path = Path(inspect.getsourcefile(target) or inspect.getfile(target)).resolve()
    except TypeError:
        return "", None
    package = Path(__file__).resolve().parent
    try:
        shown = path.relative_to(package.parent).as_posix()
    except ValueError:
        shown = path.name
    try:
        line = inspect.getsourcelines(target)[1]
    except (OSError, TypeError):
        line = None
    return shown, line


def _qualname(obj: Any) -> str:
    target = obj.fget if isinstance(obj, property) else obj
    module = getattr(target, "__module__", "") or ""
    qual = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    return f"{module}.{qual}" if module else qual


def show_source(obj: Any, start: str | None = None, stop: str | None = None, max_lines: int | None = None) -> Source:
    """The source code of a function, method, class, property or module, ready to display.

    Use it as the last expression of a cell: the notebook shows the code, highlighted, with the
    file and line it comes from. Only code that Python can find the source of works (not
    built-ins or C extensions).

    Args:
        obj: what to show (``OpenUnmix``, ``OpenUnmix.forward``, ``mssbook.signal.transforms``...).
        start: show from the first line containing this text (default: the first line).
        stop: show up to and including the first line after ``start`` containing this text.
        max_lines: cut after this many lines (a ``...`` line marks the cut).
    """
    target = obj.fget if isinstance(obj, property) else obj
    try:
        lines, first = inspect.getsourcelines(inspect.unwrap(target))
    except (OSError, TypeError) as exc:
        raise TypeError(f"no Python source is available for {_qualname(obj)} ({exc})") from None
    text = textwrap.dedent("".join(lines))
    lines = text.splitlines()
    offset = 0
    if start is not None:
        hits = [i for i, line in enumerate(lines) if start in line]
        if not hits:
            raise ValueError(f"no line of {_qualname(obj)} contains {start!r}")
        offset = hits[0]
        lines = lines[offset:]
    if stop is not None:
        hits = [i for i, line in enumerate(lines) if stop in line]
        if not hits:
            raise ValueError(f"no line of {_qualname(obj)} after the start contains {stop!r}")
        lines = lines[: hits[0] + 1]
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[:max_lines] + ["..."]
    body = textwrap.dedent("\n".join(lines))
    path, line = _where(obj)
    where = f"`{path}`" + (f", line {line + offset}" if line is not None else "") if path else ""
    return Source(body + "\n", where=where, name=_qualname(obj))


# --------------------------------------------------------------------------------------------
# Colab
# --------------------------------------------------------------------------------------------


def in_colab() -> bool:
    """True when running on Google Colab (its ``google.colab`` module is loaded)."""
    return "google.colab" in sys.modules


def colab_url(notebook: str) -> str:
    """The URL that opens ``notebooks/<notebook>`` of the repository on Colab."""
    name = Path(notebook).name
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{BRANCH}/{NOTEBOOK_DIR}/{name}"


def colab_badge(notebook: str) -> str:
    """The Markdown of an "Open in Colab" badge for ``notebook`` (a file name like ``00_tour.ipynb``)."""
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook)})"
    )


# --------------------------------------------------------------------------------------------
# One line of results per chapter
# --------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 3)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def report_scores(scores: Mapping[str, Any] | None = None, **more: Any) -> str:
    """Print (and return) the chapter's result line: ``mssbook-scores: {"name": value, ...}``.

    Floats are rounded to 3 decimals; NaN and infinities become ``null`` (valid JSON).
    """
    data = _jsonable({**dict(scores or {}), **more})
    line = f"{SCORES_PREFIX} {json.dumps(data, sort_keys=False)}"
    print(line)
    return line


def parse_scores(text: str) -> dict | None:
    """The scores of the last ``mssbook-scores:`` line in ``text`` (None when there is none)."""
    found = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(SCORES_PREFIX):
            try:
                found = json.loads(line[len(SCORES_PREFIX):])
            except json.JSONDecodeError:
                continue
    return found


# Keeping a chapter's training run where the other chapters find it: see mssbook.runs.
from .runs import RUN_INFO, chapter_runs, keep_run, kept_run_dir, runs_dir  # noqa: E402,F401
