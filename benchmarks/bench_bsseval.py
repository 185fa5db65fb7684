"""How much faster is mssbook's BSSEval v4 than museval, on the same estimates, and is it equal?

For each duration (default 10, 60 and 240 s) the same four-target stereo 44.1 kHz references and
estimates (coloured noise with leakage between sources, seeded) are scored by
``museval.evaluate`` (the SiSEC 2018 scorer, v4) and by ``mssbook.metrics.bss_eval`` (float64,
CPU; and CUDA when a GPU is present). Each scorer runs in a fresh process, so its peak resident
memory (``VmHWM``) is its own: the figure printed is the peak minus the memory held just before
scoring (the signals themselves). The script prints seconds, the speed ratio, the peak memory of
each and the largest framewise difference between the two (NaN frames must coincide), with the
load average (``os.getloadavg``) beside every row: on a shared machine, compare ratios taken in
one run, not absolute times.

museval is only run up to ``--museval-max`` seconds of audio (default 240); for longer durations
its time is **extrapolated** (a power law through its two longest measured durations, labelled
``extrapolated`` in the output), so the scaling curve 10 … 480 s fits in one run. ``--stages``
also prints where mssbook's time goes (correlations, Gram matrix, Cholesky solves, frames).

    python benchmarks/bench_bsseval.py                    # 10, 60, 240 s: ~5 minutes on 2 cores
    python benchmarks/bench_bsseval.py --seconds 10 30 60 120 240 480 --museval-max 120 --stages
                                                          # the scaling curve: ~4 minutes
    python benchmarks/bench_bsseval.py --repeats 3        # best of 3 for mssbook

At its defaults the script finishes in about 5 minutes on 2 cores (museval at 240 s alone takes
about 3); every documented invocation stays under 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SR = 44100
N_SOURCES, N_CHANNELS = 4, 2


def make_signals(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(J, C, N) float64 references and estimates: low-passed noise per source, estimates = own
    source + leakage of the others + noise (every metric finite and different per source)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    refs = np.empty((N_SOURCES, N_CHANNELS, n))
    for j in range(N_SOURCES):
        pole = 0.5 + 0.1 * j
        refs[j] = lfilter([1.0], [1.0, -pole], rng.standard_normal((N_CHANNELS, n)), axis=-1)
    ests = refs * rng.uniform(0.7, 1.2, (N_SOURCES, 1, 1))
    for j in range(N_SOURCES):
        ests[j] += 0.2 * refs[(j + 1) % N_SOURCES] + 0.1 * rng.standard_normal((N_CHANNELS, n))
    return refs, ests


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_hwm() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def worker(scorer: str, seconds: float, out: str, repeats: int) -> None:
    """Runs in a fresh process: score once (or best of ``repeats``), write scores and figures."""
    refs, ests = make_signals(seconds)
    import torch  # noqa: F401  (imported before the baseline, as museval imports scipy)

    import museval

    from mssbook import metrics

    before = _vm_hwm_mb()
    _reset_hwm()
    base = _vm_hwm_mb()
    times = []
    for _ in range(repeats if scorer != "museval" else 1):
        start = time.perf_counter()
        if scorer == "museval":
            sdr, isr, sir, sar = museval.evaluate(np.transpose(refs, (0, 2, 1)), np.transpose(ests, (0, 2, 1)),
                                                  win=SR, hop=SR)
            result = np.array([sdr, isr, sir, sar], dtype=np.float64)
            result[~np.isfinite(result)] = np.nan
        else:
            device = "cuda" if scorer == "mssbook-cuda" else "cpu"
            scores = metrics.bss_eval(refs, ests, SR, device=device)
            result = np.array([[scores[j][m] for j in range(N_SOURCES)] for m in metrics.BSS_METRICS])
            if device == "cuda":
                torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = _vm_hwm_mb()
    np.save(out + ".npy", result)
    Path(out + ".json").write_text(json.dumps({"seconds": min(times), "peak_mb": peak,
                                               "baseline_mb": max(base, 0.0), "before_mb": before}))


def stages(seconds: float, repeats: int) -> dict:
    """Where mssbook's time goes (CPU, best of ``repeats``): seconds per stage of ``bss_eval``."""
    import torch

    from mssbook import metrics

    refs, ests = (torch.from_numpy(x) for x in make_signals(seconds))
    n_src, n_chan, n = refs.shape
    k = n_src * n_chan
    n_frames, length, hop = metrics.frame_bounds(n, SR, SR)
    q = metrics._fft_size(length + metrics.FILTERS_LEN - 1)
    lag = metrics.FILTERS_LEN - 1
    best: dict = {}
    for _ in range(repeats):
        times = {}
        start = time.perf_counter()
        metrics._check_not_silent(list(range(n_src)), refs, ests)
        metrics._frame_silence_and_sdr(refs, ests, n_frames, length, hop)
        times["silence+SDR"] = time.perf_counter() - start
        start = time.perf_counter()
        corr_refs, corr_ests = metrics._correlations(refs.reshape(k, -1), ests.reshape(k, -1), lag)
        times["correlations"] = time.perf_counter() - start
        start = time.perf_counter()
        metrics._gram(corr_refs, metrics.FILTERS_LEN)
        times["Gram"] = time.perf_counter() - start
        start = time.perf_counter()
        all_filters, own_filters = metrics._distortion_filters(refs, ests, metrics.FILTERS_LEN)
        times["solves"] = time.perf_counter() - start - times["correlations"] - times["Gram"]
        start = time.perf_counter()
        operator = metrics._frame_operator(all_filters, own_filters, q)
        metrics._frame_energies(refs, ests, operator, n_frames, length, hop, q)
        times["frames"] = time.perf_counter() - start
        best = {key: min(value, best.get(key, math.inf)) for key, value in times.items()}
    return best


