"""Run every chapter once per test session.

The chapters are tests twice over: nbval runs their cells (``pytest notebooks/``), and the book
build of ``tests/test_book.py`` executes them too (with static widgets) and fails on any cell
error, naming the chapter. Executing all nine chapters twice would double the suite's longest part,
so when the book test is collected in the same session and jupyter-book is installed, the nbval
items are deselected and the book build is the run that checks them. Run ``pytest notebooks/``
(or one chapter) to get nbval's cell-by-cell report; ``MSSBOOK_NBVAL=1`` keeps nbval in a full run.
"""

from __future__ import annotations

import importlib.util
import os


def pytest_collection_modifyitems(config, items):
    if os.environ.get("MSSBOOK_NBVAL", "").strip() == "1":
        return
    book_tests = [item for item in items if item.nodeid.startswith("tests/test_book.py")]
    if not book_tests or importlib.util.find_spec("jupyter_book") is None:
        return  # no book build in this session: nbval is what executes the chapters
    notebooks = [item for item in items if item.nodeid.startswith("notebooks/") and item.nodeid.split("::")[0].endswith(".ipynb")]
    if not notebooks:
        return
    config.hook.pytest_deselected(items=notebooks)
    items[:] = [item for item in items if item not in notebooks]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"mssbook: {len(notebooks)} nbval cells deselected: tests/test_book.py executes every "
                            "chapter once (MSSBOOK_NBVAL=1 keeps nbval too)")
