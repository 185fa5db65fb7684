"""Published scores of the systems the course reproduces, shipped as a table (no download).

``data/published_scores.csv`` in a checkout holds, per model and target, the SDR its authors
published: museval's BSSEval v4 SDR on 1 s frames, **median over frames, then median over the 50
MUSDB18 test songs** (the SiSEC 2018 convention), with the test set, the source and caveats
(``data/README.md`` documents the file). Chapters draw these numbers next to their own results
(:func:`mssbook.plots.scores_boxplot`)::

    >>> from mssbook.sisec import load_published_scores, published_medians
    >>> rows = load_published_scores()
    >>> published_medians(rows)["UMX"]["vocals"]
    6.32

The published numbers come from real music (MUSDB18, or MUSDB18-HQ where the ``dataset`` column
says so); scores measured on the course's toy songs are not comparable with them.
"""

from __future__ import annotations

import csv
import sysconfig
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from .errors import MSSBookError
from .paths import checkout_root, data_dir

#: File name of the table, in a checkout's ``data/`` (or ``$MSSBOOK_DATA``).
PUBLISHED_SCORES_FILE = "published_scores.csv"

#: Columns of the table, in order.
COLUMNS = ("model", "target", "SDR", "dataset", "metric", "source", "note")

#: The test set of the SiSEC 2018 numbers (other datasets are marked in labels).
REFERENCE_DATASET = "MUSDB18"

__all__ = [
    "PUBLISHED_SCORES_FILE",
    "COLUMNS",
    "REFERENCE_DATASET",
    "PublishedScore",
    "published_scores_path",
    "load_published_scores",
    "published_medians",
    "format_published",
]


@dataclass(frozen=True)
class PublishedScore:
    """One row of the table: ``model``'s published median SDR (dB) for ``target``."""

    model: str
    target: str
    sdr: float
    dataset: str
    metric: str
    source: str
    note: str = ""


def _candidates() -> list[Path]:
    paths = []
    root = checkout_root()
    if root is not None:
        paths.append(root / "data" / PUBLISHED_SCORES_FILE)
    paths.append(data_dir() / PUBLISHED_SCORES_FILE)
    # a pip install (e.g. Colab's, from git) puts the table in <prefix>/share/mssbook; `pip install
    # --user` in the user base's share/mssbook
    paths.append(Path(sysconfig.get_path("data")) / "share" / "mssbook" / PUBLISHED_SCORES_FILE)
    try:
        user_data = sysconfig.get_path("data", sysconfig.get_preferred_scheme("user"))
    except (KeyError, AttributeError):  # a Python without a user scheme
        user_data = None
    if user_data:
        paths.append(Path(user_data) / "share" / "mssbook" / PUBLISHED_SCORES_FILE)
    return list(dict.fromkeys(paths))


def published_scores_path() -> Path:
    """Where the table is: the checkout's ``data/published_scores.csv``, else ``data_dir()``'s,
    else the copy a pip install puts in ``<prefix>/share/mssbook``.

    Raises :class:`~mssbook.errors.MSSBookError` naming the places looked at when neither exists
    (a pip install without a checkout has no ``data/`` folder).
    """
    candidates = _candidates()
    for path in candidates:
        if path.is_file():
            return path
    raise MSSBookError(
        f"the table of published scores ({PUBLISHED_SCORES_FILE}) is not here; looked for "
        f"{' and '.join(str(p) for p in candidates)}. It ships in the data/ folder of a checkout of "
        "the repository and is installed by pip into <prefix>/share/mssbook: clone the repository, "
        "reinstall mssbook, or copy the file into $MSSBOOK_DATA."
    )


def load_published_scores(path: str | Path | None = None) -> list[PublishedScore]:
    """The rows of ``published_scores.csv`` (``path``, default :func:`published_scores_path`).

    Raises :class:`~mssbook.errors.MSSBookError` naming the file when it is missing, lacks a
    column, or holds an SDR that is not a number.
    """
    path = Path(path).expanduser() if path is not None else published_scores_path()
    if not path.is_file():
        raise MSSBookError(f"no table of published scores at {path} (the file is missing).")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise MSSBookError(
                f"{path} lacks the column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}."
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                sdr = float(row["SDR"])
            except (TypeError, ValueError):
                raise MSSBookError(f"{path}, line {line}: SDR {row['SDR']!r} is not a number.") from None
            if not math.isfinite(sdr):
                raise MSSBookError(f"{path}, line {line}: SDR {row['SDR']!r} is not a finite number.")
            rows.append(PublishedScore(
                model=row["model"].strip(), target=row["target"].strip(), sdr=sdr,
                dataset=row["dataset"].strip(), metric=row["metric"].strip(),
                source=row["source"].strip(), note=(row.get("note") or "").strip(),
            ))
    if not rows:
        raise MSSBookError(f"{path} holds no scores.")
    return rows


def published_medians(scores: Iterable[PublishedScore] | None = None, *, models: Iterable[str] | None = None,
                      label_dataset: bool = True) -> dict[str, dict[str, float]]:
    """``{model: {target: SDR}}`` from the rows (default: :func:`load_published_scores`).

    ``models`` keeps only those models, in that order (default: all, in the table's order). With
    ``label_dataset``, a model measured on another test set than MUSDB18 is labelled with it, e.g.
    ``"BSRNN (MUSDB18-HQ)"``, so that a figure or a table never shows it unmarked.
    """
    rows = list(load_published_scores() if scores is None else scores)
    if models is not None:
        wanted = list(models)
        unknown = [m for m in wanted if m not in {r.model for r in rows}]
        if unknown:
            raise MSSBookError(
                f"no published scores for {', '.join(map(repr, unknown))}; models in the table: "
                f"{', '.join(dict.fromkeys(r.model for r in rows))}."
            )
        rows = sorted((r for r in rows if r.model in wanted), key=lambda r: wanted.index(r.model))
    table: dict[str, dict[str, float]] = {}
    for row in rows:
        label = row.model
        if label_dataset and row.dataset != REFERENCE_DATASET:
            label = f"{row.model} ({row.dataset})"
        table.setdefault(label, {})[row.target] = row.sdr
    return table


def format_published(medians: Mapping[str, Mapping[str, float]] | None = None,
                     targets: Iterable[str] = ("vocals", "drums", "bass", "other")) -> str:
    """The published medians as a text table, one row per model (``-`` where none was published)."""
    medians = published_medians() if medians is None else medians
    targets = list(targets)
    width = max([len("model")] + [len(m) for m in medians]) + 2
    lines = [f"{'model':<{width}}" + "".join(f"{t:>8}" for t in targets)]
    for model, row in medians.items():
        cells = "".join(f"{row[t]:>8.2f}" if t in row else f"{'-':>8}" for t in targets)
        lines.append(f"{model:<{width}}{cells}")
    return "\n".join(lines)
