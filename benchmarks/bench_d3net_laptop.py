"""D3Net's faster inference mode for laptops: its speed-up and its SDR cost, side by side.

The official inference (``channel_swap=True``, patches overlapping by half) runs every frame
through the network four times; :data:`mssbook.models.d3net.LAPTOP_OPTIONS` (``channel_swap=False,
patch_overlap=False``) runs it once. This script measures, in one run:

1. **SDR cost** on the toy test songs (``mssbook.data.toy``, the course's test split): the D3Net
   kept by chapter 4 (``mssbook.runs.kept_run_dir("ch04-d3net-vocals")``, vocals) separates every
   song with the official options and with the laptop options, scored by
   ``mssbook.evaluation.evaluate_tracks`` (mssbook's BSSEval v4); the median SDR of vocals and
   accompaniment of both and the difference. Needs that kept run (the chapter 4 notebook makes it).
2. **Speed-up** of ``model.separate`` with the laptop options over the official ones, for the kept
   model on the same songs and for the paper-size vocals network (random weights) on
   ``--paper-seconds`` of stereo noise, timed alternately in the same run.

    python benchmarks/bench_d3net_laptop.py                 # about 3 minutes on 2 CPU cores
    python benchmarks/bench_d3net_laptop.py --paper-seconds 0   # SDR only

At its defaults it finishes in under 10 minutes on 2 cores (measured for issue 16) and prints the
load average beside the timings.

Measured for issue 16 (2 shared CPU cores, load average 1.0-3.0, the chapter 4 tutorial D3Net,
6 toy test songs of 10 s, median SDR in dB):

    mode       vocals  accompaniment   10 s song, model.separate
    official     1.68           5.76   8.22 s
    laptop       1.61           5.75   2.64 s (3.1x faster)
    cost        +0.07          +0.01

The paper network's share of the time is larger than the tutorial's, so its speed-up approaches
the 4x of its network calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SR = 44100


def timed(fn) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    from mssbook.data.toy import ensure_toy_dataset
    from mssbook.evaluation import evaluate_tracks
    from mssbook.models.d3net import LAPTOP_OPTIONS
    from mssbook.runs import kept_run_dir
    from mssbook.separation import resolve_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="ch04-d3net-vocals", help="kept run (mssbook.runs) of a vocals D3Net")
    parser.add_argument("--paper-seconds", type=float, default=10.0,
                        help="stereo seconds for the paper-size timing (0: skip it)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    modes = {"official": {}, "laptop": dict(LAPTOP_OPTIONS)}
    print(f"D3Net inference modes: official {{channel_swap: True, patch_overlap: True}} vs laptop {LAPTOP_OPTIONS}; "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")

    run_dir = kept_run_dir(args.run)
    if not run_dir.exists():
        print(f"no kept run at {run_dir}: run chapter 4's notebook (it keeps 'ch04-d3net-vocals'), then again")
        return 1
    model = resolve_model(run_dir, "cpu").eval()
    root = ensure_toy_dataset(progress=False)
    print(f"\n1. SDR on the toy test songs ({root}), model {run_dir.name} ({model.num_parameters():,} parameters):")
    print(f"   {'mode':<10}{'vocals SDR':>12}{'accomp. SDR':>13}{'seconds':>9}")
    medians = {}
    with tempfile.TemporaryDirectory() as scratch:
        for mode, options in modes.items():
            summary = evaluate_tracks(model, root, "test", output_dir=Path(scratch) / mode, progress=False,
                                      device="cpu", **options)
            table = summary["table"]
            medians[mode] = {t: table[t]["SDR"] for t in table.targets()}
            print(f"   {mode:<10}{medians[mode].get('vocals', np.nan):>12.2f}"
                  f"{medians[mode].get('accompaniment', np.nan):>13.2f}{summary['seconds']:>9.1f}")
    cost = {t: medians["official"][t] - medians["laptop"][t] for t in medians["official"]}
    print("   SDR cost of the laptop mode (official − laptop, dB): "
          + ", ".join(f"{t} {c:+.2f}" for t, c in cost.items()))

    print("\n2. speed-up of the laptop mode, model.separate, best of 2, alternating:")
    rng = np.random.default_rng(0)
    song = torch.from_numpy((0.1 * rng.standard_normal((1, 2, 10 * SR))).astype(np.float32))
    cases = [(f"{run_dir.name}, 10 s", model, song)]
    if args.paper_seconds > 0:
        from mssbook import models

        torch.manual_seed(0)
        paper = models.create("d3net", preset="paper", target="vocals").eval()
        paper.initialize_from_data([song[0].numpy()])
        clip = torch.from_numpy((0.1 * rng.standard_normal((1, 2, int(args.paper_seconds * SR)))).astype(np.float32))
        cases.append((f"paper vocals, {args.paper_seconds:g} s", paper, clip))
    for label, net, audio in cases:
        best = {mode: float("inf") for mode in modes}
        for _ in range(2):
            for mode, options in modes.items():
                best[mode] = min(best[mode], timed(lambda: net.separate(audio, **options)))
        print(f"   {label:<28} official {best['official']:7.2f} s, laptop {best['laptop']:7.2f} s: "
              f"{best['official'] / best['laptop']:.2f}x faster (load average {os.getloadavg()[0]:.1f})")
    print(f"\ntotal {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
