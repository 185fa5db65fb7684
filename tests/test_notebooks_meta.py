"""Every chapter notebook follows the course conventions (checked without running the notebooks).

Running them is nbval's job (``pytest --nbval-lax notebooks/``, see notebooks/README.md) and
``scripts/run_notebooks.py``'s; here each ``notebooks/*.ipynb`` is read and checked for: a valid
nbformat file stored without outputs, the python3 kernel, the Colab-guarded install cell, an "Open
in Colab" badge with the right path, a ``parameters`` cell sized through ``mssbook.profile.choose``,
Summary and Exercises sections, a small file, mssbook imports that exist, and the result line in the
last code cell. The helpers of :mod:`mssbook.notebook` are tested at the end.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

from mssbook import notebook as nbhelp

nbformat = pytest.importorskip("nbformat")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
MAX_BYTES = 100_000


def _ids(paths):
    return [p.name for p in paths]


class Chapter:
    """A notebook read from disk (``node``) and its ``path``; other attributes are the notebook's."""

    def __init__(self, path: Path):
        self.path = path
        self.node = nbformat.read(path, as_version=4)

    def __getattr__(self, name):
        return getattr(self.node, name)


@pytest.fixture(params=NOTEBOOKS, ids=_ids(NOTEBOOKS))
def nb(request):
    return Chapter(request.param)


def _code_cells(notebook):
    return [c for c in notebook.cells if c.cell_type == "code"]


def _markdown(notebook):
    return [c for c in notebook.cells if c.cell_type == "markdown"]


