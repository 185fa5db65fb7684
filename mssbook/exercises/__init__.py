"""Exercises a class can hand in: a statement, a hint, a checker and a worked solution for each.

Every chapter ends with exercises; this package is their single source. Each exercise has an id
(``"02.4"``: chapter 02, exercise 4), a statement and a hint (the chapter's Exercises cell is
generated from them, see :func:`exercises_markdown`), a **checker** and a **solution**::

    from mssbook.exercises import check, hint, solution
    check("02.4", my_answer)      # right, or wrong and why (never the solution)
    hint("02.4")
    solution("02.4")              # the worked solution: code that runs, and what it returns

A checker takes what the statement asks for (a number, an array, a function, a model) and returns
a :class:`Verdict`. Exercises that would need minutes of training check a cheaper proxy (a shape,
a parameter count, one gradient step, a metric on a given estimate). A teacher grades a student's
file of answers with ``mssbook exercises --check answers.py`` (see :func:`grade_file`).

The exercises of chapter NN live in ``mssbook/exercises/chNN.py``, each registered with
:func:`exercise`.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = [
    "Exercise",
    "Verdict",
    "Wrong",
    "exercise",
    "get",
    "all_exercises",
    "chapter_exercises",
    "check",
    "hint",
    "solution",
    "exercises_markdown",
    "grade",
    "grade_file",
    "expect_close",
    "expect_shape",
    "expect_callable",
    "expect_keys",
    "expect_close_each",
    "expect_int",
]


class Wrong(Exception):
    """Raised inside a checker: the answer is wrong, and the message says why (not the solution)."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`check`: ``ok`` and a message for the student."""

    id: str
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return f"{self.id}: {'right' if self.ok else 'wrong'}: {self.message}"

    def _repr_html_(self) -> str:
        from html import escape

        color = "#1a7f37" if self.ok else "#cf222e"
        word = "right" if self.ok else "wrong"
        return f'<div style="color:{color}"><b>{escape(self.id)}: {word}</b>, {escape(self.message)}</div>'


@dataclass(frozen=True)
class Exercise:
    """One exercise. ``checker(answer)`` returns a message when right and raises :class:`Wrong`
    (with the reason) when not; ``solve()`` returns the right answer, computed by code that runs."""

    id: str
    title: str
    statement: str
    hint: str
    checker: Callable[[Any], str | None]
    solve: Callable[[], Any]
    answer: str = "the answer"  # what to pass to check(), in words ("a float in dB", "a function f(x)")
    notes: str = ""  # what the solution shows beyond the answer (discussion, markdown)
    wrong_answers: tuple = field(default=(), compare=False)  # callables giving plausible wrong answers (tests)

    @property
    def chapter(self) -> str:
        return self.id.split(".")[0]

    @property
    def number(self) -> int:
        return int(self.id.split(".")[1])


_REGISTRY: dict[str, Exercise] = {}


def exercise(id: str, title: str, statement: str, hint: str, answer: str, notes: str = "",
             wrong_answers: tuple = ()):
    """Decorator registering a checker; the decorated function is the checker, and
    ``solve=`` is attached with ``@<checker>.solution``::

        @exercise("02.2", "Count the bins", "...", hint="...", answer="an int")
        def _check(answer):
            expect_int(answer, 10, "bins below 100 Hz")

        @_check.solution
        def _solve():
            return int((bin_frequencies(44100, 4096) < 100).sum())
    """

    def register(checker: Callable[[Any], str | None]):
        def attach(solve: Callable[[], Any]):
            item = Exercise(id, title, textwrap.dedent(statement).strip(), textwrap.dedent(hint).strip(),
                            checker, solve, answer, textwrap.dedent(notes).strip(), tuple(wrong_answers))
            if id in _REGISTRY:
                raise ValueError(f"exercise {id} is defined twice")
            _REGISTRY[id] = item
            return solve

        checker.solution = attach
        return checker

    return register


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("ch"):
            importlib.import_module(f"{__name__}.{info.name}")


def all_exercises() -> list[Exercise]:
    """Every exercise of every chapter, in order."""
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY, key=lambda k: (k.split(".")[0], int(k.split(".")[1])))]


def chapter_exercises(chapter: str | int) -> list[Exercise]:
    """The exercises of one chapter (``"02"`` or ``2``), in order."""
    chapter = f"{int(chapter):02d}"
    return [e for e in all_exercises() if e.chapter == chapter]


