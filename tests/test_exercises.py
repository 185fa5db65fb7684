"""The course's exercises (mssbook.exercises): every solution passes its checker, every plausible
wrong answer is rejected with a reason, the notebooks' Exercises cells are generated from the
package, and the teacher's CLI lists and grades."""

from __future__ import annotations

import importlib.util
import re
import textwrap
from pathlib import Path

import nbformat
import pytest

from mssbook import exercises
from mssbook.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ALL = exercises.all_exercises()


def _sync_module():
    spec = importlib.util.spec_from_file_location("sync_exercises", ROOT / "scripts" / "sync_exercises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------
# every exercise
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("item", ALL, ids=[e.id for e in ALL])
def test_solution_passes_its_checker(item):
    verdict = exercises.check(item.id, item.solve())
    assert verdict.ok, f"{item.id}: the worked solution is rejected: {verdict.message}"
    assert verdict.message


@pytest.mark.parametrize("item", ALL, ids=[e.id for e in ALL])
def test_wrong_answers_are_rejected_with_a_reason(item):
    assert item.wrong_answers, f"{item.id}: give at least one plausible wrong answer"
    for k, make in enumerate(item.wrong_answers):
        verdict = exercises.check(item.id, make())
        assert not verdict.ok, f"{item.id}: wrong answer {k} is accepted"
        assert verdict.message.strip(), f"{item.id}: wrong answer {k} is rejected without a reason"


@pytest.mark.parametrize("item", ALL, ids=[e.id for e in ALL])
@pytest.mark.parametrize("junk", ["42", None], ids=["a string", "None"])
def test_wrong_type_is_rejected_with_a_clear_message(item, junk):
    verdict = exercises.check(item.id, junk)
    assert not verdict.ok
    assert not verdict.message.startswith("checking raised"), \
        f"{item.id}: a {type(junk).__name__} crashes the checker instead of being explained: {verdict.message}"


@pytest.mark.parametrize("item", ALL, ids=[e.id for e in ALL])
def test_exercise_text_is_complete(item):
    assert re.fullmatch(r"\d\d\.\d+", item.id)
    assert item.title and item.statement and item.answer
    assert item.hint, f"{item.id}: every exercise needs a hint"
    shown = exercises.solution(item.id, run=False)._repr_markdown_()
    assert "def " in shown or "return" in shown, f"{item.id}: the solution shows no code"


def test_ids_and_errors():
    ids = [e.id for e in ALL]
    assert len(ids) == len(set(ids))
    with pytest.raises(KeyError, match="no exercise '99.1'"):
        exercises.get("99.1")
    assert exercises.hint("02.4") == exercises.get("02.4").hint
    assert "bandwidth=None" in exercises.solution("02.4", run=False).code
    verdict = exercises.check("02.4", 1)
    assert not verdict and str(verdict).startswith("02.4: wrong: ")


def test_chapter_modules_define_their_own_chapter():
    for path in sorted((ROOT / "mssbook" / "exercises").glob("ch*.py")):
        chapter = path.stem[2:]
        registered = exercises.chapter_exercises(chapter)
        assert registered, f"{path.name} registers no exercise"
        module = f"mssbook.exercises.{path.stem}"
        assert all(e.checker.__module__ == module for e in registered), \
            f"{path.name}: an exercise of chapter {chapter} is defined elsewhere"
        assert [e.number for e in registered] == list(range(1, len(registered) + 1)), \
            f"chapter {chapter}: exercises are numbered 1, 2, ... without gaps"


def test_every_chapter_has_exercises():
    """Each chapter notebook has its exercises module, and each module its chapter notebook."""
    notebooks = {p.name[:2] for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    modules = {p.stem[2:] for p in (ROOT / "mssbook" / "exercises").glob("ch[0-9][0-9].py")}
    assert {f"{c:02d}" for c in range(8)} <= notebooks
    assert notebooks == modules, (f"chapters without exercises: {sorted(notebooks - modules)}; "
                                  f"exercises without a chapter: {sorted(modules - notebooks)}")


# --------------------------------------------------------------------------------------------
# the notebooks' Exercises cells
# --------------------------------------------------------------------------------------------


def test_notebooks_are_in_sync(capsys):
    status = _sync_module().main(["--check"])
    out = capsys.readouterr()
    assert status == 0, ("Exercises cells differ from mssbook.exercises; run `flock /tmp/mssbook-nb.lock "
                         ".venv/bin/python scripts/sync_exercises.py`\n" + out.out + out.err)


def test_exercises_markdown_lists_every_exercise():
    text = exercises.exercises_markdown("02")
    assert text.startswith("## Exercises\n")
    for item in exercises.chapter_exercises("02"):
        assert f"{item.number}. **{item.title}** (`{item.id}`)" in text
        assert f"*Hint:* {item.hint.splitlines()[0]}" in text


def _toy_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import sys"),
        nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import numpy as np\n\nfrom mssbook import models\n"
                                  "from mssbook.training import (DataConfig,\n    TrainConfig)\nx = 1"),
        nbformat.v4.new_markdown_cell("## 1. Something"),
        nbformat.v4.new_markdown_cell("Closing words.\n\n## Summary\n\n* a point\n\n## Exercises\n\n1. old\n"
                                      "<details>old solution</details>"),
        nbformat.v4.new_code_cell("report_scores({})"),
        nbformat.v4.new_code_cell("print('after')"),
    ]
    return nb