def _python_source(cell_source: str) -> str:
    """Cell source as plain Python (IPython magics turned into calls), for ast parsing."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython comes with the notebook extras
        return "\n".join(line for line in cell_source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return TransformerManager().transform_cell(cell_source)


def test_the_course_has_its_first_chapters():
    names = [p.name for p in NOTEBOOKS]
    for chapter in ("00_tour.ipynb", "01_evaluation.ipynb", "02_open_unmix.ipynb"):
        assert chapter in names, names
    for name in names:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", name), f"{name}: chapters are named NN_topic.ipynb"


def test_valid_nbformat(nb):
    nbformat.validate(nb.node)
    assert nb.nbformat == 4


def test_stored_without_outputs(nb):
    for i, cell in enumerate(_code_cells(nb)):
        assert cell.get("outputs") == [], f"{nb.path.name}: code cell {i} has stored outputs (clear them)"
        assert cell.get("execution_count") is None, f"{nb.path.name}: code cell {i} has an execution count"


def test_small_file(nb):
    size = nb.path.stat().st_size
    assert size < MAX_BYTES, f"{nb.path.name} is {size} bytes; keep chapters under {MAX_BYTES} (no embedded data)"


def test_python3_kernel(nb):
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert nb.metadata.get("language_info", {}).get("name") == "python"


def test_first_cell_installs_only_on_colab(nb):
    first = nb.cells[0]
    assert first.cell_type == "code"
    assert first.source == nbhelp.COLAB_INSTALL_CELL
    assert '"google.colab" in sys.modules' in first.source
    assert nbhelp.REPO_URL in first.source and "%pip install" in first.source


def test_colab_badge_points_to_this_file(nb):
    head = "\n".join(c.source for c in nb.cells[:3] if c.cell_type == "markdown")
    expected = f"https://colab.research.google.com/github/mssbook/mssbook/blob/main/notebooks/{nb.path.name}"
    assert nbhelp.colab_url(nb.path.name) == expected
    assert expected in head, f"{nb.path.name}: no Colab badge for {expected} near the top"
    assert "colab-badge.svg" in head
    titles = [line for line in head.splitlines() if line.startswith("# ")]
    assert titles, f"{nb.path.name}: the first markdown cell starts with a '# Title'"


def test_parameters_cell_uses_profiles(nb):
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{nb.path.name}: exactly one cell is tagged 'parameters' (papermill)"
    cell = tagged[0]
    assert cell.cell_type == "code"
    assert "from mssbook.profile import choose" in cell.source
    assert "choose(default=" in cell.source and "ci=" in cell.source
    tree = ast.parse(cell.source)
    for node in tree.body:  # only assignments and the import: papermill can override every name
        assert isinstance(node, (ast.Assign, ast.AnnAssign, ast.ImportFrom, ast.Import, ast.Expr)), (
            f"{nb.path.name}: the parameters cell holds only imports and assignments"
        )
    position = nb.cells.index(cell)
    assert position < 6, f"{nb.path.name}: the parameters cell belongs near the top"


def test_summary_and_exercises(nb):
    text = "\n".join(c.source for c in _markdown(nb))
    summary = re.search(r"^## Summary\s*$", text, re.M)
    exercises = re.search(r"^## Exercises\s*$", text, re.M)
    assert summary and exercises, f"{nb.path.name}: needs '## Summary' and '## Exercises' sections"
    assert summary.start() < exercises.start()
    tail = text[exercises.end():]
    assert re.search(r"^1\. ", tail, re.M), f"{nb.path.name}: the exercises are a numbered list"
    assert "Hint" in tail, f"{nb.path.name}: exercises come with hints"


def test_code_cells_parse(nb):
    for i, cell in enumerate(_code_cells(nb)):
        source = _python_source(cell.source)
        try:
            ast.parse(source)
        except SyntaxError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{nb.path.name}: code cell {i} does not parse: {exc}")


def test_mssbook_names_the_cells_import_exist(nb):
    """Catches a renamed module or function before a 5-minute notebook run does."""
    for cell in _code_cells(nb):
        tree = ast.parse(_python_source(cell.source))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mssbook":
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        importlib.import_module(f"{node.module}.{alias.name}")  # a submodule
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "mssbook":
                        importlib.import_module(alias.name)


def test_no_machine_specific_paths(nb):
    for cell in nb.cells:
        for pattern in ("/work/", "/home/", "/Users/", "C:\\"):
            assert pattern not in cell.source, f"{nb.path.name}: machine-specific path {pattern!r} in a cell"


def test_scores_line_is_the_last_code_cell(nb):
    cells = _code_cells(nb)
    users = [i for i, c in enumerate(cells) if "report_scores(" in c.source]
    if not users:
        return
    assert users == [len(cells) - 1], f"{nb.path.name}: report_scores belongs in the last code cell only"


def test_readme_lists_every_notebook():
    readme = (NOTEBOOK_DIR / "README.md").read_text()
    for path in NOTEBOOKS:
        assert path.name in readme, f"notebooks/README.md does not list {path.name}"
        assert nbhelp.colab_url(path.name) in readme


def test_sanitize_config_parses():
    text = (NOTEBOOK_DIR / "nbval_sanitize.cfg").read_text()
    pairs = re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.M)  # nbval's own reading
    assert pairs and len(pairs) == len(re.findall(r"^\[.+\]$", text, flags=re.M))
    sanitized = "trained in 4.12 s at 0x7f3a2c"
    for regex, replace in pairs:
        sanitized = re.sub(regex, replace, sanitized)
    assert sanitized == "trained in DURATION at 0xADDRESS"


# --------------------------------------------------------------------------------------------
# mssbook.notebook helpers
# --------------------------------------------------------------------------------------------


def test_show_source_renders_library_code_as_markdown():
    from mssbook.signal.transforms import STFT, bandwidth_to_max_bin

    shown = nbhelp.show_source(bandwidth_to_max_bin)
    markdown = shown._repr_markdown_()
    assert markdown.count("```") == 2 and "```python" in markdown
    assert "def bandwidth_to_max_bin(" in markdown
    assert "`mssbook/signal/transforms.py`, line " in markdown
    assert str(shown).startswith("def bandwidth_to_max_bin(")
    assert "mssbook.signal.transforms.bandwidth_to_max_bin" in repr(shown)

    method = nbhelp.show_source(STFT.forward)
    assert str(method).startswith("def forward(")  # dedented
    cls = nbhelp.show_source(STFT)
    assert str(cls).startswith("class STFT(")


def test_show_source_excerpts():
    from mssbook.models.umx import OpenUnmix

    part = nbhelp.show_source(OpenUnmix.forward, start="x = x.permute", stop='"encoder"')
    lines = str(part).strip().splitlines()
    assert lines[0].startswith("x = x.permute") and '"encoder"' in lines[-1]
    full_line = nbhelp.show_source(OpenUnmix.forward)._repr_markdown_()
    first = int(re.search(r"line (\d+)", full_line).group(1))
    later = int(re.search(r"line (\d+)", part._repr_markdown_()).group(1))
    assert later > first  # the header points at the first line shown
    short = nbhelp.show_source(OpenUnmix.forward, max_lines=3)
    assert str(short).strip().splitlines()[-1] == "..." and len(str(short).strip().splitlines()) == 4
    with pytest.raises(ValueError, match="no line"):
        nbhelp.show_source(OpenUnmix.forward, start="this text is not in the code")


def test_show_source_refuses_builtins():
    with pytest.raises(TypeError, match="no Python source"):
        nbhelp.show_source(len)


def test_show_source_displays_in_ipython():
    pytest.importorskip("IPython")
    from IPython.core.formatters import DisplayFormatter

    from mssbook.profile import choose

    data, _ = DisplayFormatter().format(nbhelp.show_source(choose))
    assert "text/markdown" in data and "def choose(" in data["text/markdown"]


def test_colab_helpers():
    assert nbhelp.REPO_URL == "https://github.com/mssbook/mssbook"
    assert nbhelp.COLAB_REQUIREMENT == "mssbook[colab] @ git+https://github.com/mssbook/mssbook"
    badge = nbhelp.colab_badge("notebooks/00_tour.ipynb")
    assert badge.startswith("[![Open In Colab](")
    assert badge.endswith("(https://colab.research.google.com/github/mssbook/mssbook/blob/main/notebooks/00_tour.ipynb)")
    assert nbhelp.in_colab() is False


def test_scores_line_round_trip(capsys):
    line = nbhelp.report_scores({"vocals_sdr_model": 4.123456, "missing": float("nan")}, steps=600)
    printed = capsys.readouterr().out.strip()
    assert printed == line and line.startswith("mssbook-scores: ")
    parsed = nbhelp.parse_scores("training...\n" + printed + "\nmore output\n")
    assert parsed == {"vocals_sdr_model": 4.123, "missing": None, "steps": 600}
    assert json.loads(line[len("mssbook-scores:"):]) == parsed
    assert nbhelp.parse_scores("no scores here") is None