def get(id: str) -> Exercise:
    """The exercise ``id`` (``"02.4"``), or a clear error listing the ids."""
    _load_all()
    if id not in _REGISTRY:
        known = ", ".join(e.id for e in all_exercises())
        raise KeyError(f"no exercise {id!r}; the exercises are {known}")
    return _REGISTRY[id]


def check(id: str, answer: Any) -> Verdict:
    """Check ``answer`` to exercise ``id``: right, or wrong and why (the solution is not shown)."""
    item = get(id)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the checks run tiny models: one thread is steadier (and faster) on a busy CPU
    try:
        message = item.checker(answer)
    except Wrong as exc:
        return Verdict(id, False, str(exc))
    except Exception as exc:  # a student's function that crashes is a wrong answer, with the reason
        return Verdict(id, False, f"checking raised {type(exc).__name__}: {exc}")
    finally:
        torch.set_num_threads(threads)
    return Verdict(id, True, message or "well done")


def hint(id: str) -> str:
    return get(id).hint


class Solution:
    """A worked solution: its code (the exercise's ``solve`` function) and, when run, its value."""

    def __init__(self, item: Exercise, run: bool):
        self.item = item
        lines = textwrap.dedent(inspect.getsource(item.solve)).splitlines(keepends=True)
        while lines and lines[0].startswith("@"):  # the registering decorator is bookkeeping, not solution
            lines.pop(0)
        self.code = "".join(lines)
        self.value = item.solve() if run else None
        self.ran = run

    def _repr_markdown_(self) -> str:
        text = f"**Solution to {self.item.id}: {self.item.title}**\n\n```python\n{self.code}```\n"
        if self.ran:
            text += f"\nIt returns `{_short(self.value)}`.\n"
        if self.item.notes:
            text += f"\n{self.item.notes}\n"
        return text

    def __repr__(self) -> str:
        return self._repr_markdown_()


def solution(id: str, run: bool = True) -> Solution:
    """The worked solution of ``id``: the code, run (``run=False``: only shown), and its discussion."""
    return Solution(get(id), run)


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    if callable(value):
        return f"function {getattr(value, '__name__', type(value).__name__)}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def exercises_markdown(chapter: str | int) -> str:
    """The chapter's Exercises cell, generated from this package (the notebook holds a copy that
    ``scripts/sync_exercises.py`` writes and ``tests/test_exercises.py`` compares)."""
    items = chapter_exercises(chapter)
    lines = ["## Exercises", "",
             "Each exercise says what to hand in. Check it with `check(id, answer)`; `hint(id)` repeats the",
             "hint and `solution(id)` shows the worked solution (try first!). They come from `mssbook.exercises`.",
             ""]
    for item in items:
        body = textwrap.indent(item.statement, "   ").lstrip()
        lines.append(f"{item.number}. **{item.title}** (`{item.id}`) {body}")
        lines.append(f"   *Hand in:* {item.answer}.")
        if item.hint:
            lines.append(textwrap.indent(f"*Hint:* {item.hint}", "   "))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------
# Grading a file of answers
# ----------------------------------------------------------------------------------------------


def _answers_from_namespace(namespace: dict) -> dict[str, Any]:
    """``ANSWERS = {"02.4": ...}`` and/or variables named ``ex_02_4``."""
    answers = dict(namespace.get("ANSWERS", {}))
    for name, value in namespace.items():
        if name.startswith("ex_") and name.count("_") == 2:
            _, chapter, number = name.split("_")
            if chapter.isdigit() and number.isdigit():
                answers.setdefault(f"{int(chapter):02d}.{int(number)}", value)
    return answers


def grade(answers: dict[str, Any], chapter: str | int | None = None) -> list[Verdict]:
    """Check every exercise (of ``chapter``, or all) against ``answers``; a missing answer is wrong."""
    items = chapter_exercises(chapter) if chapter is not None else all_exercises()
    unknown = set(answers) - {e.id for e in all_exercises()}
    if unknown:
        raise KeyError(f"answers to unknown exercises {sorted(unknown)}; the ids look like '02.4'")
    return [check(e.id, answers[e.id]) if e.id in answers else Verdict(e.id, False, "no answer handed in")
            for e in items]