def test_sync_splits_moves_and_imports(tmp_path, capsys):
    sync = _sync_module()
    path = tmp_path / "02_toy.ipynb"
    nbformat.write(_toy_notebook(), path)
    before = path.read_text()
    assert sync.main(["--check", "--chapter", "02", "--notebooks", str(tmp_path)]) == 1
    assert "02_toy.ipynb: out of date" in capsys.readouterr().out
    assert path.read_text() == before  # --check writes nothing

    assert sync.main(["--chapter", "02", "--notebooks", str(tmp_path)]) == 0
    cells = nbformat.read(path, as_version=4).cells
    assert cells[-1].source == exercises.exercises_markdown("02")
    assert [c.source for c in cells[3:7]] == ["## 1. Something", "report_scores({})", "print('after')",
                                              "Closing words.\n\n## Summary\n\n* a point"]
    assert cells[2].source.split("\n")[3:6] == ["from mssbook.exercises import check, hint, solution",
                                               "from mssbook.training import (DataConfig,", "    TrainConfig)"]
    assert "exercises" not in cells[1].source  # the parameters cell stays as it is
    assert sync.main(["--check", "--chapter", "02", "--notebooks", str(tmp_path)]) == 0  # idempotent
    after = path.read_text()
    assert sync.main(["--chapter", "02", "--notebooks", str(tmp_path)]) == 0
    assert path.read_text() == after


def test_sync_refuses_a_chapter_without_exercises_cell(tmp_path):
    sync = _sync_module()
    nb = _toy_notebook()
    nb.cells[4].source = "## Summary\n\n* a point"
    nbformat.write(nb, tmp_path / "02_toy.ipynb")
    with pytest.raises(SystemExit, match="no '## Exercises' cell"):
        sync.main(["--chapter", "02", "--notebooks", str(tmp_path)])


# --------------------------------------------------------------------------------------------
# the teacher's CLI
# --------------------------------------------------------------------------------------------


def test_cli_lists_a_chapter(capsys):
    assert cli_main(["exercises", "--chapter", "02"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == [e.id for e in exercises.chapter_exercises("02")]
    assert cli_main(["exercises", "--chapter", "42"]) == 2
    assert "no exercises for chapter 42" in capsys.readouterr().err


def test_cli_shows_a_solution(capsys):
    assert cli_main(["exercises", "--solution", "02.4"]) == 0
    assert "bandwidth=None" in capsys.readouterr().out
    assert cli_main(["exercises", "--solution", "02.99"]) == 2
    assert "no exercise '02.99'" in capsys.readouterr().err


def test_cli_grades_a_good_answers_file(tmp_path, capsys):
    answers = tmp_path / "answers.py"
    answers.write_text(textwrap.dedent("""
        from mssbook.exercises import get

        ANSWERS = {i: get(i).solve() for i in ("02.1", "02.2", "02.3", "02.5")}
        ex_02_4 = 2 * 562 * 128 + 2 * 562
    """))
    assert cli_main(["exercises", "--check", str(answers), "--chapter", "02"]) == 0
    out = capsys.readouterr().out
    assert "score: 5/5" in out
    assert not re.search(r"^\S+\s+wrong", out, re.M)


def test_cli_grades_a_bad_answers_file(tmp_path, capsys):
    answers = tmp_path / "answers.py"
    answers.write_text("ANSWERS = {'02.4': 2 * 562 * 128}\nex_02_1 = lambda *a: 0\n")
    assert cli_main(["exercises", "--check", str(answers), "--chapter", "02"]) == 1
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:-1]}
    assert rows == {"02.1": "wrong", "02.2": "wrong", "02.3": "wrong", "02.4": "wrong", "02.5": "wrong"}
    assert "no answer handed in" in out and "score: 0/5" in out


def test_cli_refuses_bad_files(tmp_path, capsys):
    assert cli_main(["exercises", "--check", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.py"
    broken.write_text("ANSWERS = {\n")
    assert cli_main(["exercises", "--check", str(broken)]) == 2
    assert "running the answers file failed" in capsys.readouterr().err
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert cli_main(["exercises", "--check", str(empty)]) == 2
    assert "no answers found" in capsys.readouterr().err
    unknown = tmp_path / "unknown.py"
    unknown.write_text("ANSWERS = {'99.1': 3}\n")
    assert cli_main(["exercises", "--check", str(unknown)]) == 2
    assert "unknown exercises ['99.1']" in capsys.readouterr().err
