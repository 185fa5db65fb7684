#!/usr/bin/env python
"""Run the course notebooks top to bottom, time them and collect their scores.

    python scripts/run_notebooks.py                      # every chapter, default (classroom) profile
    python scripts/run_notebooks.py --profile ci         # the sizes the test suite uses
    python scripts/run_notebooks.py notebooks/02_open_unmix.ipynb --budget 300 --output runs/nb
    python scripts/run_notebooks.py --prepare            # first `mssbook course prepare` the model chapters

Each notebook is executed in a fresh Jupyter kernel (nbclient), in order, with the working
directory set to ``notebooks/`` as in Jupyter, and ``MSSBOOK_PROFILE`` set for the kernel. The
script prints each notebook's wall time and its ``mssbook-scores: {...}`` line, and writes the
**executed copies** (with outputs) and a ``summary.json`` to an output folder: a new temporary
folder unless ``--output`` names one. The clean sources in ``notebooks/`` are never written.

The closing table shows, for every model chapter (its scores carry ``gain_baseline_db`` and
``over_gain_db``), the model's SDR, the fitted-gain baseline's and the difference: the model's SDR
is the chapter's headline figure (median vocals SDR over the test songs; chapter 03: the average of
X-UMX's four sources), the baseline the mixture times one gain fitted on the training songs. The
headline model is the chapter's **prepared** model when it is there (``mssbook course prepare``,
:mod:`mssbook.course`: the same tutorial model trained longer, once), else the model the chapter
trained in its own time budget; the ``model`` column says which, and ``live`` gives the live
model's distance to the gain in either case. ``--prepare`` prepares the chapters' models first
(each takes about 10-15 minutes on two CPU cores the first time, nothing later); that time is not part
of any notebook's budget.

The exit code is 0 when every notebook ran without error within ``--budget`` seconds, 1 otherwise.
The summary records the machine's load average: timings on a shared machine are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"


def _stream_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
    return "".join(parts)


def _error_of(nb) -> str | None:
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {index}: {out.get('ename')}: {out.get('evalue')}"
    return None


def run_notebook(path: Path, output_dir: Path, budget: float, cell_timeout: int, kernel: str) -> dict:
    """Execute one notebook; returns its record (name, seconds, ok, error, scores, executed copy)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    try:
        from mssbook.notebook import parse_scores
    except ImportError:  # not installed: use the checkout this script belongs to
        sys.path.insert(0, str(ROOT))
        from mssbook.notebook import parse_scores

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=cell_timeout, kernel_name=kernel, allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    error = None
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        error = _error_of(nb) or f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    except Exception as exc:  # kernel start-up failures and the like: report, go on with the next notebook
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    executed = output_dir / path.name
    nbformat.write(nb, executed)
    over = seconds > budget
    return {
        "notebook": path.name,
        "seconds": round(seconds, 1),
        "budget": budget,
        "ok": error is None and not over,
        "error": error or (f"took {seconds:.0f} s, over the budget of {budget:.0f} s" if over else None),
        "scores": parse_scores(_stream_text(nb)),
        "executed": str(executed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every notebooks/*.ipynb, in order)")
    parser.add_argument("--profile", choices=("default", "ci"), default="default",
                        help="size profile (MSSBOOK_PROFILE) for the kernels; default: default")
    parser.add_argument("--budget", type=float, default=300.0,
                        help="seconds each notebook may take (default 300); slower counts as a failure")
    parser.add_argument("--cell-timeout", type=int, default=None,
                        help="seconds one cell may take before it is stopped (default: the budget)")
    parser.add_argument("--output", type=Path, default=None,
                        help="folder for the executed copies and summary.json (default: a new temporary folder)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    parser.add_argument("--prepare", action="store_true",
                        help="first prepare the model chapters' models (mssbook course prepare) that are missing")
    args = parser.parse_args(argv)

    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks found in {NOTEBOOK_DIR}", file=sys.stderr)
        return 1
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 1
    output = (args.output or Path(tempfile.mkdtemp(prefix="mssbook-notebooks-"))).resolve()
    if any(output == p.parent for p in paths):
        print(f"--output {output} holds the notebooks themselves; executed copies never replace the "
              "clean sources, choose another folder.", file=sys.stderr)
        return 1
    output.mkdir(parents=True, exist_ok=True)

    os.environ["MSSBOOK_PROFILE"] = args.profile  # inherited by the kernels
    cell_timeout = int(args.cell_timeout or args.budget)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"profile {args.profile}, budget {args.budget:.0f} s per notebook, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in load_before) if load_before else 'n/a'}")
    print(f"executed copies go to {output}")

    if args.prepare:
        try:
            from mssbook import course
        except ImportError:  # not installed: use the checkout this script belongs to
            sys.path.insert(0, str(ROOT))
            from mssbook import course
        chapters = {p.chapter for p in course.PREPARATIONS}
        wanted = [path.name[:2] for path in paths if path.name[:2] in chapters]
        start = time.perf_counter()
        course.prepare(wanted, progress=False)
        print(f"prepared models ready ({time.perf_counter() - start:.0f} s)")

    records = []
    for path in paths:
        print(f"\n== {path.name}", flush=True)
        record = run_notebook(path, output, args.budget, cell_timeout, args.kernel)
        records.append(record)
        status = "ok" if record["ok"] else f"FAILED ({record['error']})"
        print(f"{path.name}: {record['seconds']:.1f} s, {status}")
        if record["scores"] is not None:
            print(f"mssbook-scores: {json.dumps(record['scores'])}")

    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    summary = {
        "profile": args.profile,
        "budget": args.budget,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "notebooks": records,
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2))

    print(f"\n{'notebook':28s} {'seconds':>8s} {'model':>13s} {'model dB':>9s} {'gain dB':>8s} {'over gain':>10s} "
          f"{'live':>7s}  result")
    for r in records:
        scores = r["scores"] or {}
        if "over_gain_db" in scores and "gain_baseline_db" in scores:  # a model chapter (issue 18)
            gain, over = float(scores["gain_baseline_db"]), float(scores["over_gain_db"])
            live = scores.get("live_over_gain_db")
            live = f"{float(live):+7.2f}" if live is not None else f"{'-':>7s}"
            figures = (f"{str(scores.get('over_gain_of', 'trained here')):>13s} {gain + over:9.2f} {gain:8.2f} "
                       f"{over:+10.2f} {live}")
        else:
            figures = f"{'-':>13s} {'-':>9s} {'-':>8s} {'-':>10s} {'-':>7s}"
        print(f"{r['notebook']:28s} {r['seconds']:8.1f} {figures}  {'ok' if r['ok'] else 'FAILED: ' + str(r['error'])}")
    if load_after:
        print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}; summary in {output / 'summary.json'}")
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