def grade_file(path, chapter: str | int | None = None) -> list[Verdict]:
    """Run a student's ``answers.py`` (``ANSWERS = {"02.4": ...}`` or ``ex_02_4 = ...``) and grade it."""
    import runpy
    from pathlib import Path

    from ..errors import MSSBookError

    path = Path(path)
    if not path.is_file():
        raise MSSBookError(f"{path}: no such file; pass the student's answers file (a .py defining "
                           "ANSWERS = {'02.4': ...} or variables ex_02_4 = ...).")
    try:
        namespace = runpy.run_path(str(path), run_name="__answers__")
    except Exception as exc:
        raise MSSBookError(f"{path}: running the answers file failed ({type(exc).__name__}: {exc}); "
                           f"fix it so that `python {path}` runs.") from exc
    answers = _answers_from_namespace(namespace)
    if not answers:
        raise MSSBookError(f"{path}: no answers found; define ANSWERS = {{'02.4': ...}} or ex_02_4 = ...")
    try:
        return grade(answers, chapter)
    except KeyError as exc:
        raise MSSBookError(f"{path}: {exc.args[0]}") from None


def format_grades(verdicts: list[Verdict]) -> str:
    """The score table: one row per exercise, then the score."""
    rows = [f"{'exercise':9s} {'result':7s} message"]
    for v in verdicts:
        rows.append(f"{v.id:9s} {'right' if v.ok else 'wrong':7s} {v.message}")
    right = sum(v.ok for v in verdicts)
    rows.append(f"score: {right}/{len(verdicts)}")
    return "\n".join(rows)


# ----------------------------------------------------------------------------------------------
# Checker helpers: each raises Wrong with a reason that does not give the answer away
# ----------------------------------------------------------------------------------------------


def expect_int(answer: Any, expected: int, what: str) -> str:
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
        if isinstance(answer, (float, np.floating)) and float(answer).is_integer():
            answer = int(answer)
        else:
            raise Wrong(f"{what}: expected a whole number, got {type(answer).__name__} {answer!r}")
    if int(answer) != expected:
        direction = "too high" if int(answer) > expected else "too low"
        raise Wrong(f"{what}: {answer} is {direction}")
    return f"{what}: {answer}"


def expect_close(answer: Any, expected: Any, what: str, rtol: float = 1e-3, atol: float = 0.0) -> str:
    """A number or an array within tolerance (with the shape checked first for arrays)."""
    if hasattr(answer, "detach"):
        answer = answer.detach().cpu().numpy()
    try:
        got = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        raise Wrong(f"{what}: expected a number or an array, got {type(answer).__name__}") from None
    want = np.asarray(expected, dtype=np.float64)
    if got.shape != want.shape:
        raise Wrong(f"{what}: expected shape {want.shape}, got {got.shape}")
    if not np.all(np.isfinite(got) | ~np.isfinite(want)):
        raise Wrong(f"{what}: contains NaN or inf")
    if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
        if got.ndim == 0:
            direction = "too high" if got > want else "too low"
            raise Wrong(f"{what}: {float(got):.6g} is {direction} (tolerance {rtol:g} relative, {atol:g} absolute)")
        bad = ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise Wrong(f"{what}: {int(bad.sum())} of {bad.size} values are off (first at index {first})")
    return f"{what}: correct" + ("" if got.ndim == 0 else f" (shape {got.shape})")


def expect_shape(answer: Any, shape: tuple, what: str) -> str:
    got = tuple(getattr(answer, "shape", np.shape(answer)))
    if got != tuple(shape):
        raise Wrong(f"{what}: expected shape {tuple(shape)}, got {got}")
    return f"{what}: shape {got}"


def expect_keys(answer: Any, keys, what: str) -> dict:
    """``answer`` must be a dict holding every key of ``keys`` (what it maps to is checked after)."""
    keys = list(keys)
    if not isinstance(answer, dict):
        raise Wrong(f"expected a dict {what}, got {type(answer).__name__}")
    missing = [k for k in keys if k not in answer]
    if missing:
        raise Wrong(f"the dict needs the keys {keys}; missing {missing}")
    return answer


def expect_close_each(answer: Any, expected: dict, what: str, rtol: float = 1e-3, atol: float = 0.0) -> dict:
    """A dict with a value close to ``expected[key]`` for every key; ``what`` names one value and
    may contain ``{key}`` (e.g. ``"the uSDR for {key}"``)."""
    expect_keys(answer, list(expected), "{" + ", ".join(f"{k!r}: ..." for k in expected) + "}")
    for key, want in expected.items():
        expect_close(answer[key], want, what.format(key=key), rtol=rtol, atol=atol)
    return answer


def expect_callable(answer: Any, what: str) -> Callable:
    if not callable(answer):
        raise Wrong(f"{what}: expected a function, got {type(answer).__name__}")
    return answer


def isclose(a: float, b: float, tol: float) -> bool:
    return math.isfinite(a) and abs(a - b) <= tol
