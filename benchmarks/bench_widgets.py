"""How long does an interactive widget take to answer a click? (goal: at most 1 s per update)

Issue 13 asks that a widget's whole update (computation, image, audio encoding, metrics) take at
most 1 s for a 10 s stereo song on 2 CPU cores. This script renders a 10 s stereo 44.1 kHz toy
song (``mssbook.data.toy``), builds each widget on it and times, on the wall clock:

* **MaskExplorer**: construction (the STFTs of the mixture and the four sources, then the first
  update), and one update per method (IBM, IRM, Wiener with 1 EM iteration): the median of
  ``--repeats`` updates, each a real change of a control (α alternates between two values, set
  through the widget exactly as a click would), with its split into state (masks, ISTFT, metrics),
  image (PNG) and audio (encoding for the player), the spread, and the median CPU time of the
  process (all threads; it grows less than wall time when other jobs share the cores, but spinning
  idle threads count). Wiener with more iterations is shown too.

One function per widget (``bench_mask_explorer``, ...), each returning its rows; ``main`` prints
them. Every timing is printed beside the load average at that moment: other jobs on the cores
inflate wall-clock times. Finishes in well under a minute on 2 cores (≤ 10 min in any case).

    python benchmarks/bench_widgets.py
    python benchmarks/bench_widgets.py --seconds 30 --repeats 7 --threads 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SR = 44100
GOAL_S = 1.0  # issue 13: one update of a widget, 10 s stereo song, 2 CPU cores


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def toy_song(seconds: float, seed: int = 0) -> tuple[np.ndarray, dict]:
    """A stereo 44.1 kHz toy song: the mixture (2, L) and its four stems ``{name: (2, L)}``."""
    from mssbook.data import toy

    stems = toy.render_song(toy.plan_song(seed, seconds), SR)
    return toy.mix_stems(stems), stems


def bench_mask_explorer(mixture: np.ndarray, stems: dict, repeats: int) -> list[dict]:
    """Construction and per-method update times of :class:`mssbook.widgets.MaskExplorer`."""
    from mssbook.widgets.base import is_static
    from mssbook.widgets.masks import MaskExplorer

    static = is_static() or not _has_ipywidgets()
    rows = []
    start, before = time.perf_counter(), load()
    explorer = MaskExplorer(mixture, stems, SR, static=static)
    rows.append({"what": f"MaskExplorer construction ({'static' if static else 'interactive'})",
                 "seconds": time.perf_counter() - start, "load": before, "split": explorer.update_breakdown})
    for method, niter in (("ibm", 1), ("irm", 1), ("wiener", 1), ("wiener", 3)):
        explorer.update(method=method, niter=niter, alpha=1.0)  # not timed: the switch itself
        times, cpu, splits, before = [], [], [], load()
        for i in range(repeats):
            alpha = 2.0 if i % 2 == 0 else 1.0  # each update is a real change
            cpu_start = time.process_time()
            if explorer.widget is not None:
                explorer.alpha.value = alpha  # as the user's slider does
            else:
                explorer.update(alpha=alpha)
            cpu.append(time.process_time() - cpu_start)
            times.append(explorer.update_seconds)
            splits.append(explorer.update_breakdown)
        median = int(np.argsort(times)[len(times) // 2])
        label = method.upper() if method != "wiener" else f"Wiener, {niter} EM iteration{'s' * (niter > 1)}"
        rows.append({"what": f"MaskExplorer update: {label}", "seconds": times[median], "load": before,
                     "split": splits[median], "goal": niter <= 1, "all": times, "cpu": float(np.median(cpu))})
    return rows


def _has_ipywidgets() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def report(rows: list[dict]) -> bool:
    """Print the rows; True when every update that has a goal meets it."""
    ok = True
    for row in rows:
        split = ", ".join(f"{k} {v:.3f}" for k, v in row["split"].items())
        verdict = ""
        if "goal" in row:
            meets = row["seconds"] <= GOAL_S
            ok &= meets or not row["goal"]
            verdict = ("  ok" if meets else "  OVER the 1 s goal") if row["goal"] else "  (no goal)"
        spread = (f"  [min {min(row['all']):.3f}, max {max(row['all']):.3f}; CPU {row['cpu']:.3f} s]"
                  if "all" in row else "")
        print(f"  {row['what']:<46} {row['seconds']:6.3f} s  (load {row['load']:.1f}; {split}){spread}{verdict}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="song length (10 s: the issue's goal)")
    parser.add_argument("--repeats", type=int, default=5, help="updates timed per setting (median shown)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0, help="toy song seed")
    args = parser.parse_args(argv)

    import matplotlib
    import torch

    matplotlib.use("Agg")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPU cores, "
          f"load average {load():.1f} (wall-clock figures assume an otherwise idle machine)")
    start = time.perf_counter()
    mixture, stems = toy_song(args.seconds, args.seed)
    print(f"toy song: {args.seconds:g} s, stereo, {SR} Hz, seed {args.seed}, rendered in "
          f"{time.perf_counter() - start:.1f} s")
    print(f"median of {args.repeats} updates each; goal: <= {GOAL_S:g} s per update on 2 cores")
    ok = report(bench_mask_explorer(mixture, stems, args.repeats))
    print("all updates within the goal" if ok else "some updates are OVER the goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