def run(scorer: str, seconds: float, repeats: int, folder: Path) -> tuple[dict, np.ndarray]:
    out = str(folder / f"{scorer}-{seconds:g}")
    subprocess.run([sys.executable, __file__, "--worker", scorer, "--seconds", str(seconds),
                    "--out", out, "--repeats", str(repeats)], check=True)
    return json.loads(Path(out + ".json").read_text()), np.load(out + ".npy")


def _extrapolate(measured: dict, seconds: float) -> float:
    """museval's seconds at ``seconds`` of audio from a power law through its two longest
    measured durations (its cost grows faster than the audio: full-length FFTs)."""
    if not measured:
        return math.nan
    longest = sorted(measured)[-2:]
    if len(longest) == 1:
        return measured[longest[0]] * seconds / longest[0]
    (s1, s2), (t1, t2) = longest, (measured[longest[0]], measured[longest[1]])
    exponent = math.log(t2 / t1) / math.log(s2 / s1)
    return t2 * (seconds / s2) ** exponent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0, 240.0])
    parser.add_argument("--repeats", type=int, default=2, help="best of N for mssbook (museval runs once)")
    parser.add_argument("--museval-max", type=float, default=240.0,
                        help="run museval up to this many seconds of audio; extrapolate it beyond")
    parser.add_argument("--stages", action="store_true", help="also print where mssbook's time goes")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.seconds[0], args.out, args.repeats)
        return 0

    import torch

    scorers = ["museval", "mssbook-cpu"] + (["mssbook-cuda"] if torch.cuda.is_available() else [])
    print(f"BSSEval v4, {N_SOURCES} stereo sources, 1 s frames; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads" + (f", GPU {torch.cuda.get_device_name()}" if len(scorers) > 2 else ""))
    header = (f"{'audio':>7} {'scorer':>13} {'seconds':>9} {'× museval':>10} {'peak MB':>9} {'max |Δ| dB':>11} "
              f"{'NaN same':>9} {'load 1/5 min':>13}")
    print(header)
    rows = []
    measured: dict = {}  # museval's seconds by duration
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.seconds:
            figures, results = {}, {}
            for scorer in scorers:
                if scorer == "museval" and seconds > args.museval_max:
                    continue
                figures[scorer], results[scorer] = run(scorer, seconds, args.repeats, Path(tmp))
            load = "{:.1f}/{:.1f}".format(*os.getloadavg()[:2])
            if "museval" in figures:
                measured[seconds] = figures["museval"]["seconds"]
                reference, label = measured[seconds], ""
            else:
                reference, label = _extrapolate(measured, seconds), " (museval extrapolated)"
            for scorer in figures:
                f = figures[scorer]
                ratio = reference / f["seconds"]
                if "museval" in results:
                    ref = results["museval"]
                    diff = f"{float(np.nanmax(np.abs(results[scorer] - ref))):>11.1e}"
                    same = str(bool(np.array_equal(np.isnan(results[scorer]), np.isnan(ref))))
                else:
                    diff, same = f"{'-':>11}", "-"
                memory = f["peak_mb"] - f["baseline_mb"]
                print(f"{seconds:>6g}s {scorer:>13} {f['seconds']:>9.2f} {ratio:>9.1f}× {memory:>9.0f} "
                      f"{diff} {same:>9} {load:>13}{label}", flush=True)
                rows.append({"seconds": seconds, "scorer": scorer, "time": f["seconds"], "ratio": ratio,
                             "museval_extrapolated": bool(label), "peak_mb": memory,
                             "max_abs_diff_db": diff.strip(), "nan_same": same, "load": load})
            if label:
                print(f"{seconds:>6g}s {'museval':>13} {reference:>9.1f} (extrapolated, not run)")
    if args.stages:
        print("\nwhere mssbook's time goes (CPU, seconds, best of --repeats):")
        for seconds in args.seconds:
            times = stages(seconds, args.repeats)
            load = "{:.1f}/{:.1f}".format(*os.getloadavg()[:2])
            print(f"{seconds:>6g}s " + "  ".join(f"{key} {value:.2f}" for key, value in times.items())
                  + f"  total {sum(times.values()):.2f}  (load {load})", flush=True)
    print("json:", json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
